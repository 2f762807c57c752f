"""crmhub against its peers, side by side, on this machine (`make bench-peers`).

    python bench/peers.py                      # 100,000 orders and CSV rows, 2 repetitions
    python bench/peers.py --records 1000000 --reps 1 --pipelines crmhub-pg,crmhub-sqlite,csv-crmhub-pg

Shopify-shaped orders (bench/shop_server.py, a separate process on 127.0.0.1, the same
pre-serialised pages for everyone) into PostgreSQL by:

- ``raw-copy``: HTTP + orjson + COPY into plain tables (the floor, bench/peer_raw.py)
- ``raw-upsert``: the same through a staging table and INSERT ... ON CONFLICT, and its
  1% re-sync
- ``dlt``: dlt[postgres] in its own virtualenv, created here (bench/peer_dlt.py)
- ``crmhub-pg`` / ``crmhub-sqlite``: ``crmhub sync`` with the shopify connector pointed
  at the server by ``base_url``

then a 1% re-sync (the server's ``changed`` data set, read from each pipeline's own
cursor). The csv path: ``csv-crmhub-pg`` / ``csv-crmhub-sqlite`` (``crmhub sync`` of a
leads CSV) against ``csv-psql`` (``psql \\copy`` of the same file into a plain table).

Every figure is a fresh process timed from the outside (wall time, CPU and peak RSS of
that process from wait4), pipelines interleaved within each repetition, the machine's
1-minute load average printed beside each. Medians and ratios at the end. PostgreSQL:
CRMHUB_BENCH_POSTGRES_URL (default local trust auth); database crmhub_peers is dropped
and re-created before every pipeline's run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg
import yaml

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))
from children import measured, peer_python  # noqa: E402
from load_csv import write_csv  # noqa: E402

PG = os.environ.get("CRMHUB_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/crmhub_peers")
PY = sys.executable
CRMHUB = str(Path(PY).parent / "crmhub")
SHOP = ["raw-copy", "raw-upsert", "dlt", "crmhub-pg", "crmhub-sqlite"]
CSV = ["csv-psql", "csv-crmhub-pg", "csv-crmhub-sqlite"]


@dataclass
class Figure:
    seconds: float
    cpu: float
    rss_mb: float
    load: float


def run_child(cmd: list[str], env: dict | None = None) -> Figure:
    """Run ``cmd`` as a fresh process: its wall time, CPU (user+sys) and peak RSS (wait4)."""
    load = os.getloadavg()[0]
    child = measured(cmd, ROOT, env)
    return Figure(child.seconds, child.cpu, child.rss_mb, load)


def byte_compile() -> None:
    """Compile crmhub's modules and its environment's, as `pip install` does.

    Every pipeline is measured as installed: dlt's virtualenv is made by pip, which
    writes bytecode; crmhub's editable install (or an install with uv, or a shell with
    PYTHONDONTWRITEBYTECODE set) may have none, and then every `crmhub sync` would
    compile its imports from source (about a second here). Once compiled, later runs
    only compare timestamps.
    """
    import sysconfig

    folders = [str(ROOT / p) for p in ("crmhub", "crm_model", "connectors")] + [sysconfig.get_paths()["purelib"]]
    print("byte-compiling crmhub and its environment (as pip install does)", flush=True)
    subprocess.run([PY, "-m", "compileall", "-q", *folders], check=False, capture_output=True)


def fresh_database() -> None:
    base, _, name = PG.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")


def dlt_python(venv: Path) -> str:
    python = peer_python(venv, "dlt[postgres]", "dlt")
    version = subprocess.run([str(python), "-c", "import dlt; print(dlt.__version__)"], capture_output=True,
                             text=True, check=True).stdout.strip()
    print(f"dlt {version} from {venv}")
    return str(python)


def start_server(records: int, data: Path) -> tuple[subprocess.Popen, int]:
    print(f"preparing {records:,} orders in {data} (once per size)", flush=True)
    proc = subprocess.Popen([PY, str(BENCH / "shop_server.py"), "--records", str(records), "--dir", str(data)],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("READY"):
        proc.kill()
        sys.exit("the order server did not start")
    return proc, int(line.split()[1])


def crmhub_config(path: Path, warehouse: str, source: dict) -> str:
    path.write_text(yaml.safe_dump({"warehouse": {"url": warehouse}, "sources": {"bench": source}}))
    return str(path)


def sqlalchemy_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def shop_pipeline(name: str, port: int, work: Path, query: Path, dlt_py: str | None) -> tuple[Figure, Figure | None]:
    """One full load and, where the pipeline has one, the 1% re-sync after it."""
    url = f"http://127.0.0.1:{port}"
    if name.startswith("raw"):
        fresh_database()
        mode = name.split("-")[1]
        cmd = [PY, str(BENCH / "peer_raw.py"), "--dsn", PG, "--query", str(query), "--mode", mode]
        full = run_child(cmd + ["--url", f"{url}/base"])
        resync = run_child(cmd + ["--url", f"{url}/changed"]) if mode == "upsert" else None
        return full, resync
    if name == "dlt":
        fresh_database()
        pipelines = work / "dlt-pipelines"
        shutil.rmtree(pipelines, ignore_errors=True)
        # dlt insists on a password; a trust-auth server ignores it
        dsn = PG if "@" not in PG or ":" in PG.split("//", 1)[1].split("@", 1)[0] else PG.replace("@", ":bench@", 1)
        cmd = [dlt_py, str(BENCH / "peer_dlt.py"), "--dsn", dsn, "--query", str(query),
               "--pipelines-dir", str(pipelines)]
        env = {"RUNTIME__LOG_LEVEL": "WARNING"}
        return run_child(cmd + ["--url", f"{url}/base"], env), run_child(cmd + ["--url", f"{url}/changed"], env)
    if name == "crmhub-pg":
        fresh_database()
        warehouse = sqlalchemy_url(PG)
    else:
        db = work / "bench.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        warehouse = f"sqlite:///{db}"
    figures = []
    for data_set in ("base", "changed"):
        config = crmhub_config(work / "crmhub.yml", warehouse, {"connector": "shopify", "config": {
            "base_url": f"{url}/{data_set}", "access_token": "shpat_bench", "page_size": {"orders": 250}}})
        env = {"CRMHUB_CONFIG": config}
        if data_set == "base":
            subprocess.run([CRMHUB, "init"], cwd=ROOT, env={**os.environ, **env}, check=True, capture_output=True)
        figures.append(run_child([CRMHUB, "sync", "bench", "--stream", "orders"], env))
    return figures[0], figures[1]


CSV_TABLE = ("CREATE TABLE leads_plain (lead_id text, first_name text, last_name text, email text, phone text, "
             "company text, submitted_at timestamptz, utm_source text, utm_medium text, utm_campaign text, note text)")


def csv_pipeline(name: str, csv_path: Path, work: Path) -> Figure:
    if name == "csv-psql":
        fresh_database()
        subprocess.run(["psql", "-q", PG, "-c", CSV_TABLE], check=True, capture_output=True)
        return run_child(["psql", "-q", PG, "-c", f"\\copy leads_plain FROM '{csv_path}' CSV HEADER"])
    if name == "csv-crmhub-pg":
        fresh_database()
        warehouse = sqlalchemy_url(PG)
    else:
        db = work / "csv.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        warehouse = f"sqlite:///{db}"
    config = crmhub_config(work / "csv.yml", warehouse, {"connector": "csv", "config": {
        "path": str(csv_path), "entity": "lead", "key": "lead_id"}})
    env = {"CRMHUB_CONFIG": config}
    subprocess.run([CRMHUB, "init"], cwd=ROOT, env={**os.environ, **env}, check=True, capture_output=True)
    return run_child([CRMHUB, "sync", "bench"], env)


def show(label: str, fig: Figure, records: int) -> None:
    print(f"  {label:28} {fig.seconds:8.2f} s {records / fig.seconds:10,.0f} rec/s  CPU {fig.cpu:7.2f} s  "
          f"peak RSS {fig.rss_mb:6.0f} MB  load {fig.load:4.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000, help="orders (and CSV rows)")
    parser.add_argument("--csv-rows", type=int, help="CSV rows (default: --records)")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--pipelines", default=",".join(SHOP + CSV), help="comma-separated subset")
    parser.add_argument("--work", type=Path, default=ROOT / "var" / "bench",
                        help="data sets, the dlt virtualenv and scratch files")
    parser.add_argument("--dlt-venv", type=Path, help="an existing virtualenv with dlt[postgres]")
    args = parser.parse_args()
    chosen = args.pipelines.split(",")
    unknown = set(chosen) - set(SHOP + CSV)
    if unknown:
        sys.exit(f"unknown pipelines: {', '.join(sorted(unknown))} (known: {', '.join(SHOP + CSV)})")
    args.work.mkdir(parents=True, exist_ok=True)
    csv_rows = args.csv_rows or args.records
    print(f"{os.cpu_count()} CPUs; load average now {os.getloadavg()[0]:.1f}")
    if any(p.startswith(("crmhub", "csv-crmhub")) for p in chosen):
        byte_compile()
    dlt_py = dlt_python(args.dlt_venv or args.work / "dlt-venv") if "dlt" in chosen else None

    sys.path.insert(0, str(ROOT))
    from connectors.shopify import queries

    query = args.work / "orders.graphql"
    query.write_text(queries.page_query(queries.ORDERS_WITH_STAFF))
    results: dict[str, list[Figure]] = {}
    shop = [p for p in SHOP if p in chosen]
    csvs = [p for p in CSV if p in chosen]
    server = None
    try:
        if shop:
            server, port = start_server(args.records, args.work / f"shop-{args.records}")
            print(f"\nShopify-shaped orders: {args.records:,} full load, then a 1% re-sync "
                  f"({args.records // 100:,} changed)")
            for rep in range(1, args.reps + 1):
                print(f"repetition {rep}")
                for name in shop:
                    full, resync = shop_pipeline(name, port, args.work, query, dlt_py)
                    show(f"{name} full", full, args.records)
                    results.setdefault(f"{name} full", []).append(full)
                    if resync:
                        show(f"{name} 1% re-sync", resync, args.records // 100)
                        results.setdefault(f"{name} resync", []).append(resync)
        if csvs:
            csv_path = args.work / f"leads-{csv_rows}.csv"
            if not csv_path.exists():
                write_csv(csv_path, csv_rows)
            print(f"\nCSV leads: {csv_rows:,} rows, {csv_path.stat().st_size / 2**20:,.0f} MB")
            for rep in range(1, args.reps + 1):
                print(f"repetition {rep}")
                for name in csvs:
                    fig = csv_pipeline(name, csv_path, args.work)
                    show(name, fig, csv_rows)
                    results.setdefault(name, []).append(fig)
    finally:
        if server is not None:
            server.terminate()
            server.wait()
    summarize(results, args.records, csv_rows)


def summarize(results: dict[str, list[Figure]], records: int, csv_rows: int) -> None:
    med = {k: Figure(*(statistics.median(getattr(f, a) for f in figs) for a in ("seconds", "cpu", "rss_mb", "load")))
           for k, figs in results.items()}
    print("\nmedians")
    for key, fig in med.items():
        n = records // 100 if key.endswith("resync") else csv_rows if key.startswith("csv") else records
        show(key, fig, n)

    def ratio(label: str, ours: str, theirs: str, goal: str) -> None:
        if ours in med and theirs in med:
            print(f"  {label:58} {med[theirs].seconds / med[ours].seconds:6.2f}x   goal {goal}")

    print("\nratios (throughput of the first over the second; from the medians above)")
    ratio("crmhub-pg full / raw-copy full", "crmhub-pg full", "raw-copy full", ">= 0.50x")
    ratio("crmhub-pg full / dlt full", "crmhub-pg full", "dlt full", ">= 5x")
    ratio("crmhub-pg 1% re-sync / raw-upsert 1% re-sync", "crmhub-pg resync", "raw-upsert resync", ">= 0.50x")
    ratio("crmhub-pg 1% re-sync / dlt 1% re-sync", "crmhub-pg resync", "dlt resync", "-")
    ratio("csv-crmhub-pg / csv-psql (\\copy)", "csv-crmhub-pg", "csv-psql", ">= 0.40x")
    ratio("crmhub-sqlite full / crmhub-pg full", "crmhub-sqlite full", "crmhub-pg full", ">= 0.50x")
    ratio("crmhub-sqlite 1% re-sync / crmhub-pg 1% re-sync", "crmhub-sqlite resync", "crmhub-pg resync", ">= 0.50x")
    ratio("csv-crmhub-sqlite / csv-crmhub-pg", "csv-crmhub-sqlite", "csv-crmhub-pg", ">= 0.50x")
    peak = max((f.rss_mb for k, f in med.items() if "crmhub" in k), default=None)
    if peak is not None:
        print(f"  {'crmhub peak RSS (largest median)':58} {peak:6.0f} MB  goal <= 150 MB")


if __name__ == "__main__":
    main()
