"""The csv connector: reps' entries and exports, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
from decimal import Decimal

import pytest
from sqlalchemy import text

from crmhub import jobs
from crmhub.errors import ConfigError
from tests.conftest import FIXTURES, rows

UTC = dt.UTC


def lead_source(**config):
    return {"reps": {"connector": "csv", "config": {"path": "leads*.csv", "entity": "lead", "key": "lead_id",
                                                   **config}}}


def test_leads_load_and_bad_rows_are_quarantined_with_reasons(tmp_path, write_config, warehouse):
    (tmp_path / "leads.csv").write_text(
        "lead_id,name,email,phone,company,submitted_at,utm_source,budget\n"
        "1,Ada Lovelace,Ada@Example.com,020 7946 0018,Analytical Ltd,2026-03-01T10:00:00Z,google,5000\n"
        "2,Grace Hopper,grace@example.org,,Navy,2026-03-02 11:00:00,,\n"
        "3,Bad Mail,not-an-email,,,2026-03-03,,\n"
        "4,Bad Date,d@example.com,,,next tuesday,,\n"
        "5,Bad Phone,p@example.com,12,,2026-03-04,,\n"
        ",No Key,k@example.com,,,2026-03-05,,\n"
        "6,Short Row\n"
    )
    cfg = write_config(lead_source(default_region="GB"))
    (result,) = jobs.sync(cfg)
    assert (result.read, result.loaded, result.rejected, result.warnings) == (7, 3, 4, 1)
    reasons = sorted(r["reason"] for r in rows(warehouse, "rejected_record"))
    assert any("leads.csv line 4: email: 'not-an-email' is not a valid email" in r
               and "the lead's only contact" in r for r in reasons)
    assert any("leads.csv line 5: submitted_at: 'next tuesday' is not a date-time" in r for r in reasons)
    assert "leads.csv line 7: the key column 'lead_id' is empty" in reasons
    assert any("leads.csv line 8: has 2 fields, the header has 8" in r for r in reasons)
    # a bad phone beside a good email: the lead loads without the phone, with a warning
    (warning,) = rows(warehouse, "field_warning")
    assert (warning["record_key"], warning["field"], warning["raw_value"]) == ("5", "phone", "12")
    assert "phone: '12' is not a possible phone number" in warning["reason"]

    leads = rows(warehouse, "lead")
    assert [lead["external_id"] for lead in leads] == ["1", "2", "5"]
    assert leads[0]["utm_source"] == "google" and leads[0]["answers"] == {"budget": "5000"}
    assert leads[0]["submitted_at"] == dt.datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert leads[1]["submitted_at"] == dt.datetime(2026, 3, 2, 11, tzinfo=UTC)  # no zone: UTC
    people = {p["external_id"]: p for p in rows(warehouse, "source_person")}
    ada = people["lead:1"]
    assert (ada["email"], ada["phone"], ada["first_name"], ada["last_name"], ada["company"]) == (
        "ada@example.com", "+442079460018", "Ada", "Lovelace", "Analytical Ltd")
    assert {t["channel"] for t in rows(warehouse, "touchpoint")} == {"form"}


def test_new_and_changed_files_are_picked_up_incrementally(tmp_path, write_config, warehouse):
    first = tmp_path / "leads_1.csv"
    first.write_text("lead_id,email\n1,a@example.com\n2,b@example.com\n")
    cfg = write_config(lead_source())
    assert jobs.sync(cfg)[0].read == 2
    assert jobs.sync(cfg)[0].read == 0  # nothing new

    (tmp_path / "leads_2.csv").write_text("lead_id,email\n3,c@example.com\n")
    assert jobs.sync(cfg)[0].read == 1  # only the new file

    first.write_text("lead_id,email\n1,a@example.com\n2,b.new@example.com\n")
    os.utime(first, ns=(first.stat().st_atime_ns, first.stat().st_mtime_ns + 10**9))
    assert jobs.sync(cfg)[0].read == 2  # the changed file, again
    people = {p["external_id"]: p["email"] for p in rows(warehouse, "source_person")}
    assert people == {"lead:1": "a@example.com", "lead:2": "b.new@example.com", "lead:3": "c@example.com"}
    assert len(rows(warehouse, "lead")) == 3  # updated, not duplicated


def test_columns_delimiter_encoding_and_orders(tmp_path, write_config, warehouse):
    (tmp_path / "orders.csv").write_bytes(
        "Bestellung;E-Mail;Datum;Summe;Währung;Land\n"
        "A-1;jörg@example.com;2026-04-01T09:30:00+02:00;1.299,50;EUR;Deutschland\n"
        "A-2;lin@example.com;2026-04-02;12.5;eur;DE\n".replace("1.299,50", "1299.50").encode("latin-1"))
    (tmp_path / "lines.csv").write_text(
        "line,order,sku,qty,price\nA-1-1,A-1,SKU-9,2,649.75\nA-2-1,A-2,SKU-1,1,12.5\nA-3-1,,SKU-1,1,1\n")
    cfg = write_config({
        "orders": {"connector": "csv", "config": {
            "path": "orders.csv", "entity": "customer_order", "key": "Bestellung", "delimiter": ";",
            "encoding": "latin-1",
            "columns": {"E-Mail": "email", "Datum": "ordered_at", "Summe": "total", "Währung": "currency",
                        "Land": "country"}}},
        "lines": {"connector": "csv", "config": {
            "path": "lines.csv", "entity": "order_line", "key": "line",
            "columns": {"order": "order_id", "qty": "quantity", "price": "unit_price"}}},
    })
    results = jobs.sync(cfg)
    assert [(r.loaded, r.rejected, r.warnings) for r in results] == [(2, 0, 1), (2, 1, 0)]
    orders = {o["external_id"]: o for o in rows(warehouse, "customer_order")}
    order = orders["A-2"]
    assert (order["external_id"], order["total"], order["currency"]) == ("A-2", Decimal("12.5000"), "EUR")
    # a German country name is not understood: the order loads, its country is a warning
    (warning,) = rows(warehouse, "field_warning")
    assert (warning["record_key"], warning["field"], warning["raw_value"]) == ("A-1", "Land", "Deutschland")
    assert "Land: 'Deutschland' is not a known country" in warning["reason"]
    reasons = [r["reason"] for r in rows(warehouse, "rejected_record")]
    assert any("order_id is required" in r for r in reasons)
    lines = {line["external_id"]: line for line in rows(warehouse, "order_line")}
    assert lines["A-1-1"]["total"] == Decimal("1299.5000") and lines["A-1-1"]["order_id"] == "A-1"
    person = {p["email"]: p for p in rows(warehouse, "source_person")}["lin@example.com"]
    assert person["lifecycle_stage"] == "customer"


def test_config_errors_are_clear(tmp_path, write_config):
    cfg = write_config(lead_source(path="missing.csv"))
    result = jobs.sync(cfg)[0]  # the run is recorded as failed, with the reason
    assert result.status == "failed" and "missing.csv not found" in result.errors[0]
    (tmp_path / "leads.csv").write_text("id,email\n1,a@example.com\n")
    cfg = write_config(lead_source(path="leads.csv"))
    result = jobs.sync(cfg)[0]
    assert result.status == "failed" and "has no key column 'lead_id'" in result.errors[0]
    cfg = write_config(lead_source(entity="spaceship"))
    (result,) = jobs.sync(cfg)  # sources are independent: a bad one fails alone, with its reason
    assert result.status == "failed" and result.sync_run_id is None
    assert re.search(r"crmhub.yml line \d+: sources.reps.config.entity", result.errors[0])
    with pytest.raises(ConfigError, match=r"crmhub.yml line \d+: sources.reps.config.entity"):
        jobs.sync(cfg, raise_setup_errors=True)  # how Airflow's task asks for it


AWIN = FIXTURES / "affiliate" / "awin_transactions_2026-03.csv"


def awin_source(**config):
    return {"awin": {"connector": "csv", "config": {
        "path": "awin_*.csv", "entity": "touchpoint", "key": "id",
        "columns": {"clickDate": "occurred_at", "siteName": "affiliate_site"}, **config}}}


def test_an_affiliate_networks_export_loads_as_affiliate_clicks_by_the_sources_defaults(
        tmp_path, write_config, warehouse):
    shutil.copy(AWIN, tmp_path / AWIN.name)
    cfg = write_config(awin_source(defaults={"channel": "affiliate_click", "affiliate_site": "awin.com",
                                             "utm_source": "awin"}))
    (result,) = jobs.sync(cfg)
    assert (result.status, result.read, result.loaded, result.rejected) == ("success", 3, 3, 0), result.errors
    jobs.model(cfg)
    clicks = {t["external_id"]: t for t in rows(warehouse, "touchpoint")}
    assert {k: (t["channel"], t["affiliate_site"], t["utm_source"], t["occurred_at"]) for k, t in clicks.items()} == {
        "2409871001": ("affiliate_click", "bestdeals.example", "awin", dt.datetime(2026, 3, 1, 10, 15, tzinfo=UTC)),
        "2409871002": ("affiliate_click", "couponking.example", "awin", dt.datetime(2026, 3, 2, 11, 20, tzinfo=UTC)),
        # no publisher site in the export: the source's default names it
        "2409871003": ("affiliate_click", "awin.com", "awin", dt.datetime(2026, 3, 3, 12, 25, tzinfo=UTC)),
    }
    assert clicks["2409871002"]["url"] == "https://www.example.com/?awc=12345_1772450200_d4e5f6"
    with warehouse.connect() as conn:
        mart = {r.affiliate_site: r.clicks for r in conn.execute(text("SELECT * FROM v_affiliate_performance"))}
    assert mart == {"bestdeals.example": 1, "couponking.example": 1, "awin.com": 1}


def test_without_defaults_the_export_is_quarantined_with_the_reason(tmp_path, write_config, warehouse):
    shutil.copy(AWIN, tmp_path / AWIN.name)
    (result,) = jobs.sync(write_config(awin_source()))
    assert (result.loaded, result.rejected) == (0, 3)
    assert all("channel is required for a touchpoint" in r["reason"] for r in rows(warehouse, "rejected_record"))


def test_a_rows_own_value_wins_over_the_default(tmp_path, write_config, warehouse):
    (tmp_path / "partner.csv").write_text(
        "click_id,occurred_at,channel,affiliate_site,email\n"
        "k1,2026-03-01T09:00:00Z,,,ada@example.com\n"
        "k2,2026-03-01T10:00:00Z,meeting,fair.example,bob@example.com\n"
        "k3,2026-03-01T11:00:00Z,  ,  ,\n")
    cfg = write_config({"partner": {"connector": "csv", "config": {
        "path": "partner.csv", "entity": "touchpoint", "key": "click_id",
        "defaults": {"channel": "affiliate_click", "affiliate_site": "partner.example"}}}})
    (result,) = jobs.sync(cfg)
    assert (result.loaded, result.rejected) == (3, 0), result.errors
    got = {t["external_id"]: (t["channel"], t["affiliate_site"]) for t in rows(warehouse, "touchpoint")}
    assert got == {"k1": ("affiliate_click", "partner.example"), "k2": ("meeting", "fair.example"),
                   "k3": ("affiliate_click", "partner.example")}
    jobs.model(cfg)  # a person with an affiliate click or a meeting and no purchase is a prospect
    assert {p["email"]: p["lifecycle_stage"] for p in rows(warehouse, "person")} == {
        "ada@example.com": "prospect", "bob@example.com": "prospect"}


def test_defaults_that_yaml_reads_as_numbers_or_dates_are_values_too(tmp_path, write_config, warehouse):
    (tmp_path / "reviews.csv").write_text("review_id,comment\nr1,Bright lamp\nr2,\n")
    cfg = write_config({"reviews": {"connector": "csv", "config": {
        "path": "reviews.csv", "entity": "feedback", "key": "review_id",
        "defaults": {"rating": 5, "received_at": dt.date(2026, 3, 1), "comment": "(none)"}}}})
    (result,) = jobs.sync(cfg)
    assert (result.loaded, result.rejected) == (2, 0), result.errors
    got = {f["external_id"]: (f["rating"], f["received_at"], f["comment"]) for f in rows(warehouse, "feedback")}
    assert got == {"r1": (5, dt.datetime(2026, 3, 1, tzinfo=UTC), "Bright lamp"),
                   "r2": (5, dt.datetime(2026, 3, 1, tzinfo=UTC), "(none)")}


@pytest.mark.parametrize("defaults, message", [
    ({"chanel": "affiliate_click"}, "defaults: 'chanel' is not a field of touchpoint"),
    ({"occurred_at": "soon"}, "'soon' is not a date-time"),
])
def test_a_default_that_does_not_fit_is_a_config_error(tmp_path, write_config, defaults, message):
    shutil.copy(AWIN, tmp_path / AWIN.name)
    cfg = write_config(awin_source(defaults=defaults))
    with pytest.raises(ConfigError, match=re.escape(message)):
        jobs.sync(cfg, raise_setup_errors=True)


def test_columns_with_no_warehouse_field_are_kept_on_every_entity(tmp_path, write_config, warehouse):
    (tmp_path / "products.csv").write_text("id,sku,title,price,currency,colour,attributes\n"
                                           "P1,SKU-1,Mug,9.5,EUR,blue,fragile\nP2,SKU-2,Plate,4,EUR,,\n")
    (tmp_path / "lines.csv").write_text("line,order,sku,qty,price,engraving\nL1,O1,SKU-1,2,9.5,For Ada\n")
    (tmp_path / "orders.csv").write_text("order,ordered_at,total,currency,gift_wrap\n"
                                         "O1,2026-04-01T09:30:00Z,19,EUR,yes\n")
    cfg = write_config({
        "products": {"connector": "csv", "config": {"path": "products.csv", "entity": "product", "key": "id"}},
        "lines": {"connector": "csv", "config": {"path": "lines.csv", "entity": "order_line", "key": "line",
                                                 "columns": {"order": "order_id", "qty": "quantity",
                                                             "price": "unit_price"}}},
        "orders": {"connector": "csv", "config": {"path": "orders.csv", "entity": "customer_order",
                                                  "key": "order"}},
    })
    assert [(r.loaded, r.rejected, r.warnings) for r in jobs.sync(cfg)] == [(2, 0, 0), (1, 0, 0), (1, 0, 0)]
    products = {p["external_id"]: p for p in rows(warehouse, "product")}
    # a column that happens to be called "attributes" is one more source column
    assert products["P1"]["attributes"] == {"colour": "blue", "attributes": "fragile"}
    assert products["P1"]["title"] == "Mug" and products["P2"]["attributes"] is None  # empty cells: nothing
    [line] = rows(warehouse, "order_line")
    assert line["attributes"] == {"engraving": "For Ada"} and line["order_id"] == "O1"
    [order] = rows(warehouse, "customer_order")  # no person columns: the order keeps them itself
    assert order["attributes"] == {"gift_wrap": "yes"} and rows(warehouse, "source_person") == []


def test_the_key_set_finds_every_repeat_across_its_growth():
    from connectors.csv import _KeyHashes

    seen = _KeyHashes()
    keys = [f"L{i}" for i in range(5000)] + ["", "0"]
    assert all(seen.add(k) for k in keys)  # new keys, across several doublings
    assert seen.count == len(keys) and len(seen.slots) >= 2 * len(keys)
    assert not any(seen.add(k) for k in keys)  # every one of them is a repeat now
    assert seen.add("L5000") and not seen.add("L5000")


def test_a_long_file_with_late_repeats_quarantines_exactly_those(tmp_path, write_config, warehouse):
    path = tmp_path / "leads.csv"
    with path.open("w") as out:
        out.write("lead_id,email,submitted_at\n")
        for i in range(3000):
            out.write(f"L{i},p{i}@example.com,2026-01-02T03:04:05Z\n")
        out.write("L7,again@example.com,2026-01-02T03:04:05Z\nL2999,late@example.com,2026-01-02T03:04:05Z\n")
    cfg = write_config({"leads": {"connector": "csv", "config": {
        "path": str(path), "entity": "lead", "key": "lead_id", "page_rows": 700}}})
    (result,) = jobs.sync(cfg)
    assert (result.read, result.loaded, result.rejected) == (3002, 3000, 2)
    reasons = sorted(r["reason"] for r in rows(warehouse, "rejected_record"))
    assert ["is repeated" in r for r in reasons] == [True, True]
    assert any("'L7'" in r for r in reasons) and any("'L2999'" in r for r in reasons)
