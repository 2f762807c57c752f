-- One row per sold order line: product, the unit price it sold at, units, revenue and, where
-- the cost is known, cost and gross margin. The cost is the line's own (order_line.cost: what the
-- shop recorded at the sale, e.g. WooCommerce's cost of goods sold), else quantity x the
-- product's unit cost (product.unit_cost: a CSV cost column, Shopify's inventory item unitCost).
-- "Which products sell at which prices, and what do they earn". Sales only (see v_sales_order).
CREATE VIEW v_product_sales AS
SELECT
    li.source,
    li.order_id,
    li.external_id AS line_id,
    o.ordered_at,
    o.person_id,
    COALESCE(li.currency, o.currency) AS currency,
    li.product_id,
    COALESCE(pr.title, li.title, li.sku, li.product_id, '(unknown product)') AS product,
    COALESCE(li.sku, pr.sku) AS sku,
    li.unit_price,
    COALESCE(li.quantity, 0) AS units,
    COALESCE(li.total, li.quantity * li.unit_price, 0) AS revenue,
    COALESCE(li.cost / NULLIF(li.quantity, 0), pr.unit_cost) AS unit_cost,
    COALESCE(li.cost, li.quantity * pr.unit_cost) AS cost,
    COALESCE(li.total, li.quantity * li.unit_price, 0) - COALESCE(li.cost, li.quantity * pr.unit_cost) AS gross_margin
FROM order_line li
JOIN customer_order o ON o.source = li.source AND o.external_id = li.order_id
LEFT JOIN product pr ON pr.source = li.source AND pr.external_id = li.product_id
WHERE o.ordered_at IS NOT NULL
  AND COALESCE(o.status, '') NOT IN (
    'cancelled', 'failed', 'void', 'voided', 'draft', 'test', 'trash', 'expired',
    'pending', 'checkout-draft', 'uncollectible', 'open', 'on-hold', 'authorized');
