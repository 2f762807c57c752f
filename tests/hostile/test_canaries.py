"""Canary secrets: a unique value for every secret of every connector, every failure path.

Each connector is run, through the real `crmhub` command and a real Airflow dag.test(),
against hostile servers on 127.0.0.1: unreachable, a 401 that echoes every header and
query value it received, a redirect to another host (which echoes the same), an HTML
page served with 200 that echoes them too, and tokens with a trailing newline (as
mounted Kubernetes secrets have). Then the canaries are looked for everywhere a secret
could leak: stdout, stderr, DEBUG logs, `sync_run`, `rejected_record`, the Airflow
task log, and what the other host received. None may be found.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from crm_model import db
from tests.conftest import rows

ROOT = Path(__file__).resolve().parents[2]
CRMHUB = Path(sys.executable).parent / "crmhub"
CANARIES = {
    "TYPEFORM_TOKEN": "canary_typeform_token_7f3a91",
    "WOO_KEY": "ck_canary_woo_key_52be0c",
    "WOO_SECRET": "cs_canary_woo_secret_d81f44",
    "WOOQ_KEY": "ck_canary_wooq_key_19ac7e",
    "WOOQ_SECRET": "cs_canary_wooq_secret_6e02b9",
    "STRIPE_KEY": "sk_test_canary_stripe_a4c8d2",
    "SHOPIFY_TOKEN": "shpat_canary_shopify_3b9e17",
    "GOOGLE_TOKEN": "ya29_canary_google_c05f6a",
    "FORM_SECRET": "canary_webhook_form_secret_90d1e3",
}


def echo(request: Request, status: int = 401, html: bool = False) -> Response:
    """Everything the request carried, echoed back: the worst a source can do."""
    seen = {"headers": dict(request.headers), "query": request.query_string.decode(), "path": request.path}
    if html:
        return Response(f"<html><body><pre>{json.dumps(seen)}</pre></body></html>", status=200,
                        content_type="text/html")
    return Response(json.dumps({"message": f"invalid credentials {json.dumps(seen)}",
                                "errors": [{"message": json.dumps(seen)}]}), status=status,
                    content_type="application/json")


@pytest.fixture
def other_host() -> Iterator[HTTPServer]:
    server = HTTPServer(host="localhost", port=0)
    server.expect_request("").respond_with_handler(echo)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sources(base_url: str) -> dict:
    common = {"base_url": base_url, "max_retries": 1, "timeout": 10}
    return {
        "forms": {"connector": "typeform", "config": {**common, "token": "${TYPEFORM_TOKEN}", "forms": ["abc"]}},
        "shop": {"connector": "woocommerce", "config": {
            **common, "consumer_key": "${WOO_KEY}", "consumer_secret": "${WOO_SECRET}", "currency": "USD"}},
        "shop_qs": {"connector": "woocommerce", "config": {
            **common, "consumer_key": "${WOOQ_KEY}", "consumer_secret": "${WOOQ_SECRET}", "currency": "USD",
            "query_string_auth": True}},
        "payments": {"connector": "stripe", "config": {**common, "secret_key": "${STRIPE_KEY}"}},
        "store": {"connector": "shopify", "config": {**common, "access_token": "${SHOPIFY_TOKEN}"}},
        "gforms": {"connector": "google_forms", "config": {**common, "access_token": "${GOOGLE_TOKEN}",
                                                            "forms": ["abc"]}},
        "website": {"connector": "webhook", "config": {"forms": {"contact": {"secret": "${FORM_SECRET}"}}}},
    }


def crmhub(config: Path, *args: str, env: dict[str, str]) -> str:
    done = subprocess.run([str(CRMHUB), *args, "--config", str(config)], capture_output=True, text=True,
                          env=env, timeout=600)
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return f"$ crmhub {' '.join(args)} -> {done.returncode}\n{done.stdout}\n{done.stderr}"


def find_canaries(text: str) -> list[str]:
    return [name for name, value in CANARIES.items() if value in text]


def warehouse_text(url: str) -> str:
    engine = db.connect(url)
    try:
        return json.dumps([rows(engine, "sync_run"), rows(engine, "rejected_record")], default=str)
    finally:
        engine.dispose()


@pytest.mark.parametrize("path", ["unreachable", "echo_401", "redirect_elsewhere", "html_200", "newline_token"])
def test_no_canary_anywhere(path, tmp_path, warehouse_url, httpserver, other_host):
    if warehouse_url.startswith("postgresql") and path not in ("echo_401", "newline_token"):
        pytest.skip("the other paths store the same errors on either warehouse; SQLite is enough")
    env = {**os.environ, "CRMHUB_LOG_LEVEL": "DEBUG",
           **{k: v + ("\n" if path == "newline_token" else "") for k, v in CANARIES.items()}}
    if path == "unreachable":
        base_url = f"http://127.0.0.1:{closed_port()}"
    else:
        base_url = f"http://127.0.0.1:{httpserver.port}"
        if path == "redirect_elsewhere":
            httpserver.expect_request("").respond_with_handler(lambda r: Response(
                "", status=302, headers={"Location": other_host.url_for(r.path) + "?" + r.query_string.decode()}))
        else:
            httpserver.expect_request("").respond_with_handler(lambda r: echo(r, html=path == "html_200"))
    config = tmp_path / "crmhub.yml"
    config.write_text(yaml.safe_dump({"warehouse": {"url": warehouse_url}, "sources": sources(base_url)}))

    output = crmhub(config, "sync", env=env)
    assert "-> 1" in output.splitlines()[0], output  # every pulled source failed
    output += crmhub(config, "status", env=env)
    if path in ("echo_401", "newline_token"):
        for name in ("forms", "shop", "shop_qs", "payments", "store", "gforms"):
            output += crmhub(config, "connectors", "check", name, env=env)
    stored = warehouse_text(warehouse_url)
    elsewhere = "\n".join(f"{req.full_path} {req.headers}" for req, _ in other_host.log)

    assert find_canaries(output) == [], output
    assert find_canaries(stored) == [], stored
    assert find_canaries(elsewhere) == [], elsewhere
    if path == "redirect_elsewhere":
        assert other_host.log, "the redirect was followed (without credentials)"
    assert stored.count('"failed"') >= 6


AIRFLOW_RUN = """
    import json
    from airflow.dag_processing.dagbag import DagBag
    bag = DagBag(dag_folder="{dags}")
    assert not bag.import_errors, bag.import_errors
    states = {{}}
    for dag_id in ("crmhub_sync_shop_qs", "crmhub_sync_forms", "crmhub_sync_payments"):
        dag = bag.get_dag(dag_id)
        states[dag_id] = [str(dag.test().state), str(dag.default_args.get("execution_timeout"))]
    print("RESULT=" + json.dumps(states))
"""


@pytest.mark.airflow
def test_no_canary_in_airflow_task_logs(airflow_env, tmp_path, postgres_url, httpserver):
    httpserver.expect_request("").respond_with_handler(echo)
    config = tmp_path / "crmhub.yml"
    config.write_text(yaml.safe_dump({"warehouse": {"url": postgres_url}, "sources": {
        name: {**source, "retries": 0} for name, source in sources(f"http://127.0.0.1:{httpserver.port}").items()}}))
    env = {**airflow_env, **CANARIES, "CRMHUB_CONFIG": str(config), "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO"}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(AIRFLOW_RUN.format(dags=ROOT / "dags"))],
                          env=env, capture_output=True, text=True, timeout=900)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT=")]
    assert lines, done.stdout[-3000:] + done.stderr[-3000:]
    states = json.loads(lines[-1][len("RESULT="):])
    assert all(state == "failed" for state, _ in states.values()), states
    assert all(timeout == "6:00:00" for _, timeout in states.values()), states  # execution_timeout
    logs = done.stdout + done.stderr
    logs += "".join(p.read_text(errors="replace") for p in Path(airflow_env["AIRFLOW_HOME"]).rglob("*.log"))
    assert "401" in logs  # the task log does tell what failed
    assert find_canaries(logs) == [], logs[-5000:]
    assert find_canaries(warehouse_text(postgres_url)) == []
