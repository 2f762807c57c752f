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
                "product", "service_case", "service_contract", "feedback",
                "campaign", "ad_group", "ad", "ad_stat_daily", "web_traffic_daily", "email_message")


def run_demo(workdir: Path, out: Callable[[str], None], err: Callable[[str], None],
             warehouse: str | None = None) -> None:
    """``warehouse``: a database URL to use instead of the SQLite file in ``workdir``."""
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "crmhub.yml"
    shutil.copyfile(DEMO_DIR / "crmhub.yml", config_path)
    with ReplayServer(load_routes()) as server:
        os.environ["CRMHUB_DEMO_URL"] = server.url
        os.environ["CRMHUB_DEMO_SAMPLES"] = str(DEMO_DIR / "samples")
        if warehouse:
            os.environ["CRMHUB_DEMO_WAREHOUSE"] = warehouse
        else:
            os.environ.pop("CRMHUB_DEMO_WAREHOUSE", None)
        os.environ["CRMHUB_DEMO_MAIL"] = str(DEMO_DIR / "mail")
        cfg = config_mod.load(config_path)
        from sqlalchemy.engine import make_url

        out(f"crmhub demo: warehouse {make_url(cfg.warehouse_url()).render_as_string(hide_password=True)}")
        out(f"  config: {config_path} (sample APIs answered by {server.url})")
        jobs.init(cfg)
        engine = jobs.warehouse(cfg)
        try:
            out("")
            out("sync:")
            for r in jobs.sync(cfg, engine=engine):
                connector = cfg.source(r.source).connector
                warned = f", {r.warnings} with field warnings" if r.warnings else ""
                out(f"  {r.source:18} {connector:12} read {r.read:4}, loaded {r.loaded:4}, rejected {r.rejected:3}"
                    f"{warned}  {'' if r.status == 'success' else 'FAILED: ' + '; '.join(r.errors)}")
            summary = jobs.model(cfg, engine=engine)
            if summary.created or summary.merged or summary.attached:
                out(f"model: {summary.persons} persons from {len(cfg.settings.sources)} sources; this run "
                    f"created {summary.created}, merged {summary.merged} and matched {summary.attached} "
                    f"records to a person seen in another source")
            else:
                out(f"model: {summary.persons} persons from {len(cfg.settings.sources)} sources "
                    f"(nothing new to resolve: every record already belongs to its person)")
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
            # ---- prospect tracking (issue 21): what each campaign cost and brought in
            with engine.connect() as conn:
                ads = conn.execute(text(
                    "SELECT platform, campaign_name, SUM(clicks) AS clicks, SUM(cost) AS cost, MIN(currency) AS cur, "
                    "SUM(leads) AS leads, SUM(customers) AS customers, SUM(revenue) AS revenue "
                    "FROM v_ad_performance GROUP BY platform, campaign_name ORDER BY platform, campaign_name")).all()
                partners = conn.execute(text(
                    "SELECT affiliate_site, clicks, leads, customers, revenue FROM v_affiliate_performance "
                    "ORDER BY affiliate_site")).all()
            out("  ad performance (v_ad_performance, per campaign):")
            for r in ads:
                out(f"    {r.platform:10} {str(r.campaign_name):16} clicks {r.clicks or 0:4}, cost {float(r.cost or 0):8.2f} "
                    f"{r.cur or '':3}, leads {r.leads or 0}, customers {r.customers or 0}, revenue {float(r.revenue or 0):.2f}")
            out("  affiliates (v_affiliate_performance): " + ", ".join(
                f"{r.affiliate_site} clicks {r.clicks} leads {r.leads} customers {r.customers}" for r in partners))
            out("")
            out(f"quarantined with a reason ({len(rejects)}; all in table rejected_record):")
            for source, reason in rejects:
                out(f"  {source}: {reason}")
            _demo_reports(cfg, engine, workdir / "reports", out)
        finally:
            engine.dispose()
    out("")
    out(f"next: crmhub --help, or look around: crmhub status --config {config_path}")
    out(f"      live reports: crmhub serve --config {config_path}, then "
        "http://127.0.0.1:8080/reports/sales (header Authorization: Bearer demo-dashboard-token-not-secret)")


def _demo_reports(cfg: config_mod.Config, engine, folder: Path, out: Callable[[str], None]) -> None:
    """The demo's reports as files (HTML, PNG charts, CSVs), as `crmhub report NAME --out` writes them."""
    from crmhub import reports

    out("")
    out(f"reports (period {cfg.settings.reports['sales'].period}):")
    for name in cfg.settings.reports:
        result = reports.run(cfg, name, engine, out=folder)
        empty = f"; empty: {', '.join(result.empty_sections)}" if result.empty_sections else ""
        out(f"  {name:10} {folder / (name + '.html')} ({len(result.files)} files{empty})")
    out(f"  open them in a browser: {folder}/")
