-- Cases still open at the end of the period, oldest first, with tracking number and age.
SELECT
    c.tracking_number,
    COALESCE(c.kind, '(unknown)') AS kind,
    c.subject,
    COALESCE(p.display_name, p.email) AS customer,
    c.status,
    c.opened_at,
    (:end_epoch - EPOCH_OF(c.opened_at)) / 86400.0 AS age_days
FROM service_case c
LEFT JOIN person p ON p.person_id = c.person_id
WHERE c.opened_at < :end
  AND (c.closed_at IS NULL OR c.closed_at >= :end)
  AND COALESCE(c.status, '') NOT IN ('closed', 'solved', 'resolved')
ORDER BY c.opened_at, c.tracking_number
LIMIT 100;
