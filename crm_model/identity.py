"""Identity resolution: one ``person`` per real person across sources.

Each ``source_person`` row (a form respondent, a shop customer, a rep's contact) is
joined to others by

1. **identifiers** (score 1): the same email address (optionally with provider rules:
   Gmail dots and +tags), phone number, shop customer id (within its source), ad click
   id (gclid/fbclid of a lead), or a custom identifier from ``identity.identifiers``.
   An email, phone, click id or shop customer id given with more distinct names than
   ``shared_identifier_names`` (a switchboard, info@, a family landline) joins only the
   records whose names agree; a custom identifier joins whatever the names;
2. **probabilistic matching** (:mod:`crm_model.matching`) of records that share no
   identifier: names, address, birth date, company, email local part, weighed by a
   Fellegi-Sunter model trained by EM without labels; pairs above ``match_threshold``
   are joined;
3. **rules**: must-merge pairs are joined first, never-merge pairs are never in one person
   (``identity.must_merge`` / ``never_merge`` in crmhub.yml, and ``crmhub person link|unlink``).

Runs are incremental: only ``source_person`` rows that are new or changed
(``model_pending``), the persons they belong to and the persons they match are
re-clustered; a run with nothing pending ends after one indexed query. Clusters are
connected components built from the edges in a fixed order (rules, identifiers, then
descending score, ties by record key), so the result does not depend on the order in
which sources synced. Person ids are stable: a cluster keeps the id most of its records
had. Every join is written to ``person_merge`` with its evidence and score.

The golden record (survivorship, see :func:`golden`) is rebuilt for the persons that
changed, then ``sql/model/*.sql`` copies person ids onto leads, orders, cases, ... and
recomputes lifecycle, first/last touch and first/last seen of those persons only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import Connection, delete, func, insert, or_, select, text, update

from crm_model import matching
from crm_model.identity_settings import GOLDEN_FIELDS, IdentitySettings, ModelResult
from crm_model.load import Upserter
from crm_model.mapping import values as v
from crm_model.paths import sql_dir
from crm_model.schema import Identity, Lead, MatchModel, Person, PersonKey, PersonMerge, PersonRule, SourcePerson

SQL_DIR = sql_dir()
UTC = dt.UTC
BATCH = 5000


class _UnionFind:
    """Union-find whose roots carry never-merge tags: a union that would put both sides
    of a never rule in one set is refused."""

    def __init__(self, n: int):
        self.parent = list(range(n))
        self.tags: dict[int, set[tuple[int, int]]] = {}

    def find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:
            self.parent[i], i = root, self.parent[i]
        return root

    def union(self, a: int, b: int) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        ta, tb = self.tags.get(ra), self.tags.get(rb)
        if ta and tb and any((rule, 1 - side) in tb for rule, side in ta):
            return False
        keep, gone = min(ra, rb), max(ra, rb)
        self.parent[gone] = keep
        if self.tags.get(gone):
            self.tags.setdefault(keep, set()).update(self.tags.pop(gone))
        return True


# ----------------------------------------------------------------------------- identifiers

_PLUS_TAG_DOMAINS = {"gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com",
                     "icloud.com", "me.com", "fastmail.com"}


def normalise_email(email: str | None, provider_rules: bool) -> str | None:
    """Lower-case; with provider rules, Gmail dots and +tags (and other providers' +tags) go."""
    if not email:
        return None
    email = email.strip().lower()
    if not provider_rules or "@" not in email:
        return email
    local, _, domain = email.rpartition("@")
    if domain in _PLUS_TAG_DOMAINS:
        local = local.split("+", 1)[0]
    if domain in ("gmail.com", "googlemail.com"):
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


# identifiers that people share (a family email, a switchboard, a shared device or account)
_CONTACT_KINDS = {"email", "phone", "click_id", "shop_customer"}


def _identifiers(row: Any, opts: IdentitySettings, clicks: dict[tuple[str, str], list[str]],
                 answers: dict[tuple[str, str], dict] | None = None) -> list[tuple[str, str]]:
    """(kind, value) identifiers of one source_person row."""
    out = []
    email = normalise_email(row.email, opts.email_provider_rules)
    if email:
        out.append(("email", email))
    if row.phone:
        out.append(("phone", row.phone))
    if row.shop_customer_id:  # shop ids are only unique inside their shop
        out.append(("shop_customer", f"{row.source}/{row.shop_customer_id}"))
    for click in clicks.get((row.source, row.external_id), ()):
        out.append(("click_id", click))
    attrs = _attributes(row) if opts.identifiers else {}
    for name, columns in opts.identifiers.items():
        column = columns.get(row.source)
        if not column:
            continue
        value = attrs.get(column)
        if value in (None, "") and answers:  # a form's field or hidden field
            given = answers.get((row.source, row.external_id)) or {}
            value = given.get(column)
            if value in (None, ""):
                value = given.get(f"hidden.{column}")
        if isinstance(value, (str, int, float)) and not isinstance(value, bool) and str(value).strip():
            out.append((name, str(value).strip().lower()))
    return out


def _form_answers(conn: Connection, opts: IdentitySettings,
                  refs: list[tuple[str, str]] | None = None) -> dict[tuple[str, str], dict]:
    """Answers of the leads of sources with a custom identifier, by the lead's source_person
    row (``refs``: of those rows only): a form's fields (webhook, Google Forms, csv) and
    hidden fields (Typeform ``hidden.<name>``) can hold one."""
    sources = sorted({source for columns in opts.identifiers.values() for source in columns})
    if not sources:
        return {}
    out = {}
    stmt = select(Lead.source, Lead.person_ref, Lead.answers).where(Lead.source.in_(sources),
                                                                     Lead.answers.is_not(None))
    for row in _lead_rows(conn, stmt, refs, set(sources)):
        answers = _doc(row.answers)
        if row.person_ref and isinstance(answers, dict):
            out[(row.source, row.person_ref)] = answers
    return out


def _attributes(row: Any) -> dict[str, Any]:
    attrs = row._mapping.get("attributes")
    if isinstance(attrs, str):
        try:
            attrs = json.loads(attrs)
        except ValueError:
            return {}
    return attrs if isinstance(attrs, dict) else {}


# ----------------------------------------------------------------------------- rules


@dataclass
class Rule:
    rule_id: int  # negative: from crmhub.yml
    kind: str  # must | never
    left: list[str]
    right: list[str]


def _rules(conn: Connection, opts: IdentitySettings) -> list[Rule]:
    rules = []
    for n, (a, b) in enumerate(opts.must_merge, 1):
        rules.append(Rule(-n, "must", [ref_of(a)], [ref_of(b)]))
    for n, (a, b) in enumerate(opts.never_merge, 1):
        rules.append(Rule(-1000 - n, "never", [ref_of(a)], [ref_of(b)]))
    for r in conn.execute(select(PersonRule.__table__).order_by(PersonRule.rule_id)):
        rules.append(Rule(r.rule_id, r.kind, list(_doc(r.left_refs)), list(_doc(r.right_refs))))
    return rules


def _doc(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def ref_of(text_ref: str) -> str:
    """A config reference as a rule ref: an email, a +phone, or SOURCE/EXTERNAL_ID."""
    s = str(text_ref).strip()
    if "@" in s:
        return f"email:{s.lower()}"
    if s.startswith("+"):
        return f"phone:{s}"
    return f"record:{s}"


# ----------------------------------------------------------------------------- resolve

_COLUMNS = ("source", "external_id", "person_id", "model_pending", *GOLDEN_FIELDS,
            "shop_customer_id", "seen_at")


def resolve(conn: Connection, opts: IdentitySettings | None = None, *, full: bool = False) -> ModelResult:
    """Assign ``source_person.person_id``; maintain ``person``, ``identity`` and ``person_merge``."""
    opts = opts or IdentitySettings()
    sp = SourcePerson.__table__
    result = ModelResult()
    rules = _rules(conn, opts)
    rules_changed = _config_rules_changed(conn, opts)
    pending_filter = or_(sp.c.model_pending.is_(True), sp.c.person_id.is_(None))
    nothing_new = not full and not rules_changed and conn.execute(
        select(sp.c.external_id).where(pending_filter).limit(1)).first() is None
    _prepare_scratch(conn)
    if nothing_new:
        _link_records(conn)
        return result

    needs_attrs = bool(opts.identifiers or opts.compare_attributes or opts.attribute_fields)
    cols = [sp.c[c] for c in _COLUMNS] + ([sp.c.attributes] if needs_attrs else [])
    total = conn.execute(select(func.count()).select_from(sp)).scalar_one()
    if total == 0:
        _link_records(conn)
        return result
    # Small warehouses are resolved from scratch whenever anything changed: it costs little,
    # and the model trained on all the data, not on what came first, decides every pair.
    # So are runs where most records are new or changed (a first run, a re-sync), runs
    # after the identity config changed, and runs with no usable stored model (none yet,
    # the data doubled since it was trained, or no blocking keys stored with it).
    stored = _stored_model(conn, opts, total)
    full = (full or rules_changed or (stored is None and opts.probabilistic) or total <= opts.full_run_below
            or 2 * pending_count(conn) >= total)
    holding: dict[int, int] = {}  # incremental runs: persons per name pair of a pending record
    if full:
        rows = conn.execute(select(*cols).order_by(sp.c.source, sp.c.external_id)).all()
        clicks, answers = _click_ids(conn), _form_answers(conn, opts)
    else:  # only the pending records and the persons they may touch, found through indexes
        rows = _neighbourhood(conn, cols, pending_filter, rules, opts, holding)
        refs = [(r.source, r.external_id) for r in rows]
        clicks, answers = _click_ids(conn, refs), _form_answers(conn, opts, refs)
    n = len(rows)
    index = {(r.source, r.external_id): i for i, r in enumerate(rows)}
    old_pid = [r.person_id for r in rows]
    pending = np.fromiter((full or r.model_pending is not False or r.person_id is None for r in rows),
                          dtype=bool, count=n)

    members_of: dict[int, list[int]] = defaultdict(list)
    for i, pid in enumerate(old_pid):
        if pid is not None:
            members_of[pid].append(i)

    # ---- deterministic identifiers
    holders: dict[tuple[str, str], list[int]] = defaultdict(list)
    idents = [_identifiers(row, opts, clicks, answers) for row in rows]
    for i, found in enumerate(idents):
        for ident in found:
            holders[ident].append(i)
    first = matching.fold_all([r.first_name for r in rows])
    last = matching.fold_all([r.last_name for r in rows])
    names = [matching.name_key(f, la) for f, la in zip(first, last, strict=True)]

    # ---- probabilistic candidates; a shared email or phone is no evidence there either
    shared = set()
    known: list[tuple[int, int]] = []  # pairs one email or phone of one name joins: training data
    for ident, hs in holders.items():
        if ident[0] in ("email", "phone") and len(hs) > 1:
            groups = _name_groups(hs, first, last, names)
            if len(groups) > opts.shared_identifier_names:
                shared.add(ident)
            elif len(groups) == 1 and len(groups[0]) == len(hs) and len(known) < 200_000:
                known.extend((hs[0], j) for j in hs[1:10])
    columns = None
    if opts.probabilistic:
        if opts.attribute_fields or opts.compare_attributes:
            person_rows = [_match_fields(r, opts) for r in rows]
        else:  # the rows' own mappings: no copy per row
            person_rows = [r._mapping for r in rows]
        columns = matching.normalise(person_rows, extra=opts.compare_attributes)
        for i, row in enumerate(rows) if shared else ():  # a shared email or phone is no evidence
            if row.phone and ("phone", row.phone) in shared:
                columns.values["phone"][i] = ""
            if row.email and ("email", normalise_email(row.email, opts.email_provider_rules)) in shared:
                columns.values["email_local"][i] = ""
    scored = None  # full runs: the candidate pairs and their levels, computed once
    if columns is not None and full:
        all_pairs = matching.candidate_pairs(columns)
        scored = (all_pairs, matching.compare(columns, all_pairs))
    if columns is None:
        model = None
    elif full:
        model = _train(conn, columns, scored, opts.household_guard, opts.household_fields,
                       opts.household_override_bits, known)
    else:  # between retrainings the weights stay fixed: later records are judged by the same model
        model = stored

    # ---- the affected set: pending records, what they match, and the persons of both
    if full:
        affected = np.ones(n, dtype=bool)
    else:
        affected = pending.copy()
        for ident_holders in holders.values():
            if len(ident_holders) > 1 and pending[ident_holders].any():
                affected[ident_holders] = True
        if columns is not None:
            pairs = matching.candidate_pairs(columns, only=pending)
            if len(pairs):
                levels = matching.compare(columns, pairs)
                _, prob = matching.score(model, levels, **_guard(opts),
                                         extra=matching.frequency_bits(model, columns, pairs, levels, total, holding))
                hit = pairs[prob >= opts.match_threshold]
                affected[hit.ravel()] = True
        for rule in rules:
            sides = _expand(rule.left + rule.right, rows, index, opts)
            if sides and affected[sides].any():
                affected[sides] = True
        for pid in {old_pid[i] for i in np.flatnonzero(affected) if old_pid[i] is not None}:
            affected[members_of[pid]] = True
    chosen = np.flatnonzero(affected)
    result.looked_at = len(chosen)

    # ---- edges among the affected records, in a fixed order
    edges: list[tuple[int, float, int, int, str, Any]] = []  # (rank, -score, i, j, evidence, fields)
    for rule in rules:
        if rule.kind == "must":
            sides = [i for i in _expand(rule.left + rule.right, rows, index, opts) if affected[i]]
            for j in sides[1:]:
                edges.append((0, -1.0, sides[0], j, f"must-merge rule {rule.rule_id}", None))
    for (kind, value), ident_holders in holders.items():
        hs = [i for i in ident_holders if affected[i]]
        if len(hs) < 2:
            continue
        # a custom identifier is declared to name one person: it joins whatever the names
        groups = _name_groups(hs, first, last, names) if kind in _CONTACT_KINDS else []
        if len(groups) <= opts.shared_identifier_names:
            for j in hs[1:]:
                edges.append((1, -1.0, hs[0], j, f"{kind}:{value}", None))
        else:  # shared: only records naming the same person are joined by it
            for same in groups:
                for j in same[1:]:
                    edges.append((1, -1.0, same[0], j,
                                  f"{kind}:{value} (shared by {len(groups)} names; names agree)", None))
    if columns is not None and len(chosen) > 1:
        if scored is not None:
            pairs, levels = scored
        else:
            pairs = matching.candidate_pairs(columns, only=affected)
            pairs = pairs[affected[pairs[:, 0]] & affected[pairs[:, 1]]]
            levels = matching.compare(columns, pairs) if len(pairs) else {}
        if len(pairs):
            common = matching.frequency_bits(model, columns, pairs, levels, total, holding)
            weight, prob = matching.score(model, levels, **_guard(opts), extra=common)
            weights = model.weights()
            for k in np.flatnonzero(prob >= opts.match_threshold):
                i, j = int(pairs[k, 0]), int(pairs[k, 1])
                edges.append((2, -float(prob[k]), i, j, f"probabilistic match (weight {weight[k]:.1f})",
                              matching.evidence(columns, weights, levels, int(k), common)))
    edges.sort(key=lambda e: (e[0], e[1], e[2], e[3]))

    uf = _UnionFind(n)
    for rule in rules:
        if rule.kind == "never":
            for side, refs in ((0, rule.left), (1, rule.right)):
                for i in _expand(refs, rows, index, opts):
                    uf.tags.setdefault(uf.find(i), set()).add((rule.rule_id, side))
    joins: list[tuple[int, int, str, float, Any]] = []  # (record that joined, other, ...)
    size = defaultdict(lambda: 1)
    for _, neg, i, j, why, fields in edges:
        ri, rj = uf.find(i), uf.find(j)
        if ri == rj:
            continue
        grown = size[ri] + size[rj]
        if uf.union(i, j):
            # the record of the smaller side is the one that joined (ties: the later record)
            joiner, other = (i, j) if (size[ri], -i) < (size[rj], -j) else (j, i)
            size[uf.find(i)] = grown
            joins.append((joiner, other, why, -neg, fields))

    del edges, scored  # every pair and its levels: not needed past here
    pairs = levels = None

    # ---- person ids: each cluster keeps the id most of its records had
    clusters: dict[int, list[int]] = defaultdict(list)
    for i in chosen:
        clusters[uf.find(int(i))].append(int(i))
    taken: set[int] = set()
    new_pid: dict[int, int] = {}
    need_new: list[int] = []
    for root in sorted(clusters):
        ids = Counter(old_pid[i] for i in clusters[root] if old_pid[i] is not None)
        for pid, _ in sorted(ids.items(), key=lambda kv: (-kv[1], kv[0])):
            if pid not in taken:
                taken.add(pid)
                new_pid[root] = pid
                break
        else:
            need_new.append(root)
    for root, pid in zip(need_new, _new_persons(conn, len(need_new)), strict=True):
        new_pid[root] = pid
    result.created = len(need_new)
    old_ids = {old_pid[i] for i in chosen if old_pid[i] is not None}
    retired = sorted(old_ids - set(new_pid.values()))
    result.merged = len(retired)

    now = dt.datetime.now(UTC)
    touched_roots = [root for root, members in clusters.items()
                     if any(pending[i] or old_pid[i] != new_pid[root] for i in members)]
    changed_rows = [{"source": rows[i].source, "external_id": rows[i].external_id,
                     "person_id": new_pid[root], "model_pending": False}
                    for root in touched_roots for i in clusters[root]
                    if pending[i] or old_pid[i] != new_pid[root]]
    merges = []
    for joiner, other, why, score, fields in joins:
        pid = new_pid[uf.find(joiner)]
        if old_pid[joiner] is not None and old_pid[joiner] == old_pid[other]:
            continue  # already one person: nothing new
        merges.append({"person_id": pid, "merged_person_id": None, "source": rows[joiner].source,
                       "external_id": rows[joiner].external_id, "evidence": why[:400],
                       "score": Decimal(str(round(score, 4))), "merged_at": now, "fields": fields})
    for pid in retired:
        survivor = next(new_pid[r] for r in clusters if any(old_pid[i] == pid for i in clusters[r]))
        merges.append({"person_id": survivor, "merged_person_id": pid, "source": None, "external_id": None,
                       "evidence": "its records now belong to this person", "score": Decimal(1),
                       "merged_at": now, "fields": None})
    result.attached = sum(1 for m in merges if m["merged_person_id"] is None)
    result.persons = len(touched_roots)

    up = Upserter(conn)
    mark = "%s" if conn.dialect.name == "postgresql" else "?"
    # driver-level executemany of tuples: bound dicts cost ~10 us a row more
    update_sql = (f"UPDATE source_person SET person_id = {mark}, model_pending = {mark} "
                  f"WHERE source = {mark} AND external_id = {mark}")
    for start in range(0, len(changed_rows), 50_000):
        conn.exec_driver_sql(update_sql, [(r["person_id"], False, r["source"], r["external_id"])
                                          for r in changed_rows[start:start + 50_000]])
    if merges:
        conn.execute(insert(PersonMerge), merges)
    if retired:
        for start in range(0, len(retired), BATCH):
            chunk = retired[start:start + BATCH]
            conn.execute(delete(Identity).where(Identity.person_id.in_(chunk)))
            conn.execute(delete(Person).where(Person.person_id.in_(chunk)))

    changed_refs = [(r["source"], r["external_id"]) for r in changed_rows]
    del changed_rows

    # ---- golden records and identities of the persons that changed, 20,000 persons at a time
    dirty = [new_pid[root] for root in touched_roots]
    golden_rows: list[dict] = []
    identity_rows: list[tuple] = []
    identity_sql = (f"INSERT INTO identity (kind, value, source, person_id) VALUES ({mark}, {mark}, {mark}, {mark}) "
                    "ON CONFLICT (kind, value, source) DO UPDATE SET person_id = excluded.person_id")
    for start in range(0, len(dirty), BATCH):
        conn.execute(delete(Identity).where(Identity.person_id.in_(dirty[start:start + BATCH])))
    for start in range(0, len(touched_roots), 20_000):
        golden_rows = []
        identity_rows = []
        for root in touched_roots[start:start + 20_000]:
            pid = new_pid[root]
            members = [rows[i] for i in clusters[root]]
            golden_rows.append({"person_id": pid, **golden(members, opts)})
            for i in clusters[root]:
                row = rows[i]
                for kind, value in idents[i]:
                    if kind == "shop_customer":
                        kind, value = "external_id", row.shop_customer_id
                    identity_rows.append((kind[:16], str(value)[:320], row.source, pid))
                identity_rows.append(("external_id", row.external_id[:320], row.source, pid))
        up.upsert("person", golden_rows)
        if identity_rows:  # a repeated identifier: the last row wins, as with the upsert
            conn.exec_driver_sql(identity_sql, identity_rows)
    del golden_rows, identity_rows
    if columns is not None and full:  # the blocking keys of every person
        members = [i for root in clusters for i in clusters[root]]
        _write_keys(conn, columns, members, [new_pid[uf.find(i)] for i in members], None)
    elif columns is not None:
        # A person that only gained records keeps its keys and gets those of the new ones;
        # one that lost a record, or whose record changed, has its keys written anew.
        moved = [i for root in touched_roots for i in clusters[root]
                 if pending[i] or old_pid[i] != new_pid[root]]
        redo = {old_pid[i] for i in moved if old_pid[i] is not None} | set(retired)
        members = sorted({*moved, *(i for root in clusters if new_pid[root] in redo for i in clusters[root])})
        _write_keys(conn, columns, members, [new_pid[uf.find(i)] for i in members], sorted(redo))

    _mark_dirty(conn, dirty, changed_refs)
    _link_records(conn)
    return result


# An incremental run takes at most this many persons per blocking key of a new record (a
# run from scratch pairs a record with its 40 neighbours in a key's sorted run).
KEY_PERSONS = 100
_IN = 5000  # values per IN (...) list


def _chunks(values: list, size: int = _IN):
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _neighbourhood(conn: Connection, cols: list, pending_filter: Any, rules: list[Rule], opts: IdentitySettings,
                   holding: dict[int, int]) -> list[Any]:
    """The records an incremental run looks at: the pending ones, and every record of the
    persons they may belong to, found through indexes only: the pending records' old
    persons, the persons holding one of their identifiers (``identity``), the persons
    sharing one of their blocking keys (``person_key``), and the records a rule names
    together with a pending one. Sorted by (source, external_id). ``holding`` gets, per
    name-pair key of a pending record, how many persons hold it (common names, uncapped)."""
    sp = SourcePerson.__table__
    pending_rows = conn.execute(select(*cols).where(pending_filter)).all()
    persons = {r.person_id for r in pending_rows if r.person_id is not None}
    refs = [(r.source, r.external_id) for r in pending_rows]
    clicks, answers = _click_ids(conn, refs), _form_answers(conn, opts, refs)
    wanted: dict[str, set[str]] = defaultdict(set)
    for row in pending_rows:
        for kind, value in _identifiers(row, opts, clicks, answers):
            if kind == "shop_customer":  # stored as the shop's external_id (see the identity rows below)
                kind, value = "external_id", row.shop_customer_id
            wanted[kind[:16]].add(str(value)[:320])
    for kind, values in wanted.items():
        for chunk in _chunks(sorted(values)):
            persons.update(conn.execute(select(Identity.person_id).where(
                Identity.kind == kind, Identity.value.in_(chunk))).scalars())
    if opts.probabilistic and pending_rows:
        fields = [_match_fields(r, opts) if opts.attribute_fields or opts.compare_attributes else r._mapping
                  for r in pending_rows]
        keys = matching.blocking_keys(matching.normalise(fields, extra=opts.compare_attributes))
        found = np.unique(np.concatenate([k[k >= 0] for k in keys.values()]))
        by_key: dict[int, list[int]] = defaultdict(list)
        pk = PersonKey.__table__
        for chunk in _chunks(found.tolist()):
            for block_key, pid in conn.execute(select(pk.c.block_key, pk.c.person_id).where(pk.c.block_key.in_(chunk))):
                by_key[block_key].append(pid)
        for pids in by_key.values():
            persons.update(sorted(pids)[:KEY_PERSONS])
        names = keys["names"]
        holding.update((k, len(by_key.get(k, ()))) for k in np.unique(names[names >= 0]).tolist())
    refs: set[tuple[str, str]] = set()
    index = {(r.source, r.external_id): i for i, r in enumerate(pending_rows)}
    for rule in rules:  # a rule naming a pending record brings the records it names
        named = rule.left + rule.right
        if _expand(named, pending_rows, index, opts):
            for ref in named:
                kind, _, value = ref.partition(":")
                if kind == "record":
                    source, _, external_id = value.partition("/")
                    refs.add((source, external_id))
                elif kind in ("email", "phone"):
                    value = normalise_email(value, opts.email_provider_rules) if kind == "email" else value
                    persons.update(conn.execute(select(Identity.person_id).where(
                        Identity.kind == kind, Identity.value == value)).scalars())
    by_ref = {(r.source, r.external_id): r for r in pending_rows}
    for source, external_id in sorted(refs - set(by_ref)):
        row = conn.execute(select(*cols).where(sp.c.source == source, sp.c.external_id == external_id)).first()
        if row is not None:
            by_ref[(source, external_id)] = row
            if row.person_id is not None:
                persons.add(row.person_id)
    for chunk in _chunks(sorted(persons)):
        for row in conn.execute(select(*cols).where(sp.c.person_id.in_(chunk))):
            by_ref.setdefault((row.source, row.external_id), row)
    return [by_ref[k] for k in sorted(by_ref)]


_KEY_INDEX = "ix_person_key_person_id"


def _write_keys(conn: Connection, columns: matching.Columns, members: list[int], pids: list[int],
                drop: list[int] | None) -> None:
    """Store the blocking keys of records ``members`` (row indexes) under their persons
    ``pids``, one row per distinct (key, person); keys a person has already stay. ``drop``:
    persons whose keys go first (None: every stored key goes, a run from scratch)."""
    if drop is None:  # every key anew: without the person_id index, built again after (3x faster)
        conn.exec_driver_sql("TRUNCATE person_key" if conn.dialect.name == "postgresql" else "DELETE FROM person_key")
        conn.exec_driver_sql(f"DROP INDEX {_KEY_INDEX}")
    else:
        for chunk in _chunks(drop):
            conn.execute(delete(PersonKey).where(PersonKey.person_id.in_(chunk)))
    if not members:
        if drop is None:
            conn.exec_driver_sql(f"CREATE INDEX {_KEY_INDEX} ON person_key (person_id)")
        return
    keys = columns.keys if columns.keys is not None else matching.blocking_keys(columns)
    idx = np.asarray(members, dtype=np.int64)
    owner = np.asarray(pids, dtype=np.int64)
    block = np.concatenate([k[idx] for k in keys.values()])
    person = np.tile(owner, len(keys))
    keep = block >= 0
    block, person = block[keep], person[keep]
    order = np.lexsort((person, block))
    block, person = block[order], person[order]
    first = np.ones(len(block), dtype=bool)
    first[1:] = (block[1:] != block[:-1]) | (person[1:] != person[:-1])
    block, person = block[first], person[first]
    mark = "%s" if conn.dialect.name == "postgresql" else "?"
    sql = f"INSERT INTO person_key (block_key, person_id) VALUES ({mark}, {mark}) ON CONFLICT DO NOTHING"
    for start in range(0, len(block), 100_000):  # Python ints for 100,000 rows at a time
        conn.exec_driver_sql(sql, list(zip(block[start:start + 100_000].tolist(),
                                           person[start:start + 100_000].tolist(), strict=True)))
    if drop is None:
        conn.exec_driver_sql(f"CREATE INDEX {_KEY_INDEX} ON person_key (person_id)")


def _guard(opts: IdentitySettings) -> dict[str, Any]:
    return {"guard": opts.household_guard, "household": opts.household_fields,
            "override": opts.household_override_bits}


def _name_groups(holders: list[int], first: list[str], last: list[str], names: list[str]) -> list[list[int]]:
    """The holders of one identifier, grouped by the person their names describe.

    Names agree when the last names are close (Jaro-Winkler >= 0.85) and the first names
    are too, or are nicknames or initials of each other; a typo is not another person.
    Holders without a name are in no group. Many holders: exact names only (fast path).
    """
    named = [i for i in holders if names[i]]
    if len(named) > 50:
        exact: dict[str, list[int]] = defaultdict(list)
        for i in named:
            exact[names[i]].append(i)
        return list(exact.values())
    groups: list[list[int]] = []
    for i in named:
        for group in groups:
            j = group[0]
            if _names_agree(first[i], last[i], first[j], last[j]):
                group.append(i)
                break
        else:
            groups.append([i])
    return groups


def _names_agree(f1: str, l1: str, f2: str, l2: str) -> bool:
    from rapidfuzz.distance import JaroWinkler

    def close(a: str, b: str) -> bool:
        return not a or not b or a == b or JaroWinkler.normalized_similarity(a, b) >= 0.85

    def given(a: str, b: str) -> bool:
        if not a or not b or a[0] == b[0] and (len(a) == 1 or len(b) == 1):
            return True
        return matching.NICKNAMES.get(a, a) == matching.NICKNAMES.get(b, b) or close(a, b)

    if close(l1, l2) and given(f1, f2):
        return True
    return bool(f1 and l1 and f1 == l2 and l1 == f2)  # first and last swapped


def _match_fields(row: Any, opts: IdentitySettings) -> dict[str, Any]:
    """The fields the matcher compares: person fields, then attributes standing in for them."""
    out = {f: getattr(row, f) for f in GOLDEN_FIELDS}
    if opts.attribute_fields or opts.compare_attributes:
        attrs = _attributes(row)
        for column, target in opts.attribute_fields.items():
            if not out.get(target) and attrs.get(column) not in (None, ""):
                out[target] = attrs[column]
        for column in opts.compare_attributes:
            out[column] = attrs.get(column)
    return out


def golden(members: list[Any], opts: IdentitySettings) -> dict[str, Any]:
    """Survivorship: per field, a value from the most trusted source (``source_priority``);
    among equally trusted sources the most recently seen non-empty value; ties by source
    and record key, so the result never depends on load order."""
    if len(members) == 1:
        row = members[0]._mapping
        return {name: (row[name] if row[name] != "" else None) for name in _GOLDEN}
    out: dict[str, Any] = {}
    oldest = dt.datetime.min.replace(tzinfo=UTC)
    maps = [m._mapping for m in members]
    seen = []
    for row in maps:
        when = row["seen_at"] or oldest
        seen.append(when if when.tzinfo else when.replace(tzinfo=UTC))
    for name in _GOLDEN:
        priority = opts.priority(name)
        best = None
        best_key = None
        for row, when in zip(maps, seen, strict=True):
            value = row[name]
            if value is None or value == "":
                continue
            rank = priority.index(row["source"]) if row["source"] in priority else len(priority)
            sort_key = (-rank, when, row["source"], row["external_id"])
            if best_key is None or sort_key > best_key:
                best, best_key = value, sort_key
        out[name] = best
    return out


_GOLDEN = tuple(f for f in GOLDEN_FIELDS if f != "lifecycle_stage")


# Stored with the model once person_key holds the blocking keys of every person (bump it
# when the keys change: the next run then starts from scratch and writes them again).
KEYS_VERSION = 1


def _stored_model(conn: Connection, opts: IdentitySettings, total: int) -> matching.Model | None:
    """The model of the last run from scratch, if incremental runs may use it: trained on
    at least half as many records as there are now, on the fields compared now, and with
    the blocking keys of every person stored in ``person_key``."""
    stored = conn.execute(select(MatchModel.__table__).where(MatchModel.name == "default")).first()
    if stored is None or total > 2 * max(stored.trained_on, 1):
        return None
    params = _doc(stored.params)
    if params.get("keys") != KEYS_VERSION or set(params.get("m", {})) != {*matching.FIELDS, *opts.compare_attributes}:
        return None
    return matching.Model.from_json(params)


def _train(conn: Connection, columns: matching.Columns, scored: tuple | None = None,
           guard: bool = True, household: Any = matching.HOUSEHOLD_FIELDS, override: float = 8.0,
           known: list[tuple[int, int]] | None = None) -> matching.Model:
    """A new model, trained now on every record (runs from scratch), and stored.

    Between retrainings the weights stay fixed, so records that arrive later are judged
    by the same model as those before them. With the household guard, EM learns from the
    plausible pairs only: relatives (same surname, address, landline) are most of the
    candidate pairs in a family-heavy warehouse, and EM would learn them as the matches."""
    if scored is None:
        pairs = matching.candidate_pairs(columns)
        scored = (pairs, matching.compare(columns, pairs))
    pairs, levels = scored
    known_levels = None
    if known:
        known_pairs = np.unique(np.sort(np.asarray(known, dtype=np.int64), axis=1), axis=0)
        known_levels = matching.compare(columns, known_pairs)
    if guard and len(pairs):
        # first without the guard's exception, then with the weights that first model
        # gives the fields relatives do not share (records whose id number agrees are
        # matches EM should see)
        keep = matching.plausible(levels)
        first = matching.train(columns, pairs[keep], {f: lv[keep] for f, lv in levels.items()},
                               known=known_levels)
        keep = matching.plausible(levels, first.weights(), household=household, override=override)
        pairs, levels = pairs[keep], {f: lv[keep] for f, lv in levels.items()}
        model = matching.train(columns, pairs, levels, known=known_levels, u=first.u)
    else:
        model = matching.train(columns, pairs, levels, known=known_levels)
    model.tf = matching.term_frequencies(columns, model.u)
    Upserter(conn).upsert("match_model", [{"name": "default", "params": {**model.to_json(), "keys": KEYS_VERSION},
                                            "trained_on": columns.n, "trained_at": dt.datetime.now(UTC)}])
    return model


def _config_rules_changed(conn: Connection, opts: IdentitySettings) -> bool:
    """Whether the rules in crmhub.yml differ from those the last run applied."""
    digest = hashlib.sha256(json.dumps([opts.must_merge, opts.never_merge, opts.identifiers,
                                        opts.email_provider_rules, opts.shared_identifier_names,
                                        opts.source_priority, opts.match_threshold,
                                        opts.compare_attributes, opts.attribute_fields,
                                        opts.probabilistic, opts.household_guard, opts.household_fields,
                                        opts.household_override_bits]).encode()).hexdigest()
    stored = conn.execute(select(MatchModel.params).where(MatchModel.name == "config")).scalar_one_or_none()
    if stored is not None and _doc(stored).get("digest") == digest:
        return False
    Upserter(conn).upsert("match_model", [{"name": "config", "params": {"digest": digest}, "trained_on": 0,
                                            "trained_at": dt.datetime.now(UTC)}])
    return stored is not None  # the first run looks at everything anyway


def _expand(refs: list[str], rows: list[Any], index: dict, opts: IdentitySettings) -> list[int]:
    """Record indexes a rule's refs name."""
    out = []
    wanted = set(refs)
    for ref in refs:
        if ref.startswith("record:"):
            source, _, external_id = ref[7:].partition("/")
            i = index.get((source, external_id))
            if i is not None:
                out.append(i)
    if any(r.startswith(("email:", "phone:")) for r in refs):
        for i, row in enumerate(rows):
            if (row.email and f"email:{row.email}" in wanted) or (row.phone and f"phone:{row.phone}" in wanted):
                out.append(i)
    return sorted(set(out))


def _click_ids(conn: Connection, refs: list[tuple[str, str]] | None = None) -> dict[tuple[str, str], list[str]]:
    """Ad click ids of leads, by the lead's source_person row (``refs``: of those rows only)."""
    out: dict[tuple[str, str], list[str]] = defaultdict(list)
    stmt = select(Lead.source, Lead.person_ref, Lead.gclid, Lead.fbclid).where(
        or_(Lead.gclid.is_not(None), Lead.fbclid.is_not(None)))
    for row in _lead_rows(conn, stmt, refs):
        for click in (row.gclid, row.fbclid):
            if click and row.person_ref:
                out[(row.source, row.person_ref)].append(click)
    return out


def _lead_rows(conn: Connection, stmt: Any, refs: list[tuple[str, str]] | None, sources: Any = None):
    """Rows of a select on ``lead``: all of them, or those of the source_person rows ``refs``
    (through the (source, person_ref) index, by source and chunks)."""
    if refs is None:
        yield from conn.execute(stmt)
        return
    by_source: dict[str, list[str]] = defaultdict(list)
    for source, external_id in refs:
        if sources is None or source in sources:
            by_source[source].append(external_id)
    for source, keys in sorted(by_source.items()):
        for chunk in _chunks(sorted(set(keys))):
            yield from conn.execute(stmt.where(Lead.source == source, Lead.person_ref.in_(chunk)))


def _new_persons(conn: Connection, count: int) -> list[int]:
    """Create ``count`` persons in one statement; their ids, in creation order."""
    if not count:
        return []
    if conn.dialect.name == "sqlite":  # one executemany; RETURNING would insert row by row
        start = conn.execute(select(func.coalesce(func.max(Person.person_id), 0))).scalar_one() + 1
        ids = list(range(start, start + count))
        conn.execute(insert(Person), [{"person_id": i, "lifecycle_stage": "lead"} for i in ids])
        return ids
    stmt = insert(Person).returning(Person.person_id, sort_by_parameter_order=True)
    return list(conn.execute(stmt, [{"lifecycle_stage": "lead"}] * count).scalars())


# ----------------------------------------------------------------------------- records


def _prepare_scratch(conn: Connection) -> None:
    """Per-run scratch tables (temporary, per connection) that sql/model reads."""
    conn.exec_driver_sql("CREATE TEMPORARY TABLE IF NOT EXISTS model_dirty (person_id INTEGER PRIMARY KEY)")
    conn.exec_driver_sql("CREATE TEMPORARY TABLE IF NOT EXISTS model_refs "
                         "(source VARCHAR(64), external_id VARCHAR(255), PRIMARY KEY (source, external_id))")
    conn.exec_driver_sql("DELETE FROM model_dirty")
    conn.exec_driver_sql("DELETE FROM model_refs")


def _mark_dirty(conn: Connection, persons: list[int], refs: list[tuple[str, str]]) -> None:
    """List the persons and records this run changed in the scratch tables (driver-level
    executemany of tuples: a million rows of bound dicts cost seconds)."""
    mark = "%s" if conn.dialect.name == "postgresql" else "?"
    if persons:
        conn.exec_driver_sql(f"INSERT INTO model_dirty (person_id) VALUES ({mark})", [(p,) for p in persons])
    if refs:
        conn.exec_driver_sql(f"INSERT INTO model_refs (source, external_id) VALUES ({mark}, {mark})", list(refs))


def _link_records(conn: Connection) -> None:
    """Person ids onto records (sql/model), ad clicks onto their lead's person, then the
    lifecycle and touch facts of every person that changed."""
    run_sql(conn, "model")
    _link_ad_clicks(conn)
    run_sql(conn, "model_persons")


def _link_ad_clicks(conn: Connection) -> None:
    """An ad_click touchpoint whose URL carries a lead's gclid/fbclid joins that lead's person."""
    from crm_model.schema import Touchpoint

    tp = Touchpoint.__table__
    clicks = conn.execute(select(tp.c.source, tp.c.external_id, tp.c.url).where(
        tp.c.person_id.is_(None), tp.c.person_ref.is_(None), tp.c.channel == "ad_click",
        tp.c.url.is_not(None))).all()
    if not clicks:
        return
    owners = dict(conn.execute(select(Identity.value, Identity.person_id).where(Identity.kind == "click_id")).all())
    updates = []
    for row in clicks:
        params = v.url_params(row.url)
        for key in v.CLICK_IDS:
            pid = owners.get(params.get(key))
            if pid is not None:
                updates.append({"s": row.source, "e": row.external_id, "p": pid})
                break
    if updates:
        conn.execute(text("UPDATE touchpoint SET person_id = :p WHERE source = :s AND external_id = :e"), updates)
        conn.execute(text("INSERT INTO model_dirty (person_id) SELECT :p WHERE NOT EXISTS "
                          "(SELECT 1 FROM model_dirty WHERE person_id = :p)"), [{"p": u["p"]} for u in updates])


def run_sql(conn: Connection, folder: str) -> None:
    """Run every statement of ``sql/<folder>/*.sql`` in file-name order."""
    for path in sorted((SQL_DIR / folder).glob("*.sql")):
        for statement in _statements(path.read_text()):
            conn.exec_driver_sql(statement)


def _statements(sql: str) -> list[str]:
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def mark_pending(conn: Connection, refs: list[tuple[str, str]]) -> None:
    """Have the next model run look at these source_person rows again."""
    sp = SourcePerson.__table__
    for source, external_id in refs:
        conn.execute(update(sp).where(sp.c.source == source, sp.c.external_id == external_id)
                     .values(model_pending=True))


def pending_count(conn: Connection) -> int:
    sp = SourcePerson.__table__
    return conn.execute(select(func.count()).select_from(sp).where(
        or_(sp.c.model_pending.is_(True), sp.c.person_id.is_(None)))).scalar_one()


__all__ = ["ModelResult", "golden", "mark_pending", "normalise_email", "ref_of", "resolve", "run_sql"]
