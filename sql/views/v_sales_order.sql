-- One row per sale with its buyer, rep and channel, net of refunds, and whether it was the
-- buyer's first sale ever (1/0; NULL when the buyer is unknown; an index probe per row, so a
-- filter on ordered_at still narrows the rows read first): "new vs returning",
-- "revenue over time", "sales by rep / channel". Cancelled, failed, unpaid, draft and test
-- orders are not sales (the same list as v_customer_sales).
CREATE VIEW v_sales_order AS
SELECT
    o.source,
    o.external_id AS order_id,
    o.order_number,
    o.ordered_at,
    o.person_id,
    p.display_name,
    p.email,
    o.currency,
    COALESCE(NULLIF(o.sales_rep, ''), '(no rep)') AS sales_rep,
    COALESCE(NULLIF(o.channel, ''), '(unknown)') AS channel,
    COALESCE(o.total, 0) - COALESCE(o.refunded, 0) AS net_revenue,
    o.utm_source,
    o.utm_campaign,
    CASE
        WHEN o.person_id IS NULL THEN NULL
        WHEN EXISTS (
            SELECT 1 FROM customer_order e
            WHERE e.person_id = o.person_id AND e.ordered_at < o.ordered_at
              AND COALESCE(e.status, '') NOT IN (
                'cancelled', 'failed', 'void', 'voided', 'draft', 'test', 'trash', 'expired',
                'pending', 'checkout-draft', 'uncollectible', 'open', 'on-hold', 'authorized')) THEN 0
        ELSE 1
    END AS is_first_order
FROM customer_order o
LEFT JOIN person p ON p.person_id = o.person_id
WHERE o.ordered_at IS NOT NULL
  AND COALESCE(o.status, '') NOT IN (
    'cancelled', 'failed', 'void', 'voided', 'draft', 'test', 'trash', 'expired',
    'pending', 'checkout-draft', 'uncollectible', 'open', 'on-hold', 'authorized');
