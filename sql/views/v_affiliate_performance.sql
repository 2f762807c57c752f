-- Per affiliate site (affiliate rules, docs/attribution.md): tracked prospect interactions
-- (clicks, visits: touchpoints other than form submissions), the prospects behind them,
-- leads, paying customers and their revenue net of refunds ('mixed': several currencies).
CREATE VIEW v_affiliate_performance AS
WITH sites AS (
    SELECT affiliate_site FROM touchpoint WHERE affiliate_site IS NOT NULL
    UNION SELECT affiliate_site FROM lead WHERE affiliate_site IS NOT NULL
    UNION SELECT affiliate_site FROM customer_order WHERE affiliate_site IS NOT NULL
),
sales AS (
    SELECT * FROM customer_order
    WHERE affiliate_site IS NOT NULL
      AND COALESCE(status, '') NOT IN (
        'cancelled', 'failed', 'void', 'voided', 'draft', 'test', 'trash', 'expired',
        'pending', 'checkout-draft', 'uncollectible', 'open', 'on-hold', 'authorized')
)
SELECT
    s.affiliate_site,
    (SELECT COUNT(*) FROM touchpoint t
        WHERE t.affiliate_site = s.affiliate_site AND t.channel <> 'form') AS clicks,
    (SELECT COUNT(DISTINCT t.person_id) FROM touchpoint t
        WHERE t.affiliate_site = s.affiliate_site AND t.channel <> 'form') AS prospects,
    (SELECT COUNT(*) FROM lead l WHERE l.affiliate_site = s.affiliate_site) AS leads,
    (SELECT COUNT(DISTINCT COALESCE(CAST(o.person_id AS VARCHAR(32)), o.source || ':' || o.external_id))
        FROM sales o WHERE o.affiliate_site = s.affiliate_site) AS customers,
    (SELECT COALESCE(SUM(COALESCE(o.total, 0) - COALESCE(o.refunded, 0)), 0)
        FROM sales o WHERE o.affiliate_site = s.affiliate_site) AS revenue,
    (SELECT CASE WHEN COUNT(DISTINCT o.currency) > 1 THEN 'mixed' ELSE MIN(o.currency) END
        FROM sales o WHERE o.affiliate_site = s.affiliate_site) AS revenue_currency
FROM sites s;
