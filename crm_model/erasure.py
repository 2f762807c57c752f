"""Erasure (`crmhub forget EMAIL|PERSON_ID`): remove a person from everywhere.

What is erased is driven by :data:`PERSON_TABLES` (rows found by person id or by the
erased source_person refs) and :data:`PAYLOAD_TABLES` (JSON payloads searched for the
person's identifiers); a table that gains personal data is one line in one of them.
Raw records are also matched by mapping them again: a raw record whose mapping yields
one of the erased source_person rows goes, whatever its formatting of a phone number.
Report files named in ``report_run.output_path`` are rewritten with the identifiers
replaced by ``[erased]``. Last, a SHA-256 tombstone of each email and phone is kept
(no personal data), so a later sync drops records about the person before landing them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, select, text

from crm_model.load import Upserter
from crm_model.mapping import MapContext, Reject, find_mapping
from crm_model.schema import PERSON_KEY_FORMS, ErasureTombstone, SourcePerson
from crm_model.types import as_document

UTC = dt.UTC
ERASED = "[erased]"

# table -> how its rows belong to a person: "person_id" (and person_ref, for the
# source_person rows erased), "person_key" (person_id; the deltas by their partial index,
# the keys a run from scratch stored by reading the table: they have no index by person),
# or a custom SQL condition on :ids / :refs.
PERSON_TABLES: dict[str, str] = {
    "lead": "person",
    "touchpoint": "person",
    "customer_order": "person",
    "service_case": "person",
    "service_contract": "person",
    "feedback": "person",
    "email_message": "person",
    "identity": "person_id",
    "person_key": "person_key",
    "person_key_stale": "person_id",
    "person_merge": "merge",
    "source_person": "person",
    "person": "person_id",
}
# tables with JSON payloads (or documents) searched for the person's identifiers
PAYLOAD_TABLES: dict[str, str] = {"raw_record": "payload", "rejected_record": "payload", "lead": "answers"}
# email_message address columns: a message the person sent goes; elsewhere the address is removed
ADDRESS_LISTS = ("to_addresses", "cc_addresses")


def name_birth_key(first: str | None, last: str | None, birth_date: Any) -> str | None:
    """Name and birth date: catches a record of an erased person that has no email or phone."""
    if not (first and last and birth_date):
        return None
    from crm_model.matching import fold

    return f"{fold(first)}|{fold(last)}|{birth_date}"


def digest(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value.strip().lower()}".encode()).hexdigest()


@dataclass
class Erasure:
    person_ids: list[int] = field(default_factory=list)
    removed: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    tombstones: int = 0

    def count(self, what: str, n: int) -> None:
        if n:
            self.removed[what] = self.removed.get(what, 0) + n


def forget(engine: Engine, who: str) -> Erasure:
    """Erase the person ``who`` (an email address or a person id) in one transaction."""
    out = Erasure()
    with engine.begin() as conn:
        sp = SourcePerson.__table__
        if who.strip().isdigit():
            ids = {int(who)}
            emails: set[str] = set()
        else:
            email = who.strip().lower()
            emails = {email}
            ids = {r[0] for r in conn.execute(select(sp.c.person_id).where(sp.c.email == email))
                   if r[0] is not None}
            ids |= {r[0] for r in conn.execute(text("SELECT person_id FROM identity WHERE kind = 'email' AND value = :v"),
                                               {"v": email})}
        persons = conn.execute(select(sp).where(sp.c.person_id.in_(ids))).all() if ids else []
        if not emails or ids:
            persons += conn.execute(select(sp).where(sp.c.email.in_(emails))).all() if emails else []
        refs = sorted({(r.source, r.external_id) for r in persons})
        emails |= {r.email for r in persons if r.email}
        phones = {r.phone for r in persons if r.phone}
        names = {n for r in persons for n in (r.display_name,
                                              " ".join(p for p in (r.first_name, r.last_name) if p)) if n}
        person_rows = conn.execute(text("SELECT person_id, email, phone, display_name FROM person"
                                        " WHERE person_id IN :ids").bindparams(bindparam("ids", expanding=True)),
                                   {"ids": sorted(ids) or [-1]}).all()
        for r in person_rows:
            emails |= {r.email} if r.email else set()
            phones |= {r.phone} if r.phone else set()
            names |= {r.display_name} if r.display_name else set()
        if not ids and not refs and not _mentions(conn, emails):
            return out
        out.person_ids = sorted(ids)
        needles = sorted(emails | phones | {p.lstrip("+") for p in phones})
        _erase_raw(conn, refs, emails, phones, out)
        _erase_payloads(conn, needles, sorted(names), out)
        _erase_addresses(conn, emails, out)
        _erase_rows(conn, sorted(ids), refs, out)
        _erase_reports(conn, needles + sorted(names), out)
        now = dt.datetime.now(UTC)
        born = {key for r in persons if (key := name_birth_key(r.first_name, r.last_name, r.birth_date))}
        stones = [{"digest": digest(k, v), "kind": k, "erased_at": now}
                  for k, values in (("email", emails), ("phone", phones), ("name_birth", born)) for v in values]
        Upserter(conn).upsert("erasure_tombstone", stones, insert_only=True)
        out.tombstones = len(stones)
    return out


def _mentions(conn: Connection, emails: set[str]) -> bool:
    for email in emails:
        if conn.execute(text("SELECT 1 FROM raw_record WHERE LOWER(CAST(payload AS TEXT)) LIKE :p LIMIT 1"),
                        {"p": f"%{_like(email)}%"}).first():
            return True
    return False


def _like(value: str) -> str:
    """A LIKE pattern body matching ``value`` (its wildcards taken as any character)."""
    return value.lower().replace("\\", "_").replace("%", "_")


def _in(conn: Connection, sql: str, name: str, values: list, **params: Any) -> int:
    total = 0
    for start in range(0, len(values), 500):
        stmt = text(sql).bindparams(bindparam(name, expanding=True))
        total += conn.execute(stmt, {name: values[start:start + 500], **params}).rowcount or 0
    return total


def _erase_rows(conn: Connection, ids: list[int], refs: list[tuple[str, str]], out: Erasure) -> None:
    by_source: dict[str, list[str]] = {}
    for source, external_id in refs:
        by_source.setdefault(source, []).append(external_id)
    for table, how in PERSON_TABLES.items():
        n = 0
        if how == "merge":
            n += _in(conn, f"DELETE FROM {table} WHERE person_id IN :ids OR merged_person_id IN :ids", "ids", ids)
        elif how == "person_id" or table == "person":
            n += _in(conn, f"DELETE FROM {table} WHERE person_id IN :ids", "ids", ids)
        elif how == "person_key":
            for form in PERSON_KEY_FORMS:
                n += _in(conn, f"DELETE FROM {table} WHERE {form} AND person_id IN :ids", "ids", ids)
        else:
            if table == "customer_order":  # an erased order takes its lines along
                n_lines = _in(conn, "DELETE FROM order_line WHERE EXISTS (SELECT 1 FROM customer_order o "
                              "WHERE o.source = order_line.source AND o.external_id = order_line.order_id "
                              "AND o.person_id IN :ids)", "ids", ids)
                for source, keys in by_source.items():
                    n_lines += _in(conn, "DELETE FROM order_line WHERE EXISTS (SELECT 1 FROM customer_order o "
                                   "WHERE o.source = order_line.source AND o.external_id = order_line.order_id "
                                   "AND o.source = :s AND o.person_ref IN :k)", "k", keys, s=source)
                out.count("order_line", n_lines)
            if table != "source_person":
                n += _in(conn, f"DELETE FROM {table} WHERE person_id IN :ids", "ids", ids)
            ref_col = "external_id" if table == "source_person" else "person_ref"
            for source, keys in by_source.items():
                n += _in(conn, f"DELETE FROM {table} WHERE source = :s AND {ref_col} IN :k", "k", keys, s=source)
            if table == "source_person":
                n += _in(conn, f"DELETE FROM {table} WHERE person_id IN :ids", "ids", ids)
        out.count(table, n)


def _erase_raw(conn: Connection, refs: list[tuple[str, str]], emails: set[str], phones: set[str],
               out: Erasure) -> None:
    """Raw records whose mapping yields one of the erased people (any formatting of their details)."""
    wanted = set(refs)
    sources = sorted({s for s, _ in refs})
    doomed: list[dict[str, str]] = []
    for source in sources:
        kind = _connector_of(conn, source)
        streams = [r[0] for r in conn.execute(text("SELECT DISTINCT stream FROM raw_record WHERE source = :s"),
                                              {"s": source})]
        for stream in streams:
            mapper = find_mapping(kind, stream) if kind else None
            if mapper is None:
                continue
            ctx = MapContext(source, stream, kind, _options_for(source))
            for row in conn.execute(text("SELECT record_key, payload FROM raw_record WHERE source = :s AND stream = :t"),
                                    {"s": source, "t": stream}):
                payload = row.payload if isinstance(row.payload, dict) else json.loads(row.payload)
                try:
                    rows = mapper.fn(payload, ctx)
                except Reject:
                    continue
                except Exception:  # a mapping that cannot read it leaves it to the text search
                    continue
                for r in rows:
                    vals = r.values
                    if r.table == "source_person" and (
                            (source, vals.get("external_id")) in wanted
                            or (vals.get("email") and vals["email"] in emails)
                            or (vals.get("phone") and vals["phone"] in phones)):
                        doomed.append({"source": source, "stream": stream, "record_key": row.record_key})
                        break
    Upserter(conn).delete_keys("raw_record", doomed)
    out.count("raw_record", len(doomed))


_options: dict[str, tuple[str | None, dict]] = {}


def use_config(sources: dict[str, tuple[str, dict]]) -> None:
    """Tell erasure each source's connector type and mapping options (from crmhub.yml)."""
    _options.clear()
    _options.update(sources)


def _connector_of(conn: Connection, source: str) -> str | None:
    return _options.get(source, (None, {}))[0]


def _options_for(source: str) -> dict:
    return _options.get(source, (None, {}))[1]


def _erase_payloads(conn: Connection, needles: list[str], names: list[str], out: Erasure) -> None:
    """Payload documents that mention an identifier (or, in quarantine, the name) go."""
    for table, column in PAYLOAD_TABLES.items():
        keys = ["source", "external_id"] if table == "lead" else ["source", "stream", "record_key"]
        words = needles + (names if table == "rejected_record" else [])
        found: set[tuple] = set()
        for word in words:
            if len(word) < 4:
                continue
            for row in conn.execute(text(f"SELECT {', '.join(keys)} FROM {table} "
                                         f"WHERE LOWER(CAST({column} AS TEXT)) LIKE :p"), {"p": f"%{_like(word)}%"}):
                found.add(tuple(row))
        Upserter(conn).delete_keys(table, [dict(zip(keys, k, strict=True)) for k in sorted(found)])
        out.count(table, len(found))


def _erase_addresses(conn: Connection, emails: set[str], out: Erasure) -> None:
    """Messages the person sent go; the person's address leaves other messages' recipient lists."""
    n = 0
    for email in sorted(emails):
        n += conn.execute(text("DELETE FROM email_message WHERE LOWER(from_address) = :e"), {"e": email}).rowcount or 0
        rows = conn.execute(text("SELECT source, message_id, to_addresses, cc_addresses FROM email_message "
                                 "WHERE LOWER(CAST(to_addresses AS TEXT)) LIKE :p OR LOWER(CAST(cc_addresses AS TEXT)) LIKE :p"),
                            {"p": f"%{_like(email)}%"}).all()
        for row in rows:
            new = {}
            for col in ADDRESS_LISTS:
                value = getattr(row, col)
                value = as_document(value)
                if isinstance(value, list):
                    new[col] = [a for a in value if email not in str(a).lower()]
            conn.execute(text("UPDATE email_message SET to_addresses = :t, cc_addresses = :c "
                              "WHERE source = :s AND message_id = :m"),
                         {"t": json.dumps(new.get("to_addresses")), "c": json.dumps(new.get("cc_addresses")),
                          "s": row.source, "m": row.message_id})
            n += 1
    out.count("email_message", n)


def _erase_reports(conn: Connection, words: list[str], out: Erasure) -> None:
    """Stored report files (report_run.output_path) are rewritten without the person's details."""
    paths = {r[0] for r in conn.execute(text("SELECT DISTINCT output_path FROM report_run WHERE output_path IS NOT NULL"))}
    words = [w for w in words if len(w) >= 4]
    for base in sorted(paths):
        root = Path(base)
        files: Iterable[Path] = [root] if root.is_file() else (root.rglob("*") if root.is_dir() else [])
        for path in files:
            if not path.is_file():
                continue
            try:
                content = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            lowered = content.lower()
            if not any(w.lower() in lowered for w in words):
                continue
            for w in words:
                content = _replace_ci(content, w, ERASED)
            path.write_text(content, encoding="utf-8")
            out.files.append(str(path))


def _replace_ci(content: str, word: str, by: str) -> str:
    return re.sub(re.escape(word), by, content, flags=re.IGNORECASE)


def load_tombstones(conn: Connection) -> frozenset[str]:
    return frozenset(r[0] for r in conn.execute(select(ErasureTombstone.digest)))


__all__ = ["PAYLOAD_TABLES", "PERSON_TABLES", "Erasure", "digest", "forget", "load_tombstones", "use_config"]
