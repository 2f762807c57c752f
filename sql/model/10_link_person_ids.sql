-- Copy each record's resolved person id from the source_person row it names
-- (same source, external_id = person_ref). Runs after identity resolution.
-- Only rows whose person changed are written.

UPDATE lead SET person_id = (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = lead.source AND sp.external_id = lead.person_ref)
WHERE person_id IS DISTINCT FROM (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = lead.source AND sp.external_id = lead.person_ref);

UPDATE touchpoint SET person_id = (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = touchpoint.source AND sp.external_id = touchpoint.person_ref)
WHERE person_id IS DISTINCT FROM (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = touchpoint.source AND sp.external_id = touchpoint.person_ref);

UPDATE customer_order SET person_id = (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = customer_order.source AND sp.external_id = customer_order.person_ref)
WHERE person_id IS DISTINCT FROM (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = customer_order.source AND sp.external_id = customer_order.person_ref);

UPDATE service_case SET person_id = (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = service_case.source AND sp.external_id = service_case.person_ref)
WHERE person_id IS DISTINCT FROM (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = service_case.source AND sp.external_id = service_case.person_ref);

UPDATE service_contract SET person_id = (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = service_contract.source AND sp.external_id = service_contract.person_ref)
WHERE person_id IS DISTINCT FROM (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = service_contract.source AND sp.external_id = service_contract.person_ref);

UPDATE feedback SET person_id = (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = feedback.source AND sp.external_id = feedback.person_ref)
WHERE person_id IS DISTINCT FROM (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = feedback.source AND sp.external_id = feedback.person_ref);

UPDATE email_message SET person_id = (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = email_message.source AND sp.external_id = email_message.person_ref)
WHERE person_id IS DISTINCT FROM (
    SELECT sp.person_id FROM source_person sp
    WHERE sp.source = email_message.source AND sp.external_id = email_message.person_ref);
