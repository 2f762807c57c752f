"""Warehouse connection and migrations."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, ProgrammingError

from crm_model.paths import sql_dir
from crmhub.errors import WarehouseError

MIGRATIONS = Path(__file__).parent / "migrations"
VIEWS_DIR = sql_dir() / "views"
# view name -> its CREATE VIEW statement, one file each, comments stripped
VIEWS = {
    path.stem: "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("--"))
    .strip().rstrip(";")
    for path in sorted(VIEWS_DIR.glob("*.sql"))
}


def connect(url: str) -> Engine:
    """An engine for the warehouse URL; the SQLite file's folder is created if needed."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise WarehouseError(f"warehouse url {url!r} is not a database URL") from exc
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    from crm_model.load import json_serializer

    try:
        engine = create_engine(parsed, future=True, json_serializer=json_serializer)
    except (ArgumentError, ModuleNotFoundError) as exc:
        raise WarehouseError(f"cannot use warehouse {parsed.render_as_string()}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        _sqlite_binds_none_and_bools_directly()
        event.listen(engine, "connect", _sqlite_pragmas)
    # A rolled-back transaction also undid the staging tables it created (crm_model.load).
    event.listen(engine, "rollback", _forget_staging)
    return engine


@contextmanager
def snapshot_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that reads one snapshot of the warehouse from its first statement on,
    for `crmhub model`: it derives from the rows marked pending and then clears the marks,
    so a row a sync writes while it runs must neither be cleared unread nor half-read.
    PostgreSQL: REPEATABLE READ (a row written since the snapshot is not seen, so it stays
    pending for the next run; one the run clears after a sync changed it fails the run
    with :class:`ConcurrentWrite` and undoes it all). SQLite: the write lock is taken at
    the start (BEGIN IMMEDIATE), and a sync's next batch waits for the commit."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ")
        try:
            with conn.begin():
                if conn.dialect.name == "sqlite":
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                yield conn
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) == "40001":  # serialization_failure
                raise ConcurrentWrite("a sync wrote rows this model run was deriving from while it ran; "
                                      "nothing of the run was kept: run `crmhub model` again") from exc
            raise


def tidy_after(engine: Engine, tables: Iterable[str]) -> None:
    """PostgreSQL: VACUUM (ANALYZE) ``tables``, in which a model run rewrote many rows, once
    it has committed. Each rewritten row leaves a dead version behind in the table and in
    its indexes until a vacuum; a first run over 1,270,000 leads, touchpoints and orders
    left their ``model_pending`` indexes full of them, and with no statistics the planner
    read those tables whole for their pending rows: the next run with nothing new took
    4.0 s, and the count of pending records read 1,010,000 dead index entries. Autovacuum
    does this eventually where it is on (it is off on some servers, as on this project's
    test machine); a no-op on SQLite."""
    tables = sorted(tables)
    if engine.dialect.name != "postgresql" or not tables:
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in tables:
            conn.exec_driver_sql(f"VACUUM (ANALYZE) {table}")


class ConcurrentWrite(WarehouseError):
    """A model run's rows were written by another transaction while it ran (PostgreSQL)."""


def _forget_staging(conn) -> None:
    # A connection the server dropped is invalidated: its staging tables went with it, and
    # so does this note (``info`` lives as long as the DBAPI connection). Touching it then
    # would raise PendingRollbackError in place of the error that ended the transaction.
    if not conn.invalidated:
        conn.connection.info.pop("crmhub_staged", None)


@cache
def _sqlite_binds_none_and_bools_directly() -> None:
    """Python's sqlite3 binds an int, a float, a str or bytes as it is, and anything else
    (None, True, False) only after looking for an adapter: a look-up in its registry, then
    of ``__adapt__`` and ``__conform__``, about 0.2 us a value. None is the commonest
    value a warehouse row binds (most fields of most persons, leads and orders are empty):
    800,000 person rows of 23 values, 42% of them None (a model run from scratch at
    1,000,000 records), took 4.8 s to bind and insert that way and 3.1 s with these
    adapters (a test apart). An adapter registered for a type is found at the first
    look-up: None stays None (``{}.get(None)``, a call in C) and a bool becomes the 0 or 1
    SQLite stores for it anyway. The driver's registry is the process's: set once."""
    sqlite3.register_adapter(type(None), {}.get)
    sqlite3.register_adapter(bool, int)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # WAL lets `crmhub status` and analysts read while a sync writes; a busy
    # timeout makes a second writer wait instead of failing at once.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def describe(engine: Engine) -> str:
    """The engine's URL without its password, for messages."""
    return engine.url.render_as_string(hide_password=True)


def check_reachable(engine: Engine) -> None:
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise WarehouseError(f"cannot reach warehouse {describe(engine)}: {reason}") from exc


@cache
def _alembic_config():
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def migrate(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the warehouse schema (what `crmhub init` does)."""
    from alembic import command

    check_reachable(engine)
    cfg = _alembic_config()
    with engine.begin() as conn:
        # Views (sql/views) are dropped around the upgrade, so no migration trips over a
        # view that depends on a column it changes, and re-created from their files.
        for name, _ in VIEWS.items():
            conn.exec_driver_sql(f"DROP VIEW IF EXISTS {name}")
        cfg.attributes["connection"] = conn
        try:
            command.upgrade(cfg, revision)
        finally:
            cfg.attributes.pop("connection", None)
        for sql in VIEWS.values():
            conn.exec_driver_sql(sql)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


_REVISION = re.compile(r"^(down_revision|revision)\s*(?::[^=]*)?=\s*(.+?)\s*$", re.M)


@cache
def _head_from_files() -> str:
    """The head revision read from the migration files' ``revision``/``down_revision`` lines.

    ``require_current`` runs before every sync; importing Alembic's runtime for it costs
    more than a small sync. Anything unusual (merges, branches) asks Alembic instead.
    """
    revisions, parents = set(), set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = dict((k, v) for k, v in _REVISION.findall(path.read_text()))
        if "revision" not in found:
            return head_revision()
        revisions.add(found["revision"].strip("'\""))
        down = found.get("down_revision", "None")
        if down != "None":
            if not (down[:1] in "'\"" and down[-1:] == down[:1]):
                return head_revision()  # a tuple: a merge
            parents.add(down.strip("'\""))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else head_revision()


def require_current(engine: Engine) -> None:
    """Fail with a clear message when the warehouse is missing or behind the code."""
    check_reachable(engine)
    with engine.connect() as conn:
        try:
            have = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        except (OperationalError, ProgrammingError):  # no such table
            raise WarehouseError(f"warehouse {describe(engine)} is not initialised: run `crmhub init`") from None
    if have is None:
        raise WarehouseError(f"warehouse {describe(engine)} is not initialised: run `crmhub init`")
    want = _head_from_files()
    if have != want:
        raise WarehouseError(
            f"warehouse {describe(engine)} is at schema {have}, code expects {want}: run `crmhub init`"
        )
