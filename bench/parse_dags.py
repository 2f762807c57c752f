"""Benchmark: how long Airflow takes to parse dags/ with N sources in crmhub.yml.

    python bench/parse_dags.py            # 50 sources, 5 parses
    python bench/parse_dags.py --sources 200

Runs Airflow's own DagBag in a child process with a throw-away AIRFLOW_HOME; prints the
time DagBag records for processing the file (what the scheduler pays on every parse).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import json, time
from airflow.dag_processing.dagbag import DagBag
times = []
for _ in range({repeat}):
    started = time.perf_counter()
    bag = DagBag(dag_folder="{dags}")
    wall = time.perf_counter() - started
    stats = bag.dagbag_stats[0]
    times.append({{"dags": len(bag.dags), "errors": len(bag.import_errors),
                  "file_seconds": stats.duration.total_seconds() if hasattr(stats.duration, "total_seconds")
                  else float(stats.duration), "wall": wall}})
print("RESULT=" + json.dumps(times))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    kinds = ["csv", "typeform", "shopify", "woocommerce", "stripe", "google_forms"]
    with tempfile.TemporaryDirectory(prefix="crmhub-parse-") as tmp:
        config = Path(tmp) / "crmhub.yml"
        config.write_text(yaml.safe_dump({
            "warehouse": {"url": "postgresql+psycopg://nobody@127.0.0.1:1/none"},
            "sources": {f"s{i:03d}": {"connector": kinds[i % len(kinds)], "schedule": "*/15 * * * *",
                                      "config": {"token": "${UNSET_SECRET}"}} for i in range(args.sources)}}))
        env = {**os.environ, "AIRFLOW_HOME": tmp, "CRMHUB_CONFIG": str(config), "PYTHONPATH": str(ROOT),
               "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR"}
        done = subprocess.run([sys.executable, "-c", CHILD.format(dags=ROOT / "dags", repeat=args.repeat)],
                              env=env, capture_output=True, text=True)
        line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT=")), None)
        if done.returncode != 0 or line is None:
            sys.exit(done.stderr[-3000:])
        runs = json.loads(line[len("RESULT="):])
        first, rest = runs[0], runs[1:] or runs
        print(f"{args.sources} sources -> {first['dags']} DAGs, {first['errors']} import errors")
        print(f"first parse (cold imports): {first['file_seconds']:.3f}s")
        print(f"later parses: {min(r['file_seconds'] for r in rest):.3f}s to {max(r['file_seconds'] for r in rest):.3f}s")


if __name__ == "__main__":
    main()
