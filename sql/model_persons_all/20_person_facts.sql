-- sql/model_persons/20_person_facts.sql (the same rules, the same values) for a run that
-- rewrites every person (a run from scratch, whose model_dirty lists every person that
-- has a record, and which wrote each person's golden record in this run) or very many
-- (crm_model.identity.SET_WISE_FROM: a first run over a large sync). There a
-- subquery per person looks the person's rows up through the person_id indexes; here
-- each table is read once and grouped by person. crm_model/derive.py (link_records)
-- runs this file in place of that one.

-- Lifecycle: customer (2) once something was bought, prospect (1) once they engaged
-- beyond a form, else lead, from one pass over the orders, the touchpoints and the
-- records that say so (most persons have none: they stay leads). Only rows whose stage
-- changes are written. At 1,000,000 records (798,240 persons, no orders) on SQLite:
-- 3.1 s per person, 0.4 s set-wise.
UPDATE person SET lifecycle_stage = s.stage
FROM (SELECT d.person_id, CASE x.stage_rank WHEN 2 THEN 'customer' WHEN 1 THEN 'prospect' ELSE 'lead' END AS stage
      FROM model_dirty d LEFT JOIN (
          SELECT person_id, MAX(stage_rank) AS stage_rank FROM (
              SELECT o.person_id, 2 AS stage_rank FROM customer_order o
              WHERE o.person_id IS NOT NULL AND COALESCE(o.status, '') NOT IN (
                  'cancelled', 'failed', 'void', 'voided', 'draft', 'test', 'trash', 'expired',
                  'pending', 'checkout-draft', 'uncollectible', 'open', 'on-hold', 'authorized')
              UNION ALL
              SELECT t.person_id, 1 FROM touchpoint t
              WHERE t.person_id IS NOT NULL AND t.channel IN ('ad_click', 'affiliate_click', 'email_click',
                                                             'web_visit', 'site_visit', 'phone_call', 'meeting')
              UNION ALL
              SELECT sp.person_id, CASE sp.lifecycle_stage WHEN 'customer' THEN 2 ELSE 1 END FROM source_person sp
              WHERE sp.person_id IS NOT NULL AND sp.lifecycle_stage IN ('customer', 'prospect')) ranked
          GROUP BY person_id) x ON x.person_id = d.person_id) s
WHERE person.person_id = s.person_id AND person.lifecycle_stage IS DISTINCT FROM s.stage;

-- First and last seen: the golden record written in this run carries its records' first
-- and last seen_at (identity.py, _write_persons); only persons with a touchpoint or an
-- order are recomputed here, as sql/model_persons does. At 1,000,000 records (no
-- touchpoints or orders) on SQLite: 3.7-4.7 s for every person, 0.1 s here (grouping
-- source_person by person and writing every person set-wise took as long: 1.8 s + 1.6 s).
UPDATE person SET (first_seen_at, last_seen_at) = (SELECT MIN(t), MAX(t) FROM (
        SELECT occurred_at AS t FROM touchpoint WHERE person_id = person.person_id
        UNION ALL SELECT ordered_at FROM customer_order WHERE person_id = person.person_id
        UNION ALL SELECT seen_at FROM source_person WHERE person_id = person.person_id) seen)
WHERE person_id IN (SELECT person_id FROM model_dirty)
  -- one list, not two IN lists under an OR: PostgreSQL checks an IN list under an OR by a
  -- scan of it per person once it outgrows work_mem (tests/warehouse/test_model_plans.py)
  AND person_id IN (SELECT t.person_id FROM touchpoint t WHERE t.person_id IS NOT NULL
                    UNION SELECT o.person_id FROM customer_order o WHERE o.person_id IS NOT NULL);
