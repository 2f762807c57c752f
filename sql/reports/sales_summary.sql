-- Sales at a glance: orders, customers (new and returning), and per currency: revenue,
-- average order, revenue per customer, gross margin (lines whose cost is known) and ad cost
-- per new customer. One row per currency (order currencies and ad account currencies): money
-- is never added across currencies; the counts are the same in every row.
-- Marketing cost per new customer is shown only when all ad spend of the period is in one
-- currency (else it would add EUR to USD).
WITH o AS (
    SELECT
        SUM(CASE WHEN ordered_at >= :start THEN 1 ELSE 0 END) AS orders,
        SUM(CASE WHEN ordered_at < :start THEN 1 ELSE 0 END) AS orders_prev,
        COUNT(DISTINCT CASE WHEN ordered_at >= :start THEN person_id END) AS customers,
        COUNT(DISTINCT CASE WHEN ordered_at < :start THEN person_id END) AS customers_prev,
        COUNT(DISTINCT CASE WHEN ordered_at >= :start AND is_first_order = 1 THEN person_id END) AS new_customers,
        COUNT(DISTINCT CASE WHEN ordered_at < :start AND is_first_order = 1 THEN person_id END) AS new_customers_prev
    FROM v_sales_order
    WHERE ordered_at >= :prev_start AND ordered_at < :end
), om AS (
    SELECT
        COALESCE(currency, '') AS currency,
        SUM(CASE WHEN ordered_at >= :start THEN net_revenue ELSE 0 END) AS revenue,
        SUM(CASE WHEN ordered_at < :start THEN net_revenue ELSE 0 END) AS revenue_prev,
        SUM(CASE WHEN ordered_at >= :start THEN 1 ELSE 0 END) AS orders,
        SUM(CASE WHEN ordered_at < :start THEN 1 ELSE 0 END) AS orders_prev,
        COUNT(DISTINCT CASE WHEN ordered_at >= :start THEN person_id END) AS customers,
        COUNT(DISTINCT CASE WHEN ordered_at < :start THEN person_id END) AS customers_prev
    FROM v_sales_order
    WHERE ordered_at >= :prev_start AND ordered_at < :end
    GROUP BY COALESCE(currency, '')
), g AS (
    SELECT
        COALESCE(currency, '') AS currency,
        SUM(CASE WHEN ordered_at >= :start THEN gross_margin END) AS gross_margin,
        SUM(CASE WHEN ordered_at < :start THEN gross_margin END) AS gross_margin_prev,
        SUM(CASE WHEN ordered_at >= :start AND cost IS NOT NULL THEN revenue END) AS costed_revenue,
        SUM(CASE WHEN ordered_at < :start AND cost IS NOT NULL THEN revenue END) AS costed_revenue_prev
    FROM v_product_sales
    WHERE ordered_at >= :prev_start AND ordered_at < :end
    GROUP BY COALESCE(currency, '')
), m AS (
    SELECT
        COALESCE(currency, '') AS currency,
        SUM(CASE WHEN date >= :start_day THEN cost ELSE 0 END) AS ad_cost,
        SUM(CASE WHEN date < :start_day THEN cost ELSE 0 END) AS ad_cost_prev
    FROM ad_stat_daily
    WHERE date >= :prev_start_day AND date < :end_day
    GROUP BY COALESCE(currency, '')
), cur AS (
    SELECT currency FROM om UNION SELECT currency FROM g UNION SELECT currency FROM m
), ad_currencies AS (
    SELECT COUNT(*) AS n FROM m
)
SELECT
    cur.currency,
    o.orders, o.orders_prev,
    o.customers, o.customers_prev,
    o.new_customers, o.new_customers_prev,
    o.customers - o.new_customers AS returning_customers,
    o.customers_prev - o.new_customers_prev AS returning_customers_prev,
    om.revenue, om.revenue_prev,
    1.0 * om.revenue / NULLIF(om.orders, 0) AS average_order,
    1.0 * om.revenue_prev / NULLIF(om.orders_prev, 0) AS average_order_prev,
    1.0 * om.revenue / NULLIF(om.customers, 0) AS revenue_per_customer,
    1.0 * om.revenue_prev / NULLIF(om.customers_prev, 0) AS revenue_per_customer_prev,
    g.gross_margin, g.gross_margin_prev,
    1.0 * g.gross_margin / NULLIF(g.costed_revenue, 0) AS gross_margin_rate,
    1.0 * g.gross_margin_prev / NULLIF(g.costed_revenue_prev, 0) AS gross_margin_rate_prev,
    m.ad_cost, m.ad_cost_prev,
    CASE WHEN ad_currencies.n = 1 THEN 1.0 * m.ad_cost / NULLIF(o.new_customers, 0) END
        AS marketing_cost_per_new_customer,
    CASE WHEN ad_currencies.n = 1 THEN 1.0 * m.ad_cost_prev / NULLIF(o.new_customers_prev, 0) END
        AS marketing_cost_per_new_customer_prev
FROM o
CROSS JOIN ad_currencies
LEFT JOIN cur ON 1 = 1
LEFT JOIN om ON om.currency = cur.currency
LEFT JOIN g ON g.currency = cur.currency
LEFT JOIN m ON m.currency = cur.currency
ORDER BY cur.currency;
