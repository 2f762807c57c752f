-- The channel of each person's first and latest touch (the touchpoints 20_ reads for
-- first/last touch source and campaign, in the same order).
UPDATE person SET
    first_touch_channel = (SELECT t.channel FROM touchpoint t
        WHERE t.person_id = person.person_id AND t.occurred_at IS NOT NULL
        ORDER BY t.occurred_at, t.source, t.external_id LIMIT 1),
    last_touch_channel = (SELECT t.channel FROM touchpoint t
        WHERE t.person_id = person.person_id AND t.occurred_at IS NOT NULL
        ORDER BY t.occurred_at DESC, t.source DESC, t.external_id DESC LIMIT 1);
