"""Checks a mapped row against its table before it reaches the database.

A value that does not fit its column (a 3-letter country in a 2-letter column, text
in a number column) would fail the whole batch's transaction; caught here, it
rejects just the one record, with a reason that names the column. This runs for
every row, so each column's rule is compiled once into plain type/length checks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import JSON, BigInteger, Boolean, Date, Integer, Numeric, String

from crm_model.load import TABLES
from crm_model.types import UtcDateTime


class Rule(NamedTuple):
    types: tuple[type, ...] | None  # exact types accepted (None: anything, e.g. JSON)
    label: str
    max_len: int | None
    nullable: bool
    aware: bool  # a datetime that must carry a time zone
    bound: int | Decimal | None = None  # numbers: |value| must stay below this (PostgreSQL's range)


# PostgreSQL's INTEGER is 32-bit; NUMERIC(p, s) holds |value| < 10^(p - s). SQLite takes
# anything, so without these checks the same record would load on one and fail on the other.
INT_BOUND = 2**31


# SQLite keeps NUMERIC as a double: with 4 decimals it is exact below 10^11 only (15
# significant digits). Above that the two warehouses would hold different amounts.
EXACT_DIGITS = 15


def _numeric_bound(t: Numeric) -> Decimal | None:
    if t.precision is None:
        return None
    scale = t.scale or 0
    digits = min(t.precision, EXACT_DIGITS) - scale
    # a value that rounds up to 10^digits at the column's scale overflows as well
    return Decimal(10) ** digits - Decimal(10) ** -scale / 2


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
        bound = 2**63 if isinstance(t, BigInteger) else INT_BOUND
        return Rule((int,), "a whole number", None, nullable, False, bound)
    if isinstance(t, Numeric):
        return Rule((Decimal, int), "a decimal", None, nullable, False, _numeric_bound(t))
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


def _in_range(value: Any, bound: int | Decimal) -> bool:
    try:
        return -bound < value < bound
    except ArithmeticError:  # NaN
        return False


def _number(value: Any) -> str:
    if isinstance(value, Decimal) and not value.is_finite():
        return str(value)
    text = str(value)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} digits)"


def _limit(bound: int | Decimal) -> str:
    if isinstance(bound, Decimal):
        return f"10^{round(bound.adjusted() + 1)}"
    return f"{bound:,}"


def row_problem(table: str, values: dict[str, Any]) -> str | None:
    """Why ``values`` cannot go into ``table``, or None if they can."""
    if table not in TABLES:
        return f"mapping produced a row for unknown table {table!r}"
    return _checker(table, tuple(values))(values)


@cache
def _checker(table: str, names: tuple[str, ...]) -> Callable[[dict[str, Any]], str | None]:
    """A check for rows of ``table`` naming exactly ``names``, compiled to straight-line code.

    Rows of one stream name the same columns, so this is built once per stream and
    then costs a few comparisons per value (it runs for every row of every sync).
    """
    rules = _rules(table)
    unknown = [n for n in names if n not in rules]
    if unknown:
        message = f"mapping produced unknown column {table}.{unknown[0]}"
        return lambda values: message
    missing = sorted(_required(table).difference(names))
    if missing:
        message = f"{table}.{missing[0]} is required"
        return lambda values: message
    lines = ["def check(values):"]
    scope: dict[str, Any] = {}
    for i, name in enumerate(names):
        rule = rules[name]
        where = f"{table}.{name}"
        lines.append(f"    v = values[{name!r}]")
        required = repr(f"{where} is required")
        lines.append("    if v is None:")
        lines.append("        pass" if rule.nullable else f"        return {required}")
        if rule.types is None:
            continue
        scope[f"types_{i}"] = rule.types
        lines.append(f"    elif type(v) not in types_{i}:")
        lines.append(f"        return {where + ': expected ' + rule.label + ', got '!r} + type(v).__name__")
        if rule.max_len is not None:
            lines.append(f"    elif len(v) > {rule.max_len}:")
            lines.append(f"        return {where + f': longer than {rule.max_len} characters'!r}")
        if rule.bound is not None:
            scope[f"bound_{i}"] = rule.bound
            lines.append(f"    elif not _in_range(v, bound_{i}):")
            lines.append(f"        return {where + ': '!r} + _number(v) + {' is out of range (the column holds less than ' + _limit(rule.bound) + ')'!r}")
        if rule.aware:
            lines.append("    elif v.tzinfo is None:")
            lines.append(f"        return {where + ': naive datetime (no time zone)'!r}")
    lines.append("    return None")
    scope["_number"], scope["_in_range"] = _number, _in_range
    exec("\n".join(lines), scope)  # the source is built from column names and rules only
    return scope["check"]
