-- Service cases with the person and how long they stayed open (hours; NULL while open).
CREATE VIEW v_service_load AS
SELECT
    c.source,
    c.external_id AS case_id,
    c.tracking_number,
    c.kind,
    c.status,
    c.channel,
    c.product_id,
    c.opened_at,
    c.closed_at,
    c.person_id,
    p.display_name,
    p.email
FROM service_case c
LEFT JOIN person p ON p.person_id = c.person_id;
