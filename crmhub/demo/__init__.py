"""`crmhub demo`: the whole flow on bundled sample data, into a local SQLite warehouse.

The API sources (forms, shops) talk to a local replay server that answers with
documented vendor payloads, so every connector runs its real HTTP code. Running the
demo again changes no row counts: syncs are idempotent.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text

from crmhub import config as config_mod
from crmhub import jobs
from crmhub.demo.replay import ReplayServer, load_routes

DEMO_DIR = Path(__file__).parent
SHOWN_TABLES = ("person", "identity", "person_merge", "lead", "touchpoint", "customer_order", "order_line",
                "product", "service_case", "service_contract", "feedback", "email_message")


def run_demo(workdir: Path, out: Callable[[str], None], err: Callable[[str], None]) -> None:
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "crmhub.yml"
    shutil.copyfile(DEMO_DIR / "crmhub.yml", config_path)
    with ReplayServer(load_routes()) as server:
        os.environ["CRMHUB_DEMO_URL"] = server.url
        os.environ["CRMHUB_DEMO_SAMPLES"] = str(DEMO_DIR / "samples")
        os.environ["CRMHUB_DEMO_MAIL"] = str(DEMO_DIR / "mail")
        cfg = config_mod.load(config_path)
        out(f"crmhub demo: warehouse {cfg.warehouse_url()}")
        out(f"  config: {config_path} (sample APIs answered by {server.url})")
        jobs.init(cfg)
        engine = jobs.warehouse(cfg)
        try:
            out("")
            out("sync:")
            for r in jobs.sync(cfg, engine=engine):
                connector = cfg.source(r.source).connector
                out(f"  {r.source:18} {connector:12} read {r.read:4}, loaded {r.loaded:4}, rejected {r.rejected:3}"
                    f"  {'' if r.status == 'success' else 'FAILED: ' + '; '.join(r.errors)}")
            summary = jobs.model(cfg, engine=engine)
            out(f"model: {summary.persons} persons from {len(cfg.settings.sources)} sources "
                f"({summary.attached} records matched to a person seen elsewhere)")
            out("")
            out("rows per table:")
            counts = jobs.table_counts(engine, SHOWN_TABLES)
            out("  " + ", ".join(f"{t} {n}" for t, n in counts.items()))
            with engine.connect() as conn:
                rejects = conn.execute(text(
                    "SELECT source, reason FROM rejected_record ORDER BY source, record_key")).all()
                stages = conn.execute(text(
                    "SELECT lifecycle_stage, COUNT(*) FROM person GROUP BY lifecycle_stage "
                    "ORDER BY lifecycle_stage")).all()
            out("  persons by lifecycle stage: " + ", ".join(f"{s} {n}" for s, n in stages))
            out("")
            out(f"quarantined with a reason ({len(rejects)}; all in table rejected_record):")
            for source, reason in rejects:
                out(f"  {source}: {reason}")
        finally:
            engine.dispose()
    out("")
    out(f"next: crmhub --help, or look around: crmhub status --config {config_path}")
