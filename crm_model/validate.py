"""Checks a mapped row against its table before it reaches the database.

A value that does not fit its column (a 3-letter country in a 2-letter column, text
in a number column) would fail the whole batch's transaction; caught here, it
rejects just the one record, with a reason that names the column. This runs for
every row, so each column's rule is compiled once into plain type/length checks.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import JSON, Boolean, Date, Integer, Numeric, String

from crm_model.load import TABLES
from crm_model.types import UtcDateTime


class Rule(NamedTuple):
    types: tuple[type, ...] | None  # exact types accepted (None: anything, e.g. JSON)
    label: str
    max_len: int | None
    nullable: bool
    aware: bool  # a datetime that must carry a time zone


def _rule(column) -> Rule:
    t = column.type
    nullable = column.nullable and not column.primary_key
    if isinstance(t, UtcDateTime):
        return Rule((dt.datetime,), "a datetime", None, nullable, True)
    if isinstance(t, JSON):
        return Rule(None, "JSON", None, nullable, False)
    if isinstance(t, String):
        return Rule((str,), "text", t.length, nullable, False)
    if isinstance(t, Boolean):
        return Rule((bool,), "true/false", None, nullable, False)
    if isinstance(t, Integer):
        return Rule((int,), "a whole number", None, nullable, False)
    if isinstance(t, Numeric):
        return Rule((Decimal, int), "a decimal", None, nullable, False)
    if isinstance(t, Date):
        return Rule((dt.date,), "a date", None, nullable, False)
    return Rule(None, type(t).__name__, None, nullable, False)


@cache
def _rules(table: str) -> dict[str, Rule]:
    return {c.name: _rule(c) for c in TABLES[table].columns}


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


def row_problem(table: str, values: dict[str, Any]) -> str | None:
    """Why ``values`` cannot go into ``table``, or None if they can."""
    if table not in TABLES:
        return f"mapping produced a row for unknown table {table!r}"
    rules = _rules(table)
    for name, value in values.items():
        rule = rules.get(name)
        if rule is None:
            return f"mapping produced unknown column {table}.{name}"
        if value is None:
            if not rule.nullable:
                return f"{table}.{name} is required"
            continue
        if rule.types is None:
            continue
        if type(value) not in rule.types:  # exact types: bool is not an int, datetime not a date
            return f"{table}.{name}: expected {rule.label}, got {type(value).__name__}"
        if rule.max_len is not None and len(value) > rule.max_len:
            return f"{table}.{name}: longer than {rule.max_len} characters"
        if rule.aware and value.tzinfo is None:
            return f"{table}.{name}: naive datetime (no time zone)"
    missing = _required(table).difference(values)
    if missing:
        return f"{table}.{sorted(missing)[0]} is required"
    return None
