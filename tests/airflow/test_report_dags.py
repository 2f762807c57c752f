"""Real Airflow: a crmhub_report_<name> DAG per reports: entry, model before report, and a
real run that mails the report through an SMTP server found via the smtp_default connection."""

from __future__ import annotations

import json
import shutil
import socket

import pytest
import yaml
from aiosmtpd.controller import Controller

from crm_model import db
from tests.airflow.test_dags import PARSE, ROOT, airflow_env, run_airflow_python  # noqa: F401 (fixture)
from tests.conftest import rows
from tests.reports import fixtures
from tests.reports.test_delivery import Mailbox

pytestmark = pytest.mark.airflow

TASKS = """
    import json
    from airflow.dag_processing.dagbag import DagBag
    bag = DagBag(dag_folder="{dags}")
    dag = bag.get_dag("crmhub_report_weekly_sales")
    print("RESULT=" + json.dumps({{"errors": {{k: str(v) for k, v in bag.import_errors.items()}},
        "tasks": {{t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks}},
        "schedule": str(dag.schedule), "tags": sorted(dag.tags)}}))
"""

RUN = """
    import json
    from airflow.dag_processing.dagbag import DagBag
    run = DagBag(dag_folder="{dags}").get_dag("crmhub_report_weekly_sales").test(conn_file_path="{conns}")
    print("RESULT=" + json.dumps({{"state": str(run.state)}}))
"""


def test_report_dag_runs_model_then_report_and_mails_it(airflow_env, tmp_path, sqlite_template):  # noqa: F811
    warehouse = tmp_path / "warehouse.db"
    shutil.copy(sqlite_template, warehouse)
    url = f"sqlite:///{warehouse}"
    engine = db.connect(url)
    fixtures.load(engine)
    box = Mailbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = Controller(box, hostname="127.0.0.1", port=port)
    server.start()
    try:
        config = tmp_path / "crmhub.yml"
        config.write_text(yaml.safe_dump({
            "warehouse": {"url": url},
            "reports": {"weekly_sales": {"report": "sales", "schedule": "0 7 * * 1", "period": fixtures.PERIOD,
                                         "recipients": ["boss@example.com"]}},
            "smtp": {"sender": "reports@example.com"},  # host and port: from Airflow's smtp_default
        }))
        parsed = run_airflow_python(airflow_env, TASKS.format(dags=ROOT / "dags"), config)
        assert parsed["errors"] == {}
        assert parsed["tasks"] == {"model": ["report"], "report": []}
        assert parsed["tags"] == ["crmhub", "report", "sales"] and "0 7 * * 1" in parsed["schedule"]

        conns = tmp_path / "connections.json"
        conns.write_text(json.dumps({"smtp_default": {"conn_type": "smtp", "host": "127.0.0.1", "port": port}}))
        result = run_airflow_python(airflow_env, RUN.format(dags=ROOT / "dags", conns=conns), config)
        assert result == {"state": "success"}
    finally:
        server.stop()
    (msg,) = box.received
    assert msg["Subject"] == "Sales report: 01 Mar 2026 - 31 Mar 2026" and msg["To"] == "boss@example.com"
    (run,) = rows(engine, "report_run")
    assert run["status"] == "success" and run["name"] == "weekly_sales" and run["recipients"] == ["boss@example.com"]
    engine.dispose()
