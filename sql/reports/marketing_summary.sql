-- Marketing at a glance: ad reach and spend, leads and new customers, this period and the previous one.
-- One row per ad account currency: ad cost is never added across currencies (impressions, clicks,
-- conversions, leads and customers are, and are the same in every row). Cost per lead and per
-- customer are shown only when all ad spend of the period is in one currency.
WITH ads_by_currency AS (
    SELECT
        COALESCE(currency, '') AS currency,
        SUM(impressions) AS impressions, SUM(impressions_prev) AS impressions_prev,
        SUM(clicks) AS clicks, SUM(clicks_prev) AS clicks_prev,
        SUM(cost) AS ad_cost, SUM(cost_prev) AS ad_cost_prev,
        SUM(conversions) AS platform_conversions, SUM(conversions_prev) AS platform_conversions_prev
    FROM tmp_report_ad_period  -- per ad, this period and the previous one (_marketing_ad_period.sql)
    GROUP BY COALESCE(currency, '')
), ads AS (
    SELECT
        SUM(impressions) AS impressions, SUM(impressions_prev) AS impressions_prev,
        SUM(clicks) AS clicks, SUM(clicks_prev) AS clicks_prev,
        SUM(platform_conversions) AS platform_conversions,
        SUM(platform_conversions_prev) AS platform_conversions_prev,
        COUNT(*) AS currencies
    FROM ads_by_currency
), leads AS (
    SELECT
        SUM(CASE WHEN submitted_at >= :start THEN 1 ELSE 0 END) AS leads,
        SUM(CASE WHEN submitted_at < :start THEN 1 ELSE 0 END) AS leads_prev
    FROM lead
    WHERE submitted_at >= :prev_start AND submitted_at < :end
), buyers AS (
    SELECT
        COUNT(DISTINCT CASE WHEN ordered_at >= :start AND is_first_order = 1 THEN person_id END) AS new_customers,
        COUNT(DISTINCT CASE WHEN ordered_at < :start AND is_first_order = 1 THEN person_id END) AS new_customers_prev
    FROM v_sales_order
    WHERE ordered_at >= :prev_start AND ordered_at < :end
)
SELECT
    c.currency,
    ads.impressions, ads.impressions_prev,
    ads.clicks, ads.clicks_prev,
    1.0 * ads.clicks / NULLIF(ads.impressions, 0) AS ctr,
    1.0 * ads.clicks_prev / NULLIF(ads.impressions_prev, 0) AS ctr_prev,
    ads.platform_conversions, ads.platform_conversions_prev,
    1.0 * ads.platform_conversions / NULLIF(ads.clicks, 0) AS conversion_rate,
    1.0 * ads.platform_conversions_prev / NULLIF(ads.clicks_prev, 0) AS conversion_rate_prev,
    c.ad_cost, c.ad_cost_prev,
    leads.leads, leads.leads_prev,
    CASE WHEN ads.currencies = 1 THEN 1.0 * c.ad_cost / NULLIF(leads.leads, 0) END AS cost_per_lead,
    CASE WHEN ads.currencies = 1 THEN 1.0 * c.ad_cost_prev / NULLIF(leads.leads_prev, 0) END AS cost_per_lead_prev,
    buyers.new_customers, buyers.new_customers_prev,
    CASE WHEN ads.currencies = 1 THEN 1.0 * c.ad_cost / NULLIF(buyers.new_customers, 0) END AS cost_per_customer,
    CASE WHEN ads.currencies = 1 THEN 1.0 * c.ad_cost_prev / NULLIF(buyers.new_customers_prev, 0) END
        AS cost_per_customer_prev
FROM ads CROSS JOIN leads CROSS JOIN buyers
LEFT JOIN ads_by_currency c ON 1 = 1
ORDER BY c.currency;
