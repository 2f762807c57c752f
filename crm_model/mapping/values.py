"""Parsers that turn source values into warehouse values, or reject them with a reason.

Each returns ``None`` for an empty value (``None``, ``""``, whitespace) and raises
:class:`Reject` for a value that is present but wrong, so a mapping never loads a
half-understood record silently.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs, urlsplit

UTC = dt.UTC


class Reject(ValueError):
    """The record cannot be mapped; the message is stored as the reason."""


@dataclass(frozen=True)
class FieldWarning:
    """A bad optional detail: the record loads without it, this keeps what and why."""

    field: str
    raw_value: str | None
    reason: str
    contact: bool = False  # an email or phone: a lead with no other contact is rejected


_warnings: ContextVar[list[FieldWarning] | None] = ContextVar("crmhub_field_warnings", default=None)


@contextmanager
def collecting_warnings() -> Iterator[list[FieldWarning]]:
    """Within this block a bad optional detail becomes a warning instead of a Reject."""
    found: list[FieldWarning] = []
    token = _warnings.set(found)
    try:
        yield found
    finally:
        _warnings.reset(token)


def current_warnings() -> list[FieldWarning]:
    return list(_warnings.get() or ())


def warn(field: str, raw: Any, reason: str, *, contact: bool = False) -> None:
    """Leave ``field`` out of the record and say why (outside a sync: reject the record)."""
    found = _warnings.get()
    if found is None:
        raise Reject(reason)
    found.append(FieldWarning(field, None if raw is None else str(raw)[:1000], reason, contact))


def optional(parse: Callable[..., Any], raw: Any, *args: Any, field: str) -> Any:
    """``parse(raw, *args)``, or None with a field warning when the value is bad."""
    try:
        return parse(raw, *args)
    except Reject as exc:
        warn(field, raw, str(exc))
        return None


def text(value: Any, max_len: int | None = None) -> str | None:
    if value is None:
        return None
    s = value.strip() if type(value) is str else str(value).strip()
    if not s:
        return None
    return s[:max_len] if max_len else s


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


# The common shape, checked cheaply first; email-validator has the final word.
_EMAIL_SHAPE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


def email(value: Any, field: str = "email") -> str | None:
    """A lower-cased, syntax-checked email address."""
    if _blank(value):
        return None
    s = str(value).strip()
    if _EMAIL_SHAPE.match(s) and ".." not in s and not s.startswith("."):
        return s.lower()
    # imported here: most addresses pass the shape check, and a sync's start-up is
    # shorter without email-validator (and phonenumbers below) loaded up front
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(s, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        warn(field, value, f"{field}: {s!r} is not a valid email address ({exc})", contact=True)
        return None


_E164 = re.compile(r"\+[1-9]\d{7,14}")
_PUNCTUATION = str.maketrans("", "", " -.()/")


def phone(value: Any, default_region: str | None = None, field: str = "phone") -> str | None:
    """An E.164 phone number (+4930123456). Numbers without a country code need a region."""
    if _blank(value):
        return None
    s = str(value).strip()
    compact = s.translate(_PUNCTUATION)
    if _E164.fullmatch(compact):  # already international: E.164 after removing punctuation
        return compact
    import phonenumbers

    try:
        parsed = phonenumbers.parse(s, (default_region or "").upper() or None)
    except phonenumbers.NumberParseException as exc:
        warn(field, value, f"{field}: {s!r} is not a phone number ({exc})", contact=True)
        return None
    if not phonenumbers.is_possible_number(parsed):
        warn(field, value, f"{field}: {s!r} is not a possible phone number", contact=True)
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def timestamp(value: Any, field: str = "timestamp", default_tz: dt.tzinfo = UTC) -> dt.datetime | None:
    """A UTC datetime from ISO 8601 text, a datetime, or epoch seconds."""
    if type(value) is str:  # the common case: ISO 8601 text as sources send it
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None:
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=default_tz)
            return parsed if parsed.tzinfo is UTC else parsed.astimezone(UTC)
    if _blank(value):
        return None
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, UTC)
    else:
        s = str(value).strip()
        try:
            parsed = dt.datetime.fromisoformat(s.replace(" UTC", "Z"))
        except ValueError:
            try:
                parsed = dt.datetime.combine(_date_text(s), dt.time())
            except ValueError:
                raise Reject(f"{field}: {s!r} {_date_problem(s, 'a date-time (use ISO 8601)')}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=default_tz)
    return parsed.astimezone(UTC)


def date(value: Any, field: str = "date") -> dt.date | None:
    if _blank(value):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    s = str(value).strip()
    try:
        return _date_text(s)
    except ValueError:
        raise Reject(f"{field}: {s!r} {_date_problem(s, 'a date (use YYYY-MM-DD)')}") from None


# A date written in a shape we read (2026-04-31, 20260431, 2026-04-31T10:00), whatever its numbers.
_DATE_SHAPE = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})(?:[T ](\d{2}):?(\d{2})(?::?(\d{2}))?)?")


def _date_problem(s: str, expected: str) -> str:
    """What is wrong with a date: 'no such day' when the shape is right, else the shape."""
    m = _DATE_SHAPE.match(s)
    if m is None:
        return f"is not {expected}"
    year, month, day = (int(g) for g in m.groups()[:3])
    if not 1 <= year:
        return "has no such year"
    if not 1 <= month <= 12:
        return f"has no such month ({month})"
    import calendar

    days = calendar.monthrange(year, month)[1]
    if not 1 <= day <= days:
        return f"has no such day ({calendar.month_name[month]} {year} has {days} days)"
    hour, minute, second = (int(g) if g else 0 for g in m.groups()[3:])
    if hour > 23 or minute > 59 or second > 59:
        return f"has no such time of day ({hour:02d}:{minute:02d}:{second:02d})"
    return f"is not {expected}"


def _date_text(s: str) -> dt.date:
    if "T" in s or " " in s.strip():
        return dt.datetime.fromisoformat(s).date()
    return dt.date.fromisoformat(s)


def decimal(value: Any, field: str = "amount") -> Decimal | None:
    """An exact decimal from text or a number (floats go through their shortest repr)."""
    if type(value) is str:  # the common case: amounts as text, cached (prices repeat)
        result = _decimal_text(value)
        if result is not None and result.is_finite():
            return result
    if _blank(value):
        return None
    if isinstance(value, bool):
        raise Reject(f"{field}: {value!r} is not a number")
    if isinstance(value, Decimal):
        result = value
    elif type(value) is str:
        result = _decimal_text(value)
        if result is None:
            raise Reject(f"{field}: {value!r} is not a number")
    else:
        try:
            result = Decimal(repr(value))
        except InvalidOperation:
            raise Reject(f"{field}: {value!r} is not a number") from None
    if not result.is_finite():
        raise Reject(f"{field}: {value!r} is not a finite number")
    return result


def decimal_text(value: str) -> Decimal | None:
    """A finite decimal from text, else None (blank, not a number, NaN: ask :func:`decimal` why)."""
    result = _decimal_text(value)
    return result if result is not None and result.is_finite() else None


@lru_cache(maxsize=8192)  # prices and amounts repeat; a Decimal is immutable, so sharing is safe
def _decimal_text(value: str) -> Decimal | None:
    try:
        return Decimal(value.strip().replace(",", ""))
    except InvalidOperation:
        return None


def integer(value: Any, field: str = "number") -> int | None:
    d = decimal(value, field)
    if d is None:
        return None
    if d != d.to_integral_value():
        raise Reject(f"{field}: {value!r} is not a whole number")
    return int(d)


# Currencies whose amounts have no minor unit (Stripe, ISO 4217).
ZERO_DECIMAL_CURRENCIES = frozenset(
    "BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split()
)
THREE_DECIMAL_CURRENCIES = frozenset("BHD JOD KWD OMR TND".split())


def minor_units(amount: Any, currency: str | None, field: str = "amount") -> Decimal | None:
    """An amount given in the currency's smallest unit (cents) as a major-unit decimal."""
    d = decimal(amount, field)
    if d is None:
        return None
    code = (currency or "").upper()
    if code in ZERO_DECIMAL_CURRENCIES:
        return d
    return d.scaleb(-3 if code in THREE_DECIMAL_CURRENCIES else -2)


_CURRENCY = re.compile(r"[A-Za-z]{3}")
_CURRENCIES_SEEN: dict[str, str] = {}


def currency(value: Any, field: str = "currency") -> str | None:
    if type(value) is str and value in _CURRENCIES_SEEN:  # every amount repeats its currency
        return _CURRENCIES_SEEN[value]
    s = text(value)
    if s is None:
        return None
    if not _CURRENCY.fullmatch(s):
        raise Reject(f"{field}: {s!r} is not an ISO 4217 currency code")
    if type(value) is str and len(_CURRENCIES_SEEN) < 1024:
        _CURRENCIES_SEEN[value] = s.upper()
    return s.upper()


def country(value: Any, field: str = "country") -> str | None:
    """ISO 3166-1 alpha-2 code from a code or an English country name (else a field warning)."""
    try:
        return _country(value, field)
    except Reject as exc:
        warn(field, value, str(exc))
        return None


@lru_cache(maxsize=1024)
def _country(value: Any, field: str) -> str | None:
    s = text(value)
    if s is None:
        return None
    import pycountry

    if len(s) == 2 and s.isalpha():
        found = pycountry.countries.get(alpha_2=s.upper())
    else:
        try:
            found = pycountry.countries.lookup(s)
        except LookupError:
            found = None
    if found is None:
        raise Reject(f"{field}: {s!r} is not a known country")
    return found.alpha_2


def boolean(value: Any, field: str = "flag") -> bool | None:
    if _blank(value):
        return None
    if isinstance(value, bool):
        return value
    s = str(value).strip().lower()
    if s in ("1", "true", "yes", "y", "t"):
        return True
    if s in ("0", "false", "no", "n", "f"):
        return False
    raise Reject(f"{field}: {value!r} is not yes/no")


def split_name(full: str | None) -> tuple[str | None, str | None]:
    """'Ada King Lovelace' -> ('Ada', 'King Lovelace'); one word is a first name."""
    s = text(full)
    if s is None:
        return None, None
    first, _, rest = s.partition(" ")
    return first, (rest.strip() or None)


def join_name(first: str | None, last: str | None) -> str | None:
    return text(" ".join(p for p in (text(first), text(last)) if p))


CLICK_IDS = ("gclid", "fbclid")
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
_TRACKED = frozenset(UTM_KEYS + CLICK_IDS)


def url_params(url: str | None) -> dict[str, str]:
    """UTM parameters and click ids found in a URL's query string (a new dict each call)."""
    if not url or "?" not in url:
        return {}
    return dict(_url_params(url))


@lru_cache(maxsize=4096)  # landing pages repeat across orders and leads of one campaign
def _url_params(url: str) -> tuple[tuple[str, str], ...]:
    try:
        query = parse_qs(urlsplit(url).query)
    except ValueError:
        return ()
    return tuple((k, v[0]) for k, v in query.items() if k in _TRACKED and v and v[0])


def host(url: str | None) -> str | None:
    if not url:
        return None
    try:
        return urlsplit(url if "//" in url else f"//{url}").hostname
    except ValueError:
        return None
