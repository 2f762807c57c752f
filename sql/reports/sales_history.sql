-- Revenue per day and currency over the forecast's history window (:hist_start to :end); the
-- forecast groups the days into periods of the report's length and forecasts the main
-- currency's revenue (the one with the most revenue in the window; others are not added in).
SELECT
    DAY_OF(ordered_at) AS day,
    currency,
    SUM(net_revenue) AS revenue
FROM v_sales_order
WHERE ordered_at >= :hist_start AND ordered_at < :end
GROUP BY DAY_OF(ordered_at), currency
ORDER BY day, currency;
