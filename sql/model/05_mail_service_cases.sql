-- Support mail -> service_case: each support thread (email_message.case_id) is one case.
-- Runs in `crmhub model` before person ids are copied (10_link_person_ids.sql).
--   tracking_number  the first number a subject of the thread carried, else the assigned case_id
--   kind             complaint when any message matched the complaint keywords, else question
--   status           closed (a closing phrase or label), answered (the company wrote after the
--                    customer), else new
--   person           the sender of the thread's first inbound message
-- product_id/product_source are left alone here: crm_model.mail_cases links products.
-- Only threads with a message written since the last model run (model_pending = true) are built
-- again: the others have not changed.

INSERT INTO service_case (source, external_id, person_ref, tracking_number, kind, subject, status,
                          opened_at, closed_at, channel)
SELECT * FROM (
    SELECT
        m.source,
        m.case_id,
        (SELECT f.person_ref FROM email_message f
         WHERE f.source = m.source AND f.case_id = m.case_id AND f.direction = 'inbound'
           AND f.person_ref IS NOT NULL
         ORDER BY CASE WHEN f.sent_at IS NULL THEN 1 ELSE 0 END, f.sent_at, f.message_id LIMIT 1),
        COALESCE(
            (SELECT t.tracking_number FROM email_message t
             WHERE t.source = m.source AND t.case_id = m.case_id AND t.tracking_number IS NOT NULL
             ORDER BY CASE WHEN t.sent_at IS NULL THEN 1 ELSE 0 END, t.sent_at, t.message_id LIMIT 1),
            m.case_id),
        CASE WHEN SUM(CASE WHEN m.complaint THEN 1 ELSE 0 END) > 0 THEN 'complaint' ELSE 'question' END,
        (SELECT s.subject FROM email_message s
         WHERE s.source = m.source AND s.case_id = m.case_id
         ORDER BY CASE WHEN s.sent_at IS NULL THEN 1 ELSE 0 END, s.sent_at, s.message_id LIMIT 1),
        CASE
            WHEN SUM(CASE WHEN m.closes_case THEN 1 ELSE 0 END) > 0 THEN 'closed'
            WHEN MAX(CASE WHEN m.direction = 'outbound' THEN m.sent_at END)
                 >= MIN(CASE WHEN m.direction = 'inbound' THEN m.sent_at END) THEN 'answered'
            ELSE 'new'
        END,
        MIN(m.sent_at),
        MAX(CASE WHEN m.closes_case THEN m.sent_at END),
        'email'
    FROM email_message m
    WHERE m.case_id IS NOT NULL
      AND (m.source, m.case_id) IN (SELECT p.source, p.case_id FROM email_message p
                                    WHERE p.model_pending = true AND p.case_id IS NOT NULL)
    GROUP BY m.source, m.case_id
) AS thread_case
WHERE true
ON CONFLICT (source, external_id) DO UPDATE SET
    person_ref = excluded.person_ref,
    tracking_number = excluded.tracking_number,
    kind = excluded.kind,
    subject = excluded.subject,
    status = excluded.status,
    opened_at = excluded.opened_at,
    closed_at = excluded.closed_at,
    channel = excluded.channel
WHERE service_case.person_ref IS DISTINCT FROM excluded.person_ref
   OR service_case.tracking_number IS DISTINCT FROM excluded.tracking_number
   OR service_case.kind IS DISTINCT FROM excluded.kind
   OR service_case.subject IS DISTINCT FROM excluded.subject
   OR service_case.status IS DISTINCT FROM excluded.status
   OR service_case.opened_at IS DISTINCT FROM excluded.opened_at
   OR service_case.closed_at IS DISTINCT FROM excluded.closed_at;
