-- Marketing at a glance: ad reach and spend, leads and new customers, this period and the previous one.
WITH ads AS (
    SELECT
        SUM(CASE WHEN date >= :start_day THEN impressions ELSE 0 END) AS impressions,
        SUM(CASE WHEN date < :start_day THEN impressions ELSE 0 END) AS impressions_prev,
        SUM(CASE WHEN date >= :start_day THEN clicks ELSE 0 END) AS clicks,
        SUM(CASE WHEN date < :start_day THEN clicks ELSE 0 END) AS clicks_prev,
        SUM(CASE WHEN date >= :start_day THEN cost ELSE 0 END) AS ad_cost,
        SUM(CASE WHEN date < :start_day THEN cost ELSE 0 END) AS ad_cost_prev,
        SUM(CASE WHEN date >= :start_day THEN conversions ELSE 0 END) AS platform_conversions,
        SUM(CASE WHEN date < :start_day THEN conversions ELSE 0 END) AS platform_conversions_prev
    FROM ad_stat_daily
    WHERE date >= :prev_start_day AND date < :end_day
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
    ads.impressions, ads.impressions_prev,
    ads.clicks, ads.clicks_prev,
    1.0 * ads.clicks / NULLIF(ads.impressions, 0) AS ctr,
    1.0 * ads.clicks_prev / NULLIF(ads.impressions_prev, 0) AS ctr_prev,
    ads.platform_conversions, ads.platform_conversions_prev,
    1.0 * ads.platform_conversions / NULLIF(ads.clicks, 0) AS conversion_rate,
    1.0 * ads.platform_conversions_prev / NULLIF(ads.clicks_prev, 0) AS conversion_rate_prev,
    ads.ad_cost, ads.ad_cost_prev,
    leads.leads, leads.leads_prev,
    1.0 * ads.ad_cost / NULLIF(leads.leads, 0) AS cost_per_lead,
    1.0 * ads.ad_cost_prev / NULLIF(leads.leads_prev, 0) AS cost_per_lead_prev,
    buyers.new_customers, buyers.new_customers_prev,
    1.0 * ads.ad_cost / NULLIF(buyers.new_customers, 0) AS cost_per_customer,
    1.0 * ads.ad_cost_prev / NULLIF(buyers.new_customers_prev, 0) AS cost_per_customer_prev
FROM ads CROSS JOIN leads CROSS JOIN buyers;
