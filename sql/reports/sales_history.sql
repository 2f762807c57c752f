-- Revenue per day over the forecast's history window (:hist_start to :end); the forecast
-- groups the days into periods of the report's length.
SELECT
    DAY_OF(ordered_at) AS day,
    SUM(net_revenue) AS revenue
FROM v_sales_order
WHERE ordered_at >= :hist_start AND ordered_at < :end
GROUP BY DAY_OF(ordered_at)
ORDER BY day;
