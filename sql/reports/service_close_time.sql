-- Median hours from opening to closing, for cases closed in the period (and the previous one).
-- The median is the middle row (or the mean of the two middle rows) of the sorted durations.
WITH d AS (
    SELECT
        CASE WHEN closed_at >= :start THEN 1 ELSE 0 END AS cur,
        (EPOCH_OF(closed_at) - EPOCH_OF(opened_at)) / 3600.0 AS hours
    FROM service_case
    WHERE closed_at >= :prev_start AND closed_at < :end AND opened_at IS NOT NULL AND closed_at >= opened_at
), r AS (
    SELECT cur, hours,
        ROW_NUMBER() OVER (PARTITION BY cur ORDER BY hours) AS rn,
        COUNT(*) OVER (PARTITION BY cur) AS n
    FROM d
), med AS (
    SELECT cur, AVG(hours) AS median_hours, MAX(n) AS cases
    FROM r
    WHERE rn IN ((n + 1) / 2, (n + 2) / 2)
    GROUP BY cur
)
SELECT
    MAX(CASE WHEN cur = 1 THEN median_hours END) AS median_hours_to_close,
    MAX(CASE WHEN cur = 0 THEN median_hours END) AS median_hours_to_close_prev,
    COALESCE(MAX(CASE WHEN cur = 1 THEN cases END), 0) AS cases_closed,
    COALESCE(MAX(CASE WHEN cur = 0 THEN cases END), 0) AS cases_closed_prev
FROM med;
