-- Sales per person and currency: orders, revenue net of refunds, first and last order.
-- Cancelled, failed, unpaid, draft and test orders are not sales.
CREATE VIEW v_customer_sales AS
SELECT
    o.person_id,
    p.display_name,
    p.email,
    o.currency,
    COUNT(*) AS orders,
    SUM(COALESCE(o.total, 0) - COALESCE(o.refunded, 0)) AS net_revenue,
    MIN(o.ordered_at) AS first_order_at,
    MAX(o.ordered_at) AS last_order_at
FROM customer_order o
LEFT JOIN person p ON p.person_id = o.person_id
WHERE COALESCE(o.status, '') NOT IN (
    'cancelled', 'failed', 'void', 'voided', 'draft', 'test', 'trash', 'expired',
    'pending', 'checkout-draft', 'uncollectible', 'open', 'on-hold', 'authorized')
GROUP BY o.person_id, p.display_name, p.email, o.currency;
