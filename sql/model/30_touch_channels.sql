-- The channel of each person's first and latest touch (the touchpoints 20_ reads for
-- first/last touch source and campaign, in the same order). Only persons with a touchpoint
-- or that changed in this run and has a touch channel (model_dirty: a person whose
-- touchpoints moved away is one): every person on every run cost 0.9 s at 800,000 persons
-- on SQLite with nothing new.
--
-- Two statements, each a plain semi-join: as one statement (touchpoint OR model_dirty),
-- PostgreSQL checked model_dirty by a scan of it per person once it outgrew work_mem,
-- which never ended in a run from scratch at 1,000,000 records (800,000 x 800,000 rows).
UPDATE person SET
    first_touch_channel = (SELECT t.channel FROM touchpoint t
        WHERE t.person_id = person.person_id AND t.occurred_at IS NOT NULL
        ORDER BY t.occurred_at, t.source, t.external_id LIMIT 1),
    last_touch_channel = (SELECT t.channel FROM touchpoint t
        WHERE t.person_id = person.person_id AND t.occurred_at IS NOT NULL
        ORDER BY t.occurred_at DESC, t.source DESC, t.external_id DESC LIMIT 1)
WHERE person_id IN (SELECT t.person_id FROM touchpoint t WHERE t.person_id IS NOT NULL);

-- A person of this run with no touchpoint left keeps no touch channel.
UPDATE person SET first_touch_channel = NULL, last_touch_channel = NULL
WHERE person_id IN (SELECT d.person_id FROM model_dirty d)
  AND (first_touch_channel IS NOT NULL OR last_touch_channel IS NOT NULL)
  AND NOT EXISTS (SELECT 1 FROM touchpoint t WHERE t.person_id = person.person_id);
