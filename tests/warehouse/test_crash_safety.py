"""SIGKILL a real `crmhub sync` at 20 points across extract, load and state write;
the next run must end with exactly the rows of a clean run, and the stored cursor
must never be ahead of the committed data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select, text

from crm_model import db
from crm_model.load import TABLES
from tests.conftest import snapshot

pytestmark = pytest.mark.slow

FILES, ROWS_PER_FILE, PAGE_ROWS = 3, 400, 100  # 12 pages
# checkpoint:nth -- extract (page read, nothing written), raw (raw rows written),
# load (unified rows written), state (cursor written, not committed), commit (after commit)
KILL_POINTS = [f"{name}:{n}" for name in ("extract", "raw", "load", "state", "commit") for n in (1, 4, 9, 12)]
COMPARED = ("raw_record", "lead", "source_person", "touchpoint", "rejected_record", "sync_state")
BOOKKEEPING = ("extracted_at", "rejected_at", "updated_at", "sync_run_id")


def make_files(folder: Path) -> None:
    for f in range(FILES):
        lines = ["lead_id,name,email,submitted_at,utm_source"]
        for i in range(ROWS_PER_FILE):
            n = f * ROWS_PER_FILE + i
            email = f"person{n % 700}@example.com" if n % 37 else "broken-address"
            lines.append(f"L{n},Person {n},{email},2026-02-{1 + n % 28:02d}T10:00:00Z,src{n % 5}")
        (folder / f"leads_{f}.csv").write_text("\n".join(lines) + "\n")


def crmhub(config: Path, *args: str, kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "CRMHUB_CONFIG": str(config)}
    env.pop("CRMHUB_KILL_AT", None)
    if kill_at:
        env["CRMHUB_KILL_AT"] = kill_at
    return subprocess.run([sys.executable, "-m", "crmhub", *args, "--quiet"] if args[0] == "sync"
                          else [sys.executable, "-m", "crmhub", *args],
                          env=env, capture_output=True, text=True, timeout=120)


def stable(engine) -> dict:
    snap = snapshot(engine, COMPARED)
    for table in snap.values():
        for row in table:
            for col in BOOKKEEPING:
                row.pop(col, None)
    return snap


def reset(engine) -> None:
    with engine.begin() as conn:
        for table in TABLES:
            conn.execute(text(f"DELETE FROM {table}"))


def cursor_not_ahead(engine) -> None:
    """Every file mark in sync_state covers only rows that are committed in raw_record."""
    with engine.connect() as conn:
        state = conn.execute(text("SELECT state FROM sync_state")).scalar()
        if state is None:
            return
        if isinstance(state, str):
            import json
            state = json.loads(state)
        for path, mark in state["files"].items():
            landed = conn.execute(select(func.count()).select_from(TABLES["raw_record"]).where(
                TABLES["raw_record"].c.payload.isnot(None),
                TABLES["raw_record"].c.record_key.in_([f"L{n}" for n in range(
                    int(Path(path).stem.split("_")[1]) * ROWS_PER_FILE,
                    int(Path(path).stem.split("_")[1]) * ROWS_PER_FILE + mark["rows"])]),
            )).scalar_one()
            assert landed == mark["rows"], f"cursor for {path} says {mark['rows']} rows, {landed} committed"


def test_sigkill_anywhere_then_resume_equals_a_clean_run(tmp_path, warehouse_url):
    make_files(tmp_path)
    config = tmp_path / "crmhub.yml"
    config.write_text(yaml.safe_dump({
        "warehouse": {"url": warehouse_url},
        "sources": {"reps": {"connector": "csv", "config": {
            "path": "leads_*.csv", "entity": "lead", "key": "lead_id", "page_rows": PAGE_ROWS}}},
    }))
    engine = db.connect(warehouse_url)
    try:
        clean = crmhub(config, "sync")
        assert clean.returncode == 0, clean.stderr
        expected = stable(engine)
        assert len(expected["raw_record"]) == FILES * ROWS_PER_FILE
        assert len(expected["rejected_record"]) == len([n for n in range(FILES * ROWS_PER_FILE) if n % 37 == 0])

        for point in KILL_POINTS:
            reset(engine)
            killed = crmhub(config, "sync", kill_at=point)
            assert killed.returncode == -9, f"{point}: not killed ({killed.returncode}) {killed.stderr}"
            cursor_not_ahead(engine)
            resumed = crmhub(config, "sync")
            assert resumed.returncode == 0, f"{point}: {resumed.stderr}"
            assert stable(engine) == expected, f"after a kill at {point} the tables differ from a clean run"
            with engine.connect() as conn:
                statuses = [r[0] for r in conn.execute(text("SELECT status FROM sync_run ORDER BY sync_run_id"))]
            assert statuses == ["aborted", "success"], point
    finally:
        engine.dispose()
