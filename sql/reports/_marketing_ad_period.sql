-- Run first by the marketing report (ReportDefinition.prepare): the period and the previous one
-- read from ad_stat_daily in one pass (an index range scan on its date), summed per ad into a
-- temporary table of one row per ad. The ads, campaigns and summary sections read that table,
-- so a report reads the period's ad stats once, not three times. An ad's stats are in its
-- account's currency (currency: the one it reports in).
DROP TABLE IF EXISTS tmp_report_ad_period;
-- CREATE ... AS SELECT (not INSERT ... SELECT): PostgreSQL may read the rows with parallel workers
CREATE TEMPORARY TABLE tmp_report_ad_period AS
SELECT
    s.platform, s.campaign_id, s.ad_id,
    MAX(s.currency) AS currency,
    SUM(CASE WHEN s.date >= :start_day THEN s.impressions ELSE 0 END) AS impressions,
    SUM(CASE WHEN s.date >= :start_day THEN s.clicks ELSE 0 END) AS clicks,
    SUM(CASE WHEN s.date >= :start_day THEN s.cost ELSE 0 END) AS cost,
    SUM(CASE WHEN s.date >= :start_day THEN s.conversions ELSE 0 END) AS conversions,
    SUM(CASE WHEN s.date >= :start_day THEN s.conversion_value ELSE 0 END) AS conversion_value,
    SUM(CASE WHEN s.date < :start_day THEN s.impressions ELSE 0 END) AS impressions_prev,
    SUM(CASE WHEN s.date < :start_day THEN s.clicks ELSE 0 END) AS clicks_prev,
    SUM(CASE WHEN s.date < :start_day THEN s.cost ELSE 0 END) AS cost_prev,
    SUM(CASE WHEN s.date < :start_day THEN s.conversions ELSE 0 END) AS conversions_prev
FROM ad_stat_daily s
WHERE s.date >= :prev_start_day AND s.date < :end_day
GROUP BY s.platform, s.campaign_id, s.ad_id;
