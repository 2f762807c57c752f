-- Run first by the marketing report (ReportDefinition.prepare): the period and the previous one
-- read from ad_stat_daily in one pass (an index range scan on its date), summed per ad into a
-- temporary table of one row per ad. The ads, campaigns and summary sections read that table,
-- so a report reads the period's ad stats once, not three times. An ad's stats are in its
-- account's currency (currency: the one it reports in).
CREATE TEMPORARY TABLE IF NOT EXISTS tmp_report_ad_period (
    platform VARCHAR(32),
    campaign_id VARCHAR(255),
    ad_id VARCHAR(255),
    currency VARCHAR(3),
    impressions BIGINT,
    clicks BIGINT,
    cost NUMERIC,
    conversions NUMERIC,
    conversion_value NUMERIC,
    impressions_prev BIGINT,
    clicks_prev BIGINT,
    cost_prev NUMERIC,
    conversions_prev NUMERIC
);
DELETE FROM tmp_report_ad_period;
INSERT INTO tmp_report_ad_period
SELECT
    s.platform, s.campaign_id, s.ad_id,
    MAX(s.currency),
    SUM(CASE WHEN s.date >= :start_day THEN s.impressions ELSE 0 END),
    SUM(CASE WHEN s.date >= :start_day THEN s.clicks ELSE 0 END),
    SUM(CASE WHEN s.date >= :start_day THEN s.cost ELSE 0 END),
    SUM(CASE WHEN s.date >= :start_day THEN s.conversions ELSE 0 END),
    SUM(CASE WHEN s.date >= :start_day THEN s.conversion_value ELSE 0 END),
    SUM(CASE WHEN s.date < :start_day THEN s.impressions ELSE 0 END),
    SUM(CASE WHEN s.date < :start_day THEN s.clicks ELSE 0 END),
    SUM(CASE WHEN s.date < :start_day THEN s.cost ELSE 0 END),
    SUM(CASE WHEN s.date < :start_day THEN s.conversions ELSE 0 END)
FROM ad_stat_daily s
WHERE s.date >= :prev_start_day AND s.date < :end_day
GROUP BY s.platform, s.campaign_id, s.ad_id;
