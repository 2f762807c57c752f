-- Where this period's customers (people with a sale in the period) live: country, region, city.
SELECT
    COALESCE(p.country, '(unknown)') AS country,
    COALESCE(p.region, '') AS region,
    COALESCE(p.city, '(unknown)') AS city,
    COUNT(DISTINCT CASE WHEN o.ordered_at >= :start THEN o.person_id END) AS customers,
    COUNT(DISTINCT CASE WHEN o.ordered_at < :start THEN o.person_id END) AS customers_prev
FROM v_sales_order o
JOIN person p ON p.person_id = o.person_id
WHERE o.ordered_at >= :prev_start AND o.ordered_at < :end
GROUP BY COALESCE(p.country, '(unknown)'), COALESCE(p.region, ''), COALESCE(p.city, '(unknown)')
ORDER BY customers DESC, country, region, city
LIMIT 30;
