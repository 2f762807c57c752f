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
                                                "mbox", "maildir"}
    assert all(int(read) == int(loaded) + int(rejected) for *_, read, loaded, rejected in synced)

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
    finally:
        engine.dispose()
