-- Leads, touchpoints and orders with no person yet get the person of the source_person
-- row they name (same source, external_id = person_ref), as the rest of their records do
-- in 10_link_person_ids.sql (whose comments explain the forms); a lead, touchpoint or
-- order that gains a person is pending (model_pending = true) for the rest of the run.
--
-- One statement per table, in a file of its own: in a first run after a large sync, each
-- writes most of its table. On PostgreSQL every row written is a new version with an
-- entry in each of the table's indexes (lead has six besides its key), so crm_model.derive
-- (link_records) runs each statement here without its table's secondary indexes, built
-- again after it, when the table has 100,000 rows or more and most of them have no person
-- yet. At 1,000,000 leads synced from csv: the leads' statement 18.6-23.9 s with the
-- indexes.

UPDATE lead SET model_pending = true, person_id = sp.person_id
FROM source_person sp
WHERE lead.model_pending = true AND lead.person_id IS NULL
  AND sp.source = lead.source AND sp.external_id = lead.person_ref AND sp.person_id IS NOT NULL;

UPDATE touchpoint SET model_pending = true, person_id = sp.person_id
FROM source_person sp
WHERE touchpoint.model_pending = true AND touchpoint.person_id IS NULL
  AND sp.source = touchpoint.source AND sp.external_id = touchpoint.person_ref AND sp.person_id IS NOT NULL;

UPDATE customer_order SET model_pending = true, person_id = sp.person_id
FROM source_person sp
WHERE customer_order.model_pending = true AND customer_order.person_id IS NULL
  AND sp.source = customer_order.source AND sp.external_id = customer_order.person_ref AND sp.person_id IS NOT NULL;
