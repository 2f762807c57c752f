-- One row per lead with the person it resolved to and where it came from.
-- Use it for "which sources and campaigns bring leads, and which of them buy": the campaign,
-- ad group and ad it was attributed to (with names) and the rule that did it (docs/attribution.md).
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
    l.referrer,
    l.ad_platform,
    l.campaign_id,
    c.name AS campaign_name,
    l.ad_group_id,
    g.name AS ad_group_name,
    l.ad_id,
    a.name AS ad_name,
    l.attribution_rule,
    l.affiliate_site
FROM lead l
LEFT JOIN person p ON p.person_id = l.person_id
LEFT JOIN campaign c ON c.platform = l.ad_platform AND c.campaign_id = l.campaign_id
LEFT JOIN ad_group g ON g.platform = l.ad_platform AND g.ad_group_id = l.ad_group_id
LEFT JOIN ad a ON a.platform = l.ad_platform AND a.ad_id = l.ad_id;
