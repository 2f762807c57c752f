-- RFM segments of everyone who bought between :hist_start and the end of the period, per
-- currency (money is never compared or added across currencies: someone who bought in EUR and
-- in USD is ranked among each currency's buyers). Recency, frequency and monetary value are
-- each ranked into thirds within the currency (3 = best); the segment rules are the usual
-- ones, spelled out in the CASE below.
WITH c AS (
    SELECT
        COALESCE(currency, '') AS currency,
        person_id,
        MAX(EPOCH_OF(ordered_at)) AS last_epoch,
        COUNT(*) AS orders,
        SUM(net_revenue) AS revenue
    FROM v_sales_order
    WHERE person_id IS NOT NULL AND ordered_at >= :hist_start AND ordered_at < :end
    GROUP BY COALESCE(currency, ''), person_id
), s AS (
    SELECT
        currency, person_id, orders, revenue,
        (:end_epoch - last_epoch) / 86400.0 AS recency_days,
        NTILE(3) OVER (PARTITION BY currency ORDER BY last_epoch, person_id) AS r,
        NTILE(3) OVER (PARTITION BY currency ORDER BY orders, person_id) AS f,
        NTILE(3) OVER (PARTITION BY currency ORDER BY revenue, person_id) AS m
    FROM c
), seg AS (
    SELECT
        currency,
        CASE
            WHEN r = 3 AND f = 3 THEN 'Champions'
            WHEN r >= 2 AND f >= 2 THEN 'Loyal'
            WHEN r = 3 THEN 'New or promising'
            WHEN r = 2 THEN 'Needs attention'
            WHEN f >= 2 OR m = 3 THEN 'At risk'
            ELSE 'Lost'
        END AS segment,
        recency_days, orders, revenue
    FROM s
), currencies AS (
    SELECT COUNT(DISTINCT currency) AS n FROM c
)
SELECT
    segment,
    seg.currency,
    COUNT(*) AS customers,
    AVG(recency_days) AS days_since_last_order,
    AVG(1.0 * orders) AS orders_per_customer,
    AVG(revenue) AS revenue_per_customer,
    SUM(revenue) AS revenue,
    -- the chart's bar label: the segment, with its currency when there are several
    CASE WHEN MAX(currencies.n) > 1 THEN segment || ' (' || seg.currency || ')' ELSE segment END AS _label,
    CASE segment WHEN 'Champions' THEN 1 WHEN 'Loyal' THEN 2 WHEN 'New or promising' THEN 3
        WHEN 'Needs attention' THEN 4 WHEN 'At risk' THEN 5 ELSE 6 END AS _order
FROM seg CROSS JOIN currencies
GROUP BY seg.currency, segment
ORDER BY seg.currency, _order;
