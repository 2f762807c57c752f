"""The report queries against hand-computed figures, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from crmhub.reports.build import build
from crmhub.reports.definitions import NO_ADS, NO_CASES, NO_MAIL, REPORTS
from crmhub.reports.period import parse_period
from tests.reports import fixtures


def approx(value, expected):
    return value is not None and float(value) == pytest.approx(expected, abs=1e-6)


def sections(engine, name, period=fixtures.PERIOD):
    report = build(engine, REPORTS[name], parse_period(period), charts=False)
    return {s.key: s for s in report.sections}


def by(rows, **match):
    found = [r for r in rows if all(r.get(k) == v or (v is not None and r.get(k) is not None
                                                       and not isinstance(v, str) and approx(r[k], v))
                                    for k, v in match.items())]
    assert len(found) == 1, (match, rows)
    return found[0]


def test_marketing_figures(warehouse):
    fixtures.load(warehouse)
    s = sections(warehouse, "marketing")

    (summary,) = s["summary"].rows
    assert summary["impressions"] == 2500 and summary["impressions_prev"] == 1000
    assert approx(summary["ctr"], 120 / 2500) and approx(summary["ctr_prev"], 20 / 1000)
    assert approx(summary["conversion_rate"], 10 / 120)
    assert approx(summary["ad_cost"], 240) and approx(summary["ad_cost_prev"], 40)
    assert summary["leads"] == 4 and summary["leads_prev"] == 1  # L1 L2 L4 L5 / L3
    assert approx(summary["cost_per_lead"], 60)
    assert summary["new_customers"] == 2 and summary["new_customers_prev"] == 1  # persons 2, 3 / person 1
    assert approx(summary["cost_per_customer"], 120)

    ads = s["ads"].rows
    assert [r["ad"] for r in ads] == ["Sensor ad", "Lamp ad"]  # ranked by CTR: 0.08 before 0.04
    lamp, sensor = by(ads, ad="Lamp ad"), by(ads, ad="Sensor ad")
    assert approx(lamp["ctr"], 80 / 2000) and approx(lamp["ctr_prev"], 20 / 1000)
    assert approx(lamp["conversion_rate"], 8 / 80) and approx(sensor["conversion_rate"], 2 / 40)
    assert approx(lamp["conversions"], 8) and approx(lamp["cost"], 160) and approx(lamp["cost_prev"], 40)
    # warehouse-counted: persons 1 and 2 clicked the lamp ad, left a lead and bought in March
    assert (lamp["leads"], lamp["customers"]) == (2, 2)
    assert approx(lamp["cost_per_lead"], 80) and approx(lamp["cost_per_customer"], 80)
    # person 3 clicked the sensor ad and bought, but their lead was in February
    assert (sensor["leads"], sensor["customers"]) == (0, 1) and sensor["cost_per_lead"] is None

    (campaign,) = s["campaigns"].rows
    assert campaign["campaign"] == "Spring search" and approx(campaign["ctr"], 120 / 2500)
    assert approx(campaign["conversion_rate"], 10 / 120) and (campaign["leads"], campaign["customers"]) == (2, 3)

    (site,) = s["affiliates"].rows
    assert (site["affiliate_site"], site["clicks"], site["clicks_prev"], site["leads"], site["customers"]) == \
        ("deals.example", 1, 1, 1, 0)

    google = by(s["funnel"].rows, lead_source="google")
    assert (google["leads"], google["prospects"], google["customers"]) == (4, 3, 2)
    assert approx(google["lead_to_prospect"], 0.75) and approx(google["prospect_to_customer"], 2 / 3)
    assert approx(google["lead_to_customer"], 0.5)
    newsletter = by(s["funnel"].rows, lead_source="newsletter")
    assert (newsletter["leads"], newsletter["leads_prev"], newsletter["customers_prev"]) == (0, 1, 1)

    # revenue per product per price point: the lamp sold at 40 and at 50 in March, at 30 before
    products = s["products"].rows
    assert approx(by(products, product="Desk lamp", unit_price=40)["revenue"], 80)
    assert approx(by(products, product="Desk lamp", unit_price=40)["units"], 2)
    assert approx(by(products, product="Desk lamp", unit_price=50)["revenue"], 50)
    assert approx(by(products, product="Mug", unit_price=20)["revenue"], 20)
    assert approx(by(products, product="Mug", unit_price=25)["revenue"], 25)
    old = by(products, product="Desk lamp", unit_price=30)
    assert approx(old["units"], 0) and approx(old["units_prev"], 1) and approx(old["revenue_prev"], 30)
    assert all(r["product"] != "(unknown product)" for r in products)  # the cancelled O3 is not a sale

    places = s["places"].rows
    assert by(places, city="Boston")["customers"] == 2 and by(places, city="London")["customers_prev"] == 1
    ages = {r["age_band"]: (r["customers"], r["customers_prev"]) for r in s["ages"].rows}
    # at 1 April 2026: person 1 (born 1990-06-01) is 35, person 3 (2001-04-02) is still 24
    assert ages == {"35-44": (1, 1), "18-24": (1, 0), "(no birth date)": (1, 0)}


def test_sales_figures(warehouse):
    fixtures.load(warehouse)
    s = sections(warehouse, "sales")
    (k,) = s["summary"].rows
    assert approx(k["revenue"], 170) and approx(k["revenue_prev"], 30)  # 100 + 50 + (25 - 5 refunded)
    assert (k["orders"], k["orders_prev"], k["customers"], k["new_customers"]) == (3, 1, 3, 2)
    assert k["returning_customers"] == 1 and approx(k["average_order"], 170 / 3)
    # lamp lines at the product's unit cost 30: (80 - 2 x 30) + (50 - 30); the mug line OL2 with the
    # cost the shop recorded at the sale: 20 - 12; the mug line OL5 has no cost and stays out
    assert approx(k["gross_margin"], (80 - 60) + (50 - 30) + (20 - 12))
    assert approx(k["gross_margin_rate"], 48 / (80 + 50 + 20))
    assert approx(k["gross_margin_prev"], 0)
    assert approx(k["marketing_cost_per_new_customer"], 120) and approx(k["ad_cost"], 240)

    daily = {str(r["day"])[:10]: (float(r["revenue"]), r["orders"]) for r in s["daily"].rows}
    assert daily == {"2026-03-10": (100.0, 1), "2026-03-12": (50.0, 1), "2026-03-20": (20.0, 1)}

    top = s["top_customers"].rows
    assert [r["customer"] for r in top] == ["Ada Lovelace", fixtures.XSS_NAME, fixtures.FORMULA_NAME]
    assert approx(top[0]["revenue_prev"], 30) and top[1]["new_customer"] == "new" and top[0]["new_customer"] is None

    reps = s["by_rep"].rows
    assert approx(by(reps, sales_rep="Dana")["revenue"], 150) and by(reps, sales_rep="Dana")["orders_prev"] == 1
    assert approx(by(reps, sales_rep="(no rep)")["revenue"], 20)
    assert approx(by(s["by_channel"].rows, channel="pos")["revenue_prev"], 30)
    lamp = by(s["by_product"].rows, product="Desk lamp")
    assert approx(lamp["units"], 3) and approx(lamp["revenue"], 130) and approx(lamp["gross_margin"], 40)
    mug = by(s["by_product"].rows, product="Mug")  # OL2 costed (20 - 12), OL5 without any cost
    assert approx(mug["revenue"], 45) and approx(mug["gross_margin"], 8) and approx(mug["gross_margin_rate"], 8 / 20)
    assert sum(r["customers"] for r in s["rfm"].rows) == 3
    assert s["forecast"].empty_reason and "periods" in s["forecast"].empty_reason


def test_service_figures(warehouse):
    fixtures.load(warehouse)
    s = sections(warehouse, "service")
    (k,) = s["summary"].rows
    assert (k["opened"], k["opened_prev"], k["closed"], k["closed_prev"]) == (4, 2, 4, 1)
    assert (k["open_backlog"], k["open_backlog_prev"], k["complaints"], k["complaints_prev"]) == (1, 1, 2, 1)
    (t,) = s["close_time"].rows
    assert approx(t["median_hours_to_close"], (24 + 72) / 2) and approx(t["median_hours_to_close_prev"], 24)
    assert t["cases_closed"] == 4
    (a,) = s["first_answer"].rows
    assert approx(a["median_hours_to_first_answer"], 6) and a["cases_answered"] == 1
    (case,) = s["open_cases"].rows
    assert case["tracking_number"] == "TRK-4" and approx(case["age_days"], 12)
    ends = [(r["ends"], str(r["ends_on"])[:10]) for r in s["contracts"].rows]
    assert ends == [("within 30 days", "2026-04-15"), ("within 60 days", "2026-05-20"),
                    ("within 90 days", "2026-06-25")]
    assert approx(s["contracts"].rows[0]["value"], 480)
    complaints = by(s["complaints"].rows, product="Desk lamp", kind="complaint")
    assert (complaints["cases"], complaints["cases_prev"]) == (2, 0)
    (rating,) = s["feedback"].rows
    assert rating["ratings"] == 2 and approx(rating["average_rating"], 4.5) and approx(rating["average_rating_prev"], 3)


def test_sections_without_synced_data_say_why(warehouse):
    fixtures.load(warehouse, ("person", "lead", "customer_order", "order_line", "product", "service_case"))
    m = sections(warehouse, "marketing")
    assert m["ads"].empty_reason == NO_ADS and m["ads"].rows == []
    assert m["campaigns"].empty_reason == NO_ADS
    assert m["funnel"].empty_reason is None and m["funnel"].rows
    service = sections(warehouse, "service")
    assert service["first_answer"].empty_reason == NO_MAIL
    assert service["close_time"].empty_reason is None


def test_an_empty_warehouse_gives_a_report_of_reasons(warehouse):
    for name in REPORTS:
        for s in sections(warehouse, name, "30d").values():
            assert s.rows == [] and s.empty_reason, (name, s.key)
    assert sections(warehouse, "service", "7d")["summary"].empty_reason == NO_CASES


def test_a_period_with_nothing_in_it_is_empty_not_an_error(warehouse):
    fixtures.load(warehouse)
    s = sections(warehouse, "sales", "2020-01-01..2020-01-31")
    assert s["summary"].empty_reason == "Nothing in this period." and s["top_customers"].rows == []


def test_period_arithmetic():
    today = dt.date(2026, 5, 15)
    p = parse_period("7d", today)
    assert (p.start, p.end, p.prev_start) == (dt.date(2026, 5, 8), today, dt.date(2026, 5, 1))
    p = parse_period("month", today)
    assert (p.start, p.end, p.prev_start) == (dt.date(2026, 4, 1), dt.date(2026, 5, 1), dt.date(2026, 3, 1))
    p = parse_period("quarter", today)
    assert (p.start, p.end, p.prev_start) == (dt.date(2026, 1, 1), dt.date(2026, 4, 1), dt.date(2025, 10, 1))
    p = parse_period("quarter", dt.date(2026, 2, 1))
    assert (p.start, p.end, p.prev_start) == (dt.date(2025, 10, 1), dt.date(2026, 1, 1), dt.date(2025, 7, 1))
    p = parse_period("2026-03-01..2026-03-31", today)
    assert (p.start, p.end, p.prev_start, p.days) == (dt.date(2026, 3, 1), dt.date(2026, 4, 1),
                                                      dt.date(2026, 1, 29), 31)
    for bad in ("week", "0d", "2026-03-31..2026-03-01", "2026-02-30..2026-03-01"):
        with pytest.raises(Exception, match="period"):
            parse_period(bad, today)


# ----------------------------------------------------------------- two currencies


USD_ROWS = {  # the fixture's EUR shop plus a US shop and a US ad account, all in March 2026
    "person": [{"person_id": 6, "display_name": "Uma US", "email": "uma@example.com", "country": "US",
                "lifecycle_stage": "customer"}],
    "ad_stat_daily": [
        {"platform": "meta_ads", "campaign_id": "M1", "ad_id": "MA1", "date": fixtures.day("2026-03-05"),
         "source": "meta", "impressions": 500, "clicks": 10, "cost": D("90.00"), "currency": "USD",
         "conversions": D("1"), "conversion_value": D("50")},
    ],
    "product": [{"source": "us", "external_id": "U1", "title": "Lamp US", "price": D("70"), "currency": "USD",
                 "unit_cost": D("25")}],
    "customer_order": [
        {"source": "us", "external_id": "U-O1", "person_id": 6, "ordered_at": fixtures.ts("2026-03-11 12:00"),
         "status": "paid", "currency": "USD", "total": D("200"), "channel": "web"},
        {"source": "us", "external_id": "U-O2", "person_id": 1, "ordered_at": fixtures.ts("2026-03-21 12:00"),
         "status": "paid", "currency": "USD", "total": D("60"), "channel": "web"},
    ],
    "order_line": [
        {"source": "us", "external_id": "U-L1", "order_id": "U-O1", "product_id": "U1", "quantity": D("2"),
         "unit_price": D("100"), "total": D("200"), "currency": "USD"},
    ],
}


def load_two_currencies(engine):
    from sqlalchemy import insert

    from crm_model.load import TABLES

    fixtures.load(engine)
    with engine.begin() as conn:
        for table, rows in USD_ROWS.items():
            for row in rows:
                if "ad_group_id" in TABLES[table].c and table == "ad_stat_daily":  # part of the key since 0024
                    row = {"ad_group_id": "", **row}
                conn.execute(insert(TABLES[table]).values(**row))


def test_money_is_summed_per_currency_never_across(warehouse):
    load_two_currencies(warehouse)
    s = sections(warehouse, "sales")
    eur, usd = s["summary"].rows  # one row per currency, in currency order
    assert (eur["currency"], usd["currency"]) == ("EUR", "USD")
    # counts are across currencies: EUR orders O1 O2 O5 + USD orders U-O1 U-O2; buyers 1 2 3 6
    assert (eur["orders"], usd["orders"], eur["customers"], usd["customers"]) == (5, 5, 4, 4)
    assert eur["new_customers"] == 3  # persons 2, 3 and 6 (person 1 bought in February)
    assert approx(eur["revenue"], 170) and approx(usd["revenue"], 260)  # never 430
    assert approx(eur["average_order"], 170 / 3) and approx(usd["average_order"], 130)
    assert approx(usd["revenue_per_customer"], 260 / 2)  # persons 6 and 1 bought in USD
    assert approx(usd["gross_margin"], 200 - 2 * 25) and approx(usd["gross_margin_rate"], 150 / 200)
    assert approx(eur["gross_margin"], 48)
    assert approx(eur["ad_cost"], 240) and approx(usd["ad_cost"], 90)
    # spend in two currencies: no cost per new customer (it would add EUR to USD)
    assert eur["marketing_cost_per_new_customer"] is None and usd["marketing_cost_per_new_customer"] is None

    rfm = s["rfm"].rows
    assert {r["currency"] for r in rfm} == {"EUR", "USD"}
    assert sum(r["customers"] for r in rfm if r["currency"] == "USD") == 2
    assert sum(r["customers"] for r in rfm if r["currency"] == "EUR") == 3
    assert approx(sum(float(r["revenue"]) for r in rfm if r["currency"] == "USD"), 260)
    assert all(r["_label"].endswith(f"({r['currency']})") for r in rfm)  # chart bars say which currency

    daily = {(str(r["day"])[:10], r["currency"]): float(r["revenue"]) for r in s["daily"].rows}
    assert daily[("2026-03-10", "EUR")] == 100.0 and daily[("2026-03-11", "USD")] == 200.0

    m = sections(warehouse, "marketing")
    eur_ads, usd_ads = m["summary"].rows
    assert approx(eur_ads["ad_cost"], 240) and approx(usd_ads["ad_cost"], 90)
    assert eur_ads["impressions"] == usd_ads["impressions"] == 3000  # 2500 EUR-account + 500 USD-account
    assert eur_ads["cost_per_lead"] is None and usd_ads["cost_per_customer"] is None


def test_a_summary_in_two_currencies_shows_a_line_per_currency(warehouse, tmp_path):
    from crmhub.reports import render
    from crmhub.reports.delivery import write_files

    load_two_currencies(warehouse)
    report = build(warehouse, REPORTS["sales"], parse_period(fixtures.PERIOD), "sales", charts=False)
    summary = next(s for s in report.sections if s.key == "summary")
    lines = {k["metric"]: k for k in render.kpis(summary)}
    assert lines["Revenue (EUR)"]["value"] == "170.00" and lines["Revenue (USD)"]["value"] == "260.00"
    assert lines["Ad cost (USD)"]["value"] == "90.00" and "Revenue" not in lines
    assert lines["Orders"]["value"] == "5"  # once, not once per currency
    assert sum(1 for m in lines if m.startswith("Orders")) == 1

    write_files(report, tmp_path)
    html = (tmp_path / "sales.html").read_text()
    assert "Revenue (EUR)" in html and "Revenue (USD)" in html
    text = (tmp_path / "sales.txt").read_text()
    assert "Gross margin (USD)" in text and "Gross margin (EUR)" in text
    rows = (tmp_path / "sales-summary.csv").read_text(encoding="utf-8-sig").splitlines()
    assert rows[0].startswith("currency,orders,") and [r.split(",")[0] for r in rows[1:]] == ["EUR", "USD"]


def test_a_currency_with_no_value_for_a_figure_gets_no_line_for_it():
    from crmhub.reports import render
    from crmhub.reports.build import SectionResult
    from crmhub.reports.definitions import REPORTS as defs

    section = next(s for s in defs["sales"].sections if s.key == "summary")
    columns = ["currency", "orders", "orders_prev", "revenue", "revenue_prev", "ad_cost", "ad_cost_prev"]
    rows = [  # orders in USD only, ad spend in GBP only (the demo's shape)
        {"currency": "GBP", "orders": 4, "orders_prev": 0, "revenue": None, "revenue_prev": None,
         "ad_cost": 3789.28, "ad_cost_prev": 540.39},
        {"currency": "USD", "orders": 4, "orders_prev": 0, "revenue": 1542.25, "revenue_prev": 0,
         "ad_cost": None, "ad_cost_prev": None},
    ]
    lines = [k["metric"] for k in render.kpis(SectionResult(section, columns, rows))]
    assert lines == ["Orders", "Revenue (USD)", "Ad cost (GBP)"]
