"""Real Airflow: the DAG folder parses cleanly, and the DAGs really run (dag.test()).

Airflow runs in subprocesses with their own AIRFLOW_HOME and a SQLite metadata DB, so
its global settings never leak into the rest of the suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from crm_model import db
from tests.conftest import rows

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.airflow


@pytest.fixture(scope="session")
def airflow_env(tmp_path_factory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("airflow_home")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "2",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env,
                          capture_output=True, text=True, timeout=1800)  # a bound for a hang; 5 min was hit under load
    assert done.returncode == 0, done.stderr[-2000:]
    return env


def run_airflow_python(env: dict[str, str], code: str, config: Path, timeout: int = 300) -> dict:
    """Run ``code`` under Airflow; it must print one JSON line prefixed RESULT=."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                          env={**env, "CRMHUB_CONFIG": str(config)},
                          capture_output=True, text=True, timeout=timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT=")]
    assert done.returncode == 0 and lines, f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
    return json.loads(lines[-1][len("RESULT="):])


PARSE = """
    import json
    from airflow.dag_processing.dagbag import DagBag
    bag = DagBag(dag_folder="{dags}")
    dags = {{d.dag_id: {{"tags": sorted(d.tags), "schedule": str(d.schedule) if d.schedule else None,
                       "retries": [t.retries for t in d.tasks], "catchup": d.catchup,
                       "max_active_runs": d.max_active_runs,
                       "outlets": [[str(o.uri) for o in t.outlets] for t in d.tasks]}}
            for d in bag.dags.values()}}
    print("RESULT=" + json.dumps({{"errors": {{k: str(v) for k, v in bag.import_errors.items()}}, "dags": dags}}))
"""


def test_dag_folder_parses_with_50_sources_and_no_secrets_or_warehouse(airflow_env, tmp_path):
    sources = {f"reps_{i:02d}": {"connector": "csv", "schedule": "*/15 * * * *", "retries": 3,
                                 "config": {"path": f"leads_{i}.csv", "entity": "lead", "key": "id",
                                            "delimiter": "${NOT_SET_ANYWHERE}"}}
               for i in range(50)}
    config = tmp_path / "crmhub.yml"
    # an unreachable warehouse and unset secrets: parsing must touch neither
    config.write_text(yaml.safe_dump({"warehouse": {"url": "postgresql+psycopg://nobody@127.0.0.1:1/none"},
                                      "sources": sources}))
    result = run_airflow_python(airflow_env, PARSE.format(dags=ROOT / "dags"), config)
    assert result["errors"] == {}
    dags = result["dags"]
    assert len(dags) == 51 and "crmhub_model" in dags
    sync = dags["crmhub_sync_reps_07"]
    assert sync["tags"] == ["crmhub", "csv", "sync"]
    assert sync["retries"] == [3] and sync["catchup"] is False and sync["max_active_runs"] == 1
    assert sync["outlets"] == [["crmhub://warehouse/raw/reps_07"]]
    assert "crmhub://warehouse/raw/reps_49" in dags["crmhub_model"]["schedule"]


def test_missing_config_is_a_clear_import_error(airflow_env, tmp_path):
    result = run_airflow_python(airflow_env, PARSE.format(dags=ROOT / "dags"), tmp_path / "absent.yml")
    (error,) = result["errors"].values()
    assert "absent.yml not found" in error


RUN = """
    import json
    from airflow.dag_processing.dagbag import DagBag
    bag = DagBag(dag_folder="{dags}")
    states = {{}}
    for dag_id in ("crmhub_sync_rep_leads", "crmhub_model"):
        run = bag.get_dag(dag_id).test(variable_file_path="{variables}")
        states[dag_id] = str(run.state)
    print("RESULT=" + json.dumps(states))
"""


def test_sync_and_model_dags_run_for_real(airflow_env, tmp_path, warehouse_url):
    (tmp_path / "leads.csv").write_text(
        "id,name,email,submitted_at\n"
        "1,Ada Lovelace,ada@example.com,2026-03-01T10:00:00Z\n"
        "2,Grace Hopper,grace@example.org,2026-03-02T10:00:00Z\n"
        "3,Broken,not-an-email,2026-03-03T10:00:00Z\n"
    )
    config = tmp_path / "crmhub.yml"
    config.write_text(yaml.safe_dump({
        "warehouse": {"url": warehouse_url},
        "sources": {"rep_leads": {"connector": "csv", "schedule": "@daily", "config": {
            "path": "leads.csv", "entity": "lead", "key": "id",
            "encoding": "${CRMHUB_TEST_CSV_ENCODING}"}}},  # an Airflow variable, not in the environment
    }))
    variables = tmp_path / "variables.json"
    variables.write_text('{"CRMHUB_TEST_CSV_ENCODING": "utf-8"}')
    states = run_airflow_python(airflow_env, RUN.format(dags=ROOT / "dags", variables=variables), config)
    assert states == {"crmhub_sync_rep_leads": "success", "crmhub_model": "success"}
    engine = db.connect(warehouse_url)
    try:
        (run,) = rows(engine, "sync_run")
        assert (run["status"], run["records_read"], run["records_loaded"], run["records_rejected"]) == (
            "success", 3, 2, 1)
        assert {p["email"] for p in rows(engine, "person")} == {"ada@example.com", "grace@example.org"}
        assert all(lead["person_id"] for lead in rows(engine, "lead"))
    finally:
        engine.dispose()


FAIL_RUN = """
    import json
    from airflow.dag_processing.dagbag import DagBag
    bag = DagBag(dag_folder="{dags}")
    run = bag.get_dag("crmhub_sync_rep_leads").test(variable_file_path="{variables}")
    tis = [{{"task": ti.task_id, "state": str(ti.state), "try": ti.try_number}} for ti in run.get_task_instances()]
    print("RESULT=" + json.dumps({{"state": str(run.state), "tis": tis}}))
"""


def test_a_config_error_fails_at_once_and_names_where_it_looked(airflow_env, tmp_path, warehouse_url):
    """A secret that is nowhere will not appear on retry: no retries, and the error says where it looked."""
    (tmp_path / "leads.csv").write_text("id,email\n1,ada@example.com\n")
    config = tmp_path / "crmhub.yml"
    config.write_text(yaml.safe_dump({
        "warehouse": {"url": warehouse_url},
        "sources": {"rep_leads": {"connector": "csv", "schedule": "@daily", "retries": 3, "config": {
            "path": "leads.csv", "entity": "lead", "key": "id", "encoding": "${CRMHUB_TEST_NOWHERE}"}}},
    }))
    variables = tmp_path / "variables.json"
    variables.write_text("{}")
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(FAIL_RUN.format(dags=ROOT / "dags",
                                                                                 variables=variables))],
                          env={**airflow_env, "CRMHUB_CONFIG": str(config)}, capture_output=True, text=True,
                          timeout=600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT=")]
    assert lines, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT="):])
    assert result["state"] == "failed"
    assert result["tis"] == [{"task": "sync", "state": "failed", "try": 1}] or all(
        ti["state"] == "failed" and ti["try"] == 1 for ti in result["tis"]), result
    output = done.stdout + done.stderr
    assert ("CRMHUB_TEST_NOWHERE is not set (looked up as: environment variable CRMHUB_TEST_NOWHERE, "
            "Airflow variable CRMHUB_TEST_NOWHERE, password of Airflow connection crmhub_test_nowhere)") in output
