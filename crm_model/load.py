"""Bulk upserts by primary key, the same on SQLite and PostgreSQL.

PostgreSQL: a batch of keys not in the table yet is COPYed straight into it (under a
savepoint); otherwise rows are COPYed into a temporary staging table shaped like the
target, then merged with one ``INSERT ... SELECT ... ON CONFLICT DO UPDATE`` per batch.
SQLite: one executemany of ``INSERT ... ON CONFLICT DO UPDATE``.
Either way the caller's transaction decides when the rows become visible.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import JSON, Connection, Table, func, text, true
from sqlalchemy.dialects import postgresql, sqlite

from crm_model.schema import Base
from crm_model.types import UtcDateTime

TABLES: dict[str, Table] = dict(Base.metadata.tables)


class JsonText(str):
    """A JSON document already serialised: written to JSON columns as it is."""


def json_dumps(value: Any) -> str:
    try:
        return orjson.dumps(value, default=json_default, option=orjson.OPT_PASSTHROUGH_DATETIME).decode()
    except TypeError:  # what orjson refuses (integers beyond 64 bits, non-text keys)
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=json_default)


def json_serializer(value: Any) -> str:
    """The engine's JSON serialiser: a document already serialised is written as it is."""
    return value if isinstance(value, JsonText) else json_dumps(value)


def json_default(value: Any) -> Any:
    """JSON for what connectors and mappings hand over beyond plain JSON types."""
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, float):  # numpy's float64 and other float subclasses orjson leaves to us
        return float(value)
    if type(value).__module__ == "numpy" and hasattr(value, "item"):  # numpy scalars: their Python value
        return value.item()
    return str(value)  # Decimal, UUID, ...: their text form is exact


class Upserter:
    """Writes batches of row dicts into tables, keyed by each table's primary key."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.dialect = conn.dialect.name

    def upsert(
        self,
        table: Table | str,
        rows: Sequence[dict[str, Any]],
        *,
        update_if_changed: Sequence[str] | None = None,
        insert_only: bool = False,
        keep_known: bool = False,
        skip_unchanged: bool = False,
    ) -> None:
        """Insert ``rows``, or update the existing row with the same key.

        ``update_if_changed``: update only where one of these columns differs (so an
        unchanged record leaves its row untouched). ``insert_only``: never update.
        ``keep_known``: a NULL never overwrites a known value (for facts that accumulate,
        like a person's details seen in several streams). ``skip_unchanged``: update
        only where some column differs (``update_if_changed`` naming every column): a
        record read again unchanged costs a comparison, not a new row version.
        Rows may carry different columns (missing ones are NULL); the last row wins for
        a repeated key. A table with a ``model_pending`` column (what ``crmhub model``
        derives from) gets it set on every row inserted or updated, unless the rows name it:
        its default on insert, ``true`` on update; it is never compared for a change.
        """
        if not rows:
            return
        table = TABLES[table] if isinstance(table, str) else table
        pk = [c.name for c in table.primary_key.columns]
        first = rows[0].keys()
        columns = list(first)
        if any(r.keys() != first for r in rows):  # rows name different columns: missing ones are NULL
            seen = dict.fromkeys(columns)
            for r in rows:
                seen.update(dict.fromkeys(r))
            columns = list(seen)
            rows = [{c: r.get(c) for c in columns} for r in rows]
        rows = _last_per_key(rows, pk)
        if skip_unchanged and update_if_changed is None:
            update_if_changed = [c for c in columns if c not in pk]
        pending = "model_pending" in table.c and "model_pending" not in columns
        args = (table, pk, columns, rows, update_if_changed, insert_only, keep_known, pending)
        if self.dialect == "postgresql":
            self._pg_upsert(*args)
        else:
            self._generic_upsert(*args)

    def insert(self, table: Table | str, rows: Sequence[dict[str, Any]]) -> None:
        """Insert ``rows`` (all with the same columns; keys the database assigns, or new
        ones). SQLite: the bind processors per column and one driver executemany, as in
        :meth:`upsert` (SQLAlchemy's per-row bookkeeping cost ~20 us a row). PostgreSQL:
        one COPY (SQLAlchemy's batched INSERTs took 9 s for the 200,000 person_merge rows
        of a model run from scratch at 1,000,000 records)."""
        if not rows:
            return
        table = TABLES[table] if isinstance(table, str) else table
        if self.dialect == "postgresql":
            columns = list(rows[0])
            _copy(self.conn, f"COPY {table.name} ({', '.join(columns)}) FROM STDIN",
                  self._pg_tuples(table, columns, rows))
            return
        stmt = sqlite.insert(table) if self.dialect == "sqlite" else None
        if stmt is None:
            self.conn.execute(table.insert(), rows)
            return
        columns = tuple(rows[0])
        sql, names, processors = _compiled_sqlite(stmt.compile(dialect=self.conn.dialect, column_keys=columns),
                                                  columns)
        self._sqlite_executemany(sql, names, processors, rows)

    def _sqlite_executemany(self, sql: str, names: Sequence[str], processors: list, rows: Sequence[dict]) -> None:
        """``rows`` as tuples of ``names``, each column through its type's bind processor
        (what SQLAlchemy would store, without its per-row bookkeeping), in one driver executemany."""
        given = list(zip(*_tuples(rows, list(names)), strict=True))
        for i, process in processors:
            column = given[i]
            first = column[0]
            # one value for every row (a run's timestamp): processed once (SQLAlchemy formats
            # SQLite's timestamps in Python: 0.54 s of the 201,760 person_merge rows of a
            # model run from scratch at 1,000,000 records)
            if all(value is first for value in column):
                given[i] = [process(first)] * len(column)
            else:
                given[i] = list(map(process, column))
        cursor = self.conn.connection.driver_connection.cursor()
        try:
            cursor.executemany(sql, list(zip(*given, strict=True)))
        finally:
            cursor.close()

    def delete_keys(self, table: Table | str, keys: Iterable[dict[str, Any]]) -> None:
        table = TABLES[table] if isinstance(table, str) else table
        keys = list(keys)
        if not keys:
            return
        pk = [c for c in table.primary_key.columns]
        cond = " AND ".join(f"{c.name} = :{c.name}" for c in pk)
        self.conn.execute(text(f"DELETE FROM {table.name} WHERE {cond}"), keys)

    # ------------------------------------------------------------------ SQLite (and others)

    def _generic_upsert(self, table, pk, columns, rows, update_if_changed, insert_only, keep_known, pending):
        insert = (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)
        updates = [c for c in columns if c not in pk]
        if insert_only or not updates:
            stmt = insert.on_conflict_do_nothing(index_elements=pk)
        else:
            where = None
            if update_if_changed:  # keep_known: a NULL is no change
                where = _or(*((func.coalesce(insert.excluded[c], table.c[c]) if keep_known else insert.excluded[c])
                              .is_distinct_from(table.c[c]) for c in update_if_changed))
            new = {c: insert.excluded[c] for c in updates}
            if keep_known:
                new = {c: func.coalesce(v, table.c[c]) for c, v in new.items()}
            if pending:
                new["model_pending"] = true()
            stmt = insert.on_conflict_do_update(index_elements=pk, set_=new, where=where)
        if self.dialect != "sqlite":
            self.conn.execute(stmt, rows)
            return
        # SQLite: the statement compiled once per shape, the rows turned into tuples column
        # by column with the column types' own bind processors (what SQLAlchemy would
        # store, without its per-row bookkeeping), then one executemany on the driver.
        compiled = stmt.compile(dialect=self.conn.dialect, column_keys=columns)
        sql, names, processors = _compiled_sqlite(compiled, tuple(columns))
        if not set(names) <= set(columns):  # a statement with parameters of its own
            self.conn.execute(stmt, rows)
            return
        # in key order: neighbouring keys land in the same B-tree pages, which then are in
        # SQLite's page cache for the next row instead of read again (a large table's
        # inserts otherwise touch a page far from the last one, each a read)
        with contextlib.suppress(TypeError):  # keys that do not compare (mixed types) stay as they are
            rows = sorted(rows, key=itemgetter(*pk))
        self._sqlite_executemany(sql, names, processors, rows)

    # ------------------------------------------------------------------ PostgreSQL

    @staticmethod
    def _pg_tuples(table: Table, columns: list[str], rows: Sequence[dict[str, Any]]) -> list[tuple]:
        """``rows`` as tuples of ``columns``, as COPY takes them: only JSON and timestamp
        columns need converting; the rest go as they are."""
        convert = [(i, f) for i, c in enumerate(columns) if (f := _pg_converter(table.c[c].type)) is not _identity]
        tuples = _tuples(rows, columns)
        for i, f in convert:  # column by column: one cheap pass each, no per-row Python frame
            given = list(map(itemgetter(i), tuples))
            done = [f(value) for value in given]
            if any(a is not b for a, b in zip(done, given, strict=True)):  # JSON not serialised yet
                tuples = [(*t[:i], value, *t[i + 1:]) for t, value in zip(tuples, done, strict=True)]
        return tuples

    def _pg_upsert(self, table, pk, columns, rows, update_if_changed, insert_only, keep_known, pending):
        col_list = ", ".join(columns)
        tuples = self._pg_tuples(table, columns, rows)
        if self._copy_new(table, pk, columns, col_list, tuples):
            return
        staging = f"crmhub_stage_{table.name}"
        # Temporary tables live as long as the database connection: remember them on it
        # (connections are pooled) and create each once, not on every batch.
        staged = self.conn.connection.info.setdefault("crmhub_staged", set())
        if staging not in staged:
            self.conn.exec_driver_sql(
                f"CREATE TEMP TABLE IF NOT EXISTS {staging} "
                f"(LIKE {table.name} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            )
            staged.add(staging)
        _copy(self.conn, f"COPY {staging} ({col_list}) FROM STDIN", tuples)
        updates = [c for c in columns if c not in pk]
        conflict = f"ON CONFLICT ({', '.join(pk)}) "
        if insert_only or not updates:
            conflict += "DO NOTHING"
        else:
            value = "COALESCE(EXCLUDED.{c}, {t}.{c})" if keep_known else "EXCLUDED.{c}"
            conflict += "DO UPDATE SET " + ", ".join(
                f"{c} = " + value.format(c=c, t=table.name) for c in updates
            ) + (", model_pending = true" if pending else "")
            if update_if_changed:
                conflict += " WHERE " + " OR ".join(
                    _pg_changed(table, c, keep_known) for c in update_if_changed
                )
        self.conn.exec_driver_sql(
            f"INSERT INTO {table.name} ({col_list}) SELECT {col_list} FROM {staging} {conflict}"
        )
        # emptied for the next batch of this transaction; the commit empties it anyway (ON
        # COMMIT DELETE ROWS). A DELETE of a few thousand rows costs less than a TRUNCATE,
        # which gives the table a new file every time.
        self.conn.exec_driver_sql(f"DELETE FROM {staging}")

    def _copy_new(self, table, pk: list[str], columns: list[str], col_list: str, tuples: list[tuple]) -> bool:
        """COPY a batch straight into its table when none of its keys is there yet.

        A first load is all new keys: one COPY into the table instead of a COPY into
        staging plus an ``INSERT ... ON CONFLICT`` (about half the database's work).
        The COPY runs under a savepoint; a known key makes PostgreSQL refuse it, the
        savepoint undoes it, and the caller merges the batch as usual (the same rows as
        an upsert would have written either way). A table whose batch held a known key
        is not tried again for the next 1, 2, 4, ... (at most 64) batches on this
        connection. Where this connection has no evidence yet (its first batch for the
        table, or the first after such a pause), the batch's first and last keys are
        looked up before: a re-sync's first batch, all known keys, is then merged
        without a refused COPY. A table whose last batch went straight in is not asked
        (each extra round trip costs the writer up to a GIL switch interval).
        """
        if len(tuples) < DIRECT_MIN_ROWS:
            return False
        skips = self.conn.connection.info.setdefault("crmhub_direct_skip", {})
        wait, streak = skips.get(table.name, (0, None))  # None: nothing tried yet
        if wait > 0:
            skips[table.name] = (wait - 1, streak)
            return False
        if streak != 0 and self._known(table, pk, columns, (tuples[0], tuples[-1])):
            return _pause(skips, table.name, streak or 0)
        from psycopg.errors import UniqueViolation  # PostgreSQL only (psycopg: 0.08 s to import)

        self.conn.exec_driver_sql("SAVEPOINT crmhub_direct")
        try:
            _copy(self.conn, f"COPY {table.name} ({col_list}) FROM STDIN", tuples)
        except UniqueViolation:
            self.conn.exec_driver_sql("ROLLBACK TO SAVEPOINT crmhub_direct")
            self.conn.exec_driver_sql("RELEASE SAVEPOINT crmhub_direct")
            return _pause(skips, table.name, streak or 0)
        self.conn.exec_driver_sql("RELEASE SAVEPOINT crmhub_direct")
        skips[table.name] = (0, 0)
        return True

    def _known(self, table, pk: list[str], columns: list[str], samples: tuple[tuple, ...]) -> bool:
        """Whether the key of any of ``samples`` (rows as tuples of ``columns``) is in ``table``."""
        at = [columns.index(c) for c in pk]
        keys = [tuple(row[i] for i in at) for row in samples]
        one = "(" + ", ".join(["%s"] * len(pk)) + ")"
        sql = (f"SELECT 1 FROM {table.name} WHERE ({', '.join(pk)}) IN ({', '.join([one] * len(keys))}) LIMIT 1")
        return self.conn.exec_driver_sql(sql, tuple(v for key in keys for v in key)).first() is not None


def _pause(skips: dict[str, tuple[int, int | None]], table: str, streak: int) -> bool:
    """No direct COPY into ``table`` for the next 1, 2, 4, ... (at most 64) batches."""
    skips[table] = (2**streak, min(streak + 1, 6))
    return False


def _copy(conn: Connection, sql: str, tuples: list[tuple]) -> None:
    cursor = conn.connection.driver_connection.cursor()
    with cursor.copy(sql) as copy:
        write = copy.write_row
        for values in tuples:
            write(values)


# Batches this small are merged through staging at once (a refused COPY would cost more
# than it could save).
DIRECT_MIN_ROWS = 64

_SQLITE_COMPILED: dict[tuple[str, tuple[str, ...]], tuple[str, tuple[str, ...], list]] = {}


def _pg_changed(table: Table, column: str, keep_known: bool) -> str:
    """Whether an upsert changes ``column`` of an existing row, in SQL."""
    new = f"COALESCE(EXCLUDED.{column}, {table.name}.{column})" if keep_known else f"EXCLUDED.{column}"
    old = f"{table.name}.{column}"
    if _pg_converter(table.c[column].type) is _pg_json:  # json has no equality operator; its text has
        new, old = f"CAST({new} AS TEXT)", f"CAST({old} AS TEXT)"
    return f"{new} IS DISTINCT FROM {old}"


def _compiled_sqlite(compiled, columns: tuple[str, ...]):
    """(SQL, parameter names in order, [(position, bind processor)]) of a compiled upsert."""
    key = (compiled.string, columns)
    found = _SQLITE_COMPILED.get(key)
    if found is None:
        names = tuple(compiled.positiontup)
        binds = compiled._bind_processors  # SQLAlchemy's per-type processors (dates, JSON, ...)
        processors = [(i, binds[n]) for i, n in enumerate(names) if binds.get(n) is not None]
        found = _SQLITE_COMPILED[key] = (compiled.string, names, processors)
    return found


def _or(first, *rest):
    for clause in rest:
        first = first | clause
    return first


def _last_per_key(rows: Sequence[dict[str, Any]], pk: list[str]) -> list[dict[str, Any]]:
    # keys by itemgetter and the dict built by zip: in C (a repeated key keeps its first
    # place and its last row, as assigning in a loop would)
    by_key = dict(zip(map(itemgetter(*pk), rows), rows, strict=True))
    return list(by_key.values()) if len(by_key) != len(rows) else list(rows)


def _tuples(rows: Sequence[dict[str, Any]], columns: list[str]) -> list[tuple]:
    """Rows as tuples in column order, built by itemgetter (in C)."""
    if len(columns) == 1:
        return [(row[columns[0]],) for row in rows]
    return list(map(itemgetter(*columns), rows))


def _identity(value: Any) -> Any:
    return value


def _pg_json(value: Any) -> Any:
    if value is None or type(value) is JsonText:
        return value
    return json_dumps(value)


def _pg_timestamp(value: Any) -> Any:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: crmhub stores UTC timestamps only")
    return value


def _pg_converter(type_: Any):
    if isinstance(type_, JSON) or isinstance(getattr(type_, "impl", None), JSON):
        return _pg_json
    if isinstance(type_, UtcDateTime):
        return _pg_timestamp
    return _identity
