-- Copy each record's resolved person id from the source_person row it names
-- (same source, external_id = person_ref). Runs after identity resolution, and only
-- on records that have no person yet or whose source_person row was just resolved
-- (listed in the run's scratch table model_refs). The persons that gain a record are
-- listed in model_dirty, so sql/model_persons recomputes their facts: here for cases,
-- contracts, feedback and mail; a lead, touchpoint or order whose person changed is
-- pending (model_pending = true) for the rest of the run, so its attribution is derived
-- again and 30_pending_persons.sql lists its person.
--
-- Each record is looked up by the source_person row it names (an index on
-- (source, person_ref) in every table): records with no person yet (a join, UPDATE ...
-- FROM: as subqueries, a first run beside 583,000 new touchpoints looked each one's
-- source_person row up twice), then those of the rows listed in model_refs, each a
-- statement of its own (as one statement with an OR, SQLite read the whole table on every
-- model run). Of the tables with model_pending, only the records written since the last
-- run can be without a person yet and gain one now (a record whose source_person row is
-- resolved later is in model_refs then): records that never get a person (mail with no
-- sender record) are not read again on every run.

UPDATE lead SET model_pending = true, person_id = sp.person_id
FROM source_person sp
WHERE lead.model_pending = true AND lead.person_id IS NULL
  AND sp.source = lead.source AND sp.external_id = lead.person_ref AND sp.person_id IS NOT NULL;

UPDATE lead SET model_pending = true, person_id = (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = lead.source AND sp.external_id = lead.person_ref)
WHERE (source, person_ref) IN (SELECT m.source, m.external_id FROM model_refs m)
  AND person_id IS DISTINCT FROM (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = lead.source AND sp.external_id = lead.person_ref);

UPDATE touchpoint SET model_pending = true, person_id = sp.person_id
FROM source_person sp
WHERE touchpoint.model_pending = true AND touchpoint.person_id IS NULL
  AND sp.source = touchpoint.source AND sp.external_id = touchpoint.person_ref AND sp.person_id IS NOT NULL;

UPDATE touchpoint SET model_pending = true, person_id = (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = touchpoint.source AND sp.external_id = touchpoint.person_ref)
WHERE (source, person_ref) IN (SELECT m.source, m.external_id FROM model_refs m)
  AND person_id IS DISTINCT FROM (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = touchpoint.source AND sp.external_id = touchpoint.person_ref);

UPDATE customer_order SET model_pending = true, person_id = sp.person_id
FROM source_person sp
WHERE customer_order.model_pending = true AND customer_order.person_id IS NULL
  AND sp.source = customer_order.source AND sp.external_id = customer_order.person_ref AND sp.person_id IS NOT NULL;

UPDATE customer_order SET model_pending = true, person_id = (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = customer_order.source AND sp.external_id = customer_order.person_ref)
WHERE (source, person_ref) IN (SELECT m.source, m.external_id FROM model_refs m)
  AND person_id IS DISTINCT FROM (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = customer_order.source AND sp.external_id = customer_order.person_ref);

INSERT INTO model_dirty (person_id)
SELECT DISTINCT sp.person_id FROM service_case r
JOIN source_person sp ON sp.source = r.source AND sp.external_id = r.person_ref
WHERE r.person_id IS NULL AND r.person_ref IS NOT NULL AND sp.person_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM model_dirty d WHERE d.person_id = sp.person_id);

UPDATE service_case SET person_id = sp.person_id
FROM source_person sp
WHERE service_case.person_id IS NULL AND service_case.person_ref IS NOT NULL
  AND sp.source = service_case.source AND sp.external_id = service_case.person_ref AND sp.person_id IS NOT NULL;

UPDATE service_case SET person_id = (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = service_case.source AND sp.external_id = service_case.person_ref)
WHERE (source, person_ref) IN (SELECT m.source, m.external_id FROM model_refs m)
  AND person_id IS DISTINCT FROM (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = service_case.source AND sp.external_id = service_case.person_ref);

INSERT INTO model_dirty (person_id)
SELECT DISTINCT sp.person_id FROM service_contract r
JOIN source_person sp ON sp.source = r.source AND sp.external_id = r.person_ref
WHERE r.person_id IS NULL AND r.person_ref IS NOT NULL AND sp.person_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM model_dirty d WHERE d.person_id = sp.person_id);

UPDATE service_contract SET person_id = sp.person_id
FROM source_person sp
WHERE service_contract.person_id IS NULL AND service_contract.person_ref IS NOT NULL
  AND sp.source = service_contract.source AND sp.external_id = service_contract.person_ref AND sp.person_id IS NOT NULL;

UPDATE service_contract SET person_id = (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = service_contract.source AND sp.external_id = service_contract.person_ref)
WHERE (source, person_ref) IN (SELECT m.source, m.external_id FROM model_refs m)
  AND person_id IS DISTINCT FROM (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = service_contract.source AND sp.external_id = service_contract.person_ref);

INSERT INTO model_dirty (person_id)
SELECT DISTINCT sp.person_id FROM feedback r
JOIN source_person sp ON sp.source = r.source AND sp.external_id = r.person_ref
WHERE r.person_id IS NULL AND r.person_ref IS NOT NULL AND sp.person_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM model_dirty d WHERE d.person_id = sp.person_id);

UPDATE feedback SET person_id = sp.person_id
FROM source_person sp
WHERE feedback.person_id IS NULL AND feedback.person_ref IS NOT NULL
  AND sp.source = feedback.source AND sp.external_id = feedback.person_ref AND sp.person_id IS NOT NULL;

UPDATE feedback SET person_id = (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = feedback.source AND sp.external_id = feedback.person_ref)
WHERE (source, person_ref) IN (SELECT m.source, m.external_id FROM model_refs m)
  AND person_id IS DISTINCT FROM (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = feedback.source AND sp.external_id = feedback.person_ref);

INSERT INTO model_dirty (person_id)
SELECT DISTINCT sp.person_id FROM email_message r
JOIN source_person sp ON sp.source = r.source AND sp.external_id = r.person_ref
WHERE r.model_pending = true AND r.person_id IS NULL AND sp.person_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM model_dirty d WHERE d.person_id = sp.person_id);

UPDATE email_message SET person_id = sp.person_id
FROM source_person sp
WHERE email_message.model_pending = true AND email_message.person_id IS NULL
  AND sp.source = email_message.source AND sp.external_id = email_message.person_ref AND sp.person_id IS NOT NULL;

UPDATE email_message SET person_id = (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = email_message.source AND sp.external_id = email_message.person_ref)
WHERE (source, person_ref) IN (SELECT m.source, m.external_id FROM model_refs m)
  AND person_id IS DISTINCT FROM (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = email_message.source AND sp.external_id = email_message.person_ref);
