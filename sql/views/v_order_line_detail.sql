-- Order lines with their order, buyer and product: "which products sell at which prices".
CREATE VIEW v_order_line_detail AS
SELECT
    o.source,
    o.external_id AS order_id,
    o.order_number,
    o.ordered_at,
    o.status AS order_status,
    o.person_id,
    o.sales_rep,
    o.currency,
    li.external_id AS line_id,
    li.product_id,
    COALESCE(li.sku, pr.sku) AS sku,
    COALESCE(pr.title, li.title) AS product_title,
    pr.category,
    li.quantity,
    li.unit_price,
    li.discount AS line_discount,
    li.total AS line_total
FROM order_line li
JOIN customer_order o ON o.source = li.source AND o.external_id = li.order_id
LEFT JOIN product pr ON pr.source = li.source AND pr.external_id = li.product_id;
