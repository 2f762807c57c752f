"""The csv connector: reps' entries and exports, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
import re
from decimal import Decimal

import pytest

from crmhub import jobs
from crmhub.errors import ConfigError
from tests.conftest import rows

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
