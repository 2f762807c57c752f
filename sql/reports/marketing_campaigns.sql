-- Campaigns ranked by conversion rate (platform conversions / clicks), then click-through rate.
-- Platform-reported conversions beside warehouse-counted ones: people who clicked (touchpoint
-- channel ad_click) in the period and left a lead / bought in the period.
WITH a AS (
    SELECT
        platform, campaign_id,
        MAX(currency) AS currency,
        SUM(impressions) AS impressions, SUM(clicks) AS clicks, SUM(cost) AS cost,
        SUM(conversions) AS conversions, SUM(conversion_value) AS conversion_value,
        SUM(impressions_prev) AS impressions_prev, SUM(clicks_prev) AS clicks_prev,
        SUM(cost_prev) AS cost_prev, SUM(conversions_prev) AS conversions_prev
    FROM tmp_report_ad_period  -- per ad, this period and the previous one (_marketing_ad_period.sql)
    GROUP BY platform, campaign_id
), clicked AS (
    SELECT DISTINCT t.campaign_id, t.person_id
    FROM touchpoint t
    WHERE t.channel = 'ad_click' AND t.person_id IS NOT NULL
      AND t.occurred_at >= :start AND t.occurred_at < :end
), w AS (
    SELECT
        campaign_id,
        SUM(CASE WHEN EXISTS (SELECT 1 FROM lead l WHERE l.person_id = c.person_id
                                AND l.submitted_at >= :start AND l.submitted_at < :end)
                 THEN 1 ELSE 0 END) AS leads,
        SUM(CASE WHEN EXISTS (SELECT 1 FROM v_sales_order b WHERE b.person_id = c.person_id
                                AND b.ordered_at >= :start AND b.ordered_at < :end)
                 THEN 1 ELSE 0 END) AS customers
    FROM clicked c
    GROUP BY campaign_id
)
SELECT
    a.platform,
    COALESCE(c.name, a.campaign_id) AS campaign,
    a.impressions, a.clicks,
    1.0 * a.clicks / NULLIF(a.impressions, 0) AS ctr,
    1.0 * a.clicks_prev / NULLIF(a.impressions_prev, 0) AS ctr_prev,
    a.conversions,
    1.0 * a.conversions / NULLIF(a.clicks, 0) AS conversion_rate,
    1.0 * a.conversions_prev / NULLIF(a.clicks_prev, 0) AS conversion_rate_prev,
    a.conversion_value,
    a.cost, a.cost_prev, a.currency,
    COALESCE(w.leads, 0) AS leads,
    COALESCE(w.customers, 0) AS customers,
    1.0 * a.cost / NULLIF(w.leads, 0) AS cost_per_lead,
    1.0 * a.cost / NULLIF(w.customers, 0) AS cost_per_customer
FROM a
LEFT JOIN w ON w.campaign_id = a.campaign_id
LEFT JOIN campaign c ON c.platform = a.platform AND c.campaign_id = a.campaign_id
WHERE a.impressions > 0 OR a.clicks > 0 OR a.cost > 0
ORDER BY conversion_rate DESC NULLS LAST, ctr DESC NULLS LAST, a.campaign_id
LIMIT 50;
