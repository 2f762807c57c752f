"""Benchmark: N lead rows from CSV into SQLite and PostgreSQL, records/s and peak RSS.

    python bench/load_csv.py                 # 1,000,000 rows, both warehouses
    python bench/load_csv.py --rows 200000 --warehouse postgres
    python bench/load_csv.py --model         # then `crmhub model`: first run, nothing new

Each load runs in a fresh child process, so its peak RSS is the load's alone. With
``--model`` each `crmhub model` is a whole process too (start-up and imports included),
timed by wait4: the first run over the loaded leads, then runs with nothing new (which
must not read the million raw records again to find that nothing changed).
PostgreSQL: CRMHUB_BENCH_POSTGRES_URL (default: local server, database crmhub_bench,
dropped and re-created).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from children import measured

ROOT = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("CRMHUB_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/crmhub_bench")
SOURCES = ["google", "facebook", "newsletter", "linkedin", "affiliate"]


def write_csv(path: Path, rows: int) -> None:
    with path.open("w") as f:
        f.write("lead_id,first_name,last_name,email,phone,company,submitted_at,utm_source,utm_medium,utm_campaign,note\n")
        for i in range(rows):
            f.write(f"L{i},First{i % 997},Last{i % 1009},person{i}@example.com,+4930{i:08d},Company {i % 5000},"
                    f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z,{SOURCES[i % 5]},cpc,"
                    f"campaign_{i % 40},note {i}\n")


def fresh_warehouse(kind: str, folder: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{folder}/bench.db"
    from sqlalchemy.engine import make_url

    from crm_model import db

    url = make_url(PG_URL)
    admin = db.connect(url.set(database="postgres").render_as_string(hide_password=False))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {url.database} WITH (FORCE)")
        conn.exec_driver_sql(f"CREATE DATABASE {url.database}")
    admin.dispose()
    return PG_URL


def child(config: str) -> None:
    """Runs in its own process: init, then time the sync alone."""
    from crmhub import config as config_mod
    from crmhub import jobs

    cfg = config_mod.load(config)
    jobs.init(cfg)
    started = time.perf_counter()
    (result,) = jobs.sync(cfg)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"read": result.read, "loaded": result.loaded, "rejected": result.rejected,
                      "seconds": seconds, "peak_rss_mb": peak_mb, "status": result.status}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--warehouse", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--model", action="store_true", help="after each load, time `crmhub model` runs")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    kinds = ["sqlite", "postgres"] if args.warehouse == "both" else [args.warehouse]
    with tempfile.TemporaryDirectory(prefix="crmhub-bench-") as tmp:
        folder = Path(tmp)
        csv_path = folder / "leads.csv"
        write_csv(csv_path, args.rows)
        size_mb = csv_path.stat().st_size / 2**20
        print(f"{args.rows:,} lead rows, {size_mb:,.0f} MB of CSV")
        for kind in kinds:
            config = folder / f"{kind}.yml"
            config.write_text(yaml.safe_dump({
                "warehouse": {"url": fresh_warehouse(kind, folder)},
                "sources": {"bench": {"connector": "csv", "config": {
                    "path": str(csv_path), "entity": "lead", "key": "lead_id"}}}}))
            done = subprocess.run([sys.executable, __file__, "--child", str(config)], capture_output=True,
                                  text=True, cwd=ROOT)
            if done.returncode != 0:
                sys.exit(f"{kind}: benchmark failed:\n{done.stderr[-3000:]}")
            r = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"{kind:9} {r['loaded']:,} loaded in {r['seconds']:.1f}s = {r['read'] / r['seconds']:,.0f} rows/s, "
                  f"peak RSS {r['peak_rss_mb']:.0f} MB ({r['status']})")
            if args.model:
                model = [sys.executable, "-m", "crmhub", "model", "--config", str(config)]
                first = measured(model, ROOT)
                print(f"{kind:9} crmhub model, first run: {first.seconds:.1f}s, peak RSS {first.rss_mb:.0f} MB")
                again = [measured(model, ROOT).seconds for _ in range(3)]
                print(f"{kind:9} crmhub model, nothing new: {' / '.join(f'{t:.2f}s' for t in again)} "
                      f"(the whole command)")


if __name__ == "__main__":
    main()
