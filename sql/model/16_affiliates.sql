-- (No LIKE patterns here: '%' would clash with psycopg's placeholders; REPLACE(x, y, '') <> x
-- is a portable "x contains y".)
-- Affiliate sites (rules in affiliate_rule, from crmhub.yml's `affiliates`; docs/attribution.md).
-- A rule matches, in this order of precedence:
--   url_param        the landing page carries name=value (?aff_id=4711)
--   utm_source       utm_source equals the value (case-insensitive)
--   referrer_domain  the referrer's host is the domain or one of its subdomains
-- Pending leads, orders, touchpoints and web-traffic rows (model_pending = true) are named again:
-- every write marks its rows, and a change of the rules marks them all
-- (crm_model.affiliates.store_rules). Without a matching rule a lead keeps the site its
-- mapping saw (utm_medium affiliate/referral: the referrer's host, on its form touchpoint),
-- so a lead whose form touchpoint was written again is named again too.

UPDATE lead SET model_pending = true
WHERE model_pending IS NOT true
  AND (source, person_ref) IN (SELECT t.source, t.external_id FROM touchpoint t WHERE t.model_pending = true);

-- Each pending lead's site is worked out first (s) and written only where it changes: a
-- first run over a large sync names every lead, and most keep what they had (no site),
-- while writing a row (PostgreSQL: a new version of it and an entry in each of the
-- table's indexes) costs far more than reading it. At 1,000,000 leads synced from csv on
-- PostgreSQL: 30.7 s when every pending lead was written.
UPDATE lead SET affiliate_site = s.site
FROM (SELECT l.source, l.external_id, COALESCE(
    (SELECT r.affiliate_site FROM affiliate_rule r WHERE
        (r.kind = 'url_param' AND (REPLACE(LOWER(l.landing_page) || '&', '?' || r.value || '&', '') <> LOWER(l.landing_page) || '&'
                                   OR REPLACE(LOWER(l.landing_page) || '&', '&' || r.value || '&', '') <> LOWER(l.landing_page) || '&'))
        OR (r.kind = 'utm_source' AND LOWER(l.utm_source) = r.value)
        OR (r.kind = 'referrer_domain' AND (REPLACE(LOWER(l.referrer) || '/', '://' || r.value || '/', '') <> LOWER(l.referrer) || '/'
                                            OR REPLACE(LOWER(l.referrer) || '/', '.' || r.value || '/', '') <> LOWER(l.referrer) || '/'))
     ORDER BY CASE r.kind WHEN 'url_param' THEN 1 WHEN 'utm_source' THEN 2 ELSE 3 END, r.value LIMIT 1),
    (SELECT t.affiliate_site FROM touchpoint t WHERE t.source = l.source AND t.external_id = l.person_ref)) AS site
      FROM lead l WHERE l.model_pending = true) s
WHERE lead.source = s.source AND lead.external_id = s.external_id AND lead.affiliate_site IS DISTINCT FROM s.site;

UPDATE customer_order SET affiliate_site = s.site
FROM (SELECT o.source, o.external_id,
    (SELECT r.affiliate_site FROM affiliate_rule r WHERE
        (r.kind = 'url_param' AND (REPLACE(LOWER(o.landing_page) || '&', '?' || r.value || '&', '') <> LOWER(o.landing_page) || '&'
                                   OR REPLACE(LOWER(o.landing_page) || '&', '&' || r.value || '&', '') <> LOWER(o.landing_page) || '&'))
        OR (r.kind = 'utm_source' AND LOWER(o.utm_source) = r.value)
        OR (r.kind = 'referrer_domain' AND (REPLACE(LOWER(o.referrer) || '/', '://' || r.value || '/', '') <> LOWER(o.referrer) || '/'
                                            OR REPLACE(LOWER(o.referrer) || '/', '.' || r.value || '/', '') <> LOWER(o.referrer) || '/'))
     ORDER BY CASE r.kind WHEN 'url_param' THEN 1 WHEN 'utm_source' THEN 2 ELSE 3 END, r.value LIMIT 1) AS site
      FROM customer_order o WHERE o.model_pending = true) s
WHERE customer_order.source = s.source AND customer_order.external_id = s.external_id
  AND customer_order.affiliate_site IS DISTINCT FROM s.site;

-- Touchpoints (ad and email clicks, visits, network exports) by their URL and utm_source;
-- a site a source named itself is kept when no rule matches.
UPDATE touchpoint SET affiliate_site =
    (SELECT r.affiliate_site FROM affiliate_rule r WHERE
        (r.kind = 'url_param' AND (REPLACE(LOWER(touchpoint.url) || '&', '?' || r.value || '&', '') <> LOWER(touchpoint.url) || '&'
                                   OR REPLACE(LOWER(touchpoint.url) || '&', '&' || r.value || '&', '') <> LOWER(touchpoint.url) || '&'))
        OR (r.kind = 'utm_source' AND LOWER(touchpoint.utm_source) = r.value)
     ORDER BY CASE r.kind WHEN 'url_param' THEN 1 WHEN 'utm_source' THEN 2 ELSE 3 END, r.value LIMIT 1)
WHERE model_pending = true AND EXISTS (SELECT 1 FROM affiliate_rule r WHERE
        (r.kind = 'url_param' AND (REPLACE(LOWER(touchpoint.url) || '&', '?' || r.value || '&', '') <> LOWER(touchpoint.url) || '&'
                                   OR REPLACE(LOWER(touchpoint.url) || '&', '&' || r.value || '&', '') <> LOWER(touchpoint.url) || '&'))
        OR (r.kind = 'utm_source' AND LOWER(touchpoint.utm_source) = r.value))
  AND affiliate_site IS DISTINCT FROM
    (SELECT r.affiliate_site FROM affiliate_rule r WHERE
        (r.kind = 'url_param' AND (REPLACE(LOWER(touchpoint.url) || '&', '?' || r.value || '&', '') <> LOWER(touchpoint.url) || '&'
                                   OR REPLACE(LOWER(touchpoint.url) || '&', '&' || r.value || '&', '') <> LOWER(touchpoint.url) || '&'))
        OR (r.kind = 'utm_source' AND LOWER(touchpoint.utm_source) = r.value)
     ORDER BY CASE r.kind WHEN 'url_param' THEN 1 WHEN 'utm_source' THEN 2 ELSE 3 END, r.value LIMIT 1);

-- Site visits by analytics source and landing page.
UPDATE web_traffic_daily SET affiliate_site =
    (SELECT r.affiliate_site FROM affiliate_rule r WHERE
        (r.kind = 'url_param' AND (REPLACE(LOWER(web_traffic_daily.landing_page) || '&', '?' || r.value || '&', '') <> LOWER(web_traffic_daily.landing_page) || '&'
                                   OR REPLACE(LOWER(web_traffic_daily.landing_page) || '&', '&' || r.value || '&', '') <> LOWER(web_traffic_daily.landing_page) || '&'))
        OR (r.kind = 'utm_source' AND LOWER(web_traffic_daily.source) = r.value)
        OR (r.kind = 'referrer_domain' AND LOWER(web_traffic_daily.source) = r.value)
     ORDER BY CASE r.kind WHEN 'url_param' THEN 1 WHEN 'utm_source' THEN 2 ELSE 3 END, r.value LIMIT 1)
WHERE model_pending = true;
