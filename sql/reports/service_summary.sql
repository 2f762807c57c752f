-- Service at a glance: cases opened and closed in the period, and the open backlog at its end
-- (the previous figures: the previous period, and the backlog at its end).
SELECT
    SUM(CASE WHEN opened_at >= :start AND opened_at < :end THEN 1 ELSE 0 END) AS opened,
    SUM(CASE WHEN opened_at >= :prev_start AND opened_at < :start THEN 1 ELSE 0 END) AS opened_prev,
    SUM(CASE WHEN closed_at >= :start AND closed_at < :end THEN 1 ELSE 0 END) AS closed,
    SUM(CASE WHEN closed_at >= :prev_start AND closed_at < :start THEN 1 ELSE 0 END) AS closed_prev,
    SUM(CASE WHEN opened_at < :end AND (closed_at IS NULL OR closed_at >= :end) THEN 1 ELSE 0 END) AS open_backlog,
    SUM(CASE WHEN opened_at < :start AND (closed_at IS NULL OR closed_at >= :start) THEN 1 ELSE 0 END) AS open_backlog_prev,
    SUM(CASE WHEN kind = 'complaint' AND opened_at >= :start AND opened_at < :end THEN 1 ELSE 0 END) AS complaints,
    SUM(CASE WHEN kind = 'complaint' AND opened_at >= :prev_start AND opened_at < :start THEN 1 ELSE 0 END) AS complaints_prev
FROM service_case
WHERE opened_at < :end;
