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

UPDATE lead SET affiliate_site = COALESCE(
    (SELECT r.affiliate_site FROM affiliate_rule r WHERE
        (r.kind = 'url_param' AND (REPLACE(LOWER(lead.landing_page) || '&', '?' || r.value || '&', '') <> LOWER(lead.landing_page) || '&'
                                   OR REPLACE(LOWER(lead.landing_page) || '&', '&' || r.value || '&', '') <> LOWER(lead.landing_page) || '&'))
        OR (r.kind = 'utm_source' AND LOWER(lead.utm_source) = r.value)
        OR (r.kind = 'referrer_domain' AND (REPLACE(LOWER(lead.referrer) || '/', '://' || r.value || '/', '') <> LOWER(lead.referrer) || '/'
                                            OR REPLACE(LOWER(lead.referrer) || '/', '.' || r.value || '/', '') <> LOWER(lead.referrer) || '/'))
     ORDER BY CASE r.kind WHEN 'url_param' THEN 1 WHEN 'utm_source' THEN 2 ELSE 3 END, r.value LIMIT 1),
    (SELECT t.affiliate_site FROM touchpoint t WHERE t.source = lead.source AND t.external_id = lead.person_ref))
WHERE model_pending = true;

UPDATE customer_order SET affiliate_site =
    (SELECT r.affiliate_site FROM affiliate_rule r WHERE
        (r.kind = 'url_param' AND (REPLACE(LOWER(customer_order.landing_page) || '&', '?' || r.value || '&', '') <> LOWER(customer_order.landing_page) || '&'
                                   OR REPLACE(LOWER(customer_order.landing_page) || '&', '&' || r.value || '&', '') <> LOWER(customer_order.landing_page) || '&'))
        OR (r.kind = 'utm_source' AND LOWER(customer_order.utm_source) = r.value)
        OR (r.kind = 'referrer_domain' AND (REPLACE(LOWER(customer_order.referrer) || '/', '://' || r.value || '/', '') <> LOWER(customer_order.referrer) || '/'
                                            OR REPLACE(LOWER(customer_order.referrer) || '/', '.' || r.value || '/', '') <> LOWER(customer_order.referrer) || '/'))
     ORDER BY CASE r.kind WHEN 'url_param' THEN 1 WHEN 'utm_source' THEN 2 ELSE 3 END, r.value LIMIT 1)
WHERE model_pending = true;

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
