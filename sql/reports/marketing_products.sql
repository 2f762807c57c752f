-- Products sold and the prices they sold at: one row per product, currency and unit price.
SELECT
    product,
    sku,
    currency,
    unit_price,
    SUM(CASE WHEN ordered_at >= :start THEN units ELSE 0 END) AS units,
    SUM(CASE WHEN ordered_at < :start THEN units ELSE 0 END) AS units_prev,
    SUM(CASE WHEN ordered_at >= :start THEN revenue ELSE 0 END) AS revenue,
    SUM(CASE WHEN ordered_at < :start THEN revenue ELSE 0 END) AS revenue_prev
FROM v_product_sales
WHERE ordered_at >= :prev_start AND ordered_at < :end
GROUP BY product, sku, currency, unit_price
ORDER BY revenue DESC, product, unit_price
LIMIT 50;
