"""Identity resolution: one ``person`` per real person across sources.

Every ``source_person`` row (a form respondent, a shop customer, a rep's contact) is
grouped with every other row that shares a normalised email address or phone
number (transitively). Each group is one person. Person ids are stable: a group
keeps the id its rows already had; when a new row bridges two existing persons,
the lower id survives and the merge is written to ``person_merge`` with the shared
identifier as evidence. Then ``sql/model/*.sql`` copies person ids onto leads,
orders, cases, ... and rebuilds each person's golden record.

This is the deterministic core (exact identifiers, score 1.0). Fuzzy matching on
names and addresses can add weaker edges with lower scores on the same structure.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Connection, delete, insert, select, text

from crm_model.load import Upserter
from crm_model.paths import sql_dir
from crm_model.schema import Identity, Person, PersonMerge, SourcePerson

SQL_DIR = sql_dir()
UTC = dt.UTC


@dataclass
class ModelResult:
    persons: int = 0
    created: int = 0
    merged: int = 0
    attached: int = 0


class _UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:
            self.parent[i], i = root, self.parent[i]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def resolve(conn: Connection) -> ModelResult:
    """Assign ``source_person.person_id`` and maintain ``person``/``identity``/``person_merge``."""
    sp = SourcePerson.__table__
    rows = conn.execute(
        select(sp.c.source, sp.c.external_id, sp.c.email, sp.c.phone, sp.c.person_id)
        .order_by(sp.c.source, sp.c.external_id)
    ).all()
    result = ModelResult()
    uf = _UnionFind(len(rows))
    first_holder: dict[tuple[str, str], int] = {}
    for i, row in enumerate(rows):
        for kind, value in (("email", row.email), ("phone", row.phone)):
            if value:
                j = first_holder.setdefault((kind, value), i)
                if j != i:
                    uf.union(i, j)

    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(len(rows)):
        groups[uf.find(i)].append(i)

    now = dt.datetime.now(UTC)
    assign: list[dict] = []  # source_person rows whose person_id changes
    merges: list[dict] = []
    retired: list[int] = []
    new_ids = iter(_new_persons(conn, sum(
        1 for members in groups.values() if all(rows[i].person_id is None for i in members))))
    for members in groups.values():
        existing = sorted({rows[i].person_id for i in members if rows[i].person_id is not None})
        if existing:
            person_id = existing[0]
            for other in existing[1:]:
                retired.append(other)
                merges.append({"person_id": person_id, "merged_person_id": other, "source": None,
                               "external_id": None, "evidence": _evidence(rows, members),
                               "score": Decimal(1), "merged_at": now})
        else:
            person_id = next(new_ids)
            result.created += 1
        for i in members:
            row = rows[i]
            if row.person_id == person_id:
                continue
            assign.append({"s": row.source, "e": row.external_id, "p": person_id})
            if len(members) > 1 and (existing or i != members[0]):
                result.attached += 1
                merges.append({"person_id": person_id, "merged_person_id": None, "source": row.source,
                               "external_id": row.external_id, "evidence": _evidence(rows, members, i),
                               "score": Decimal(1), "merged_at": now})
    result.merged = len(retired)
    result.persons = len(groups)

    if assign:
        conn.execute(
            text("UPDATE source_person SET person_id = :p WHERE source = :s AND external_id = :e"), assign
        )
    if merges:
        conn.execute(insert(PersonMerge), merges)
    if retired:  # their records follow source_person to the survivor in sql/model
        conn.execute(delete(Person).where(Person.person_id.in_(retired)))
    _refresh_identities(conn)
    run_sql(conn, "model")
    return result


def _new_persons(conn: Connection, count: int) -> list[int]:
    """Create ``count`` persons in one statement; their ids, in creation order."""
    if not count:
        return []
    stmt = insert(Person).returning(Person.person_id, sort_by_parameter_order=True)
    return list(conn.execute(stmt, [{"lifecycle_stage": "lead"}] * count).scalars())


def _evidence(rows, members: list[int], i: int | None = None) -> str:
    """The identifier a member shares with the rest of its group, as kind:value."""
    candidates = [i] if i is not None else members
    for kind in ("email", "phone"):
        for c in candidates:
            value = getattr(rows[c], kind)
            if value and sum(1 for m in members if getattr(rows[m], kind) == value) > 1:
                return f"{kind}:{value}"
    return "group"


def _refresh_identities(conn: Connection) -> None:
    """identity = every (kind, value, source) a person is known by; rewritten when it differs."""
    sp = SourcePerson.__table__
    wanted: dict[tuple[str, str, str], int] = {}
    for row in conn.execute(select(sp.c.source, sp.c.external_id, sp.c.email, sp.c.phone,
                                   sp.c.shop_customer_id, sp.c.person_id)
                            .where(sp.c.person_id.is_not(None))):
        for kind, value in (("email", row.email), ("phone", row.phone),
                            ("external_id", row.shop_customer_id)):
            if value:
                wanted[(kind, value, row.source)] = row.person_id
        wanted[("external_id", row.external_id, row.source)] = row.person_id
    have = {(r.kind, r.value, r.source): r.person_id for r in conn.execute(select(Identity))}
    stale = [{"kind": k, "value": v, "source": s} for (k, v, s) in have.keys() - wanted.keys()]
    changed = [{"kind": k, "value": v, "source": s, "person_id": p}
               for (k, v, s), p in wanted.items() if have.get((k, v, s)) != p]
    Upserter(conn).delete_keys("identity", stale)
    Upserter(conn).upsert("identity", changed)


def run_sql(conn: Connection, folder: str) -> None:
    """Run every statement of ``sql/<folder>/*.sql`` in file-name order."""
    for path in sorted((SQL_DIR / folder).glob("*.sql")):
        for statement in _statements(path.read_text()):
            conn.exec_driver_sql(statement)


def _statements(sql: str) -> list[str]:
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


__all__ = ["ModelResult", "resolve", "run_sql"]
