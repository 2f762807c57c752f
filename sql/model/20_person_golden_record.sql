-- The golden record: each field of a person is the newest non-empty value any
-- source gave for it (source_person.seen_at; rows without a date count as oldest).

UPDATE person SET
    display_name = (SELECT sp.display_name FROM source_person sp
        WHERE sp.person_id = person.person_id AND sp.display_name IS NOT NULL
        ORDER BY (sp.seen_at IS NULL), sp.seen_at DESC, sp.source, sp.external_id LIMIT 1),
    first_name = (SELECT sp.first_name FROM source_person sp
        WHERE sp.person_id = person.person_id AND sp.first_name IS NOT NULL
        ORDER BY (sp.seen_at IS NULL), sp.seen_at DESC, sp.source, sp.external_id LIMIT 1),
    last_name = (SELECT sp.last_name FROM source_person sp
        WHERE sp.person_id = person.person_id AND sp.last_name IS NOT NULL
        ORDER BY (sp.seen_at IS NULL), sp.seen_at DESC, sp.source, sp.external_id LIMIT 1),
    email = (SELECT sp.email FROM source_person sp
        WHERE sp.person_id = person.person_id AND sp.email IS NOT NULL
        ORDER BY (sp.seen_at IS NULL), sp.seen_at DESC, sp.source, sp.external_id LIMIT 1),
    phone = (SELECT sp.phone FROM source_person sp
        WHERE sp.person_id = person.person_id AND sp.phone IS NOT NULL
        ORDER BY (sp.seen_at IS NULL), sp.seen_at DESC, sp.source, sp.external_id LIMIT 1),
    company = (SELECT sp.company FROM source_person sp
        WHERE sp.person_id = person.person_id AND sp.company IS NOT NULL
        ORDER BY (sp.seen_at IS NULL), sp.seen_at DESC, sp.source, sp.external_id LIMIT 1),
    job_title = (SELECT sp.job_title FROM source_person sp
        WHERE sp.person_id = person.person_id AND sp.job_title IS NOT NULL
        ORDER BY (sp.seen_at IS NULL), sp.seen_at DESC, sp.source, sp.external_id LIMIT 1),
    street = (SELECT sp.street FROM source_person sp
        WHERE sp.person_id = person.person_id AND sp.street IS NOT NULL
        ORDER BY (sp.seen_at IS NULL), sp.seen_at DESC, sp.source, sp.external_id LIMIT 1),
    postal_code = (SELECT sp.postal_code FROM source_person sp
        WHERE sp.person_id = person.person_id AND sp.postal_code IS NOT NULL
        ORDER BY (sp.seen_at IS NULL), sp.seen_at DESC, sp.source, sp.external_id LIMIT 1),
    city = (SELECT sp.city FROM source_person sp
        WHERE sp.person_id = person.person_id AND sp.city IS NOT NULL
        ORDER BY (sp.seen_at IS NULL), sp.seen_at DESC, sp.source, sp.external_id LIMIT 1),
    region = (SELECT sp.region FROM source_person sp
        WHERE sp.person_id = person.person_id AND sp.region IS NOT NULL
        ORDER BY (sp.seen_at IS NULL), sp.seen_at DESC, sp.source, sp.external_id LIMIT 1),
    country = (SELECT sp.country FROM source_person sp
        WHERE sp.person_id = person.person_id AND sp.country IS NOT NULL
        ORDER BY (sp.seen_at IS NULL), sp.seen_at DESC, sp.source, sp.external_id LIMIT 1),
    birth_date = (SELECT sp.birth_date FROM source_person sp
        WHERE sp.person_id = person.person_id AND sp.birth_date IS NOT NULL
        ORDER BY (sp.seen_at IS NULL), sp.seen_at DESC, sp.source, sp.external_id LIMIT 1);

-- Lifecycle: customer once something was bought (an order that is not cancelled,
-- failed, unpaid or a draft/test), prospect once they engaged beyond a form (ad or
-- email click, visit, call), else lead.
UPDATE person SET lifecycle_stage = CASE
    WHEN EXISTS (SELECT 1 FROM customer_order o WHERE o.person_id = person.person_id
                 AND COALESCE(o.status, '') NOT IN (
                     'cancelled', 'failed', 'void', 'voided', 'draft', 'test', 'trash', 'expired',
                     'pending', 'checkout-draft', 'uncollectible', 'open', 'on-hold', 'authorized'))
      OR EXISTS (SELECT 1 FROM source_person sp
                 WHERE sp.person_id = person.person_id AND sp.lifecycle_stage = 'customer')
        THEN 'customer'
    WHEN EXISTS (SELECT 1 FROM touchpoint t WHERE t.person_id = person.person_id
                 AND t.channel IN ('ad_click', 'email_click', 'web_visit', 'site_visit', 'phone_call'))
      OR EXISTS (SELECT 1 FROM source_person sp
                 WHERE sp.person_id = person.person_id AND sp.lifecycle_stage = 'prospect')
        THEN 'prospect'
    ELSE 'lead'
END;

-- First and last time any source saw the person.
UPDATE person SET
    first_seen_at = (SELECT MIN(t) FROM (
        SELECT occurred_at AS t FROM touchpoint WHERE person_id = person.person_id
        UNION ALL SELECT ordered_at FROM customer_order WHERE person_id = person.person_id
        UNION ALL SELECT seen_at FROM source_person WHERE person_id = person.person_id) seen),
    last_seen_at = (SELECT MAX(t) FROM (
        SELECT occurred_at AS t FROM touchpoint WHERE person_id = person.person_id
        UNION ALL SELECT ordered_at FROM customer_order WHERE person_id = person.person_id
        UNION ALL SELECT seen_at FROM source_person WHERE person_id = person.person_id) seen);

-- Attribution: the first and the latest touchpoint (utm_source, else the affiliate
-- site, else the crmhub source) and its campaign.
UPDATE person SET
    first_touch_source = (SELECT COALESCE(t.utm_source, t.affiliate_site, t.source) FROM touchpoint t
        WHERE t.person_id = person.person_id AND t.occurred_at IS NOT NULL
        ORDER BY t.occurred_at, t.source, t.external_id LIMIT 1),
    first_touch_campaign = (SELECT t.campaign_id FROM touchpoint t
        WHERE t.person_id = person.person_id AND t.occurred_at IS NOT NULL
        ORDER BY t.occurred_at, t.source, t.external_id LIMIT 1),
    last_touch_source = (SELECT COALESCE(t.utm_source, t.affiliate_site, t.source) FROM touchpoint t
        WHERE t.person_id = person.person_id AND t.occurred_at IS NOT NULL
        ORDER BY t.occurred_at DESC, t.source DESC, t.external_id DESC LIMIT 1),
    last_touch_campaign = (SELECT t.campaign_id FROM touchpoint t
        WHERE t.person_id = person.person_id AND t.occurred_at IS NOT NULL
        ORDER BY t.occurred_at DESC, t.source DESC, t.external_id DESC LIMIT 1);
