"""One sync per source at a time, whoever starts it (Airflow, a cron job, a person).

PostgreSQL: a session advisory lock, released by the server if the process dies.
SQLite: an exclusive file lock beside the database file, released by the OS likewise.

A PostgreSQL lock can be lost while the run goes on: its session ends when the server
restarts or an administrator terminates the backend. The engine asks
:meth:`HeldLock.check` before each page, so a run that lost its lock stops there with
:class:`LockLost` instead of writing beside a second sync that took the lock since.
"""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from crmhub.errors import CrmhubError


class SourceBusy(CrmhubError):
    """Another sync of the same source is running."""


class LockLost(CrmhubError):
    """The run's lock on its source is gone (its PostgreSQL session ended)."""


def _lock_id(source: str) -> int:
    return int.from_bytes(hashlib.sha1(f"crmhub-sync:{source}".encode()).digest()[:8], "big", signed=True)


# pg_locks shows a bigint advisory key as classid (high 32 bits) and objid (low 32 bits).
_HELD = text("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
             "AND pid = pg_backend_pid() AND objsubid = 1 "
             "AND classid::bigint = :hi AND objid::bigint = :lo)")


class HeldLock:
    """The lock a run holds; :meth:`check` raises :class:`LockLost` once it is gone."""

    def __init__(self, source: str, conn: Connection | None = None):
        self.source = source
        self.conn = conn
        self.lost = False

    def check(self) -> None:
        if self.conn is None:
            return  # a file lock lives as long as this process
        if not self.lost:
            key = _lock_id(self.source) & 0xFFFF_FFFF_FFFF_FFFF
            try:
                held = self.conn.execute(_HELD, {"hi": key >> 32, "lo": key & 0xFFFF_FFFF}).scalar()
                self.conn.commit()
            except SQLAlchemyError:
                held = False
            self.lost = not held
        if self.lost:
            raise LockLost(
                f"{self.source}: this run lost its lock on the source (its PostgreSQL session ended: "
                "a server restart or a terminated backend); stopped before the next page so that it "
                "cannot write beside another sync. Committed pages are kept; run the sync again")

    def release(self) -> None:
        if self.conn is None or self.lost:
            return
        try:
            self.conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _lock_id(self.source)})
            self.conn.commit()
        except SQLAlchemyError:  # the session is gone, and the lock with it
            pass


@contextmanager
def source_lock(engine: Engine, source: str) -> Iterator[HeldLock]:
    busy = SourceBusy(f"another sync of {source!r} is running; try again when it has finished")
    if engine.dialect.name == "postgresql":
        conn = engine.connect()
        try:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _lock_id(source)}).scalar()
            conn.commit()
            if not got:
                raise busy
            lock = HeldLock(source, conn)
            try:
                yield lock
            finally:
                lock.release()
        finally:
            try:
                conn.close()
            except SQLAlchemyError:
                pass
        return
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield HeldLock(source)
        return
    path = Path(f"{database}.{source}.lock")
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy from None
        try:
            yield HeldLock(source)
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
