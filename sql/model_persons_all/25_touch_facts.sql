-- sql/model_persons/25_touch_facts.sql (the same rules, the same values) for a run with
-- every person or very many to recompute (crm_model.identity.SET_WISE_FROM): each
-- person's first and latest dated touchpoint numbered in one pass over the touchpoints of
-- the run's persons (window functions), instead of six look-ups per person. Ties are
-- broken as there: by source, then external_id (the key: no two rows tie).

UPDATE person SET
    first_touch_source = f.first_source, first_touch_campaign = f.first_campaign,
    first_touch_channel = f.first_channel,
    last_touch_source = f.last_source, last_touch_campaign = f.last_campaign,
    last_touch_channel = f.last_channel
FROM (SELECT person_id,
             MAX(CASE WHEN first_rank = 1 THEN touch_source END) AS first_source,
             MAX(CASE WHEN first_rank = 1 THEN campaign_id END) AS first_campaign,
             MAX(CASE WHEN first_rank = 1 THEN channel END) AS first_channel,
             MAX(CASE WHEN last_rank = 1 THEN touch_source END) AS last_source,
             MAX(CASE WHEN last_rank = 1 THEN campaign_id END) AS last_campaign,
             MAX(CASE WHEN last_rank = 1 THEN channel END) AS last_channel
      FROM (SELECT t.person_id, COALESCE(t.utm_source, t.affiliate_site, t.source) AS touch_source,
                   t.campaign_id, t.channel,
                   ROW_NUMBER() OVER (PARTITION BY t.person_id
                                      ORDER BY t.occurred_at, t.source, t.external_id) AS first_rank,
                   ROW_NUMBER() OVER (PARTITION BY t.person_id
                                      ORDER BY t.occurred_at DESC, t.source DESC, t.external_id DESC) AS last_rank
            FROM touchpoint t
            WHERE t.person_id IN (SELECT d.person_id FROM model_dirty d) AND t.occurred_at IS NOT NULL) ranked
      WHERE first_rank = 1 OR last_rank = 1
      GROUP BY person_id) f
WHERE person.person_id = f.person_id;
