-- Attribution: which campaign and ad brought each lead and order (docs/attribution.md).
-- Runs after person ids are linked (10_) and before the golden record (20_), so ad
-- clicks tied to a person here count for the person's lifecycle and touches.
-- Rules, in order of precedence; the first that matches wins:
--   lead_ad           set by the mapping of a lead-ad form (meta_leads): never overwritten
--   click_id          the lead's gclid/fbclid is the click_id of an ad_click touchpoint
--   utm_campaign_id   utm_campaign equals a campaign's id
--   utm_campaign_name utm_campaign equals a campaign's name (case-insensitive)
--   person            (orders only) the buyer's latest attributed lead
-- The ad group (Meta: ad set) comes with the ad: the click's ad group (click_view names it),
-- the lead ad's ad set, else the `ad` row's ad group when the ad serves in that one only.
--
-- Incremental: only leads, orders and clicks marked model_pending are derived again. Every
-- write marks its rows; sql/model/10_ marks those whose person changed; the statements
-- below widen the mark to what depends on a marked row (a lead on the clicks carrying its
-- click id, an order on its buyer's leads and clicks). A change to campaigns or ads marks
-- every lead and order first (crm_model.derive._widen_pending).

-- 0. A lead whose click was written again, and the clicks of a lead written again.
UPDATE lead SET model_pending = true
WHERE model_pending IS NOT true
  AND gclid IN (SELECT t.click_id FROM touchpoint t
                WHERE t.model_pending = true AND t.channel = 'ad_click' AND t.click_id IS NOT NULL);

UPDATE lead SET model_pending = true
WHERE model_pending IS NOT true
  AND fbclid IN (SELECT t.click_id FROM touchpoint t
                 WHERE t.model_pending = true AND t.channel = 'ad_click' AND t.click_id IS NOT NULL);

UPDATE touchpoint SET model_pending = true
WHERE model_pending IS NOT true AND channel = 'ad_click' AND person_ref IS NULL
  AND click_id IN (SELECT l.gclid FROM lead l WHERE l.model_pending = true AND l.gclid IS NOT NULL
                   UNION SELECT l.fbclid FROM lead l WHERE l.model_pending = true AND l.fbclid IS NOT NULL);

-- The persons such a click belongs to before step 1 may move it: their touch facts are
-- computed again (its person after the move: sql/model/30_pending_persons.sql).
INSERT INTO model_dirty (person_id)
SELECT DISTINCT t.person_id FROM touchpoint t
WHERE t.model_pending = true AND t.channel = 'ad_click' AND t.person_ref IS NULL AND t.person_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM model_dirty d WHERE d.person_id = t.person_id);

-- 1. Ad clicks (click_view, ...) belong to the person whose lead carries the click id.
UPDATE touchpoint SET person_id = (
    SELECT l.person_id FROM lead l
    WHERE l.person_id IS NOT NULL AND (l.gclid = touchpoint.click_id OR l.fbclid = touchpoint.click_id)
    ORDER BY (l.submitted_at IS NULL), l.submitted_at, l.source, l.external_id LIMIT 1)
WHERE model_pending = true AND channel = 'ad_click' AND click_id IS NOT NULL AND person_ref IS NULL
  AND EXISTS (SELECT 1 FROM lead l WHERE l.person_id IS NOT NULL
              AND (l.gclid = touchpoint.click_id OR l.fbclid = touchpoint.click_id))
  AND person_id IS DISTINCT FROM (
    SELECT l.person_id FROM lead l
    WHERE l.person_id IS NOT NULL AND (l.gclid = touchpoint.click_id OR l.fbclid = touchpoint.click_id)
    ORDER BY (l.submitted_at IS NULL), l.submitted_at, l.source, l.external_id LIMIT 1);

-- 2. Leads: forget what the SQL rules decided last time (the data may have changed) ...
UPDATE lead SET ad_platform = NULL, campaign_id = NULL, ad_group_id = NULL, ad_id = NULL, attribution_rule = NULL
WHERE model_pending = true AND attribution_rule IS NOT NULL AND attribution_rule <> 'lead_ad';

-- ... click id: the ad click with the lead's gclid or fbclid.
UPDATE lead SET
    ad_platform = (SELECT t.ad_platform FROM touchpoint t WHERE t.channel = 'ad_click'
        AND (t.click_id = lead.gclid OR t.click_id = lead.fbclid)
        ORDER BY (t.occurred_at IS NULL), t.occurred_at DESC, t.source, t.external_id LIMIT 1),
    campaign_id = (SELECT t.campaign_id FROM touchpoint t WHERE t.channel = 'ad_click'
        AND (t.click_id = lead.gclid OR t.click_id = lead.fbclid)
        ORDER BY (t.occurred_at IS NULL), t.occurred_at DESC, t.source, t.external_id LIMIT 1),
    ad_group_id = (SELECT t.ad_group_id FROM touchpoint t WHERE t.channel = 'ad_click'
        AND (t.click_id = lead.gclid OR t.click_id = lead.fbclid)
        ORDER BY (t.occurred_at IS NULL), t.occurred_at DESC, t.source, t.external_id LIMIT 1),
    ad_id = (SELECT t.ad_id FROM touchpoint t WHERE t.channel = 'ad_click'
        AND (t.click_id = lead.gclid OR t.click_id = lead.fbclid)
        ORDER BY (t.occurred_at IS NULL), t.occurred_at DESC, t.source, t.external_id LIMIT 1),
    attribution_rule = 'click_id'
WHERE model_pending = true AND attribution_rule IS NULL AND (gclid IS NOT NULL OR fbclid IS NOT NULL)
  AND EXISTS (SELECT 1 FROM touchpoint t WHERE t.channel = 'ad_click' AND t.campaign_id IS NOT NULL
              AND (t.click_id = lead.gclid OR t.click_id = lead.fbclid));

-- ... utm_campaign = a campaign id.
UPDATE lead SET
    ad_platform = (SELECT c.platform FROM campaign c WHERE c.campaign_id = lead.utm_campaign
        ORDER BY c.platform LIMIT 1),
    campaign_id = utm_campaign,
    attribution_rule = 'utm_campaign_id'
WHERE model_pending = true AND attribution_rule IS NULL AND utm_campaign IS NOT NULL
  AND EXISTS (SELECT 1 FROM campaign c WHERE c.campaign_id = lead.utm_campaign);

-- ... utm_campaign = a campaign name.
UPDATE lead SET
    ad_platform = (SELECT c.platform FROM campaign c WHERE LOWER(c.name) = LOWER(lead.utm_campaign)
        ORDER BY c.platform, c.campaign_id LIMIT 1),
    campaign_id = (SELECT c.campaign_id FROM campaign c WHERE LOWER(c.name) = LOWER(lead.utm_campaign)
        ORDER BY c.platform, c.campaign_id LIMIT 1),
    attribution_rule = 'utm_campaign_name'
WHERE model_pending = true AND attribution_rule IS NULL AND utm_campaign IS NOT NULL
  AND EXISTS (SELECT 1 FROM campaign c WHERE LOWER(c.name) = LOWER(lead.utm_campaign));

-- ... a UTM-attributed lead names its ad by utm_content (the ad's id or name in that campaign).
UPDATE lead SET ad_id = (SELECT a.ad_id FROM ad a WHERE a.platform = lead.ad_platform
        AND a.campaign_id = lead.campaign_id
        AND (a.ad_id = lead.utm_content OR LOWER(a.name) = LOWER(lead.utm_content))
        ORDER BY a.ad_id LIMIT 1)
WHERE model_pending = true AND attribution_rule IN ('utm_campaign_id', 'utm_campaign_name') AND utm_content IS NOT NULL;

-- ... the ad group of an attributed ad, where the `ad` row names one and the ad has no
-- daily stats in another ad group (Google Ads: one ad may serve in several).
UPDATE lead SET ad_group_id = (SELECT a.ad_group_id FROM ad a WHERE a.platform = lead.ad_platform
        AND a.ad_id = lead.ad_id)
WHERE model_pending = true AND ad_id IS NOT NULL AND ad_group_id IS NULL
  AND EXISTS (SELECT 1 FROM ad a WHERE a.platform = lead.ad_platform AND a.ad_id = lead.ad_id
              AND a.ad_group_id IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM ad_stat_daily s WHERE s.platform = a.platform AND s.ad_id = a.ad_id
                              AND s.ad_group_id <> '' AND s.ad_group_id <> a.ad_group_id));

-- 3. Orders: the same, with the buyer's clicks and leads standing in for click ids. Orders
-- of a buyer whose leads or clicks were derived again, or who changed in this run, first.
UPDATE customer_order SET model_pending = true
WHERE model_pending IS NOT true AND person_id IN (
    SELECT l.person_id FROM lead l WHERE l.model_pending = true AND l.person_id IS NOT NULL
    UNION SELECT t.person_id FROM touchpoint t
          WHERE t.model_pending = true AND t.channel = 'ad_click' AND t.person_id IS NOT NULL
    UNION SELECT d.person_id FROM model_dirty d);

UPDATE customer_order SET ad_platform = NULL, campaign_id = NULL, ad_group_id = NULL, ad_id = NULL,
    attribution_rule = NULL
WHERE model_pending = true AND attribution_rule IS NOT NULL;

-- ... click id: the buyer's latest ad click at or before the order.
UPDATE customer_order SET
    ad_platform = (SELECT t.ad_platform FROM touchpoint t WHERE t.person_id = customer_order.person_id
        AND t.channel = 'ad_click' AND t.campaign_id IS NOT NULL AND t.occurred_at <= customer_order.ordered_at
        ORDER BY t.occurred_at DESC, t.source, t.external_id LIMIT 1),
    campaign_id = (SELECT t.campaign_id FROM touchpoint t WHERE t.person_id = customer_order.person_id
        AND t.channel = 'ad_click' AND t.campaign_id IS NOT NULL AND t.occurred_at <= customer_order.ordered_at
        ORDER BY t.occurred_at DESC, t.source, t.external_id LIMIT 1),
    ad_group_id = (SELECT t.ad_group_id FROM touchpoint t WHERE t.person_id = customer_order.person_id
        AND t.channel = 'ad_click' AND t.campaign_id IS NOT NULL AND t.occurred_at <= customer_order.ordered_at
        ORDER BY t.occurred_at DESC, t.source, t.external_id LIMIT 1),
    ad_id = (SELECT t.ad_id FROM touchpoint t WHERE t.person_id = customer_order.person_id
        AND t.channel = 'ad_click' AND t.campaign_id IS NOT NULL AND t.occurred_at <= customer_order.ordered_at
        ORDER BY t.occurred_at DESC, t.source, t.external_id LIMIT 1),
    attribution_rule = 'click_id'
WHERE model_pending = true AND person_id IS NOT NULL AND ordered_at IS NOT NULL
  AND EXISTS (SELECT 1 FROM touchpoint t WHERE t.person_id = customer_order.person_id
              AND t.channel = 'ad_click' AND t.campaign_id IS NOT NULL AND t.occurred_at <= customer_order.ordered_at);

-- ... the order's own utm_campaign = a campaign id, then a campaign name.
UPDATE customer_order SET
    ad_platform = (SELECT c.platform FROM campaign c WHERE c.campaign_id = customer_order.utm_campaign
        ORDER BY c.platform LIMIT 1),
    campaign_id = utm_campaign,
    attribution_rule = 'utm_campaign_id'
WHERE model_pending = true AND attribution_rule IS NULL AND utm_campaign IS NOT NULL
  AND EXISTS (SELECT 1 FROM campaign c WHERE c.campaign_id = customer_order.utm_campaign);

UPDATE customer_order SET
    ad_platform = (SELECT c.platform FROM campaign c WHERE LOWER(c.name) = LOWER(customer_order.utm_campaign)
        ORDER BY c.platform, c.campaign_id LIMIT 1),
    campaign_id = (SELECT c.campaign_id FROM campaign c WHERE LOWER(c.name) = LOWER(customer_order.utm_campaign)
        ORDER BY c.platform, c.campaign_id LIMIT 1),
    attribution_rule = 'utm_campaign_name'
WHERE model_pending = true AND attribution_rule IS NULL AND utm_campaign IS NOT NULL
  AND EXISTS (SELECT 1 FROM campaign c WHERE LOWER(c.name) = LOWER(customer_order.utm_campaign));

-- ... the buyer's latest attributed lead at or before the order ...
UPDATE customer_order SET
    ad_platform = (SELECT l.ad_platform FROM lead l WHERE l.person_id = customer_order.person_id
        AND l.campaign_id IS NOT NULL AND l.submitted_at <= customer_order.ordered_at
        ORDER BY l.submitted_at DESC, l.source, l.external_id LIMIT 1),
    campaign_id = (SELECT l.campaign_id FROM lead l WHERE l.person_id = customer_order.person_id
        AND l.campaign_id IS NOT NULL AND l.submitted_at <= customer_order.ordered_at
        ORDER BY l.submitted_at DESC, l.source, l.external_id LIMIT 1),
    ad_group_id = (SELECT l.ad_group_id FROM lead l WHERE l.person_id = customer_order.person_id
        AND l.campaign_id IS NOT NULL AND l.submitted_at <= customer_order.ordered_at
        ORDER BY l.submitted_at DESC, l.source, l.external_id LIMIT 1),
    ad_id = (SELECT l.ad_id FROM lead l WHERE l.person_id = customer_order.person_id
        AND l.campaign_id IS NOT NULL AND l.submitted_at <= customer_order.ordered_at
        ORDER BY l.submitted_at DESC, l.source, l.external_id LIMIT 1),
    attribution_rule = 'person'
WHERE model_pending = true AND attribution_rule IS NULL AND person_id IS NOT NULL
  AND EXISTS (SELECT 1 FROM lead l WHERE l.person_id = customer_order.person_id
              AND l.campaign_id IS NOT NULL AND l.submitted_at <= customer_order.ordered_at);

-- ... else their first attributed lead (a lead entered after the sale, e.g. by a rep).
UPDATE customer_order SET
    ad_platform = (SELECT l.ad_platform FROM lead l WHERE l.person_id = customer_order.person_id
        AND l.campaign_id IS NOT NULL ORDER BY (l.submitted_at IS NULL), l.submitted_at, l.source, l.external_id LIMIT 1),
    campaign_id = (SELECT l.campaign_id FROM lead l WHERE l.person_id = customer_order.person_id
        AND l.campaign_id IS NOT NULL ORDER BY (l.submitted_at IS NULL), l.submitted_at, l.source, l.external_id LIMIT 1),
    ad_group_id = (SELECT l.ad_group_id FROM lead l WHERE l.person_id = customer_order.person_id
        AND l.campaign_id IS NOT NULL ORDER BY (l.submitted_at IS NULL), l.submitted_at, l.source, l.external_id LIMIT 1),
    ad_id = (SELECT l.ad_id FROM lead l WHERE l.person_id = customer_order.person_id
        AND l.campaign_id IS NOT NULL ORDER BY (l.submitted_at IS NULL), l.submitted_at, l.source, l.external_id LIMIT 1),
    attribution_rule = 'person'
WHERE model_pending = true AND attribution_rule IS NULL AND person_id IS NOT NULL
  AND EXISTS (SELECT 1 FROM lead l WHERE l.person_id = customer_order.person_id AND l.campaign_id IS NOT NULL);

-- ... the ad group of an attributed ad, where the `ad` row names one and the ad has no
-- daily stats in another ad group (Google Ads: one ad may serve in several).
UPDATE customer_order SET ad_group_id = (SELECT a.ad_group_id FROM ad a WHERE a.platform = customer_order.ad_platform
        AND a.ad_id = customer_order.ad_id)
WHERE model_pending = true AND ad_id IS NOT NULL AND ad_group_id IS NULL
  AND EXISTS (SELECT 1 FROM ad a WHERE a.platform = customer_order.ad_platform AND a.ad_id = customer_order.ad_id
              AND a.ad_group_id IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM ad_stat_daily s WHERE s.platform = a.platform AND s.ad_id = a.ad_id
                              AND s.ad_group_id <> '' AND s.ad_group_id <> a.ad_group_id));
