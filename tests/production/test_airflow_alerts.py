"""A sync that fails under real Airflow alerts operations through the DAG's failure callback."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.airflow.test_dags import ROOT, airflow_env, run_airflow_python  # noqa: F401 (fixture)

pytestmark = pytest.mark.airflow

RUN = """
    import json
    from airflow.dag_processing.dagbag import DagBag
    bag = DagBag(dag_folder="{dags}")
    run = bag.get_dag("crmhub_sync_reps").test()
    print("RESULT=" + json.dumps({{"state": str(run.state)}}))
"""


def test_failed_sync_task_sends_the_alert_with_a_link_to_the_run(airflow_env, tmp_path, httpserver):  # noqa: F811
    httpserver.expect_request("/alert", method="POST").respond_with_data("ok")
    config = tmp_path / "crmhub.yml"
    config.write_text(yaml.safe_dump({
        "warehouse": {"url": f"sqlite:///{tmp_path}/w.db"},
        "sources": {"reps": {"connector": "csv", "schedule": "@daily", "retries": 0,
                             "config": {"path": "nowhere/leads.csv", "entity": "lead", "key": "id"}}},
        "alerts": {"webhook_url": httpserver.url_for("/alert")},
    }))
    env = {**airflow_env, "AIRFLOW__API__BASE_URL": "http://airflow.example.com:8080"}
    from crmhub.cli import main

    assert main(["init", "--config", str(config)]) == 0
    result = run_airflow_python(env, RUN.format(dags=ROOT / "dags"), config)
    assert result["state"] == "failed"
    (request, _), = httpserver.log
    text = json.loads(request.data)["text"]
    assert text.startswith("crmhub: sync reps failed at ")
    assert "Run: http://airflow.example.com:8080/dags/crmhub_sync_reps/runs/" in text
