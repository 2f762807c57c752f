-- Feedback ratings by product: how many and the average, this period and the previous one.
SELECT
    COALESCE(pr.title, f.product_id, '(no product)') AS product,
    SUM(CASE WHEN f.received_at >= :start THEN 1 ELSE 0 END) AS ratings,
    AVG(CASE WHEN f.received_at >= :start THEN f.rating END) AS average_rating,
    AVG(CASE WHEN f.received_at < :start THEN f.rating END) AS average_rating_prev
FROM feedback f
LEFT JOIN (SELECT external_id, MIN(title) AS title FROM product GROUP BY external_id) pr
    ON pr.external_id = f.product_id
WHERE f.rating IS NOT NULL AND f.received_at >= :prev_start AND f.received_at < :end
GROUP BY COALESCE(pr.title, f.product_id, '(no product)')
HAVING SUM(CASE WHEN f.received_at >= :start THEN 1 ELSE 0 END) > 0
ORDER BY average_rating DESC, product;
