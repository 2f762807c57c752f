"""`crmhub person show|link|unlink` and `crmhub forget`: the customer 360 and its controls."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, select, text

from crm_model import derive, erasure
from crm_model.schema import Person, PersonMerge, PersonRule, SourcePerson
from crm_model.types import as_document
from crmhub.config import Config
from crmhub.errors import CrmhubError

UTC = dt.UTC

# record tables shown in the 360: table -> (title, columns shown, order column)
RECORDS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "lead": ("leads", ("source", "external_id", "form", "submitted_at", "utm_source", "utm_campaign", "gclid"),
             "submitted_at"),
    "touchpoint": ("touchpoints", ("source", "external_id", "occurred_at", "channel", "utm_source", "campaign_id"),
                   "occurred_at"),
    "email_message": ("emails", ("source", "message_id", "sent_at", "direction", "subject"), "sent_at"),
    "customer_order": ("orders", ("source", "external_id", "ordered_at", "status", "total", "currency"),
                       "ordered_at"),
    "service_case": ("cases", ("source", "external_id", "opened_at", "kind", "status", "subject"), "opened_at"),
    "service_contract": ("contracts", ("source", "external_id", "starts_on", "ends_on", "level", "value"),
                         "starts_on"),
    "feedback": ("feedback", ("source", "external_id", "received_at", "rating", "comment"), "received_at"),
}


def _engine(cfg: Config) -> Engine:
    from crmhub import jobs

    return jobs.warehouse(cfg)


def find_person(conn: Connection, who: str) -> int:
    """A person id from an id or an email address; a merged-away id leads to its survivor."""
    who = who.strip()
    if who.isdigit():
        pid = int(who)
        for _ in range(100):  # follow merges to the surviving person
            if conn.execute(select(Person.person_id).where(Person.person_id == pid)).first():
                return pid
            nxt = conn.execute(select(PersonMerge.person_id).where(PersonMerge.merged_person_id == pid)
                               .order_by(PersonMerge.merge_id.desc()).limit(1)).scalar()
            if nxt is None:
                break
            pid = nxt
        raise CrmhubError(f"no person {who}")
    email = who.lower()
    pid = conn.execute(text("SELECT person_id FROM identity WHERE kind = 'email' AND value = :v "
                            "ORDER BY person_id LIMIT 1"), {"v": email}).scalar()
    if pid is None:
        pid = conn.execute(select(SourcePerson.person_id).where(SourcePerson.email == email,
                                                                SourcePerson.person_id.is_not(None))
                           .order_by(SourcePerson.person_id).limit(1)).scalar()
    if pid is None:
        raise CrmhubError(f"no person with email {who} (run `crmhub model` after a sync)")
    return int(pid)


def show(cfg: Config, who: str) -> dict[str, Any]:
    """Everything known about one person, and why each record belongs to them."""
    engine = _engine(cfg)
    try:
        with engine.connect() as conn:
            pid = find_person(conn, who)
            person = conn.execute(select(Person.__table__).where(Person.person_id == pid)).mappings().one()
            joined = {}
            for m in conn.execute(select(PersonMerge.__table__).where(PersonMerge.person_id == pid)
                                  .order_by(PersonMerge.merge_id)).mappings():
                if m["source"] is not None:  # the latest reason it joined this person
                    joined[(m["source"], m["external_id"])] = {
                        "evidence": m["evidence"], "score": m["score"], "fields": as_document(m["fields"])}
            records = []
            sp = SourcePerson.__table__
            for r in conn.execute(select(sp).where(sp.c.person_id == pid)
                                  .order_by(sp.c.source, sp.c.external_id)).mappings():
                why = joined.get((r["source"], r["external_id"])) or {"evidence": "first record of this person",
                                                                     "score": None, "fields": None}
                records.append({"source": r["source"], "external_id": r["external_id"], "name": r["display_name"],
                                "email": r["email"], "phone": r["phone"], "company": r["company"],
                                "seen_at": r["seen_at"], "attributes": as_document(r["attributes"]), "joined_by": why})
            out: dict[str, Any] = {"person": dict(person), "identities": records}
            out["identifiers"] = [dict(r) for r in conn.execute(text(
                "SELECT kind, value, source FROM identity WHERE person_id = :p AND kind <> 'external_id' "
                "ORDER BY kind, value, source"), {"p": pid}).mappings()]
            for table, (title, columns, order) in RECORDS.items():
                out[title] = [dict(r) for r in conn.execute(text(
                    f"SELECT {', '.join(columns)} FROM {table} WHERE person_id = :p ORDER BY {order}"),
                    {"p": pid}).mappings()]
            out["merged_persons"] = [r[0] for r in conn.execute(
                select(PersonMerge.merged_person_id).where(PersonMerge.person_id == pid,
                                                           PersonMerge.merged_person_id.is_not(None)))]
            return out
    finally:
        engine.dispose()


def to_json(data: Any) -> str:
    def default(value: Any) -> Any:
        if isinstance(value, (dt.datetime, dt.date)):
            return value.isoformat()
        if isinstance(value, Decimal):
            return str(value)
        return str(value)

    return json.dumps(data, indent=2, ensure_ascii=False, default=default)


def render(data: dict[str, Any]) -> list[str]:
    """The customer 360 as text lines."""
    p = data["person"]
    lines = [f"person {p['person_id']}: {p['display_name'] or '(no name)'}"]
    for label, key in (("email", "email"), ("phone", "phone"), ("company", "company"), ("job title", "job_title"),
                       ("birth date", "birth_date"), ("lifecycle", "lifecycle_stage")):
        if p.get(key):
            lines.append(f"  {label}: {p[key]}")
    address = ", ".join(str(p[k]) for k in ("street", "postal_code", "city", "region", "country") if p.get(k))
    if address:
        lines.append(f"  address: {address}")
    lines.append(f"  first touch: {p['first_touch_source'] or '-'} / {p['first_touch_campaign'] or '-'}; "
                 f"last touch: {p['last_touch_source'] or '-'} / {p['last_touch_campaign'] or '-'}")
    lines.append(f"  seen: {_when(p['first_seen_at'])} .. {_when(p['last_seen_at'])}")
    lines.append(f"identities ({len(data['identities'])}):")
    for r in data["identities"]:
        who = ", ".join(str(x) for x in (r["name"], r["email"], r["phone"]) if x)
        why = r["joined_by"]
        score = f" score {why['score']}" if why["score"] is not None else ""
        lines.append(f"  {r['source']}/{r['external_id']}: {who or '-'}")
        lines.append(f"    joined by: {why['evidence']}{score}")
        for field, ev in (why["fields"] or {}).items():
            lines.append(f"      {field}: {ev['level']} ({ev['weight']:+})")
    for title in [t for t, *_ in RECORDS.values()]:
        rows = data[title]
        lines.append(f"{title} ({len(rows)}):")
        for row in rows:
            lines.append("  " + " | ".join("-" if v is None else _when(v) if isinstance(v, dt.datetime) else str(v)
                                           for v in row.values()))
    if data["merged_persons"]:
        lines.append("merged from persons: " + ", ".join(map(str, data["merged_persons"])))
    return lines


def _when(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return "-" if value is None else str(value)


def _refs(conn: Connection, who: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Rule refs for a person id (its records now) or an email; and the records they name."""
    sp = SourcePerson.__table__
    if who.strip().isdigit():
        pid = find_person(conn, who)
        rows = conn.execute(select(sp.c.source, sp.c.external_id).where(sp.c.person_id == pid)).all()
        return [f"record:{s}/{e}" for s, e in rows], [tuple(r) for r in rows]
    email = who.strip().lower()
    rows = conn.execute(select(sp.c.source, sp.c.external_id).where(sp.c.email == email)).all()
    if not rows:
        raise CrmhubError(f"no record with email {who}")
    return [f"email:{email}"], [tuple(r) for r in rows]


def link(cfg: Config, a: str, b: str, *, never: bool) -> str:
    """Record a must-merge (link) or never-merge (unlink) rule; the next `crmhub model` applies it."""
    if a.strip().lower() == b.strip().lower():
        raise CrmhubError("give two different persons")
    engine = _engine(cfg)
    try:
        with engine.begin() as conn:
            left, left_rows = _refs(conn, a)
            right, right_rows = _refs(conn, b)
            kind = "never" if never else "must"
            conn.execute(PersonRule.__table__.insert().values(
                kind=kind, left_refs=left, right_refs=right, note=f"{a} {b}"[:255], created_at=dt.datetime.now(UTC)))
            derive.mark_pending(conn, left_rows + right_rows)
    finally:
        engine.dispose()
    verb = "never merged" if never else "merged"
    return f"{a} and {b} will be {verb} from the next `crmhub model` on"


def forget(cfg: Config, who: str) -> erasure.Erasure:
    from crmhub import jobs

    sources = {}
    for name, settings in cfg.settings.sources.items():
        try:
            sources[name] = (settings.connector, jobs._mapping_options(cfg, name, settings.connector))
        except Exception as exc:  # an unloadable connector: its raw records are searched as text only
            sources[name] = (None, {"error": str(exc)})
    from connectors import manual

    sources.setdefault(manual.DEFAULT_SOURCE, ("manual", {}))  # `crmhub lead add` without a declared source
    erasure.use_config(sources)
    engine = _engine(cfg)
    try:
        return erasure.forget(engine, who)
    finally:
        engine.dispose()


__all__ = ["find_person", "forget", "link", "render", "show", "to_json"]
