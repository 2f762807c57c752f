-- Copy each record's resolved person id from the source_person row it names
-- (same source, external_id = person_ref). Runs after identity resolution, and only
-- on records that have no person yet or whose source_person row was just resolved
-- (listed in the run's scratch table model_refs). The persons that gain a record are
-- listed in model_dirty, so sql/model_persons recomputes their facts.

INSERT INTO model_dirty (person_id)
SELECT DISTINCT sp.person_id FROM lead r
JOIN source_person sp ON sp.source = r.source AND sp.external_id = r.person_ref
WHERE r.person_id IS NULL AND sp.person_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM model_dirty d WHERE d.person_id = sp.person_id);

UPDATE lead SET person_id = (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = lead.source AND sp.external_id = lead.person_ref)
WHERE person_ref IS NOT NULL
  AND (person_id IS NULL OR EXISTS (
    SELECT 1 FROM model_refs m WHERE m.source = lead.source AND m.external_id = lead.person_ref))
  AND person_id IS DISTINCT FROM (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = lead.source AND sp.external_id = lead.person_ref);

INSERT INTO model_dirty (person_id)
SELECT DISTINCT sp.person_id FROM touchpoint r
JOIN source_person sp ON sp.source = r.source AND sp.external_id = r.person_ref
WHERE r.person_id IS NULL AND sp.person_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM model_dirty d WHERE d.person_id = sp.person_id);

UPDATE touchpoint SET person_id = (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = touchpoint.source AND sp.external_id = touchpoint.person_ref)
WHERE person_ref IS NOT NULL
  AND (person_id IS NULL OR EXISTS (
    SELECT 1 FROM model_refs m WHERE m.source = touchpoint.source AND m.external_id = touchpoint.person_ref))
  AND person_id IS DISTINCT FROM (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = touchpoint.source AND sp.external_id = touchpoint.person_ref);

INSERT INTO model_dirty (person_id)
SELECT DISTINCT sp.person_id FROM customer_order r
JOIN source_person sp ON sp.source = r.source AND sp.external_id = r.person_ref
WHERE r.person_id IS NULL AND sp.person_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM model_dirty d WHERE d.person_id = sp.person_id);

UPDATE customer_order SET person_id = (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = customer_order.source AND sp.external_id = customer_order.person_ref)
WHERE person_ref IS NOT NULL
  AND (person_id IS NULL OR EXISTS (
    SELECT 1 FROM model_refs m WHERE m.source = customer_order.source AND m.external_id = customer_order.person_ref))
  AND person_id IS DISTINCT FROM (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = customer_order.source AND sp.external_id = customer_order.person_ref);

INSERT INTO model_dirty (person_id)
SELECT DISTINCT sp.person_id FROM service_case r
JOIN source_person sp ON sp.source = r.source AND sp.external_id = r.person_ref
WHERE r.person_id IS NULL AND sp.person_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM model_dirty d WHERE d.person_id = sp.person_id);

UPDATE service_case SET person_id = (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = service_case.source AND sp.external_id = service_case.person_ref)
WHERE person_ref IS NOT NULL
  AND (person_id IS NULL OR EXISTS (
    SELECT 1 FROM model_refs m WHERE m.source = service_case.source AND m.external_id = service_case.person_ref))
  AND person_id IS DISTINCT FROM (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = service_case.source AND sp.external_id = service_case.person_ref);

INSERT INTO model_dirty (person_id)
SELECT DISTINCT sp.person_id FROM service_contract r
JOIN source_person sp ON sp.source = r.source AND sp.external_id = r.person_ref
WHERE r.person_id IS NULL AND sp.person_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM model_dirty d WHERE d.person_id = sp.person_id);

UPDATE service_contract SET person_id = (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = service_contract.source AND sp.external_id = service_contract.person_ref)
WHERE person_ref IS NOT NULL
  AND (person_id IS NULL OR EXISTS (
    SELECT 1 FROM model_refs m WHERE m.source = service_contract.source AND m.external_id = service_contract.person_ref))
  AND person_id IS DISTINCT FROM (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = service_contract.source AND sp.external_id = service_contract.person_ref);

INSERT INTO model_dirty (person_id)
SELECT DISTINCT sp.person_id FROM feedback r
JOIN source_person sp ON sp.source = r.source AND sp.external_id = r.person_ref
WHERE r.person_id IS NULL AND sp.person_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM model_dirty d WHERE d.person_id = sp.person_id);

UPDATE feedback SET person_id = (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = feedback.source AND sp.external_id = feedback.person_ref)
WHERE person_ref IS NOT NULL
  AND (person_id IS NULL OR EXISTS (
    SELECT 1 FROM model_refs m WHERE m.source = feedback.source AND m.external_id = feedback.person_ref))
  AND person_id IS DISTINCT FROM (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = feedback.source AND sp.external_id = feedback.person_ref);

INSERT INTO model_dirty (person_id)
SELECT DISTINCT sp.person_id FROM email_message r
JOIN source_person sp ON sp.source = r.source AND sp.external_id = r.person_ref
WHERE r.person_id IS NULL AND sp.person_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM model_dirty d WHERE d.person_id = sp.person_id);

UPDATE email_message SET person_id = (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = email_message.source AND sp.external_id = email_message.person_ref)
WHERE person_ref IS NOT NULL
  AND (person_id IS NULL OR EXISTS (
    SELECT 1 FROM model_refs m WHERE m.source = email_message.source AND m.external_id = email_message.person_ref))
  AND person_id IS DISTINCT FROM (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = email_message.source AND sp.external_id = email_message.person_ref);
