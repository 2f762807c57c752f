"""Shared fixtures: a real warehouse on SQLite AND on PostgreSQL for every test that asks.

PostgreSQL comes from CRMHUB_TEST_POSTGRES_URL (default: the local server with trust
auth). Each test session creates its own database and drops it at the end.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, select
from sqlalchemy.engine import make_url

from crm_model import db
from crm_model.load import TABLES
from crmhub import config as config_mod

PG_ADMIN_URL = os.environ.get("CRMHUB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
FIXTURES = Path(__file__).parent / "fixtures"
# Real vendor payloads from public repositories, kept in the repository with their
# sources and licences (tests/fixtures/public/SOURCES.md), so a fresh clone tests alone.
SHARED_FIXTURES = FIXTURES / "public"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "warehouse.db"
    engine = db.connect(f"sqlite:///{path}")
    db.migrate(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    admin = db.connect(PG_ADMIN_URL)
    name = f"crmhub_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    except Exception as exc:
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is required for the warehouse tests: {exc}")
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    engine = db.connect(url)
    db.migrate(engine)
    engine.dispose()
    yield url
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def warehouse_url(request, tmp_path) -> str:
    """A migrated, empty warehouse: a fresh SQLite file, or the session's PostgreSQL database emptied."""
    if request.param == "sqlite":
        path = tmp_path / "warehouse.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_url")
    engine = db.connect(url)
    with engine.begin() as conn:
        names = ", ".join(TABLES)
        conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY")
    engine.dispose()
    return url


@pytest.fixture
def warehouse(warehouse_url) -> Iterator[Engine]:
    engine = db.connect(warehouse_url)
    yield engine
    engine.dispose()


@pytest.fixture
def write_config(tmp_path, warehouse_url):
    """Write a crmhub.yml into tmp_path (warehouse = the test's) and load it."""

    def write(sources: dict[str, Any], **extra: Any) -> config_mod.Config:
        doc = {"warehouse": {"url": warehouse_url}, "sources": sources, **extra}
        path = tmp_path / "crmhub.yml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return config_mod.load(path)

    return write


def rows(engine: Engine, table: str, order_by: str | None = None) -> list[dict[str, Any]]:
    """All rows of a table as dicts, in primary-key order (or ``order_by``)."""
    t = TABLES[table]
    order = [t.c[order_by]] if order_by else list(t.primary_key.columns)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(t).order_by(*order))]


def snapshot(engine: Engine, tables: tuple[str, ...]) -> dict[str, list[dict[str, Any]]]:
    return {t: rows(engine, t) for t in tables}


def load_json(*parts: str) -> Any:
    import json

    return json.loads((FIXTURES.joinpath(*parts)).read_text())
