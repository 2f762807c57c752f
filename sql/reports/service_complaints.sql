-- Cases opened in the period by product and kind (complaint, question, return, ...).
SELECT
    COALESCE(pr.title, c.product_id, '(no product)') AS product,
    COALESCE(c.kind, '(unknown)') AS kind,
    SUM(CASE WHEN c.opened_at >= :start THEN 1 ELSE 0 END) AS cases,
    SUM(CASE WHEN c.opened_at < :start THEN 1 ELSE 0 END) AS cases_prev
FROM service_case c
LEFT JOIN (SELECT external_id, MIN(title) AS title FROM product GROUP BY external_id) pr
    ON pr.external_id = c.product_id
WHERE c.opened_at >= :prev_start AND c.opened_at < :end
GROUP BY COALESCE(pr.title, c.product_id, '(no product)'), COALESCE(c.kind, '(unknown)')
ORDER BY cases DESC, product, kind;
