"""Runs the report queries in sql/reports: parameters, the two dialect macros, rows.

The SQL files hold the logic; this module only fills in the period's parameters and
expands ``DAY_OF(ts)`` and ``EPOCH_OF(ts)``, the two things SQLite and PostgreSQL spell
differently (sql/reports/README.md).
"""

from __future__ import annotations

import datetime as dt
import re
from functools import cache
from typing import Any

from sqlalchemy import Connection, Date, bindparam, text

from crm_model.paths import sql_dir
from crm_model.types import UtcDateTime
from crmhub.reports.period import Period

REPORTS_SQL = sql_dir() / "reports"
_MACRO = re.compile(r"\b(DAY_OF|EPOCH_OF)\(((?:[^()]|\([^()]*\))*)\)")
_DIALECT = {
    "sqlite": {
        "DAY_OF": "date({})",
        "EPOCH_OF": "((julianday({}) - 2440587.5) * 86400.0)",
    },
    "postgresql": {
        "DAY_OF": "CAST(({}) AT TIME ZONE 'UTC' AS DATE)",
        "EPOCH_OF": "EXTRACT(EPOCH FROM {})",
    },
}
TIMESTAMPS = ("start", "end", "prev_start", "hist_start")
DATES = ("start_day", "end_day", "prev_start_day", "d30", "d60", "d90",
         "born_18", "born_25", "born_35", "born_45", "born_55", "born_65")
HISTORY_PERIODS = 16  # the forecast and RFM look back this many periods


@cache
def sql_text(name: str) -> str:
    path = REPORTS_SQL / f"{name}.sql"
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if not line.lstrip().startswith("--")]
    return "\n".join(lines).strip().rstrip(";")


def expand(sql: str, dialect: str) -> str:
    forms = _DIALECT.get(dialect, _DIALECT["postgresql"])
    return _MACRO.sub(lambda m: forms[m.group(1)].format(m.group(2)), sql)


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def parameters(period: Period) -> dict[str, Any]:
    start, end = period.bounds()
    history = max(period.days, 1) * HISTORY_PERIODS
    params: dict[str, Any] = {
        "start": start, "end": end,
        "prev_start": dt.datetime.combine(period.prev_start, dt.time(), dt.UTC),
        "hist_start": end - dt.timedelta(days=history),
        "start_day": period.start, "end_day": period.end, "prev_start_day": period.prev_start,
        "end_epoch": end.timestamp(),
    }
    for days in (30, 60, 90):
        params[f"d{days}"] = period.end + dt.timedelta(days=days)
    for years in (18, 25, 35, 45, 55, 65):
        params[f"born_{years}"] = _years_before(period.end, years)
    return params


def _bound(conn: Connection, sql: str, params: dict[str, Any]):
    stmt = text(expand(sql, conn.dialect.name))
    used = set(stmt.compile().params)
    binds = [bindparam(k, type_=UtcDateTime()) for k in TIMESTAMPS if k in used]
    binds += [bindparam(k, type_=Date()) for k in DATES if k in used]
    return stmt.bindparams(*binds), {k: v for k, v in params.items() if k in used}


def run_statements(conn: Connection, name: str, params: dict[str, Any]) -> None:
    """Every statement of sql/reports/<name>.sql (a report's ``prepare`` step), in order."""
    for statement in sql_text(name).split(";"):
        if statement.strip():
            conn.execute(*_bound(conn, statement, params))


def run_query(conn: Connection, name: str, params: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """Columns and rows of sql/reports/<name>.sql for these parameters."""
    result = conn.execute(*_bound(conn, sql_text(name), params))
    columns = list(result.keys())
    return columns, [dict(zip(columns, row, strict=True)) for row in result]


def has_rows(conn: Connection, table: str) -> bool:
    return conn.execute(text(f"SELECT 1 FROM {table} LIMIT 1")).first() is not None  # noqa: S608 (fixed names)
