"""Row checks that keep one bad value from failing a whole batch."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from crm_model.validate import row_problem

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize("table, values, problem", [
    ("source_person", {"external_id": "x", "country": "DE"}, None),
    ("source_person", {"external_id": "x", "country": "DEU"}, "source_person.country: longer than 2 characters"),
    ("source_person", {"external_id": "x", "seen_at": dt.datetime(2026, 1, 1)},
     "source_person.seen_at: naive datetime (no time zone)"),
    ("source_person", {"external_id": None}, "source_person.external_id is required"),
    ("source_person", {"external_id": "x", "bogus": 1}, "mapping produced unknown column source_person.bogus"),
    ("order_line", {"external_id": "x"}, "order_line.order_id is required"),
    ("product", {"external_id": "x", "price": True}, "product.price: expected a decimal, got bool"),
    ("product", {"external_id": "x", "price": 12.5}, "product.price: expected a decimal, got float"),
    ("product", {"external_id": "x", "price": Decimal("12.5"), "title": None}, None),
    ("lead", {"external_id": "x", "answers": {"q": [1, 2]}, "submitted_at": NOW}, None),
    ("feedback", {"external_id": "x", "received_at": NOW.date()}, "feedback.received_at: expected a datetime, got date"),
    ("nowhere", {"external_id": "x"}, "mapping produced a row for unknown table 'nowhere'"),
])
def test_row_problem(table, values, problem):
    assert row_problem(table, values) == problem
