-- The persons of every lead, touchpoint and order written or derived again in this run
-- (model_pending = true) join model_dirty, so sql/model_persons computes their lifecycle, first and
-- last seen, and touch facts and channels again: an order whose status changed, a visit
-- synced again with its time corrected, a click that moved to its lead's person.

INSERT INTO model_dirty (person_id)
SELECT DISTINCT r.person_id FROM lead r
WHERE r.model_pending = true AND r.person_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM model_dirty d WHERE d.person_id = r.person_id);

INSERT INTO model_dirty (person_id)
SELECT DISTINCT r.person_id FROM touchpoint r
WHERE r.model_pending = true AND r.person_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM model_dirty d WHERE d.person_id = r.person_id);

INSERT INTO model_dirty (person_id)
SELECT DISTINCT r.person_id FROM customer_order r
WHERE r.model_pending = true AND r.person_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM model_dirty d WHERE d.person_id = r.person_id);
