"""The engine against runs that never end and a PostgreSQL lock that goes away."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import text

from connectors.sdk import Connector, ConnectorConfig, StreamState, stream
from crm_model import db
from crm_model.sync import sync
from tests.conftest import PG_ADMIN_URL, rows

CRMHUB = Path(sys.executable).parent / "crmhub"


class Endless(Connector):
    """A source whose pagination never ends; ``between`` runs before every page after the first."""

    Config = ConnectorConfig

    def __init__(self, between=None, **kw):
        super().__init__(ConnectorConfig(), **kw)
        self.between = between

    @stream(primary_key="id")
    def items(self, state: StreamState) -> Iterator[list[dict]]:
        n = 0
        while True:
            if n and self.between:
                self.between(n)
            yield [{"id": f"{n}-{i}"} for i in range(10)]
            n += 1


def test_a_pagination_that_never_ends_stops_at_max_pages(warehouse):
    result = sync(warehouse, "endless", Endless(), "endless", max_pages=7)
    assert result.status == "failed"
    [error] = result.errors
    assert "stopped after 7 pages in one run (max_pages)" in error
    [run] = rows(warehouse, "sync_run")
    assert (run["status"], run["pages"], run["records_read"]) == ("failed", 7, 70)
    assert "max_pages" in run["error"]


def _terminate(url: str, where: str) -> int:
    admin = db.connect(url)
    try:
        with admin.connect() as conn:
            done = conn.execute(text(f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE {where} "
                                     "AND pid <> pg_backend_pid()")).scalar()
            conn.commit()
            return done
    finally:
        admin.dispose()


def test_a_run_that_loses_its_lock_stops_at_the_next_page(warehouse_url):
    if not warehouse_url.startswith("postgresql"):
        pytest.skip("advisory locks are PostgreSQL's; SQLite's file lock lives as long as the process")
    engine = db.connect(warehouse_url)

    def kill_lock_holder(page: int) -> None:
        if page == 2:  # pages 0 and 1 are in; now the lock's session dies
            killed = _terminate(warehouse_url, "pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory')")
            assert killed == 1

    try:
        result = sync(engine, "locked", Endless(between=kill_lock_holder), "endless", max_pages=50)
        assert result.status == "failed"
        [error] = result.errors
        assert "lost its lock on the source" in error and "Traceback" not in error
        [run] = rows(engine, "sync_run")
        assert run["status"] == "failed" and run["pages"] == 2
        # the lock is free again: the next run starts
        assert sync(engine, "locked", Endless(), "endless", max_pages=3).status == "failed"
    finally:
        engine.dispose()


def test_terminating_the_backends_mid_sync_is_one_line_and_exit_1(tmp_path, postgres_url):
    engine = db.connect(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE sync_run, sync_state, raw_record, rejected_record, lead, "
                             "source_person, touchpoint RESTART IDENTITY")
    csv = tmp_path / "leads.csv"
    with csv.open("w") as out:
        out.write("lead_id,email,name\n")
        for n in range(200_000):
            out.write(f"L{n},lead{n}@example.com,Lead {n}\n")
    config = tmp_path / "crmhub.yml"
    config.write_text(yaml.safe_dump({"warehouse": {"url": postgres_url}, "sources": {"leads": {
        "connector": "csv", "config": {"path": str(csv), "entity": "lead", "key": "lead_id", "page_rows": 500}}}}))
    proc = subprocess.Popen([str(CRMHUB), "sync", "leads", "--quiet", "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        for _ in range(3000):  # wait until pages are landing
            with engine.connect() as conn:
                pages = conn.execute(text("SELECT coalesce(max(pages), 0) FROM sync_run")).scalar()
            if pages >= 2 or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()
        dbname = engine.url.database
        assert _terminate(PG_ADMIN_URL, f"datname = '{dbname}' AND application_name NOT LIKE 'pytest%'") >= 1
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    engine.dispose()
    engine = db.connect(postgres_url)
    output = out + err
    assert proc.returncode == 1, output
    assert "Traceback" not in output and "PendingRollbackError" not in output and "[SQL:" not in output
    # one message (printed with the run's summary, and logged): the lock or the connection was lost
    errors = [line for line in output.splitlines() if "error" in line.lower() or ": failed:" in line]
    assert errors, output
    phrase = "lost its lock" if "lost its lock" in output else "warehouse connection was lost"
    assert all(phrase in line for line in errors), output
    [run] = rows(engine, "sync_run")
    assert run["status"] != "running"
    engine.dispose()


def test_a_connection_dropped_inside_a_transaction_reports_its_own_error(warehouse_url):
    """The rollback after a dropped connection must not hide the drop behind a PendingRollbackError
    (it did when the server went away between a page's savepoint and its release)."""
    engine = db.connect(warehouse_url)
    try:
        with pytest.raises(RuntimeError, match="the server went away"), engine.begin() as conn:
            conn.execute(text("SELECT 1"))
            conn.connection.info["crmhub_staged"] = {"lead"}
            conn.invalidate()  # what SQLAlchemy does when the server closes the connection
            raise RuntimeError("the server went away")
        with engine.begin() as conn:  # the pool hands out a new connection, with nothing staged
            assert conn.execute(text("SELECT 1")).scalar() == 1
            assert "crmhub_staged" not in conn.connection.info
    finally:
        engine.dispose()
