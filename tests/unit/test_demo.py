"""`crmhub demo`: every connector end to end against the replay server, twice."""

from __future__ import annotations

import re

from crm_model import db
from crmhub import config as config_mod
from crmhub import jobs
from crmhub.demo import SHOWN_TABLES, run_demo


def test_demo_runs_every_source_and_a_second_run_changes_nothing(tmp_path, monkeypatch):
    for name in ("CRMHUB_DEMO_URL", "CRMHUB_DEMO_SAMPLES"):  # the demo sets them; restore afterwards
        monkeypatch.delenv(name, raising=False)
    lines: list[str] = []
    run_demo(tmp_path, lines.append, lines.append)
    first = "\n".join(lines)
    assert "FAILED" not in first, first
    synced = re.findall(r"^  (\w+) +(\w+) +read +(\d+), loaded +(\d+), rejected +(\d+)", first, re.M)
    assert {kind for _, kind, *_ in synced} == {"csv", "typeform", "google_forms", "shopify", "woocommerce", "stripe"}
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
        lines.clear()
        run_demo(tmp_path, lines.append, lines.append)
        assert jobs.table_counts(engine, SHOWN_TABLES) == counts
    finally:
        engine.dispose()
