"""HTML (Jinja2, autoescaped, inline CSS), plain text and CSV from a built report."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from crmhub.reports.build import Report, SectionResult
from crmhub.reports.charts import PERCENT

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
# A cell starting with one of these is a formula to a spreadsheet (OWASP "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
MONEY = ("cost", "revenue", "value", "margin", "price", "average_order")
LOWER_IS_BETTER = ("cost", "hours", "backlog", "complaints", "age_days", "cases")
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d(\.\d+)?)?([+-]\d\d:?\d\d|Z)?$")
LABELS = {"ctr": "CTR", "rfm": "RFM", "sku": "SKU", "ad": "Ad"}


def label(column: str) -> str:
    if column in LABELS:
        return LABELS[column]
    text = column.replace("_", " ")
    return text[:1].upper() + text[1:]


def is_percent(column: str) -> bool:
    return column in PERCENT or column.endswith("_rate") or column.startswith(("lead_to_", "prospect_to_"))


def fmt(column: str, value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float | Decimal):
        v = float(value)
        if is_percent(column):
            return f"{v * 100:.1f} %"
        if is_money(column) or column in ("forecast", "back_test"):
            return f"{v:,.2f}"
        if "hours" in column or "days" in column or "rating" in column or column.endswith("per_customer"):
            return f"{v:,.1f}"
        if v == int(v):
            return f"{int(v):,}"
        return f"{v:,.2f}"
    if isinstance(value, str) and _TIMESTAMP.match(value):  # SQLite hands timestamps back as text
        return value[:16]
    return str(value)


@dataclass(frozen=True)
class Change:
    text: str
    tone: str  # good, bad or flat


def change(column: str, value: Any, prev: Any) -> Change:
    """The change from the previous period: percentage points for rates, else percent."""
    if value is None or prev is None:
        return Change("–", "flat")
    v, p = float(value), float(prev)
    if is_percent(column):
        delta, text = v - p, f"{(v - p) * 100:+.1f} pp"
    elif p == 0:
        return Change("new" if v else "±0 %", "flat" if not v else "good")
    else:
        delta = (v - p) / abs(p)
        text = f"{delta * 100:+.1f} %"
    if abs(delta) < 1e-9:
        return Change("±0 %", "flat")
    better = (delta < 0) if any(w in column for w in LOWER_IS_BETTER) else (delta > 0)
    return Change(text.replace("-", "−"), "good" if better else "bad")


def shown_columns(section: SectionResult) -> list[str]:
    return [c for c in section.columns if not c.startswith("_") and not c.endswith("_prev")]


def table(section: SectionResult) -> dict[str, Any]:
    """Header and cells for HTML and text: each figure with its change where a _prev exists."""
    columns = shown_columns(section)
    header: list[str] = []
    for c in columns:
        header.append(label(c))
        if f"{c}_prev" in section.columns:
            header.append("vs prev.")
    body = []
    for row in section.rows:
        cells = []
        for c in columns:
            cells.append({"text": fmt(c, row.get(c)), "numeric": isinstance(row.get(c), int | float | Decimal),
                          "tone": None})
            if f"{c}_prev" in section.columns:
                ch = change(c, row.get(c), row.get(f"{c}_prev"))
                cells.append({"text": ch.text, "numeric": True, "tone": ch.tone})
        body.append(cells)
    return {"header": header, "rows": body}


def is_money(column: str) -> bool:
    return any(m in column for m in MONEY)


def kpis(section: SectionResult) -> list[dict[str, str]]:
    """A summary section as metric | this period | previous | change.

    A summary with a ``currency`` column has one row per currency: its money figures are
    shown once per currency ("Revenue (EUR)", "Revenue (USD)"), never added together; the
    other figures are the same in every row and shown once. A currency with no value for a
    figure in either period gets no line for it."""
    rows = section.rows or [{}]
    by_currency = "currency" in section.columns
    out = []
    for c in shown_columns(section):
        if c == "currency":
            continue
        for row in (rows if by_currency and is_money(c) else rows[:1]):
            if by_currency and is_money(c) and len(rows) > 1 and row.get(c) is None and row.get(f"{c}_prev") is None:
                continue  # e.g. revenue in the ad account's currency when no order is in it: no line
            metric = label(c)
            if by_currency and is_money(c) and row.get("currency") is not None:
                metric += f" ({row['currency'] or 'no currency'})"
            prev = row.get(f"{c}_prev")
            ch = change(c, row.get(c), prev) if f"{c}_prev" in section.columns else Change("", "flat")
            out.append({"metric": metric, "value": fmt(c, row.get(c)),
                        "previous": fmt(c, prev) if f"{c}_prev" in section.columns else "",
                        "change": ch.text, "tone": ch.tone})
    return out


@cache
def _env(autoescape: bool):
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=autoescape, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.globals.update(table=table, kpis=kpis)
    return env


def html(report: Report, image_src: Callable[[SectionResult], str], *, dashboard: dict | None = None) -> str:
    """The report as one HTML document; ``image_src`` says where each chart is (cid:, file, data:)."""
    return _env(True).get_template("report.html.j2").render(report=report, image_src=image_src,
                                                            dashboard=dashboard)


def plain_text(report: Report) -> str:
    return _env(False).get_template("report.txt.j2").render(report=report, widths=_widths)


def _widths(t: dict[str, Any]) -> list[int]:
    cols = len(t["header"])
    return [min(40, max([len(t["header"][i])] + [len(r[i]["text"]) for r in t["rows"]])) for i in range(cols)]


def neutralise(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula, made inert with a leading quote."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_bytes(section: SectionResult) -> bytes:
    """Every column the query returned (with the _prev figures), as UTF-8 CSV for spreadsheets."""
    columns = [c for c in section.columns if not c.startswith("_")]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(columns)
    for row in section.rows:
        writer.writerow([_csv_value(neutralise(row.get(c))) for c in columns])
    return buf.getvalue().encode("utf-8-sig")


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, float):
        return repr(round(value, 6))
    return value
