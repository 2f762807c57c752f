"""Migration 0024 (ad groups) on a warehouse that already holds ad stats, on SQLite and PostgreSQL.

Rows written under the old key (platform, campaign_id, ad_id, date) get the ad group their
stored raw record names, so re-mapping with the new mappings updates them instead of adding
a second copy beside an ad_group_id '' row.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from crm_model import db
from crm_model.sync import remap
from tests.conftest import PG_ADMIN_URL, load_json, rows

DAY = dt.date(2026, 3, 1)


@pytest.fixture(params=["sqlite", "postgres"])
def old_warehouse(request, tmp_path):
    """A warehouse at revision 0022 (before ad groups)."""
    if request.param == "sqlite":
        url, drop = f"sqlite:///{tmp_path / 'old.db'}", None
    else:
        admin = db.connect(PG_ADMIN_URL)
        name = f"crmhub_mig_{uuid.uuid4().hex[:8]}"
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        drop = (admin, name)
    engine = db.connect(url)
    cfg = db._alembic_config()
    with engine.begin() as conn:  # straight through alembic: today's views need today's columns
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0022")
    yield engine
    engine.dispose()
    if drop:
        admin, name = drop
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


def google_stat_records() -> list[dict]:
    """The searchStream rows of ad 90001 in two ad groups on 2026-03-01 (the old key kept one)."""
    return [r for batch in load_json("google_ads", "stats_de_two_groups.json") for r in batch["results"]]


def test_old_rows_get_their_ad_group_and_a_remap_adds_the_lost_one_without_duplicates(old_warehouse):
    engine = old_warehouse
    records = google_stat_records()
    meta = load_json("meta", "insights_page1.json")["data"][0]
    with engine.begin() as conn:
        # what the old mapping left: one row per (campaign, ad, day); 70003 overwrote 70001 on 03-01
        conn.execute(text(
            "INSERT INTO ad_stat_daily (platform, campaign_id, ad_id, date, source, clicks, cost, currency) "
            "VALUES (:p, :c, :a, :d, :s, :k, :cost, 'EUR')"), [
            {"p": "google_ads", "c": "20001", "a": "90001", "d": DAY, "s": "google", "k": 5, "cost": "4"},
            {"p": "google_ads", "c": "20001", "a": "90001", "d": dt.date(2026, 3, 2), "s": "google", "k": 9,
             "cost": "8.01"},
            {"p": "meta_ads", "c": meta["campaign_id"], "a": meta["ad_id"], "d": DAY, "s": "meta", "k": 87,
             "cost": "41.27"},
            {"p": "bing_ads", "c": "c1", "a": "a1", "d": DAY, "s": "csv_ads", "k": 1, "cost": "1"},
        ])
        keys = ["1234567890/70001/90001/2026-03-01", "1234567890/70003/90001/2026-03-01",
                "1234567890/70001/90001/2026-03-02"]
        raw = [{"s": "google", "t": "ad_stats", "k": k, "p": json.dumps({**r, "customer_id": "1234567890"})}
               for k, r in zip(keys, records, strict=True)]
        raw.append({"s": "meta", "t": "insights", "k": f"{meta['ad_id']}/2026-03-01", "p": json.dumps(meta)})
        conn.execute(text(
            "INSERT INTO raw_record (source, stream, record_key, payload, hash, extracted_at, mapped_version) "
            "VALUES (:s, :t, :k, :p, 'h', CURRENT_TIMESTAMP, 1)"), raw)

    db.migrate(engine)

    assert db.current_revision(engine) == db.head_revision()
    got = {(s["platform"], s["ad_group_id"], s["ad_id"], s["date"]): s["clicks"] for s in rows(engine, "ad_stat_daily")}
    # the ad group of 03-01 is one of the two its raw records name; the others have theirs; bing has none
    assert set(got) - {("google_ads", "70001", "90001", DAY), ("google_ads", "70003", "90001", DAY)} == {
        ("google_ads", "70001", "90001", dt.date(2026, 3, 2)), ("meta_ads", meta["adset_id"], meta["ad_id"], DAY),
        ("bing_ads", "", "a1", DAY)}
    assert len(got) == 4
    with engine.begin() as conn:  # the key now holds the ad group: the second ad group's day fits beside
        conn.execute(text("INSERT INTO ad_stat_daily (platform, campaign_id, ad_group_id, ad_id, date) "
                          "VALUES ('bing_ads', 'c1', 'g2', 'a1', :d)"), {"d": DAY})
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("INSERT INTO ad_stat_daily (platform, campaign_id, ad_group_id, ad_id, date) "
                          "VALUES ('bing_ads', 'c1', 'g2', 'a1', :d)"), {"d": DAY})

    # `crmhub model` re-maps the stored records with the new mappings (version 2)
    remap(engine, "google", "google_ads", "ad_stats", {})
    remap(engine, "meta", "meta_ads", "insights", {})
    stats = {(s["platform"], s["ad_group_id"], s["ad_id"], s["date"]): s for s in rows(engine, "ad_stat_daily")
             if s["platform"] != "bing_ads"}
    assert {k: (s["clicks"], s["cost"]) for k, s in stats.items()} == {
        ("google_ads", "70001", "90001", DAY): (12, Decimal("12.345678")),
        ("google_ads", "70003", "90001", DAY): (5, Decimal("4")),
        ("google_ads", "70001", "90001", dt.date(2026, 3, 2)): (9, Decimal("8.01")),
        ("meta_ads", meta["adset_id"], meta["ad_id"], DAY): (87, Decimal("41.27")),
    }
    with engine.connect() as conn:  # the mart reads the new key
        total = conn.execute(text("SELECT SUM(clicks) FROM v_ad_performance WHERE ad_id = '90001'")).scalar()
    assert total == 26


def test_downgrade_folds_ad_groups_back_into_the_old_key(old_warehouse):
    engine = old_warehouse
    db.migrate(engine)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO ad_stat_daily (platform, campaign_id, ad_group_id, ad_id, date, clicks) "
                          "VALUES ('google_ads', '1', :g, '9', :d, :k)"),
                     [{"g": "70001", "d": DAY, "k": 1}, {"g": "70003", "d": DAY, "k": 3}])
        for name in db.VIEWS:
            conn.exec_driver_sql(f"DROP VIEW IF EXISTS {name}")
        cfg = db._alembic_config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0022")
    with engine.connect() as conn:
        left = conn.execute(text("SELECT ad_id, clicks FROM ad_stat_daily")).all()
    assert [tuple(r) for r in left] == [("9", 3)]
