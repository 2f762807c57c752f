-- Service contracts ending within 90 days of the end of the period, with their value.
SELECT
    CASE WHEN k.ends_on < :d30 THEN 'within 30 days'
         WHEN k.ends_on < :d60 THEN 'within 60 days'
         ELSE 'within 90 days' END AS ends,
    k.ends_on,
    COALESCE(p.display_name, p.email, k.person_ref) AS customer,
    COALESCE(pr.title, k.product_id) AS product,
    k.level,
    k.value,
    k.currency
FROM service_contract k
LEFT JOIN person p ON p.person_id = k.person_id
LEFT JOIN (SELECT external_id, MIN(title) AS title FROM product GROUP BY external_id) pr
    ON pr.external_id = k.product_id
WHERE k.ends_on >= :end_day AND k.ends_on < :d90
ORDER BY k.ends_on, customer;
