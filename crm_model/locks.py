"""One sync per source at a time, whoever starts it (Airflow, a cron job, a person).

PostgreSQL: a session advisory lock, released by the server if the process dies.
SQLite: an exclusive file lock beside the database file, released by the OS likewise.
"""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text

from crmhub.errors import CrmhubError


class SourceBusy(CrmhubError):
    """Another sync of the same source is running."""


def _lock_id(source: str) -> int:
    return int.from_bytes(hashlib.sha1(f"crmhub-sync:{source}".encode()).digest()[:8], "big", signed=True)


@contextmanager
def source_lock(engine: Engine, source: str) -> Iterator[None]:
    busy = SourceBusy(f"another sync of {source!r} is running; try again when it has finished")
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _lock_id(source)}).scalar()
            conn.commit()
            if not got:
                raise busy
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _lock_id(source)})
                conn.commit()
        return
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    path = Path(f"{database}.{source}.lock")
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
