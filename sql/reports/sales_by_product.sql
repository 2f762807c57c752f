-- Sales by product: units, revenue and, where the unit cost is known, gross margin.
SELECT
    product,
    currency,
    SUM(CASE WHEN ordered_at >= :start THEN units ELSE 0 END) AS units,
    SUM(CASE WHEN ordered_at >= :start THEN revenue ELSE 0 END) AS revenue,
    SUM(CASE WHEN ordered_at < :start THEN revenue ELSE 0 END) AS revenue_prev,
    SUM(CASE WHEN ordered_at >= :start THEN gross_margin END) AS gross_margin,
    SUM(CASE WHEN ordered_at >= :start THEN gross_margin END)
        / NULLIF(1.0 * SUM(CASE WHEN ordered_at >= :start AND cost IS NOT NULL THEN revenue END), 0) AS gross_margin_rate
FROM v_product_sales
WHERE ordered_at >= :prev_start AND ordered_at < :end
GROUP BY product, currency
ORDER BY revenue DESC, product
LIMIT 30;
