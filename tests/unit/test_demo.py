"""`crmhub demo`: every connector end to end against the replay server, twice."""

from __future__ import annotations

import re

from sqlalchemy import text

from crm_model import db
from crmhub import config as config_mod
from crmhub import jobs
from crmhub.demo import SHOWN_TABLES, run_demo


def test_demo_runs_every_source_and_a_second_run_changes_nothing(tmp_path, monkeypatch):
    for name in ("CRMHUB_DEMO_URL", "CRMHUB_DEMO_SAMPLES", "CRMHUB_DEMO_MAIL"):  # the demo sets them; restore afterwards
        monkeypatch.delenv(name, raising=False)
    lines: list[str] = []
    run_demo(tmp_path, lines.append, lines.append)
    first = "\n".join(lines)
    assert "FAILED" not in first, first
    synced = re.findall(r"^  (\w+) +(\w+) +read +(\d+), loaded +(\d+), rejected +(\d+)", first, re.M)
    assert {kind for _, kind, *_ in synced} == {"csv", "typeform", "google_forms", "shopify", "woocommerce", "stripe",
                                               "google_ads", "meta_ads", "meta_leads", "ga4", "mailchimp",
                                               "mbox", "maildir"}
    assert all(int(read) == int(loaded) + int(rejected) for *_, read, loaded, rejected in synced)
    for name in ("marketing", "sales", "service"):  # the demo's reports, written where it says
        page = tmp_path / "reports" / f"{name}.html"
        assert f"{page}" in first and page.exists() and (tmp_path / "reports" / f"{name}.txt").exists()
    assert (tmp_path / "reports" / "sales-top_customers.csv").exists()

    cfg = config_mod.load(tmp_path / "crmhub.yml")
    engine = db.connect(cfg.warehouse_url())
    try:
        counts = jobs.table_counts(engine, SHOWN_TABLES)
        assert counts["person"] > 0 and counts["customer_order"] > 0 and counts["lead"] > 0
        assert counts["person"] < counts["lead"] + counts["customer_order"]  # people matched across sources
        # mail: the support mailbox's threads are cases on the same persons as the leads and orders
        with engine.connect() as conn:
            cases = {r.tracking_number: r for r in conn.execute(text(
                "SELECT c.tracking_number, c.kind, c.status, c.product_id, p.email, p.lifecycle_stage "
                "FROM service_case c JOIN person p ON p.person_id = c.person_id WHERE c.source = 'support_mail'"))}
            ann = conn.execute(text(
                "SELECT COUNT(*) FROM email_message m JOIN lead l ON l.person_id = m.person_id "
                "WHERE m.source = 'rep_mail'")).scalar_one()
        assert cases["5101"].status == "closed" and cases["5101"].kind == "complaint"
        assert cases["5101"].email == "ada@example.com" and cases["5101"].product_id is not None
        by_email = {c.email: c for c in cases.values()}
        assert by_email["lin@example.com"].status == "answered" and by_email["lin@example.com"].kind == "question"
        assert by_email["hedy@example.org"].status == "new" and by_email["hedy@example.org"].kind == "complaint"
        assert len(cases) == 3 and ann > 0  # the rep's conversations sit on persons who are leads
        lines.clear()
        run_demo(tmp_path, lines.append, lines.append)
        assert jobs.table_counts(engine, SHOWN_TABLES) == counts
        second = "\n".join(lines)
        # the replay server honours the incremental filters: the APIs give (almost) nothing again,
        # except the ad and analytics platforms, which re-pull their lookback window on purpose
        # (they restate recent days) and update those days in place (the counts above)
        restating = {"google_ads", "meta_ads", "ga4", "mailchimp"}
        again = {name: int(read) for name, kind, read, *_ in
                 re.findall(r"^  (\w+) +(\w+) +read +(\d+), loaded +(\d+), rejected +(\d+)", second, re.M)
                 if kind not in restating}
        first_reads = {name: int(read) for name, kind, read, *_ in synced if kind not in restating}
        assert sum(again.values()) < sum(first_reads.values()) / 3, second
        assert all(again[name] == 0 for name, kind, *_ in synced if kind == "csv"), second
        assert "nothing new to resolve" in second, second
    finally:
        engine.dispose()


def test_demo_into_postgresql_as_the_readme_says(tmp_path, monkeypatch):
    """`crmhub demo --warehouse URL`, into a database of its own (dropped afterwards)."""
    import os
    import uuid

    from sqlalchemy.engine import make_url

    from tests.conftest import PG_ADMIN_URL

    for name in ("CRMHUB_DEMO_URL", "CRMHUB_DEMO_SAMPLES", "CRMHUB_DEMO_WAREHOUSE"):
        monkeypatch.delenv(name, raising=False)
    name = f"crmhub_demo_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = db.connect(PG_ADMIN_URL)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    engine = db.connect(url)
    try:
        lines: list[str] = []
        run_demo(tmp_path, lines.append, lines.append, warehouse=url)
        out = "\n".join(lines)
        assert "FAILED" not in out and "crmhub demo: warehouse postgresql+psycopg://" in out, out
        counts = jobs.table_counts(engine, SHOWN_TABLES)
        assert counts["person"] > 0 and counts["customer_order"] > 0
    finally:
        engine.dispose()
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


def test_demo_ad_clicks_line_up_with_leads_and_orders(tmp_path, monkeypatch):
    """v_ad_performance shows real attribution: gclid leads on their ads, buyers' orders on their campaigns."""
    from sqlalchemy import text

    for name in ("CRMHUB_DEMO_URL", "CRMHUB_DEMO_SAMPLES"):
        monkeypatch.delenv(name, raising=False)
    run_demo(tmp_path, lambda _: None, lambda _: None)
    engine = db.connect(config_mod.load(tmp_path / "crmhub.yml").warehouse_url())
    try:
        with engine.connect() as conn:
            by_campaign = {r.campaign_name: r for r in conn.execute(text(
                "SELECT campaign_name, SUM(clicks) AS clicks, SUM(cost) AS cost, SUM(leads) AS leads, "
                "SUM(customers) AS customers FROM v_ad_performance GROUP BY campaign_name"))}
            rules = dict(conn.execute(text(
                "SELECT attribution_rule, COUNT(*) FROM lead WHERE attribution_rule IS NOT NULL "
                "GROUP BY attribution_rule")).all())
            affiliates = {r.affiliate_site: r.leads for r in conn.execute(text(
                "SELECT affiliate_site, leads FROM v_affiliate_performance"))}
    finally:
        engine.dispose()
    search = by_campaign["crm_search_q4"]
    assert search.clicks > 0 and search.cost > 0 and search.leads >= 2 and search.customers >= 1
    assert by_campaign["q4_prospecting"].leads >= 1  # the Meta lead ad and a utm-tagged form lead
    assert rules.get("click_id", 0) >= 2 and rules.get("lead_ad") == 1 and rules.get("utm_campaign_name", 0) >= 1
    assert affiliates == {"saas-picks.example": 1, "crm-reviews.example": 1}
