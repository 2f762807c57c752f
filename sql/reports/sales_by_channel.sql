-- Sales by channel: orders and revenue, this period and the previous one.
SELECT
    channel,
    currency,
    SUM(CASE WHEN ordered_at >= :start THEN 1 ELSE 0 END) AS orders,
    SUM(CASE WHEN ordered_at < :start THEN 1 ELSE 0 END) AS orders_prev,
    SUM(CASE WHEN ordered_at >= :start THEN net_revenue ELSE 0 END) AS revenue,
    SUM(CASE WHEN ordered_at < :start THEN net_revenue ELSE 0 END) AS revenue_prev,
    COUNT(DISTINCT CASE WHEN ordered_at >= :start THEN person_id END) AS customers
FROM v_sales_order
WHERE ordered_at >= :prev_start AND ordered_at < :end
GROUP BY channel, currency
ORDER BY revenue DESC, channel;
