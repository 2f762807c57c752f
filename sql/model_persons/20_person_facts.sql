-- Facts of each person that changed in this model run (listed in model_dirty):
-- lifecycle stage, first/last seen, first/last touch. The golden record's own fields
-- (name, email, address, ...) are chosen by survivorship rules in crm_model/identity.py.

-- Lifecycle: customer once something was bought (an order that is not cancelled,
-- failed, unpaid or a draft/test), prospect once they engaged beyond a form (ad, affiliate
-- or email click, web or site visit, call, meeting), else lead. Only rows whose stage
-- changes are written (a run from scratch creates its persons as leads, and most stay
-- leads: at 800,000 persons on SQLite 2.5 s -> 2.0 s).
UPDATE person SET lifecycle_stage = s.stage
FROM (SELECT d.person_id, CASE
    WHEN EXISTS (SELECT 1 FROM customer_order o WHERE o.person_id = d.person_id
                 AND COALESCE(o.status, '') NOT IN (
                     'cancelled', 'failed', 'void', 'voided', 'draft', 'test', 'trash', 'expired',
                     'pending', 'checkout-draft', 'uncollectible', 'open', 'on-hold', 'authorized'))
      OR EXISTS (SELECT 1 FROM source_person sp
                 WHERE sp.person_id = d.person_id AND sp.lifecycle_stage = 'customer')
        THEN 'customer'
    WHEN EXISTS (SELECT 1 FROM touchpoint t WHERE t.person_id = d.person_id
                 AND t.channel IN ('ad_click', 'affiliate_click', 'email_click', 'web_visit', 'site_visit',
                                   'phone_call', 'meeting'))
      OR EXISTS (SELECT 1 FROM source_person sp
                 WHERE sp.person_id = d.person_id AND sp.lifecycle_stage = 'prospect')
        THEN 'prospect'
    ELSE 'lead'
END AS stage FROM model_dirty d) s
-- the persons looked up from model_dirty: joined on s alone, SQLite scanned every person
-- and looked each up in model_dirty (at 1,000,000 records, 10,000 new: 0.15 s -> 0.06 s)
WHERE person.person_id IN (SELECT person_id FROM model_dirty)
  AND person.person_id = s.person_id AND person.lifecycle_stage IS DISTINCT FROM s.stage;

-- First and last time any source saw the person, both from one pass over its rows. The
-- golden record written in this run carries its records' first and last seen_at
-- (identity.py, _write_persons), and a person the run did not rewrite is listed here only
-- because sql/model gave it a lead, touchpoint, order, case, contract, feedback or email:
-- so only persons with a touchpoint or an order are recomputed (at 1,000,000 records, 1%
-- new, on SQLite: 0.05 s -> 0.01 s for the 10,000 persons).
UPDATE person SET (first_seen_at, last_seen_at) = (SELECT MIN(t), MAX(t) FROM (
        SELECT occurred_at AS t FROM touchpoint WHERE person_id = person.person_id
        UNION ALL SELECT ordered_at FROM customer_order WHERE person_id = person.person_id
        UNION ALL SELECT seen_at FROM source_person WHERE person_id = person.person_id) seen)
-- (asked of model_dirty's rows: asked of every person's row, PostgreSQL checked all
-- 800,000 persons' touchpoints and orders, 0.6 s)
WHERE person_id IN (SELECT d.person_id FROM model_dirty d
                    WHERE EXISTS (SELECT 1 FROM touchpoint t WHERE t.person_id = d.person_id)
                       OR EXISTS (SELECT 1 FROM customer_order o WHERE o.person_id = d.person_id));
