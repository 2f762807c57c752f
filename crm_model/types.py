"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, DateTime, Numeric
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator):
    """A timestamp that is always timezone-aware UTC in Python.

    PostgreSQL stores ``timestamptz``; SQLite stores ISO text without an offset,
    so values are normalised to UTC on the way in and tagged UTC on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: crmhub stores UTC timestamps only")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


# Exact decimals: NUMERIC(18, 4) on PostgreSQL. SQLite has no decimal type; SQLAlchemy
# reads its values back through the declared scale, which is exact for amounts below
# 10^11 (far beyond any order total).
Money = Numeric(18, 4, asdecimal=True)
Quantity = Numeric(18, 4, asdecimal=True)
# Ad spend: platforms count in millionths (Google's cost_micros), so 6 decimals keep it exact.
Micros = Numeric(18, 6, asdecimal=True)

# JSON documents: jsonb on PostgreSQL (indexable, queryable), JSON text on SQLite.
Document = JSON().with_variant(postgresql.JSONB(), "postgresql")


def as_document(value: Any) -> Any:
    """A Document column's value as a raw query returns it: the JSON text SQLite keeps,
    decoded; PostgreSQL's driver has decoded jsonb already."""
    return json.loads(value) if isinstance(value, str) else value


__all__ = ["Decimal", "Document", "Micros", "Money", "Quantity", "UtcDateTime", "as_document"]
