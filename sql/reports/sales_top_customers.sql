-- The 20 customers who brought the most revenue in the period.
SELECT
    COALESCE(display_name, email, '(person ' || CAST(person_id AS VARCHAR(20)) || ')') AS customer,
    email,
    currency,
    SUM(CASE WHEN ordered_at >= :start THEN 1 ELSE 0 END) AS orders,
    SUM(CASE WHEN ordered_at >= :start THEN net_revenue ELSE 0 END) AS revenue,
    SUM(CASE WHEN ordered_at < :start THEN net_revenue ELSE 0 END) AS revenue_prev,
    MIN(CASE WHEN is_first_order = 1 AND ordered_at >= :start THEN 'new' END) AS new_customer
FROM v_sales_order
WHERE person_id IS NOT NULL AND ordered_at >= :prev_start AND ordered_at < :end
GROUP BY person_id, display_name, email, currency
HAVING SUM(CASE WHEN ordered_at >= :start THEN 1 ELSE 0 END) > 0
ORDER BY revenue DESC, customer
LIMIT 20;
