-- Revenue and orders per day of the period (UTC days), per currency (the chart draws one line
-- per currency; amounts in different currencies are never added).
SELECT
    DAY_OF(ordered_at) AS day,
    currency,
    SUM(net_revenue) AS revenue,
    COUNT(*) AS orders
FROM v_sales_order
WHERE ordered_at >= :start AND ordered_at < :end
GROUP BY DAY_OF(ordered_at), currency
ORDER BY day, currency;
