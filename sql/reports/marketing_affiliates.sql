-- Affiliate sites: prospect clicks from each site (touchpoints with an affiliate_site) and the
-- leads and customers among the people who clicked (a lead or a sale before the period's end),
-- this period and the previous one.
WITH t AS (
    SELECT
        t.affiliate_site,
        t.person_id,
        CASE WHEN t.occurred_at >= :start THEN 1 ELSE 0 END AS cur,
        CASE WHEN EXISTS (SELECT 1 FROM lead l WHERE l.person_id = t.person_id AND l.submitted_at < :end)
             THEN 1 ELSE 0 END AS has_lead,
        CASE WHEN EXISTS (SELECT 1 FROM v_sales_order b WHERE b.person_id = t.person_id AND b.ordered_at < :end)
             THEN 1 ELSE 0 END AS has_sale
    FROM touchpoint t
    WHERE t.affiliate_site IS NOT NULL AND t.affiliate_site <> ''
      AND t.occurred_at >= :prev_start AND t.occurred_at < :end
)
SELECT
    affiliate_site,
    SUM(cur) AS clicks,
    SUM(1 - cur) AS clicks_prev,
    COUNT(DISTINCT CASE WHEN cur = 1 AND has_lead = 1 THEN person_id END) AS leads,
    COUNT(DISTINCT CASE WHEN cur = 0 AND has_lead = 1 THEN person_id END) AS leads_prev,
    COUNT(DISTINCT CASE WHEN cur = 1 AND has_sale = 1 THEN person_id END) AS customers,
    COUNT(DISTINCT CASE WHEN cur = 0 AND has_sale = 1 THEN person_id END) AS customers_prev
FROM t
GROUP BY affiliate_site
ORDER BY clicks DESC, affiliate_site
LIMIT 50;
