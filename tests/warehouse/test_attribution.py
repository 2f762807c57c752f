"""Attribution SQL (sql/model/15_attribution.sql) and the marts v_ad_performance / v_affiliate_performance."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import text

from crm_model import identity
from crm_model.load import Upserter
from crm_model.mapping import MapContext
from crm_model.mapping.google_ads import map_ad, map_ad_stat, map_campaign, map_click
from tests.conftest import load_json, rows

UTC = dt.UTC


def money(value) -> Decimal:
    """A view's figure as an exact decimal (SQLite hands views' numbers back as floats)."""
    return Decimal(str(value)).quantize(Decimal("0.000001")).normalize()


def at(day: int, hour: int = 12) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, tzinfo=UTC)


def google_rows(ads: str = "ads_de.json", stats: str = "stats_de.json") -> dict[str, list[dict]]:
    """What a google_ads sync maps the fixtures to (the mapping functions, no HTTP)."""
    out: dict[str, list[dict]] = {}
    for fixture, fn, stream in (("campaigns_de.json", map_campaign, "campaigns"), (ads, map_ad, "ads"),
                                (stats, map_ad_stat, "ad_stats"),
                                ("clicks_de_2026-03-01.json", map_click, "clicks")):
        ctx = MapContext("google", stream, "google_ads")
        for batch in load_json("google_ads", fixture):
            for raw in batch.get("results", []):
                for row in fn(raw, ctx):
                    out.setdefault(row.table, []).append({**row.values, "source": "google"})
    return out


def person(source: str, ref: str, email: str, seen: dt.datetime) -> dict:
    return {"source": source, "external_id": ref, "email": email, "seen_at": seen, "lifecycle_stage": "lead"}


def load(warehouse, google: dict[str, list[dict]] | None = None, **tables: list[dict]) -> None:
    with warehouse.begin() as conn:
        up = Upserter(conn)
        for table, values in (google or google_rows()).items():
            up.upsert(table, values)
        for table, values in tables.items():
            up.upsert(table, values)
        identity.resolve(conn)


def test_click_id_first_then_utm_campaign_id_then_name(warehouse):
    load(
        warehouse,
        source_person=[person("web", "lead:L1", "ada@example.com", at(1)),
                       person("web", "lead:L2", "bob@example.com", at(2)),
                       person("web", "lead:L3", "cy@example.com", at(2)),
                       person("web", "lead:L4", "di@example.com", at(2))],
        lead=[
            # gclid of a click on ad 90001; its utm_campaign names the other campaign: the click wins
            {"source": "web", "external_id": "L1", "person_ref": "lead:L1", "submitted_at": at(1, 14),
             "gclid": "Cj0KCQiA-demo-gclid-1", "utm_campaign": "PMax - Spring"},
            {"source": "web", "external_id": "L2", "person_ref": "lead:L2", "submitted_at": at(2),
             "utm_campaign": "20002", "utm_content": "90002"},
            {"source": "web", "external_id": "L3", "person_ref": "lead:L3", "submitted_at": at(2),
             "utm_campaign": "brand - search de"},
            {"source": "web", "external_id": "L4", "person_ref": "lead:L4", "submitted_at": at(2),
             "utm_campaign": "newsletter", "gclid": "unknown-click"},
        ],
        touchpoint=[{"source": "web", "external_id": f"lead:L{n}", "person_ref": f"lead:L{n}",
                     "channel": "form", "occurred_at": at(1 if n == 1 else 2)} for n in range(1, 5)],
    )
    leads = {r["external_id"]: r for r in rows(warehouse, "lead")}
    got = {k: (r["ad_platform"], r["campaign_id"], r["ad_id"], r["attribution_rule"]) for k, r in leads.items()}
    assert got == {
        "L1": ("google_ads", "20001", "90001", "click_id"),
        "L2": ("google_ads", "20002", "90002", "utm_campaign_id"),
        "L3": ("google_ads", "20001", None, "utm_campaign_name"),
        "L4": (None, None, None, None),
    }
    # the click now belongs to Ada: she clicked an ad, then filled the form
    click = next(t for t in rows(warehouse, "touchpoint") if t["channel"] == "ad_click")
    assert click["person_id"] == leads["L1"]["person_id"]
    persons = {p["email"]: p for p in rows(warehouse, "person")}
    ada = persons["ada@example.com"]
    assert (ada["first_touch_channel"], ada["last_touch_channel"]) == ("ad_click", "form")
    assert (ada["first_touch_source"], ada["first_touch_campaign"]) == ("google", "20001")
    assert ada["lifecycle_stage"] == "prospect"  # a tracked ad click, no purchase
    assert persons["bob@example.com"]["lifecycle_stage"] == "lead"


def test_orders_follow_the_buyers_click_then_utm_then_lead_and_feed_the_mart(warehouse):
    load(
        warehouse,
        source_person=[person("web", "lead:L1", "ada@example.com", at(1)),
                       person("shop", "c1", "ada@example.com", at(2)),
                       person("shop", "c2", "eve@example.com", at(2))],
        lead=[{"source": "web", "external_id": "L1", "person_ref": "lead:L1", "submitted_at": at(1, 14),
               "gclid": "Cj0KCQiA-demo-gclid-1"}],
        customer_order=[
            {"source": "shop", "external_id": "o1", "person_ref": "c1", "ordered_at": at(2, 9), "status": "paid",
             "currency": "EUR", "total": Decimal("120.50"), "refunded": Decimal("20.50")},
            {"source": "shop", "external_id": "o2", "person_ref": "c2", "ordered_at": at(2, 10), "status": "paid",
             "currency": "EUR", "total": Decimal("80.00"), "utm_campaign": "PMax - Spring"},
            {"source": "shop", "external_id": "o3", "person_ref": "c2", "ordered_at": at(2, 11),
             "status": "cancelled", "currency": "EUR", "total": Decimal("999.00"), "utm_campaign": "20002"},
        ],
    )
    orders = {r["external_id"]: (r["campaign_id"], r["ad_id"], r["attribution_rule"])
              for r in rows(warehouse, "customer_order")}
    assert orders == {"o1": ("20001", "90001", "click_id"), "o2": ("20002", None, "utm_campaign_name"),
                      "o3": ("20002", None, "utm_campaign_id")}
    with warehouse.connect() as conn:
        mart = {(r.campaign_id, r.ad_id, str(r.day)): r for r in conn.execute(text(
            "SELECT * FROM v_ad_performance ORDER BY campaign_id, ad_id, day"))}
    assert set(mart) == {("20001", "90001", "2026-03-01"), ("20001", "90001", "2026-03-02"),
                         ("20002", "", "2026-03-02"), ("20002", "90002", "2026-03-02")}
    day1 = mart[("20001", "90001", "2026-03-01")]
    assert (day1.impressions, day1.clicks, money(day1.cost), day1.leads, day1.customers) == (
        480, 12, Decimal("12.345678"), 1, 0)  # 12345678 micros, exactly
    assert money(day1.cost_per_lead) == Decimal("12.345678")
    assert round(float(day1.ctr), 4) == 0.025
    assert day1.campaign_name == "Brand - Search DE" and day1.ad_name == "Brand terms / ad 90001"
    day2 = mart[("20001", "90001", "2026-03-02")]
    assert (day2.customers, money(day2.revenue), day2.revenue_currency) == (1, Decimal("100"), "EUR")
    assert money(day2.cost_per_customer) == Decimal("8.01")
    campaign_only = mart[("20002", "", "2026-03-02")]  # no stats row; the cancelled order is no sale
    assert (campaign_only.impressions, campaign_only.customers, money(campaign_only.revenue)) == (
        0, 1, Decimal("80"))


def test_a_lead_ad_keeps_the_ad_its_platform_named(warehouse):
    load(
        warehouse,
        source_person=[person("fb", "lead:F1", "fay@example.com", at(2))],
        lead=[{"source": "fb", "external_id": "F1", "person_ref": "lead:F1", "submitted_at": at(2),
               "ad_platform": "meta_ads", "campaign_id": "6001", "ad_id": "6003", "attribution_rule": "lead_ad",
               "utm_campaign": "20001"}],
    )
    (lead,) = rows(warehouse, "lead")
    assert (lead["campaign_id"], lead["ad_id"], lead["attribution_rule"]) == ("6001", "6003", "lead_ad")


def test_affiliate_rules_name_the_site_of_leads_orders_clicks_and_visits(warehouse, tmp_path):
    from crm_model import affiliates
    from crmhub.config import loads

    cfg = loads("""
affiliates:
  url_params: [aff_id]
  sites:
    bestdeals.example: {param_values: ["4711"], utm_sources: [BestDeals]}
    coupons.example: {referrer_domains: [coupons.example]}
""")
    with warehouse.begin() as conn:
        assert affiliates.store_rules(conn, cfg.settings.affiliates) == 3
        Upserter(conn).upsert("web_traffic_daily", [
            {"property_id": "1", "date": dt.date(2026, 3, 2), "source": "bestdeals", "medium": "affiliate",
             "campaign": "", "landing_page": "/", "sessions": 40}])
    load(
        warehouse,
        source_person=[person("web", "lead:A1", "al@example.com", at(2)),
                       person("web", "lead:A2", "bo@example.com", at(2)),
                       person("shop", "c9", "al@example.com", at(3))],
        lead=[{"source": "web", "external_id": "A1", "person_ref": "lead:A1", "submitted_at": at(2),
               "landing_page": "https://www.example.com/offer?AFF_ID=4711&utm_source=other"},
              {"source": "web", "external_id": "A2", "person_ref": "lead:A2", "submitted_at": at(2),
               "referrer": "https://deals.coupons.example/spring"}],
        touchpoint=[{"source": "net", "external_id": "k1", "channel": "ad_click", "occurred_at": at(1),
                     "url": "https://www.example.com/?aff_id=4711"},
                    {"source": "net", "external_id": "k2", "channel": "ad_click", "occurred_at": at(1),
                     "url": "https://www.example.com/?aff_id=47110"}],
        customer_order=[{"source": "shop", "external_id": "o9", "person_ref": "c9", "ordered_at": at(3),
                         "status": "paid", "currency": "EUR", "total": Decimal("50"), "utm_source": "bestdeals"}],
    )
    sites = {r["external_id"]: r["affiliate_site"] for r in rows(warehouse, "lead")}
    assert sites == {"A1": "bestdeals.example", "A2": "coupons.example"}
    assert {t["external_id"]: t["affiliate_site"] for t in rows(warehouse, "touchpoint") if t["source"] == "net"} == {
        "k1": "bestdeals.example", "k2": None}  # 47110 is another affiliate id
    assert rows(warehouse, "customer_order")[0]["affiliate_site"] == "bestdeals.example"
    assert rows(warehouse, "web_traffic_daily")[0]["affiliate_site"] == "bestdeals.example"
    with warehouse.connect() as conn:
        mart = {r.affiliate_site: r for r in conn.execute(text("SELECT * FROM v_affiliate_performance"))}
    best = mart["bestdeals.example"]
    assert (best.clicks, best.leads, best.customers, money(best.revenue), best.revenue_currency) == (
        1, 1, 1, Decimal("50"), "EUR")
    assert (mart["coupons.example"].leads, mart["coupons.example"].customers) == (1, 0)


def test_affiliate_sites_are_written_only_where_they_change(warehouse):
    """sql/model/16_affiliates.sql names every pending lead and order again, but writes
    only the rows whose site changes: a run over a large sync (or a run from scratch) would
    otherwise write a new version of every lead. The old form wrote all 3 leads and the
    order here."""
    from crm_model import affiliates, derive
    from crmhub.config import loads

    cfg = loads("""
affiliates:
  sites:
    bestdeals.example: {utm_sources: [BestDeals]}
""")
    with warehouse.begin() as conn:
        affiliates.store_rules(conn, cfg.settings.affiliates)
    load(
        warehouse,
        source_person=[person("web", f"lead:B{n}", f"b{n}@example.com", at(2)) for n in range(1, 4)],
        lead=[{"source": "web", "external_id": f"B{n}", "person_ref": f"lead:B{n}", "submitted_at": at(2),
               "utm_source": "bestdeals" if n == 1 else "newsletter"} for n in range(1, 4)],
        customer_order=[{"source": "shop", "external_id": "o1", "ordered_at": at(3), "status": "paid",
                         "currency": "EUR", "total": Decimal("20"), "utm_source": "newsletter"}],
    )

    def affiliate_writes(conn) -> dict[str, int]:
        written = {}
        for statement in derive._statements((derive.SQL_DIR / "model" / "16_affiliates.sql").read_text()):
            result = conn.exec_driver_sql(statement)
            if statement.startswith(("UPDATE lead SET affiliate_site", "UPDATE customer_order SET affiliate_site")):
                written[statement.split()[1]] = result.rowcount
        return written

    with warehouse.begin() as conn:  # everything pending again, nothing to change
        derive.mark_all_pending(conn, ["lead", "customer_order"])
        assert affiliate_writes(conn) == {"lead": 0, "customer_order": 0}
        conn.exec_driver_sql("UPDATE lead SET affiliate_site = 'stale.example' WHERE external_id = 'B2'")
        conn.exec_driver_sql("UPDATE lead SET affiliate_site = NULL WHERE external_id = 'B1'")
        assert affiliate_writes(conn) == {"lead": 2, "customer_order": 0}
    assert {r["external_id"]: r["affiliate_site"] for r in rows(warehouse, "lead")} == {
        "B1": "bestdeals.example", "B2": None, "B3": None}


def test_ad_groups_one_ad_in_two_groups_keeps_both_days_and_leads_land_once(warehouse):
    """Ad 90001 serves in ad groups 70001 and 70003 (Google Ads); 90002 only in 70002."""
    load(
        warehouse, google_rows("ads_de_two_groups.json", "stats_de_two_groups.json"),
        source_person=[person("web", f"lead:G{n}", f"g{n}@example.com", at(1)) for n in (1, 2, 3)]
        + [person("shop", "c1", "g1@example.com", at(2))],
        lead=[
            # the click (click_view) names its ad group
            {"source": "web", "external_id": "G1", "person_ref": "lead:G1", "submitted_at": at(1, 14),
             "gclid": "Cj0KCQiA-demo-gclid-1"},
            # utm_content names ad 90001, which serves in two ad groups: which one is unknown
            {"source": "web", "external_id": "G2", "person_ref": "lead:G2", "submitted_at": at(1, 15),
             "utm_campaign": "20001", "utm_content": "90001"},
            # 90002 serves in one ad group only: the ad row names it
            {"source": "web", "external_id": "G3", "person_ref": "lead:G3", "submitted_at": at(2, 9),
             "utm_campaign": "20002", "utm_content": "90002"},
        ],
        customer_order=[{"source": "shop", "external_id": "o1", "person_ref": "c1", "ordered_at": at(2, 9),
                         "status": "paid", "currency": "EUR", "total": Decimal("100")}],
    )
    leads = {r["external_id"]: (r["ad_group_id"], r["ad_id"], r["attribution_rule"]) for r in rows(warehouse, "lead")}
    assert leads == {"G1": ("70001", "90001", "click_id"), "G2": (None, "90001", "utm_campaign_id"),
                     "G3": ("70002", "90002", "utm_campaign_id")}
    (order,) = rows(warehouse, "customer_order")
    assert (order["ad_group_id"], order["ad_id"], order["attribution_rule"]) == ("70001", "90001", "click_id")
    with warehouse.connect() as conn:
        mart = {(r.ad_group_id, r.ad_id, str(r.day)): r for r in conn.execute(text("SELECT * FROM v_ad_performance"))}
        per_ad = {r.ad_id: r for r in conn.execute(text(
            "SELECT ad_id, SUM(clicks) AS clicks, SUM(cost) AS cost, SUM(leads) AS leads, SUM(customers) AS customers "
            "FROM v_ad_performance GROUP BY ad_id"))}
    assert set(mart) == {("70001", "90001", "2026-03-01"), ("70003", "90001", "2026-03-01"),
                         ("", "90001", "2026-03-01"), ("70001", "90001", "2026-03-02"),
                         ("70002", "90002", "2026-03-02")}
    first, second = mart[("70001", "90001", "2026-03-01")], mart[("70003", "90001", "2026-03-01")]
    assert (first.clicks, money(first.cost), first.leads, first.ad_group_name) == (
        12, Decimal("12.345678"), 1, "Brand terms")
    assert (second.clicks, money(second.cost), second.leads, second.ad_group_name) == (
        5, Decimal("4"), 0, "Brand terms - exact")
    unknown_group = mart[("", "90001", "2026-03-01")]
    assert (unknown_group.clicks, unknown_group.leads, unknown_group.ad_group_name) == (0, 1, None)
    assert mart[("70001", "90001", "2026-03-02")].customers == 1
    assert mart[("70002", "90002", "2026-03-02")].leads == 1
    ad = per_ad["90001"]  # both ad groups' stats and each lead once
    assert (ad.clicks, money(ad.cost), ad.leads, ad.customers) == (26, Decimal("24.355678"), 2, 1)
    with warehouse.connect() as conn:  # the lead mart names what each lead was attributed to
        named = {r.lead_id: (r.campaign_id, r.ad_group_id, r.ad_group_name, r.ad_id, r.attribution_rule)
                 for r in conn.execute(text("SELECT * FROM v_lead_attribution"))}
    assert named == {"G1": ("20001", "70001", "Brand terms", "90001", "click_id"),
                     "G2": ("20001", None, None, "90001", "utm_campaign_id"),
                     "G3": ("20002", "70002", named["G3"][2], "90002", "utm_campaign_id")}
    assert named["G3"][2]  # ad group 70002 has its name from the ads query


def test_a_meeting_or_an_affiliate_click_makes_a_prospect(warehouse):
    load(
        warehouse,
        source_person=[person("manual", f"touch:{c}", f"{c}@example.com", at(3)) for c in
                       ("meeting", "affiliate_click", "form")],
        touchpoint=[{"source": "manual", "external_id": c, "person_ref": f"touch:{c}", "channel": c,
                     "occurred_at": at(3)} for c in ("meeting", "affiliate_click", "form")],
    )
    stages = {p["email"]: p["lifecycle_stage"] for p in rows(warehouse, "person")}
    assert stages == {"meeting@example.com": "prospect", "affiliate_click@example.com": "prospect",
                      "form@example.com": "lead"}
