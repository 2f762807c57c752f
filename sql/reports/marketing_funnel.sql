-- Lead-source funnel: leads submitted in the period by source (utm_source, else the crmhub
-- source), how many of them became prospects and customers, and the conversion rates.
-- A lead counts as a customer when its person bought (v_sales_order) or is at stage customer.
WITH period_leads AS (
    SELECT
        l.person_id, l.utm_source, l.source, l.submitted_at,
        -- a look-up per lead: the period's leads are few next to everyone in person
        (SELECT p.lifecycle_stage FROM person p WHERE p.person_id = l.person_id) AS lifecycle_stage
    FROM lead l
    WHERE l.submitted_at >= :prev_start AND l.submitted_at < :end
), buyers AS (  -- the people among them with a sale before the period's end: one pass, no probe per lead
    SELECT DISTINCT b.person_id
    FROM v_sales_order b
    WHERE b.ordered_at < :end AND b.person_id IN (SELECT person_id FROM period_leads)
), f AS (
    SELECT
        COALESCE(NULLIF(l.utm_source, ''), l.source) AS lead_source,
        CASE WHEN l.submitted_at >= :start THEN 1 ELSE 0 END AS cur,
        CASE WHEN l.lifecycle_stage IN ('prospect', 'customer') OR b.person_id IS NOT NULL THEN 1 ELSE 0 END AS prospect,
        CASE WHEN l.lifecycle_stage = 'customer' OR b.person_id IS NOT NULL THEN 1 ELSE 0 END AS customer
    FROM period_leads l
    LEFT JOIN buyers b ON b.person_id = l.person_id
), g AS (
    SELECT
        lead_source,
        SUM(cur) AS leads,
        SUM(cur * prospect) AS prospects,
        SUM(cur * customer) AS customers,
        SUM(1 - cur) AS leads_prev,
        SUM((1 - cur) * customer) AS customers_prev
    FROM f
    GROUP BY lead_source
)
SELECT
    lead_source,
    leads, leads_prev,
    prospects,
    customers, customers_prev,
    1.0 * prospects / NULLIF(leads, 0) AS lead_to_prospect,
    1.0 * customers / NULLIF(prospects, 0) AS prospect_to_customer,
    1.0 * customers / NULLIF(leads, 0) AS lead_to_customer,
    1.0 * customers_prev / NULLIF(leads_prev, 0) AS lead_to_customer_prev
FROM g
ORDER BY leads DESC, lead_source;
