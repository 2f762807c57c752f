-- Touch facts of each person that changed in this model run (listed in model_dirty) with
-- a dated touchpoint; runs after 20_person_facts.sql (sql/model_persons_all/25_touch_facts.sql
-- in its place in runs with very many persons to recompute). 26_touch_facts_cleared.sql
-- clears them for the persons left with none.

-- Attribution: the first and the latest touchpoint (utm_source, else the affiliate
-- site, else the crmhub source), its campaign and its channel. (The channels were
-- sql/model/30_touch_channels.sql, recomputed for every person with a touchpoint on every
-- run: 1.9 s beside 589,000 touchpoints on SQLite with nothing new. A person whose
-- touchpoints changed is in model_dirty: sql/model/30_pending_persons.sql.)
UPDATE person SET
    first_touch_channel = (SELECT t.channel FROM touchpoint t
        WHERE t.person_id = person.person_id AND t.occurred_at IS NOT NULL
        ORDER BY t.occurred_at, t.source, t.external_id LIMIT 1),
    last_touch_channel = (SELECT t.channel FROM touchpoint t
        WHERE t.person_id = person.person_id AND t.occurred_at IS NOT NULL
        ORDER BY t.occurred_at DESC, t.source DESC, t.external_id DESC LIMIT 1),
    first_touch_source = (SELECT COALESCE(t.utm_source, t.affiliate_site, t.source) FROM touchpoint t
        WHERE t.person_id = person.person_id AND t.occurred_at IS NOT NULL
        ORDER BY t.occurred_at, t.source, t.external_id LIMIT 1),
    first_touch_campaign = (SELECT t.campaign_id FROM touchpoint t
        WHERE t.person_id = person.person_id AND t.occurred_at IS NOT NULL
        ORDER BY t.occurred_at, t.source, t.external_id LIMIT 1),
    last_touch_source = (SELECT COALESCE(t.utm_source, t.affiliate_site, t.source) FROM touchpoint t
        WHERE t.person_id = person.person_id AND t.occurred_at IS NOT NULL
        ORDER BY t.occurred_at DESC, t.source DESC, t.external_id DESC LIMIT 1),
    last_touch_campaign = (SELECT t.campaign_id FROM touchpoint t
        WHERE t.person_id = person.person_id AND t.occurred_at IS NOT NULL
        ORDER BY t.occurred_at DESC, t.source DESC, t.external_id DESC LIMIT 1)
-- only persons of this run with a dated touchpoint (most persons of a run from scratch
-- have none: each rewrite of every person cost 0.6 s at 200,000), asked of model_dirty's
-- rows: asked of every person's row, PostgreSQL checked all 800,000 persons' touchpoints
-- (at 1,000,000 records, 1% new: 0.38 s)
WHERE person_id IN (SELECT d.person_id FROM model_dirty d WHERE EXISTS (
    SELECT 1 FROM touchpoint t WHERE t.person_id = d.person_id AND t.occurred_at IS NOT NULL));
