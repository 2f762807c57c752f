"""CSV rows -> the entity the source's config names (lead, customer_order, ...).

Columns are renamed by the source's ``columns`` option, then each value is parsed by
the type of the warehouse column it lands in (dates, decimals, booleans) or by its
meaning (email, phone, country). A value that does not parse rejects the row when it
is what makes the row that record (an order's amount, when a lead was submitted, a
lead's only contact); any other bad value is left out with a field warning naming the
column, the raw value and the reason, and the row loads. The source's ``defaults`` give a
field a value where the file has no column for it or a row leaves it empty (an affiliate
network's click export has no ``channel`` column: ``defaults: {channel: affiliate_click,
affiliate_site: ...}``); a row's own value wins. People's details (email, name,
phone, address, ...) go to ``source_person``; a lead's other columns are kept in
``lead.answers``, and every column with no warehouse field in
``source_person.attributes`` (custom identifiers such as a customer number are read
from there) and, for the other entities (orders, order lines, products, touchpoints,
cases, contracts, feedback), in that record's own ``attributes``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from functools import cache, lru_cache
from typing import Any

from sqlalchemy import Boolean, Date, Integer, Numeric

from crm_model.load import TABLES
from crm_model.mapping import MapContext, Reject, Row, mapping
from crm_model.mapping import values as v
from crm_model.mapping.common import PERSON_FIELDS, lead_rows, person_row
from crm_model.types import UtcDateTime

META = ("_file", "_line", "_error", "_cells")
PERSONAL_ALIASES = {"name": "display_name", "full_name": "display_name", "zip": "postal_code",
                    "state": "region", "address": "street"}
LINKED = {"lead", "touchpoint", "customer_order", "service_case", "service_contract", "feedback"}
NOT_FROM_CSV = {"source", "external_id", "person_id", "person_ref", "attributes"}


def parse(table: str, column: str, raw: Any, region: str | None) -> Any:
    """One CSV cell as the value ``table.column`` holds."""
    return _parser(table, column)(raw, column, region)


@cache
def _parser(table: str, column: str) -> Callable[[Any, str, str | None], Any]:
    """The parser for one column, chosen once by its meaning or its type."""
    by_meaning = {
        "email": lambda raw, col, region: v.email(raw, col),
        "phone": lambda raw, col, region: v.phone(raw, region, col),
        "country": lambda raw, col, region: v.country(raw, col),
        "currency": lambda raw, col, region: v.currency(raw, col),
    }
    if column in by_meaning:
        return by_meaning[column]
    type_ = TABLES[table].c[column].type
    for kind, parse_value in ((UtcDateTime, v.timestamp), (Date, v.date), (Integer, v.integer),
                              (Numeric, v.decimal), (Boolean, v.boolean)):
        if isinstance(type_, kind):
            return lambda raw, col, region, f=parse_value: f(raw, col)
    return _text_cell


def _text_cell(raw: Any, column: str, region: str | None) -> str | None:
    """A text column's value: the cell without surrounding blanks (None when blank)."""
    return v.text(raw)


# Columns whose bad value rejects the row: without them the record is not that record.
ESSENTIAL = {
    "lead": {"submitted_at"},
    "customer_order": {"ordered_at", "total", "subtotal", "discount", "tax", "currency"},
    "order_line": {"order_id", "quantity", "unit_price", "total"},
    "touchpoint": {"occurred_at", "channel"},
    "service_case": {"opened_at"},
    "service_contract": {"starts_on", "value"},
    "feedback": {"rating", "received_at"},
    "product": {"price", "currency"},
}


def default_fields(entity: str) -> frozenset[str]:
    """The fields a csv source of ``entity`` may give a default value."""
    names = {c.name for c in TABLES[entity].c} - NOT_FROM_CSV
    if entity == "person" or entity in LINKED:
        names |= set(PERSON_FIELDS) | set(PERSONAL_ALIASES)
    if entity == "lead":
        names.add("channel")  # the channel of a lead's touchpoint (form, phone_call, ...)
    return frozenset(names)


def check_defaults(entity: str, defaults: dict[str, Any], region: str | None = None) -> None:
    """Raise ValueError naming the first default that is not a field of ``entity`` or does not parse."""
    allowed = default_fields(entity)
    for name, value in defaults.items():
        if name not in allowed:
            raise ValueError(f"defaults: {name!r} is not a field of {entity} "
                             f"(one of: {', '.join(sorted(allowed))})")
        target = PERSONAL_ALIASES.get(name, name)
        table = "source_person" if target in PERSON_FIELDS and entity != "person" else entity
        if target in TABLES[table].c:
            try:
                if parse(table, target, value, region) is None:
                    raise ValueError(f"defaults: {name} is empty")
            except Reject as exc:
                raise ValueError(f"defaults: {exc}") from None


def label(raw: dict[str, Any]) -> str | None:
    """Where a row is: 'leads.csv line 7' (line 0: the file as a whole)."""
    if "_file" not in raw:
        return None
    return f"{raw['_file']} line {raw['_line']}" if raw.get("_line") else str(raw["_file"])


@mapping("csv", "rows", label=label)
def map_row(raw: dict[str, Any], ctx: MapContext) -> list[Row]:
    if raw.get("_error"):
        raise Reject(raw["_error"])
    return _map_row(raw, ctx)


PERSON, FIELD, EXTRA = "person", "field", "extra"


@lru_cache(maxsize=256)
def _plan(entity: str, header: tuple[str, ...], key: str,
          renames: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str, str, Callable], ...]:
    """Where each column of a file goes and how it is parsed: worked out once per header."""
    rename = dict(renames)
    columns = TABLES[entity].c
    plan = []
    for name in header:
        if name in META or name == key:
            continue
        target = rename.get(name, name)
        target = PERSONAL_ALIASES.get(target, target)
        if target in PERSON_FIELDS and (entity == "person" or entity in LINKED):
            plan.append((name, PERSON, target, _parser("source_person", target)))
        elif target in columns and target not in NOT_FROM_CSV:
            plan.append((name, FIELD, target, _parser(entity, target)))
        else:
            plan.append((name, EXTRA, name, None))
    return tuple(plan)


def _map_row(raw: dict[str, Any], ctx: MapContext) -> list[Row]:
    options = ctx.options
    entity: str = options["entity"]
    region = options.get("default_region")
    key = str(raw[options["key"]]).strip()
    renames = tuple(sorted((options.get("columns") or {}).items()))

    person: dict[str, Any] = {}
    fields: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    out = {PERSON: person, FIELD: fields}
    essential = ESSENTIAL.get(entity, ())
    given: set[str] = set()  # fields a cell of this row fills (a default does not replace them)
    for name, where, target, parse_cell in _plan(entity, tuple(raw), options["key"], renames):
        cell = raw[name]
        text = cell.strip() if type(cell) is str else v.text(cell)
        if not text:  # a blank cell: every parser reads it as None, and it gives nothing
            if parse_cell is not None:
                out[where][target] = None
            continue
        given.add(target)
        if parse_cell is None:
            extra[name] = text
        elif parse_cell is _text_cell:  # most columns: the stripped cell is the value
            out[where][target] = text
        elif where == FIELD and target in essential:
            out[where][target] = parse_cell(cell, name, region)  # messages name the file's column
        else:
            try:
                out[where][target] = parse_cell(cell, name, region)
            except Reject as exc:  # left out, with a field warning (as values.optional does)
                v.warn(name, cell, str(exc))
                out[where][target] = None
    for name, value in (options.get("defaults") or {}).items():
        _default(entity, name, value, given, person, fields, extra, region)

    attributes = dict(extra) or None  # columns with no warehouse field stay with the person
    if entity == "person":
        return [person_row(key, seen_at=fields.get("seen_at"), attributes=attributes, **person)]
    if entity == "lead":
        answers = {**extra, **({"answers": fields.pop("answers")} if fields.get("answers") else {})}
        tracking = {k: fields.get(k) for k in (*v.UTM_KEYS, *v.CLICK_IDS)}
        return lead_rows(
            external_id=key, submitted_at=fields.get("submitted_at"), person=person,
            form=fields.get("form") or ctx.source, answers=answers or None, attributes=attributes,
            landing_page=fields.get("landing_page"), referrer=fields.get("referrer"),
            tracking=tracking, note=fields.get("note"),
            channel=str(extra.pop("channel", None) or "form"),
        )
    rows = []
    if entity in LINKED:
        if entity == "touchpoint" and not fields.get("channel"):
            raise Reject("channel is required for a touchpoint (ad_click, email, form, phone_call, ...)")
        if any(value is not None for value in person.values()):  # empty contact cells name nobody
            ref = f"{entity}:{key}"
            rows.append(person_row(ref, stage="customer" if entity == "customer_order" else None,
                                   seen_at=_first_time(fields), attributes=attributes, **person))
            fields["person_ref"] = ref
    if entity == "order_line" and not fields.get("order_id"):
        raise Reject("order_id is required for an order line")
    if entity == "order_line" and fields.get("total") is None and fields.get("unit_price") is not None:
        fields["total"] = fields["unit_price"] * (fields.get("quantity") or Decimal(1))
    if attributes and "attributes" in TABLES[entity].c:  # kept with the record too
        fields["attributes"] = attributes
    rows.append(Row(entity, {"external_id": key, **fields}))
    return rows


def _default(entity: str, name: str, value: Any, given: set[str], person: dict[str, Any],
             fields: dict[str, Any], extra: dict[str, Any], region: str | None) -> None:
    """The source's default for one field, where the row gave that field no value."""
    target = PERSONAL_ALIASES.get(name, name)
    if target in given or name in given:
        return
    if target in PERSON_FIELDS and (entity == "person" or entity in LINKED):
        person[target] = parse("source_person", target, value, region)
    elif target in TABLES[entity].c and target not in NOT_FROM_CSV:
        fields[target] = parse(entity, target, value, region)
    else:  # a lead's channel
        extra[name] = v.text(value)


def _first_time(fields: dict[str, Any]) -> dt.datetime | None:
    for name in ("ordered_at", "occurred_at", "opened_at", "received_at"):
        if isinstance(fields.get(name), dt.datetime):
            return fields[name]
    return None
