"""The docker-compose topology with real processes (deploy/local-celery.sh): Airflow's
api-server, scheduler and dag-processor with the CeleryExecutor, a Celery worker on
Redis at 127.0.0.1:6379, Airflow metadata and the warehouse in two local PostgreSQL
databases. Two source syncs and the asset-triggered model DAG run to success through
the real scheduler, then the warehouse is checked and everything started is stopped."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
import yaml
from sqlalchemy.engine import make_url

from crm_model import db
from tests.conftest import PG_ADMIN_URL, rows

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "local-celery.sh"
pytestmark = [pytest.mark.airflow, pytest.mark.slow]
DEADLINE = 1200  # seconds: a bound for a hung topology on a loaded machine, not a speed claim


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture
def topology(tmp_path):
    if not _redis_up():
        pytest.fail("Redis must answer on 127.0.0.1:6379 (.ci/run starts it)")
    suffix = uuid.uuid4().hex[:8]
    admin = make_url(PG_ADMIN_URL)
    airflow_db = admin.set(database=f"crmhub_af_{suffix}").render_as_string(hide_password=False)
    warehouse = admin.set(database=f"crmhub_wh_{suffix}").render_as_string(hide_password=False)
    engine = db.connect(PG_ADMIN_URL)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f"CREATE DATABASE crmhub_wh_{suffix}")
    (tmp_path / "leads.csv").write_text("id,name,email,submitted_at\n"
                                        "1,Ada Lovelace,ada@example.com,2026-03-01T10:00:00Z\n"
                                        "2,Grace Hopper,grace@example.org,2026-03-02T10:00:00Z\n")
    (tmp_path / "people.csv").write_text("id,name,email,phone\n"
                                         "p7,Ada Lovelace,ADA@example.com,+49 30 1234567\n")
    config = tmp_path / "crmhub.yml"
    config.write_text(yaml.safe_dump({
        "warehouse": {"url": warehouse},
        "sources": {"leads": {"connector": "csv", "config": {"path": "leads.csv", "entity": "lead", "key": "id"}},
                    "people": {"connector": "csv", "config": {"path": "people.csv", "entity": "person", "key": "id"}}},
    }))
    port = _free_port()
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "airflow"), "AIRFLOW_DB_URL": airflow_db,
           "CELERY_BROKER_URL": f"redis://127.0.0.1:6379/{int(suffix, 16) % 16}",
           "AIRFLOW_API_PORT": str(port), "AIRFLOW_WORKER_LOG_PORT": str(_free_port()), "CRMHUB_CONFIG": str(config),
           "CRMHUB_BIN": str(Path(sys.executable).parent), "AIRFLOW_DAG_REFRESH": "5"}
    try:
        started = subprocess.run(["bash", str(SCRIPT), "start"], env=env, capture_output=True, text=True,
                                 timeout=DEADLINE)
        assert started.returncode == 0, started.stderr[-3000:]
        yield f"http://127.0.0.1:{port}/api/v2", warehouse, env
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True, text=True, timeout=1200)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for name in (f"crmhub_af_{suffix}", f"crmhub_wh_{suffix}"):
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        engine.dispose()


def _wait(what: str, check, deadline: float):
    while time.monotonic() < deadline:
        try:
            result = check()
        except requests.RequestException:  # a busy api-server on a loaded machine: ask again
            result = None
        if result:
            return result
        time.sleep(2)
    pytest.fail(f"gave up waiting for {what}")


def _runs(api: str, dag_id: str) -> list[dict]:
    response = requests.get(f"{api}/dags/{dag_id}/dagRuns", timeout=120)
    response.raise_for_status()
    return response.json()["dag_runs"]


def test_two_syncs_and_the_asset_triggered_model_run_on_celery(topology):
    api, warehouse, env = topology
    deadline = time.monotonic() + DEADLINE
    dags = ("crmhub_sync_leads", "crmhub_sync_people", "crmhub_model")

    def parsed():
        listed = requests.get(f"{api}/dags", params={"limit": 100}, timeout=120).json()["dags"]
        return {d["dag_id"] for d in listed} >= set(dags)

    _wait("the dag-processor to parse the DAGs", parsed, deadline)
    for dag_id in dags:
        _wait(f"{dag_id} to be unpaused", lambda d=dag_id: requests.patch(
            f"{api}/dags/{d}", json={"is_paused": False}, timeout=120).ok, deadline)
    for dag_id in dags[:2]:  # (a retried trigger may make two runs: fine, a sync is idempotent)
        _wait(f"{dag_id} to be triggered", lambda d=dag_id: _runs(api, d) or requests.post(
            f"{api}/dags/{d}/dagRuns", json={"logical_date": None}, timeout=120).ok, deadline)

    def syncs_done():
        runs = {d: [r["state"] for r in _runs(api, d)] for d in dags[:2]}
        assert all("failed" not in states for states in runs.values()), runs
        return all(states and set(states) == {"success"} for states in runs.values())

    _wait("both syncs to succeed", syncs_done, deadline)

    wanted = {"crmhub://warehouse/raw/leads", "crmhub://warehouse/raw/people"}

    def model_done():
        runs = _runs(api, "crmhub_model")
        assert all(r["state"] != "failed" for r in runs), runs
        if not runs or any(r["state"] != "success" for r in runs):
            return False
        # every sync's asset event was consumed by a successful model run (one run each, or one for both)
        seen = set()
        for run in runs:
            assert run["run_type"] == "asset_triggered"
            events = requests.get(f"{api}/dags/crmhub_model/dagRuns/{quote(run['dag_run_id'], safe='')}"
                                  "/upstreamAssetEvents", timeout=120).json()["asset_events"]
            seen |= {e["uri"] for e in events}
        return seen >= wanted

    _wait("the asset-triggered model run(s) to succeed", model_done, deadline)

    engine = db.connect(warehouse)
    try:
        runs = rows(engine, "sync_run")
        assert {(r["source"], r["status"]) for r in runs} == {("leads", "success"), ("people", "success")}
        assert {r["source"]: r["records_loaded"] for r in runs if r["records_loaded"]} == {"leads": 2, "people": 1}
        persons = {p["email"]: p for p in rows(engine, "person")}
        assert set(persons) == {"ada@example.com", "grace@example.org"}
        assert persons["ada@example.com"]["phone"] == "+49301234567"  # the person source joined the lead
    finally:
        engine.dispose()
