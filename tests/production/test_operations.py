"""Operations: backfills that keep cursors, freshness exit codes, alerts by email and webhook."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import socket
import time

import pytest
import yaml
from aiosmtpd.controller import Controller

from connectors.sdk import Connector, ConnectorConfig, StreamState, stream
from crm_model import db
from crm_model.sync import load_state, sync
from crmhub import alerts
from crmhub import config as config_mod
from crmhub.cli import main
from tests.conftest import rows


class DatedConfig(ConnectorConfig):
    records: list[dict]


class Dated(Connector):
    """Records with an updated date; reads those at or after where the state says to start."""

    Config = DatedConfig

    @stream(primary_key="id", cursor="updated", ordered=True)
    def people(self, state: StreamState):
        since = state.since()
        yield [r for r in self.config.records
               if since is None or dt.datetime.fromisoformat(r["updated"]) >= since]


RECORDS = [{"id": i, "email": f"p{i}@example.com", "updated": f"2026-03-{i:02d}T00:00:00+00:00"}
           for i in range(1, 11)]


def test_since_backfill_rereads_without_moving_the_cursor(warehouse):
    first = Dated(DatedConfig(records=RECORDS), source="crm", start_date=dt.date(2026, 3, 1))
    sync(warehouse, "crm", first, "feed_dated")
    with warehouse.connect() as conn:
        cursor_before = load_state(conn, "crm", "people")
    assert cursor_before["cursor"] == "2026-03-10T00:00:00+00:00"

    # a record from March 3 was changed at the source without its date moving: only a backfill sees it
    changed = [dict(r, email="new3@example.com") if r["id"] == 3 else r for r in RECORDS]
    backfill = sync(warehouse, "crm", Dated(DatedConfig(records=changed), source="crm"), "feed_dated",
                    since=dt.date(2026, 3, 2))
    assert backfill.status == "success" and backfill.read == 9
    with warehouse.connect() as conn:
        assert load_state(conn, "crm", "people") == cursor_before  # untouched
    raw = {r["record_key"]: r["payload"] for r in rows(warehouse, "raw_record")}
    assert raw["3"]["email"] == "new3@example.com" and len(raw) == 10

    # the next incremental run resumes exactly where it was
    again = sync(warehouse, "crm", Dated(DatedConfig(records=changed), source="crm"), "feed_dated")
    assert again.read == 1  # only the record at the cursor itself (>=)


def test_since_is_validated_on_the_command_line(tmp_path, capsys):
    cfg = tmp_path / "crmhub.yml"
    cfg.write_text(yaml.safe_dump({"warehouse": {"url": f"sqlite:///{tmp_path}/w.db"}, "sources": {}}))
    assert main(["sync", "--since", "last tuesday", "--config", str(cfg)]) != 0
    assert "is not a date" in capsys.readouterr().err


def _status_config(tmp_path, url, freshness):
    (tmp_path / "leads.csv").write_text("id,email\n1,ada@example.com\n")
    path = tmp_path / "crmhub.yml"
    path.write_text(yaml.safe_dump({"warehouse": {"url": url}, "sources": {"reps": {
        "connector": "csv", "freshness": freshness,
        "config": {"path": "leads.csv", "entity": "lead", "key": "id"}}}}))
    return path


def test_status_exits_1_when_a_source_is_past_its_freshness(tmp_path, warehouse_url, capsys):
    path = _status_config(tmp_path, warehouse_url, "2h")
    assert main(["status", "--config", str(path)]) == 1  # never succeeded
    assert "reps has not succeeded within its freshness window (2h)" in capsys.readouterr().err
    assert main(["sync", "reps", "-q", "--config", str(path)]) == 0
    assert main(["status", "--config", str(path)]) == 0
    engine = db.connect(warehouse_url)
    with engine.begin() as conn:  # the last success was three hours ago
        conn.exec_driver_sql("UPDATE sync_run SET finished_at = finished_at - INTERVAL '3 hours'"
                             if engine.dialect.name == "postgresql" else
                             "UPDATE sync_run SET finished_at = datetime(finished_at, '-3 hours')")
    engine.dispose()
    assert main(["status", "--config", str(path)]) == 1


# ------------------------------------------------------------------------- alerts


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content,
                                                                          policy=email.policy.default)))
        return "250 OK"


@pytest.fixture
def smtp_server():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, inbox
    controller.stop()


def _alert_config(tmp_path, warehouse_url, smtp_port, webhook):
    path = tmp_path / "crmhub.yml"
    path.write_text(yaml.safe_dump({
        "warehouse": {"url": warehouse_url},
        "sources": {"reps": {"connector": "csv", "retries": 0,
                             "config": {"path": "missing-*.csv", "entity": "lead", "key": "id"}},
                    "api": {"connector": "typeform", "retries": 0,
                            "config": {"token": "${ALERT_TEST_TOKEN}", "forms": ["f1"],
                                       "base_url": "http://127.0.0.1:9/", "max_retries": 0, "timeout": 2}}},
        "smtp": {"host": "127.0.0.1", "port": smtp_port, "sender": "crmhub@example.com"},
        "alerts": {"email": ["ops@example.com"], "webhook_url": "${ALERT_TEST_WEBHOOK}"},
    }))
    return path


def test_failed_cli_sync_alerts_by_email_and_webhook(tmp_path, warehouse_url, smtp_server, httpserver,
                                                     monkeypatch, capsys):
    port, inbox = smtp_server
    monkeypatch.setenv("ALERT_TEST_TOKEN", "tok-canary-5f1e")
    monkeypatch.setenv("ALERT_TEST_WEBHOOK", httpserver.url_for("/hooks/T000/B000/canary-hook"))
    httpserver.expect_request("/hooks/T000/B000/canary-hook", method="POST").respond_with_data("ok")
    path = _alert_config(tmp_path, warehouse_url, port, None)
    assert main(["init", "--config", str(path)]) == 0
    assert main(["sync", "api", "-q", "--alert", "--config", str(path)]) == 1
    (request, _), = httpserver.log
    text = json.loads(request.data)["text"]
    assert text.startswith("crmhub: sync api failed at ") and "run " in text
    for _ in range(100):
        if inbox.messages:
            break
        time.sleep(0.05)
    (rcpt, message), = inbox.messages
    assert rcpt == ["ops@example.com"] and message["Subject"] == "[crmhub] sync api failed"
    body = message.get_content()
    assert "sync api failed" in body
    printed = capsys.readouterr()
    for secret in ("tok-canary-5f1e", "canary-hook"):
        assert secret not in text and secret not in body and secret not in printed.out + printed.err


def test_a_broken_alert_channel_is_logged_and_does_not_raise(tmp_path, warehouse_url, caplog, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    monkeypatch.setenv("ALERT_TEST_WEBHOOK", f"http://127.0.0.1:{dead}/hooks/secret-path")
    cfg = config_mod.load(_alert_config(tmp_path, warehouse_url, dead, None))
    assert alerts.send(cfg, alerts.Alert("sync reps", "boom")) == []
    assert "alert email" in caplog.text and "alert webhook failed" in caplog.text
    assert "secret-path" not in caplog.text
