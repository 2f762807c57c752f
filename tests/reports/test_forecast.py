"""The forecast: Holt's method on known series, its back-test, and the period buckets."""

from __future__ import annotations

import datetime as dt

import pytest

from crmhub.reports import forecast as fc


def test_mape_by_hand():
    # |100-90|/100 = 0.10, |200-250|/200 = 0.25, the 0 actual is skipped -> (0.10 + 0.25) / 2
    assert fc.mape([100, 200, 0], [90, 250, 5]) == pytest.approx(0.175)
    assert fc.mape([0, 0], [1, 2]) is None


def test_a_straight_line_is_forecast_exactly_and_backtests_near_zero():
    series = [100 + 10 * t for t in range(12)]  # 100, 110, ..., 210
    out = fc.forecast(series)
    assert out.forecast == pytest.approx([220, 230, 240], rel=1e-3)
    assert out.backtest == pytest.approx([190, 200, 210], rel=1e-3) and out.actual == [190, 200, 210]
    assert out.mape == pytest.approx(0, abs=1e-3)


def test_a_level_shift_shows_up_in_the_backtest_error():
    series = [100.0] * 9 + [150.0] * 3  # the held-out periods jumped by half
    out = fc.forecast(series)
    assert out.backtest == pytest.approx([100, 100, 100], abs=1.0)
    assert out.mape == pytest.approx(50 / 150, abs=0.01)


def test_too_short_a_history_is_refused():
    with pytest.raises(ValueError, match="at least 8 periods"):
        fc.forecast([1.0] * 7)


def test_days_are_summed_into_periods_ending_at_the_report_end():
    end = dt.date(2026, 4, 1)
    daily = [(dt.date(2026, 3, 31), 5.0), (dt.date(2026, 3, 25), 1.0),  # last 7 days: 6
             (dt.date(2026, 3, 24), 2.0),  # the 7 days before: 2
             (dt.date(2026, 3, 10), 4.0),  # 3 periods back
             (dt.date(2026, 4, 1), 99.0)]  # after the end: ignored
    assert fc.buckets(daily, end, 7, 8) == [(dt.date(2026, 3, 4), 4.0), (dt.date(2026, 3, 11), 0.0),
                                            (dt.date(2026, 3, 18), 2.0), (dt.date(2026, 3, 25), 6.0)]
