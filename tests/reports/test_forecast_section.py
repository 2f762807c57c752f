"""The sales report's forecast section on a warehouse with a known revenue history."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import insert

from crm_model.load import TABLES
from crmhub.reports.build import build
from crmhub.reports.definitions import REPORTS
from crmhub.reports.period import parse_period


def test_weekly_revenue_on_a_straight_line_is_forecast_with_its_backtest(warehouse):
    # 12 weeks before 2026-04-01: week k (0 = oldest) has one order of 100 + 10k
    end = dt.date(2026, 4, 1)
    with warehouse.begin() as conn:
        for k in range(12):
            day = end - dt.timedelta(days=7 * (12 - k)) + dt.timedelta(days=2)
            conn.execute(insert(TABLES["customer_order"]).values(
                source="shop", external_id=f"o{k}", status="paid", currency="EUR", total=Decimal(100 + 10 * k),
                ordered_at=dt.datetime.combine(day, dt.time(12), dt.UTC)))
            # a smaller US shop the same days: never added to the EUR series
            conn.execute(insert(TABLES["customer_order"]).values(
                source="us", external_id=f"u{k}", status="paid", currency="USD", total=Decimal(7),
                ordered_at=dt.datetime.combine(day, dt.time(13), dt.UTC)))
    report = build(warehouse, REPORTS["sales"], parse_period("7d", end), charts=True)
    section = next(s for s in report.sections if s.key == "forecast")
    assert section.empty_reason is None
    history = [r for r in section.rows if r["revenue"] is not None]
    future = [r for r in section.rows if r["forecast"] is not None]
    assert [r["revenue"] for r in history] == [100.0 + 10 * k for k in range(12)]
    assert [r["period"] for r in future] == [end, end + dt.timedelta(days=7), end + dt.timedelta(days=14)]
    assert [r["forecast"] for r in future] == pytest.approx([220, 230, 240], rel=1e-3)
    assert [r["back_test"] for r in history[-3:]] == pytest.approx([190, 200, 210], rel=1e-3)
    assert "MAPE) of 0.0 %" in section.note and "Holt" in section.note
    assert section.note.startswith("Revenue in EUR (the main currency; USD revenue is not added in)")
    assert section.chart_png.startswith(b"\x89PNG")
