"""The csv connector: reps' entries and exports, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
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
    assert (result.read, result.loaded, result.rejected) == (7, 2, 5)
    reasons = sorted(r["reason"] for r in rows(warehouse, "rejected_record"))
    assert any("leads.csv line 4: email: 'not-an-email' is not a valid email" in r for r in reasons)
    assert any("leads.csv line 5: submitted_at: 'next tuesday' is not a date-time" in r for r in reasons)
    assert any("leads.csv line 6: phone: '12'" in r for r in reasons)
    assert any(r == "missing primary key lead_id" for r in reasons)
    assert any("leads.csv line 8: has 2 fields, the header has 8" in r for r in reasons)

    leads = rows(warehouse, "lead")
    assert [lead["external_id"] for lead in leads] == ["1", "2"]
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
    assert [(r.loaded, r.rejected) for r in results] == [(1, 1), (2, 1)]
    (order,) = rows(warehouse, "customer_order")
    assert (order["external_id"], order["total"], order["currency"]) == ("A-2", Decimal("12.5000"), "EUR")
    reasons = [r["reason"] for r in rows(warehouse, "rejected_record")]
    assert any("country: 'Deutschland' is not a known country" in r for r in reasons)  # German name
    assert any("order_id is required" in r for r in reasons)
    lines = {line["external_id"]: line for line in rows(warehouse, "order_line")}
    assert lines["A-1-1"]["total"] == Decimal("1299.5000") and lines["A-1-1"]["order_id"] == "A-1"
    person = rows(warehouse, "source_person")[0]
    assert (person["email"], person["lifecycle_stage"]) == ("lin@example.com", "customer")


def test_config_errors_are_clear(tmp_path, write_config):
    cfg = write_config(lead_source(path="missing.csv"))
    result = jobs.sync(cfg)[0]  # the run is recorded as failed, with the reason
    assert result.status == "failed" and "missing.csv not found" in result.errors[0]
    (tmp_path / "leads.csv").write_text("id,email\n1,a@example.com\n")
    cfg = write_config(lead_source(path="leads.csv"))
    result = jobs.sync(cfg)[0]
    assert result.status == "failed" and "has no key column 'lead_id'" in result.errors[0]
    cfg = write_config(lead_source(entity="spaceship"))
    with pytest.raises(ConfigError, match=r"crmhub.yml line \d+: sources.reps.config.entity"):
        jobs.sync(cfg)
