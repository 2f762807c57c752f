"""One bad value must not block a source (issue 18 item 9).

PostgreSQL refuses a NUL character in text and JSON and a number outside a column's
range, where SQLite takes them; the same records must load or be quarantined alike on
both warehouses, and a rerun must never fail the same page again.
"""

from __future__ import annotations

from decimal import Decimal

from connectors.sdk.streams import StreamSpec
from crm_model.sync import ingest
from crmhub import jobs
from tests.conftest import rows


def orders(**config):
    return {"shop": {"connector": "csv", "config": {"path": "orders.csv", "entity": "customer_order",
                                                    "key": "order_id", **config}}}


def test_nul_characters_are_removed_alike_and_kept_as_warnings(tmp_path, write_config, warehouse):
    (tmp_path / "leads.csv").write_bytes(
        b"lead_id,name,email,note\n1,Ada\x00 Lovelace,ada@example.com,call\x00back\n2\x00,Bob,bob@example.com,\n")
    cfg = write_config({"reps": {"connector": "csv", "config": {"path": "leads.csv", "entity": "lead",
                                                                "key": "lead_id"}}})
    for _ in range(2):  # a rerun reads the same and changes nothing
        (result,) = jobs.sync(cfg, full_refresh=True)
        assert (result.status, result.read, result.loaded, result.rejected) == ("success", 2, 2, 0)
    people = {p["external_id"]: p["display_name"] for p in rows(warehouse, "source_person")}
    assert people == {"lead:1": "Ada Lovelace", "lead:2": "Bob"}  # the key "2\0" became "2"
    assert {lead["external_id"]: lead["note"] for lead in rows(warehouse, "lead")} == {"1": "callback", "2": None}
    warnings = {(w["record_key"], w["field"]): w for w in rows(warehouse, "field_warning")}
    assert set(warnings) == {("1", "name"), ("1", "note"), ("2", "lead_id")}
    assert warnings[("1", "name")]["reason"] == "name: NUL characters removed"
    assert warnings[("1", "name")]["raw_value"] == "Ada\\0 Lovelace"
    assert "\x00" not in str(rows(warehouse, "raw_record"))


def test_amounts_out_of_range_are_rejected_alike_and_the_page_loads(tmp_path, write_config, warehouse):
    (tmp_path / "orders.csv").write_text(
        "order_id,total,currency\n"
        "A-1,100000000000000,EUR\n"        # 10^14: NUMERIC(18, 4) on PostgreSQL cannot hold it
        "A-2,99999999999.9999,EUR\n"       # just below 10^11: exact on both (SQLite keeps a double)
        "A-3,12.50,EUR\n"
        "A-4,-1e20,EUR\n"
    )
    cfg = write_config(orders())
    for _ in range(2):  # never a failed page that fails every rerun
        (result,) = jobs.sync(cfg, full_refresh=True)
        assert (result.status, result.read, result.loaded, result.rejected) == ("success", 4, 2, 2)
    loaded = {o["external_id"]: o["total"] for o in rows(warehouse, "customer_order")}
    assert loaded == {"A-2": Decimal("99999999999.9999"), "A-3": Decimal("12.5000")}
    assert sorted(r["reason"] for r in rows(warehouse, "rejected_record")) == [
        "orders.csv line 2: customer_order.total: 100000000000000 is out of range (the column holds less than 10^11)",
        "orders.csv line 5: customer_order.total: -1E+20 is out of range (the column holds less than 10^11)",
    ]


def test_pushed_records_with_nul_surrogates_and_nan_are_stored_alike(warehouse):
    spec = StreamSpec("submissions", ("submission_id",), None, False, lambda *_: iter(()))
    records = [
        {"submission_id": "s-1", "email": "ada@example.com", "name": "Ada\x00", "score": float("nan")},
        {"submission_id": "s-2", "email": "bob@example.com", "name": "B\ud800ob", "score": float("inf")},
    ]
    result = ingest(warehouse, "site", "webhook", spec, records, {"forms": {}})
    assert (result.read, result.loaded + result.rejected) == (2, 2)
    raw = {r["record_key"]: r["payload"] for r in rows(warehouse, "raw_record")}
    assert raw["s-1"]["name"] == "Ada" and raw["s-1"]["score"] == "NaN"
    assert raw["s-2"]["name"] == "B\ufffdob" and raw["s-2"]["score"] == "Infinity"
    reasons = {w["reason"] for w in rows(warehouse, "field_warning")}
    assert "name: NUL characters removed" in reasons or result.rejected


def test_whole_numbers_beyond_32_bits_are_rejected_with_a_reason():
    from crm_model.validate import row_problem

    row = {"platform": "google_ads", "campaign_id": "c", "ad_id": "", "date": None, "clicks": 2**31}
    assert row_problem("ad_stat_daily", {**row, "date": __import__("datetime").date(2026, 1, 1)}) == (
        "ad_stat_daily.clicks: 2147483648 is out of range (the column holds less than 2,147,483,648)")
