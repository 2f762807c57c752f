-- A person of this run (model_dirty) with no dated touchpoint left keeps no touch facts.
-- Runs after 25_touch_facts.sql in either of its forms (sql/model_persons_all has no
-- file of this name, so the same statement serves runs of every size).
UPDATE person SET first_touch_source = NULL, first_touch_campaign = NULL, first_touch_channel = NULL,
    last_touch_source = NULL, last_touch_campaign = NULL, last_touch_channel = NULL
WHERE person_id IN (SELECT d.person_id FROM model_dirty d)
  AND (first_touch_source IS NOT NULL OR first_touch_campaign IS NOT NULL OR first_touch_channel IS NOT NULL
       OR last_touch_source IS NOT NULL OR last_touch_campaign IS NOT NULL OR last_touch_channel IS NOT NULL)
  AND NOT EXISTS (SELECT 1 FROM touchpoint t WHERE t.person_id = person.person_id AND t.occurred_at IS NOT NULL);
