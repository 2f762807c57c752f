-- Revenue and orders per day of the period (UTC days).
SELECT
    DAY_OF(ordered_at) AS day,
    SUM(net_revenue) AS revenue,
    COUNT(*) AS orders
FROM v_sales_order
WHERE ordered_at >= :start AND ordered_at < :end
GROUP BY DAY_OF(ordered_at)
ORDER BY day;
