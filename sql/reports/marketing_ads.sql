-- Per ad: an ad serving in several ad groups (Google Ads) is summed over them.
-- The 25 ads with the best click-through rate (clicks / impressions), then conversion rate.
-- Platform-reported conversions beside warehouse-counted ones: people who clicked (touchpoint
-- channel ad_click) in the period and left a lead / bought in the period.
WITH a AS (
    SELECT * FROM tmp_report_ad_period  -- this period and the previous one, per ad (_marketing_ad_period.sql)
), clicked AS (
    SELECT DISTINCT t.campaign_id, t.ad_id, t.person_id
    FROM touchpoint t
    WHERE t.channel = 'ad_click' AND t.person_id IS NOT NULL
      AND t.occurred_at >= :start AND t.occurred_at < :end
), w AS (
    SELECT
        campaign_id, ad_id,
        SUM(CASE WHEN EXISTS (SELECT 1 FROM lead l WHERE l.person_id = c.person_id
                                AND l.submitted_at >= :start AND l.submitted_at < :end)
                 THEN 1 ELSE 0 END) AS leads,
        SUM(CASE WHEN EXISTS (SELECT 1 FROM v_sales_order b WHERE b.person_id = c.person_id
                                AND b.ordered_at >= :start AND b.ordered_at < :end)
                 THEN 1 ELSE 0 END) AS customers
    FROM clicked c
    GROUP BY campaign_id, ad_id
)
SELECT
    a.platform,
    COALESCE(c.name, a.campaign_id) AS campaign, COALESCE(d.name, NULLIF(a.ad_id, ''), '(campaign level)') AS ad,
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
LEFT JOIN w ON w.campaign_id = a.campaign_id AND w.ad_id = a.ad_id
LEFT JOIN campaign c ON c.platform = a.platform AND c.campaign_id = a.campaign_id
LEFT JOIN ad d ON d.platform = a.platform AND d.ad_id = a.ad_id
WHERE a.impressions > 0 OR a.clicks > 0 OR a.cost > 0
ORDER BY ctr DESC NULLS LAST, conversion_rate DESC NULLS LAST, a.campaign_id, a.ad_id
LIMIT 25;
