-- One row per lead with the person it resolved to and where it came from.
-- Use it for "which sources and campaigns bring leads, and which of them buy".
CREATE VIEW v_lead_attribution AS
SELECT
    l.source,
    l.external_id AS lead_id,
    l.submitted_at,
    l.form,
    l.person_id,
    p.display_name,
    p.email,
    p.company,
    p.lifecycle_stage,
    COALESCE(l.utm_source, '(direct)') AS utm_source,
    l.utm_medium,
    l.utm_campaign,
    l.gclid IS NOT NULL AS has_google_click,
    l.fbclid IS NOT NULL AS has_meta_click,
    l.landing_page,
    l.referrer
FROM lead l
LEFT JOIN person p ON p.person_id = l.person_id;
