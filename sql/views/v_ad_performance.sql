-- Ad performance per platform, campaign, ad group, ad and day: what the platform reports
-- (impressions, clicks, cost, its own conversions) beside what the warehouse counts for the same
-- ad (leads and paying customers attributed to it, revenue net of refunds; docs/attribution.md).
-- One Google Ads ad may serve in several ad groups: each (ad group, ad) is a row of its own, so
-- summing an ad's rows gives its totals. ad_group_id is '' where the platform has no ad group
-- level or a lead/order's ad group is unknown (its ad may serve in several ad groups);
-- ad_id is '' for leads/orders attributed to a campaign but no ad. Lead and order days are
-- their UTC dates (on PostgreSQL: the session's TimeZone, UTC by default).
-- revenue is in revenue_currency; 'mixed' means orders in several currencies were summed.
CREATE VIEW v_ad_performance AS
WITH sales AS (
    SELECT * FROM customer_order
    WHERE campaign_id IS NOT NULL AND ordered_at IS NOT NULL
      AND COALESCE(status, '') NOT IN (
        'cancelled', 'failed', 'void', 'voided', 'draft', 'test', 'trash', 'expired',
        'pending', 'checkout-draft', 'uncollectible', 'open', 'on-hold', 'authorized')
),
lead_days AS (
    SELECT ad_platform AS platform, campaign_id, COALESCE(ad_group_id, '') AS ad_group_id,
           COALESCE(ad_id, '') AS ad_id, DATE(submitted_at) AS day, COUNT(*) AS leads
    FROM lead
    WHERE campaign_id IS NOT NULL AND submitted_at IS NOT NULL
    GROUP BY ad_platform, campaign_id, COALESCE(ad_group_id, ''), COALESCE(ad_id, ''), DATE(submitted_at)
),
sale_days AS (
    SELECT ad_platform AS platform, campaign_id, COALESCE(ad_group_id, '') AS ad_group_id,
           COALESCE(ad_id, '') AS ad_id, DATE(ordered_at) AS day,
           COUNT(DISTINCT COALESCE(CAST(person_id AS VARCHAR(32)), source || ':' || external_id)) AS customers,
           SUM(COALESCE(total, 0) - COALESCE(refunded, 0)) AS revenue,
           CASE WHEN COUNT(DISTINCT currency) > 1 THEN 'mixed' ELSE MIN(currency) END AS revenue_currency
    FROM sales
    GROUP BY ad_platform, campaign_id, COALESCE(ad_group_id, ''), COALESCE(ad_id, ''), DATE(ordered_at)
),
days AS (
    SELECT platform, campaign_id, ad_group_id, ad_id, date AS day FROM ad_stat_daily
    UNION SELECT platform, campaign_id, ad_group_id, ad_id, day FROM lead_days
    UNION SELECT platform, campaign_id, ad_group_id, ad_id, day FROM sale_days
)
SELECT
    d.platform,
    d.campaign_id,
    c.name AS campaign_name,
    d.ad_group_id,
    g.name AS ad_group_name,
    d.ad_id,
    a.name AS ad_name,
    d.day,
    COALESCE(s.impressions, 0) AS impressions,
    COALESCE(s.clicks, 0) AS clicks,
    COALESCE(s.cost, 0) AS cost,
    s.currency,
    s.clicks * 1.0 / NULLIF(s.impressions, 0) AS ctr,
    COALESCE(s.conversions, 0) AS platform_conversions,
    COALESCE(s.conversion_value, 0) AS platform_conversion_value,
    COALESCE(l.leads, 0) AS leads,
    COALESCE(o.customers, 0) AS customers,
    COALESCE(o.revenue, 0) AS revenue,
    o.revenue_currency,
    s.cost / NULLIF(l.leads, 0) AS cost_per_lead,
    s.cost / NULLIF(o.customers, 0) AS cost_per_customer
FROM days d
LEFT JOIN ad_stat_daily s ON s.platform = d.platform AND s.campaign_id = d.campaign_id
    AND s.ad_group_id = d.ad_group_id AND s.ad_id = d.ad_id AND s.date = d.day
LEFT JOIN lead_days l ON l.platform = d.platform AND l.campaign_id = d.campaign_id
    AND l.ad_group_id = d.ad_group_id AND l.ad_id = d.ad_id AND l.day = d.day
LEFT JOIN sale_days o ON o.platform = d.platform AND o.campaign_id = d.campaign_id
    AND o.ad_group_id = d.ad_group_id AND o.ad_id = d.ad_id AND o.day = d.day
LEFT JOIN campaign c ON c.platform = d.platform AND c.campaign_id = d.campaign_id
LEFT JOIN ad_group g ON g.platform = d.platform AND g.ad_group_id = d.ad_group_id
LEFT JOIN ad a ON a.platform = d.platform AND a.ad_id = d.ad_id;
