"""Runs a report's queries for a period and collects what the renderers show.

No figures are computed here: they come from sql/reports. This module checks which
tables are still empty (a section then carries its one-line reason instead of rows),
runs the forecast on the history query's rows, and draws the charts.
"""

from __future__ import annotations

import datetime as dt
import sys
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from crmhub.reports import forecast as fc
from crmhub.reports.definitions import ReportDefinition, Section
from crmhub.reports.period import Period
from crmhub.reports.query import HISTORY_PERIODS, has_rows, parameters, run_query, run_statements


@dataclass
class SectionResult:
    section: Section
    columns: list[str]
    rows: list[dict[str, Any]]
    empty_reason: str | None = None
    note: str = ""
    chart_png: bytes | None = None
    report_name: str = ""

    @property
    def key(self) -> str:
        return self.section.key

    @property
    def title(self) -> str:
        return self.section.title

    @property
    def csv_name(self) -> str:
        return f"{self.report_name}-{self.key}.csv"

    @property
    def png_name(self) -> str:
        return f"{self.report_name}-{self.key}.png"

    @property
    def cid(self) -> str:
        return f"{self.report_name}-{self.key}@crmhub"


@dataclass
class Report:
    name: str  # the name it runs under (a crmhub.yml reports: entry, or the registered name)
    definition: ReportDefinition
    period: Period
    generated_at: dt.datetime
    sections: list[SectionResult] = field(default_factory=list)

    @property
    def title(self) -> str:
        return self.definition.title

    @property
    def subject(self) -> str:
        return f"{self.title}: {self.period.describe()}"


def build(engine: Engine, definition: ReportDefinition, period: Period, name: str | None = None,
          charts: bool = True) -> Report:
    """Every section of ``definition`` for ``period``; empty sections carry their reason."""
    name = name or definition.name
    report = Report(name, definition, period, dt.datetime.now(dt.UTC))
    params = parameters(period)
    if charts and "matplotlib.figure" not in sys.modules:
        # matplotlib takes 1-4 s to import: do it while the database answers the queries
        threading.Thread(target=_import_charts, name="crmhub-import-matplotlib", daemon=True).start()
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # Report queries are short aggregations the planner overestimates: JIT compiling
            # them costs more than running them, and 4 MB work_mem spills a 10k-ad hash to disk.
            conn.exec_driver_sql("SET LOCAL jit = off")
            conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")
        for name_ in definition.prepare:  # temporary tables, gone with the connection's transaction
            run_statements(conn, name_, params)
        filled: dict[str, bool] = {}
        for section in definition.sections:
            result = SectionResult(section, [], [], note=section.note, report_name=name)
            for table, reason in section.needs:
                if table not in filled:
                    filled[table] = has_rows(conn, table)
                if not filled[table]:
                    result.empty_reason = reason
                    break
            if result.empty_reason is None:
                result.columns, result.rows = run_query(conn, section.sql, params)
                if section.kind == "forecast":
                    _forecast(result, period)
                elif not result.rows or (section.kind == "kpi" and _all_empty(result.rows)):
                    result.rows = []
                    result.empty_reason = "Nothing in this period."
            if charts and result.rows and section.chart:
                from crmhub.reports.charts import draw

                result.chart_png = draw(section.chart, result.rows)
            report.sections.append(result)
    return report


def _import_charts() -> None:
    try:
        import matplotlib.figure  # noqa: F401

        import crmhub.reports.charts  # noqa: F401
    except Exception:  # noqa: BLE001,S110 (the import in the main thread reports it)
        pass


def _all_empty(rows: list[dict[str, Any]]) -> bool:
    return all(v in (None, 0) for row in rows for v in row.values())


def number(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, Decimal | int):
        return float(value)
    return float(value)


def as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _forecast(result: SectionResult, period: Period) -> None:
    """Turn the daily history into periods, forecast the next ones, show the back-test."""
    totals: dict[Any, float] = {}
    for r in result.rows:
        totals[r.get("currency")] = totals.get(r.get("currency"), 0.0) + number(r["revenue"])
    main = max(totals, key=lambda c: (totals[c], str(c))) if totals else None
    daily = [(as_date(r["day"]), number(r["revenue"])) for r in result.rows if r.get("currency") == main]
    others = sorted(str(c) for c in totals if c != main)
    series = fc.buckets(daily, period.end, period.days, HISTORY_PERIODS)
    result.columns = ["period", "revenue", "back_test", "forecast"]
    result.rows = []
    if len(series) < fc.MIN_TRAIN + fc.HOLDOUT:
        result.empty_reason = (f"A forecast needs {fc.MIN_TRAIN + fc.HOLDOUT} periods of {period.days} days "
                               f"with sales; the warehouse has {len(series)}.")
        return
    out = fc.forecast([v for _, v in series])
    held_out = len(series) - fc.HOLDOUT
    for i, (start, value) in enumerate(series):
        back = out.backtest[i - held_out] if i >= held_out else None
        result.rows.append({"period": start, "revenue": value, "back_test": back, "forecast": None})
    step = dt.timedelta(days=period.days)
    for i, value in enumerate(out.forecast):
        result.rows.append({"period": period.end + step * i, "revenue": None, "back_test": None,
                            "forecast": value})
    mape = "n/a (the held-out periods had no sales)" if out.mape is None else f"{out.mape * 100:.1f} %"
    result.note = (f"Revenue in {main or 'no currency'}"
                   + (f" (the main currency; {', '.join(others)} revenue is not added in)" if others else "")
                   + f". Method: {fc.METHOD}, on {len(series)} periods of {period.days} days. "
                   f"Back-test: fitted without the last {fc.HOLDOUT} periods, its forecasts of them were off by "
                   f"a mean absolute percentage error (MAPE) of {mape}.")
    result.mape = out.mape  # type: ignore[attr-defined]
