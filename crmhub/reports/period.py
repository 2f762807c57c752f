"""Report periods: ``7d`` / ``30d`` (the N full days up to today), ``month`` / ``quarter``
(the last full calendar one) or ``FROM..TO`` (dates, both included). Each period has a
previous period to compare with: the same number of days just before it (for ``month``
and ``quarter``, the calendar month or quarter before)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from crmhub.errors import CrmhubError

PERIOD_HELP = "7d, 30d (any Nd), month, quarter or FROM..TO (YYYY-MM-DD..YYYY-MM-DD)"
_RANGE = re.compile(r"^(\d{4}-\d\d-\d\d)\.\.(\d{4}-\d\d-\d\d)$")


class PeriodError(CrmhubError):
    """A period that is not one of the accepted forms."""


@dataclass(frozen=True)
class Period:
    label: str
    start: dt.date  # first day
    end: dt.date  # first day after the period
    prev_start: dt.date  # first day of the previous period (which ends at ``start``)

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def describe(self) -> str:
        last = self.end - dt.timedelta(days=1)
        return f"{self.start:%d %b %Y} - {last:%d %b %Y}"

    def describe_previous(self) -> str:
        last = self.start - dt.timedelta(days=1)
        return f"{self.prev_start:%d %b %Y} - {last:%d %b %Y}"

    def bounds(self) -> tuple[dt.datetime, dt.datetime]:
        return _midnight(self.start), _midnight(self.end)


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), dt.UTC)


def _month_start(day: dt.date, back: int = 0) -> dt.date:
    index = day.year * 12 + day.month - 1 - back
    return dt.date(index // 12, index % 12 + 1, 1)


def parse_period(spec: str, today: dt.date | None = None) -> Period:
    """The period ``spec`` names, as seen on ``today`` (default: today in UTC)."""
    today = today or dt.datetime.now(dt.UTC).date()
    spec = (spec or "").strip()
    if m := re.fullmatch(r"(\d+)d", spec):
        days = int(m.group(1))
        if not 1 <= days <= 3660:
            raise PeriodError(f"period {spec!r}: the number of days must be between 1 and 3660")
        start = today - dt.timedelta(days=days)
        return Period(spec, start, today, start - dt.timedelta(days=days))
    if spec == "month":
        start = _month_start(today, 1)
        return Period(spec, start, _month_start(today), _month_start(today, 2))
    if spec == "quarter":
        this_quarter = dt.date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
        return Period(spec, _month_start(this_quarter, 3), this_quarter, _month_start(this_quarter, 6))
    if m := _RANGE.fullmatch(spec):
        try:
            first, last = dt.date.fromisoformat(m.group(1)), dt.date.fromisoformat(m.group(2))
        except ValueError as exc:
            raise PeriodError(f"period {spec!r}: {exc}") from None
        if last < first:
            raise PeriodError(f"period {spec!r}: the end is before the start")
        end = last + dt.timedelta(days=1)
        return Period(spec, first, end, first - (end - first))
    raise PeriodError(f"period {spec!r} is not one of: {PERIOD_HELP}")
