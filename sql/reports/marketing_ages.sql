-- This period's customers by age band at the end of the period (where a birth date is known).
WITH c AS (
    SELECT
        o.person_id,
        MAX(CASE WHEN o.ordered_at >= :start THEN 1 ELSE 0 END) AS cur,
        MAX(CASE WHEN o.ordered_at < :start THEN 1 ELSE 0 END) AS prev,
        CASE
            WHEN p.birth_date IS NULL THEN '(no birth date)'
            WHEN p.birth_date > :born_18 THEN 'under 18'
            WHEN p.birth_date > :born_25 THEN '18-24'
            WHEN p.birth_date > :born_35 THEN '25-34'
            WHEN p.birth_date > :born_45 THEN '35-44'
            WHEN p.birth_date > :born_55 THEN '45-54'
            WHEN p.birth_date > :born_65 THEN '55-64'
            ELSE '65 and over'
        END AS age_band
    FROM v_sales_order o
    JOIN person p ON p.person_id = o.person_id
    WHERE o.ordered_at >= :prev_start AND o.ordered_at < :end
    GROUP BY o.person_id, p.birth_date
)
SELECT
    age_band,
    SUM(cur) AS customers,
    SUM(prev) AS customers_prev,
    CASE age_band WHEN 'under 18' THEN 1 WHEN '18-24' THEN 2 WHEN '25-34' THEN 3 WHEN '35-44' THEN 4
        WHEN '45-54' THEN 5 WHEN '55-64' THEN 6 WHEN '65 and over' THEN 7 ELSE 8 END AS _order
FROM c
GROUP BY age_band
ORDER BY _order;
