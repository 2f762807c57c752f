-- Median hours to the first answer: from a case's opening to the first outbound email to the
-- same person at or after it (email_message, from the mailbox sources), for cases opened in
-- the period. Cases never answered by email are left out.
WITH a AS (
    SELECT
        c.source, c.external_id,
        CASE WHEN c.opened_at >= :start THEN 1 ELSE 0 END AS cur,
        (MIN(EPOCH_OF(e.sent_at)) - EPOCH_OF(c.opened_at)) / 3600.0 AS hours
    FROM service_case c
    JOIN email_message e
        ON e.person_id = c.person_id AND e.direction = 'outbound' AND e.sent_at >= c.opened_at
    WHERE c.opened_at >= :prev_start AND c.opened_at < :end
    GROUP BY c.source, c.external_id, c.opened_at
), r AS (
    SELECT cur, hours,
        ROW_NUMBER() OVER (PARTITION BY cur ORDER BY hours) AS rn,
        COUNT(*) OVER (PARTITION BY cur) AS n
    FROM a
), med AS (
    SELECT cur, AVG(hours) AS median_hours, MAX(n) AS cases
    FROM r
    WHERE rn IN ((n + 1) / 2, (n + 2) / 2)
    GROUP BY cur
)
SELECT
    MAX(CASE WHEN cur = 1 THEN median_hours END) AS median_hours_to_first_answer,
    MAX(CASE WHEN cur = 0 THEN median_hours END) AS median_hours_to_first_answer_prev,
    COALESCE(MAX(CASE WHEN cur = 1 THEN cases END), 0) AS cases_answered,
    COALESCE(MAX(CASE WHEN cur = 0 THEN cases END), 0) AS cases_answered_prev
FROM med;
