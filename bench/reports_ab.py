"""Same-run A/B of the marketing report's queries: this checkout (A) against a reference (B).

    mkdir -p /tmp/ref && git archive main sql/reports | tar -x -C /tmp/ref
    python bench/reports_ab.py --ref-sql /tmp/ref/sql/reports --as-of 2026-09-27 --pairs 4

Runs on the database bench/reports.py left (CRMHUB_BENCH_POSTGRES_URL). A uses this
checkout's sql/reports, its prepare step and the ndistinct statistics of migration 0025; B
uses the reference SQL without a prepare step and without those statistics (dropped and
ANALYZE run before each B, created again before each A; outside the timing). Charts are not
drawn (the same in both): the figure is the queries' time, pair by pair, with the load.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crm_model import db  # noqa: E402

PG_URL = os.environ.get("CRMHUB_BENCH_POSTGRES_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/crmhub_bench_reports")
STATS = ("CREATE STATISTICS st_ad_stat_daily_ads (ndistinct) "
         "ON platform, campaign_id, ad_id FROM ad_stat_daily")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref-sql", type=Path, required=True, help="The reference revision's sql/reports folder.")
    ap.add_argument("--as-of", type=dt.date.fromisoformat, required=True, help="bench/reports.py's 'as of' day.")
    ap.add_argument("--pairs", type=int, default=4)
    args = ap.parse_args()

    import crmhub.reports.query as q
    from crmhub.reports.build import build
    from crmhub.reports.definitions import REPORTS
    from crmhub.reports.period import parse_period

    engine = db.connect(PG_URL)
    period = parse_period("30d", args.as_of)
    mine, ref = REPORTS["marketing"], dataclasses.replace(REPORTS["marketing"], prepare=())
    own_sql = q.REPORTS_SQL

    def statistics_on(on: bool) -> None:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("DROP STATISTICS IF EXISTS st_ad_stat_daily_ads")
            if on:
                conn.exec_driver_sql(STATS)
            conn.exec_driver_sql("ANALYZE ad_stat_daily")

    def once(arm: str) -> float:
        statistics_on(arm == "A")
        q.REPORTS_SQL = own_sql if arm == "A" else args.ref_sql
        q.sql_text.cache_clear()
        t0 = time.perf_counter()
        build(engine, mine if arm == "A" else ref, period, charts=False)
        return time.perf_counter() - t0

    try:
        once("A"), once("B")  # warm-up
        a, b = [], []
        for i in range(args.pairs):
            a.append(once("A"))
            b.append(once("B"))
            print(f"pair {i + 1}: this {a[-1]:.2f} s, reference {b[-1]:.2f} s, ratio {a[-1] / b[-1]:.2f}, "
                  f"load {os.getloadavg()[0]:.2f}", flush=True)
        print(f"medians: this {statistics.median(a):.2f} s, reference {statistics.median(b):.2f} s; "
              f"median pair ratio {statistics.median(x / y for x, y in zip(a, b, strict=True)):.2f}; "
              f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        statistics_on(True)  # leave the database as migration 0025 made it
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
