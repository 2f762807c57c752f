SELECT count(*) FROM (
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
GROUP BY s.platform, s.campaign_id, s.ad_id) x
