"""Checks a mapped row against its table before it reaches the database.

A value that does not fit its column (a 3-letter country in a 2-letter column, text
in a number column) would fail the whole batch's transaction; caught here, it
rejects just the one record, with a reason that names the column.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Integer, Numeric, String, Table

from crm_model.load import TABLES
from crm_model.types import UtcDateTime

Check = Callable[[Any], str | None]


def _string(length: int | None) -> Check:
    def check(v: Any) -> str | None:
        if not isinstance(v, str):
            return f"expected text, got {type(v).__name__}"
        if length and len(v) > length:
            return f"longer than {length} characters"
        return None
    return check


def _of(kind: type | tuple[type, ...], label: str, exclude: type | None = None) -> Check:
    def check(v: Any) -> str | None:
        if not isinstance(v, kind) or (exclude is not None and isinstance(v, exclude)):
            return f"expected {label}, got {type(v).__name__}"
        return None
    return check


def _timestamp(v: Any) -> str | None:
    if not isinstance(v, dt.datetime):
        return f"expected a datetime, got {type(v).__name__}"
    if v.tzinfo is None:
        return "naive datetime (no time zone)"
    return None


def _any(v: Any) -> None:
    return None


def _check_for(type_: Any) -> Check:
    if isinstance(type_, UtcDateTime):
        return _timestamp
    if isinstance(type_, JSON):
        return _any
    if isinstance(type_, String):
        return _string(type_.length)
    if isinstance(type_, Boolean):
        return _of(bool, "true/false")
    if isinstance(type_, Integer):
        return _of(int, "a whole number", exclude=bool)
    if isinstance(type_, Numeric):
        return _of((Decimal, int), "a decimal", exclude=bool)
    if isinstance(type_, Date):
        return _of(dt.date, "a date", exclude=dt.datetime)
    return _any


@cache
def _checks(table_name: str) -> dict[str, tuple[Check, bool]]:
    table: Table = TABLES[table_name]
    return {c.name: (_check_for(c.type), c.nullable and not c.primary_key) for c in table.columns}


def row_problem(table: str, values: dict[str, Any]) -> str | None:
    """Why ``values`` cannot go into ``table``, or None if they can."""
    if table not in TABLES:
        return f"mapping produced a row for unknown table {table!r}"
    checks = _checks(table)
    for name, value in values.items():
        entry = checks.get(name)
        if entry is None:
            return f"mapping produced unknown column {table}.{name}"
        if value is None:
            if not entry[1]:
                return f"{table}.{name} is required"
            continue
        problem = entry[0](value)
        if problem:
            return f"{table}.{name}: {problem}"
    missing = _required(table).difference(values)
    if missing:
        return f"{table}.{sorted(missing)[0]} is required"
    return None


@cache
def _required(table_name: str) -> frozenset[str]:
    table = TABLES[table_name]
    surrogate = len(table.primary_key.columns) == 1 and isinstance(
        next(iter(table.primary_key.columns)).type, Integer)
    return frozenset(
        c.name for c in table.columns
        if not c.nullable and c.default is None and c.server_default is None
        and not (surrogate and c.primary_key) and c.name != "source"
    )
