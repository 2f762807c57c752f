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

import contextlib
import ctypes
import datetime as dt
import gc
import json
import sqlite3
from array import array
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal
from itertools import chain, islice, repeat
from typing import Any

import numpy as np
from sqlalchemy import Connection, delete, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.schema import AddConstraint

from crm_model import derive, matching
from crm_model.db import ConcurrentWrite
from crm_model.identity_settings import GOLDEN_FIELDS, IdentitySettings, ModelResult
from crm_model.load import Upserter
from crm_model.schema import (
    PERSON_KEY_FORMS,
    Identity,
    MatchModel,
    Person,
    PersonKey,
    PersonMerge,
    PersonRule,
    SourcePerson,
)
from crm_model.types import as_document

UTC = dt.UTC
BATCH = 5000


class _UnionFind:
    """Union-find whose roots carry never-merge tags: a union that would put both sides
    of a never rule in one set is refused."""

    def __init__(self, n: int):
        self.parent = array("q", range(n))  # no int object per record (a million: 28 MB)
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


def _identifier_lists(rec: Records, opts: IdentitySettings, clicks: dict[tuple[str, str], list[str]],
                      answers: dict[tuple[str, str], dict] | None = None) -> list[list[tuple[str, str]]]:
    """(kind, value) identifiers of each record of ``rec``."""
    return list(_Identifiers(rec, opts, clicks, answers))


class _Identifiers:
    """(kind, value) identifiers of each record of ``rec``, worked out when asked for
    (``ids[i]``, or in record order by iterating) instead of kept: a run from scratch
    reads them twice (the holders, the identity rows), and at 1,000,000 records a list
    per record of tuples held 165 MB from the read to the identity rows, the run's peak."""

    def __init__(self, rec: Records, opts: IdentitySettings, clicks: dict[tuple[str, str], list[str]],
                 answers: dict[tuple[str, str], dict] | None = None):
        self.sources, self.external_ids = rec["source"], rec["external_id"]
        self.phones, self.shop_ids = rec["phone"], rec["shop_customer_id"]
        self.emails = _normalised_emails(rec["email"], opts.email_provider_rules)
        self.attributes = rec.get("attributes")
        self.opts, self.clicks, self.answers = opts, clicks, answers

    def __len__(self) -> int:
        return len(self.emails)

    def __iter__(self):
        return map(self.__getitem__, range(len(self.emails)))

    def repeated(self) -> tuple[set[int], np.ndarray | None]:
        """The hashes of the identifiers several records hold (a collision may add one that
        a single record holds), and the records holding one of them (None: every record
        may). Emails, phones and shop customer ids are hashed by column, without a list
        per record (at 1,000,000 records, 1.5 s for the lists); click ids and custom
        identifiers through the lists."""
        n = len(self.emails)
        if self.clicks or self.opts.identifiers:
            hashes = np.fromiter(map(hash, chain.from_iterable(self)), dtype=np.int64)
            distinct, counts = np.unique(hashes, return_counts=True)
            return set(distinct[counts > 1].tolist()), None
        columns = [("email", self.emails), ("phone", self.phones)]
        if any(self.shop_ids):
            columns.append(("shop_customer", [f"{source}/{shop_id}" if shop_id else None
                                              for source, shop_id in zip(self.sources, self.shop_ids, strict=True)]))
        given, hashes = [], []  # per kind: which records hold one, the hash of each record's (kind, value)
        for kind, values in columns:
            given.append(np.fromiter(map(bool, values), dtype=bool, count=n))
            hashes.append(np.fromiter(map(hash, zip(repeat(kind), values)), dtype=np.int64, count=n))
        distinct, counts = np.unique(np.concatenate([h[g] for g, h in zip(given, hashes, strict=True)]),
                                     return_counts=True)
        several = distinct[counts > 1]
        visit = np.zeros(n, dtype=bool)
        for g, h in zip(given, hashes, strict=True):
            visit |= g & np.isin(h, several)
        return set(several.tolist()), visit

    def __getitem__(self, i: int) -> list[tuple[str, str]]:
        found = []
        email = self.emails[i]
        if email:
            found.append(("email", email))
        phone = self.phones[i]
        if phone:
            found.append(("phone", phone))
        shop_id = self.shop_ids[i]
        if shop_id:  # shop ids are only unique inside their shop
            found.append(("shop_customer", f"{self.sources[i]}/{shop_id}"))
        if self.clicks:
            for click in self.clicks.get((self.sources[i], self.external_ids[i]), ()):
                found.append(("click_id", click))
        if self.opts.identifiers:
            found.extend(_custom_identifiers(self.sources[i], self.external_ids[i], _attributes(self.attributes[i]),
                                             self.opts, self.answers))
        return found


def _normalised_emails(emails: list[str | None], provider_rules: bool) -> list[str | None]:
    """:func:`normalise_email` of each address, worked out once per distinct one."""

    def normalised(email: str | None) -> str | None:
        norm = normalise_email(email, provider_rules)
        return email if norm == email else norm  # an address already normal: no second copy

    return matching.map_distinct(normalised, emails)


def _custom_identifiers(source: str, external_id: str, attrs: dict[str, Any], opts: IdentitySettings,
                        answers: dict[tuple[str, str], dict] | None) -> list[tuple[str, str]]:
    """The custom identifiers (``identity.identifiers``) of one record."""
    out = []
    for name, columns in opts.identifiers.items():
        column = columns.get(source)
        if not column:
            continue
        value = attrs.get(column)
        if value in (None, "") and answers:  # a form's field or hidden field
            given = answers.get((source, external_id)) or {}
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
    for source, person_ref, answers in _lead_rows(conn, "answers", "answers IS NOT NULL", refs, set(sources)):
        answers = as_document(answers)
        if person_ref and isinstance(answers, dict):
            out[(source, person_ref)] = answers
    return out


def _attributes(attrs: Any) -> dict[str, Any]:
    """A record's ``attributes`` document (JSON text on SQLite) as a dict."""
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
        rules.append(Rule(r.rule_id, r.kind, list(as_document(r.left_refs)), list(as_document(r.right_refs))))
    return rules


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
# Columns whose values repeat across records: one string object per distinct value.
_SHARED_VALUES = {"source", "first_name", "last_name", "company", "job_title", "street", "postal_code", "city",
                  "region", "country", "birth_date", "seen_at"}

# source_person rows as columns: column name -> one value per record, as the database
# driver returns it (no SQLAlchemy row or type processing: a million Row objects took
# 1.3 GB), records sorted by (source, external_id).
Records = dict[str, list]


def resolve(conn: Connection, opts: IdentitySettings | None = None, *, full: bool = False) -> ModelResult:
    """Assign ``source_person.person_id``; maintain ``person``, ``identity`` and ``person_merge``."""
    with _without_cyclic_gc():
        return _resolve(conn, opts or IdentitySettings(), full)


def _large_blocks_mapped() -> None:
    """glibc: each allocation of 128 KB or more mapped on its own, so that freeing it gives
    the memory back to the system. By default glibc raises that threshold to the size of
    each such block freed (up to 32 MB); past the first freed column of a million records,
    blocks of a few MB (numpy arrays, lists of a million items) came from the heap, and
    once freed stayed in the process: at 1,000,000 records from scratch the peak RSS
    1.09 -> 1.02 GB, and 1.06 -> 0.83 GB while the rows are written. A no-op elsewhere.
    glibc has no way back to the raised threshold: the setting lasts as long as the
    process, so only large runs from scratch make it (blocks of 128 KB and more are then
    mapped and unmapped each time: no change measured at 1% new, 3.10 -> 3.02 s)."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(_M_MMAP_THRESHOLD, 128 * 1024)
    except (OSError, AttributeError):  # not glibc
        pass


_M_MMAP_THRESHOLD = -3  # glibc's malloc.h


@contextlib.contextmanager
def _without_cyclic_gc():
    """No cyclic garbage collection while a run holds its per-record structures.

    A run allocates millions of small lists and tuples that live until it ends; the
    collector walked them again and again as they grew (27% of the wall time of a run
    from scratch at 200,000 records; peak RSS the same without it). Reference counting
    frees them all: they form no cycles."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _resolve(conn: Connection, opts: IdentitySettings, full: bool) -> ModelResult:
    sp = SourcePerson.__table__
    result = ModelResult()
    rules = _rules(conn, opts)
    rules_changed = derive.config_changed(conn, opts)
    derive.store_config(conn, opts)
    pending_filter = derive.pending_records()
    # records waiting, counted through the two indexes; not a LIMIT 1 look-up, which
    # PostgreSQL answers by scanning source_person from its start (new records are at its
    # end: 0.17 s at 1,000,000 records, and the whole table when nothing is new)
    waiting = None if full or rules_changed else derive.pending_count(conn)
    if waiting == 0:
        derive.link_without_resolving(conn)
        return result
    derive.prepare_scratch(conn)

    needs_attrs = bool(opts.identifiers or opts.compare_attributes or opts.attribute_fields)
    cols = [sp.c[c] for c in _COLUMNS] + ([sp.c.attributes] if needs_attrs else [])
    total = conn.execute(select(func.count()).select_from(sp)).scalar_one()
    if total == 0:
        derive.link_records(conn)
        return result
    # Small warehouses are resolved from scratch whenever anything changed: it costs little,
    # and the model trained on all the data, not on what came first, decides every pair.
    # So are runs where most records are new or changed (a first run, a re-sync), runs
    # after the identity config changed, and runs with no usable stored model (none yet,
    # the data doubled since it was trained, or no blocking keys stored with it).
    stored = _stored_model(conn, opts, total)
    full = (full or rules_changed or (stored is None and opts.probabilistic) or total <= opts.full_run_below
            or 2 * waiting >= total)
    if not full:
        derive.planned_for_few_rows(conn)
    large = full and total > opts.full_run_below
    # a run from scratch writes most rows of identity (and on SQLite of source_person) without
    # their secondary indexes (see derive.without_indexes): on PostgreSQL only where it pays,
    # for the lock it takes
    rewrite = large or (full and conn.dialect.name == "sqlite")
    if large:
        _large_blocks_mapped()  # for the rest of the process: only where it pays (a large run from scratch)
    holding: dict[int, int] = {}  # incremental runs: persons per name pair of a pending record
    held: set[tuple[int, int]] = set()  # incremental runs: (key, person) rows stored for the pending records' keys
    # incremental runs: field -> its values normalised so far (the pending records' values are
    # normalised to find their neighbours, and read again among them); a run from scratch
    # normalises once and keeps nothing (at 1,000,000 records, the distinct values' dicts)
    memo: dict[str, dict] | None = None if full else {}
    if full:
        rec = _read_records(conn, select(*cols).order_by(sp.c.source, sp.c.external_id))
        clicks, answers = _click_ids(conn), _form_answers(conn, opts)
    else:  # only the pending records and the persons they may touch, found through indexes
        rec = _neighbourhood(conn, cols, pending_filter, rules, opts, holding, held, memo)
        refs = list(zip(rec["source"], rec["external_id"], strict=True))
        clicks, answers = _click_ids(conn, refs), _form_answers(conn, opts, refs)
    n = len(rec["source"])
    # record -> index, for the rules' record refs (a million keys: 120 MB, so only with rules)
    index = {key: i for i, key in enumerate(zip(rec["source"], rec["external_id"], strict=True))} if rules else {}
    old_pid = rec["person_id"]
    # records new or changed since the last run, or without a person (model_pending is NULL
    # or true, 0/1 on SQLite); a run from scratch looks at every record again
    marked = np.fromiter((p is None or bool(m) for p, m in zip(old_pid, rec["model_pending"], strict=True)),
                         dtype=bool, count=n)
    pending = np.ones(n, dtype=bool) if full else marked

    # incremental runs: each old person's records (a run from scratch looks at every record
    # anyway: at 1,000,000 records run again, 798,240 lists it never read)
    members_of: dict[int, list[int]] = defaultdict(list)
    for i, pid in enumerate(() if full else old_pid):
        if pid is not None:
            members_of[pid].append(i)

    # ---- deterministic identifiers
    idents = _Identifiers(rec, opts, clicks, answers)  # worked out again for the identity rows, not kept
    del clicks, answers
    # an identifier of one record joins nothing: those of several are found by their hashes
    # first (a collision only lets an identifier of one record through, dropped below), so
    # no list is made for each of the million identifiers held once
    repeated, visit = idents.repeated()
    holders: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i in range(n) if visit is None else np.flatnonzero(visit).tolist():
        for ident in idents[i]:
            if hash(ident) in repeated:
                holders[ident].append(i)
    del repeated, visit
    # an identifier of one record joins nothing: only those of several are kept
    holders = {ident: hs for ident, hs in holders.items() if len(hs) > 1}
    first = matching.fold_all(rec["first_name"], None if memo is None else memo.setdefault("first_name", {}))
    last = matching.fold_all(rec["last_name"], None if memo is None else memo.setdefault("last_name", {}))
    names = _NameKeys(first, last)  # who each record names, worked out when asked: not a string per record

    # ---- probabilistic candidates; a shared email or phone is no evidence there either
    # the shared emails and phones, with their holders' name groups (for the edges below)
    shared: dict[tuple[str, str], list[list[int]]] = {}
    known: list[tuple[int, int]] = []  # pairs one email or phone of one name joins: training data
    for ident, hs in holders.items():
        if ident[0] in ("email", "phone"):
            groups = _name_groups(hs, first, last, names)
            if len(groups) > opts.shared_identifier_names:
                shared[ident] = groups
            elif len(groups) == 1 and len(groups[0]) == len(hs) and len(known) < 200_000:
                known.extend((hs[0], j) for j in hs[1:10])
    columns = None
    if opts.probabilistic:
        columns = matching.normalise_columns(_match_columns(rec, opts), n, extra=opts.compare_attributes,
                                             first=first, last=last, memo=memo)
        if shared:  # a shared email or phone is no evidence
            for kind, field in (("phone", "phone"), ("email", "email_local")):
                blank = columns.values[field]
                for i in sorted({i for ident in shared if ident[0] == kind for i in holders[ident]}):
                    blank[i] = ""
    memo = None
    if columns is not None:  # blocked and compared from here on by their integer codes: the lists
        # of strings go before the pairs are made (at 1,000,000 records 13 lists of 8 MB)
        if columns.keys is None:
            columns.keys = matching.blocking_keys(columns)  # (which codes the values)
        columns.values.clear()
        columns.first_canon = []
    scored = None  # full runs: the candidate pairs and their levels, computed once
    if columns is not None and full:
        all_pairs = matching.candidate_pairs(columns)
        scored = (all_pairs, matching.compare(columns, all_pairs))
        del all_pairs
    if columns is None:
        model = None
    elif full:
        model = _train(conn, columns, scored, opts.household_guard, opts.household_fields,
                       opts.household_override_bits, known)
    else:  # between retrainings the weights stay fixed: later records are judged by the same model
        model = stored
    del known

    # ---- the affected set: pending records, what they match, and the persons of both
    if full:
        affected = np.ones(n, dtype=bool)
    else:
        affected = pending.copy()
        for ident_holders in holders.values():
            if pending[ident_holders].any():
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
            sides = _expand(rule.left + rule.right, rec, index, opts)
            if sides and affected[sides].any():
                affected[sides] = True
        for pid in {old_pid[i] for i in np.flatnonzero(affected) if old_pid[i] is not None}:
            affected[members_of[pid]] = True
    chosen = np.flatnonzero(affected)
    result.looked_at = len(chosen)

    # ---- edges among the affected records, in a fixed order
    edges: list[tuple[int, float, int, int, str, Any]] = []  # (rank, -score, i, j, evidence, fields)
    ranked: Any = ()  # the accepted probabilistic pairs as such edges (see _ranked_pairs)
    for rule in rules:
        if rule.kind == "must":
            sides = [i for i in _expand(rule.left + rule.right, rec, index, opts) if affected[i]]
            for j in sides[1:]:
                edges.append((0, -1.0, sides[0], j, f"must-merge rule {rule.rule_id}", None))
    for (kind, value), ident_holders in holders.items():
        hs = [i for i in ident_holders if affected[i]]
        if len(hs) < 2:
            continue
        # a custom identifier is declared to name one person: it joins whatever the names;
        # an email or phone all of whose holders are affected (most are) was grouped above
        if kind not in _CONTACT_KINDS:
            groups = []
        elif kind in ("email", "phone") and len(hs) == len(ident_holders):
            groups = shared.get((kind, value), [])  # not shared: all holders join
        else:
            groups = _name_groups(hs, first, last, names)
        if len(groups) <= opts.shared_identifier_names:
            for j in hs[1:]:
                edges.append((1, -1.0, hs[0], j, f"{kind}:{value}", None))
        else:  # shared: only records naming the same person are joined by it
            for same in groups:
                for j in same[1:]:
                    edges.append((1, -1.0, same[0], j,
                                  f"{kind}:{value} (shared by {len(groups)} names; names agree)", None))
    del holders, shared, first, last, names
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
            same_level: dict = {}  # one {"level", "weight"} dict per field and level, shared by the pairs
            hit = np.flatnonzero(prob >= opts.match_threshold)
            # only the accepted pairs are kept past here: their levels, for the evidence
            hit_pairs, hit_prob, hit_weight = pairs[hit], prob[hit], weight[hit]
            hit_levels = {f: lv[hit] for f, lv in levels.items()}
            hit_common = common[hit]
            del weight, prob, common
            scored = pairs = levels = None
            # the accepted pairs come after the other edges, by descending score, then
            # record keys: in that order from numpy, made as the union-find takes them; an
            # accepted pair's evidence (its text and its fields' levels and weights) is made
            # only for the joins, as their person_merge rows are written: the edge keeps its index
            ranked = _ranked_pairs(hit_pairs, hit_prob)
    edges.sort(key=lambda e: (e[0], e[1], e[2], e[3]))
    if columns is not None:  # past scoring only the blocking keys are read (written last): the
        # values' codes and words go (at 1,000,000 records 13 code arrays of 8 MB, and the words)
        columns.codes = columns.words = columns.hashes = None
        columns.initial, columns.short = {}, {}

    uf = _UnionFind(n)
    for rule in rules:
        if rule.kind == "never":
            for side, refs in ((0, rule.left), (1, rule.right)):
                for i in _expand(refs, rec, index, opts):
                    uf.tags.setdefault(uf.find(i), set()).add((rule.rule_id, side))
    joins: list[tuple[int, int, str, float, Any]] = []  # (record that joined, other, ...)
    size = defaultdict(lambda: 1)
    for _, neg, i, j, why, fields in chain(edges, ranked):
        ri, rj = uf.find(i), uf.find(j)
        if ri == rj:
            continue
        grown = size[ri] + size[rj]
        if uf.union(i, j):
            # the record of the smaller side is the one that joined (ties: the later record)
            joiner, other = (i, j) if (size[ri], -i) < (size[rj], -j) else (j, i)
            size[uf.find(i)] = grown
            joins.append((joiner, other, why, -neg, fields))

    del edges, ranked, scored, size  # every pair and its levels: not needed past here
    pairs = levels = None

    # ---- person ids: each cluster keeps the id most of its records had
    if full:  # every record, every cluster: as numpy arrays (see _Clustered)
        clustered = _Clustered(uf, n)
        uf = None
        old = np.fromiter((-1 if p is None else p for p in old_pid), dtype=np.int64, count=n)
        had_any = np.bincount(clustered.cluster[old >= 0], minlength=len(clustered)) > 0
        pid_of = np.zeros(len(clustered), dtype=np.int64)  # person id of each cluster
        fresh = ~had_any
        taken: set[int] = set()
        for k in np.flatnonzero(had_any).tolist():  # in cluster order: the order of their roots
            pid = _kept_id([old_pid[i] for i in clustered.members(k) if old_pid[i] is not None], taken)
            if pid is None:
                fresh[k] = True
            else:
                pid_of[k] = pid
        del taken, had_any
        new_ids = _new_persons(conn, int(fresh.sum()))
        pid_of[fresh] = new_ids
        # the new persons' ids (a run of ids on SQLite: a range, not a set of 800,000 ints)
        contiguous = bool(new_ids) and bool((np.diff(np.asarray(new_ids, dtype=np.int64)) == 1).all())
        created = range(new_ids[0], new_ids[-1] + 1) if contiguous else set(new_ids)
        result.created = len(new_ids)
        del new_ids, fresh
        retired = sorted(set(old[old >= 0].tolist()) - set(pid_of.tolist()))
        person_of = pid_of[clustered.cluster]  # person id of each record
        # the records that are new, changed or change person, as an incremental run lists
        # them: only their source_person rows are written (a run from scratch after the
        # config changed keeps most records' persons: those rows stay as they are)
        restaged = np.flatnonzero((old != person_of) | marked)
        del old
        # most rows of source_person written (a first run): without its secondary indexes.
        # On PostgreSQL only where every row written has its model_pending flag cleared, and
        # with the flag's index kept: no update can then be HOT, so the indexes built again
        # after it can be used by the rest of the run (see derive._clears_most). At
        # 1,000,000 records, in psql on fresh copies: 19.9-23.2 s with both indexes, 16.0 s
        # without the person_id index and 1.1 s to build it again
        rewrite_records = rewrite and 2 * len(restaged) >= n
        guard = None
        if rewrite_records and conn.dialect.name == "postgresql":
            flags = rec["model_pending"]
            rewrite_records = all(flags[i] is None or flags[i] for i in restaged.tolist())
            guard = "ix_source_person_model_pending"
        result.merged = len(retired)
        now = dt.datetime.now(UTC)
        clusters = new_pid = touched_roots = changed = None
        result.persons = len(clustered)
    else:
        clusters: dict[int, list[int]] = defaultdict(list)
        for i in chosen.tolist():
            clusters[uf.find(i)].append(i)
        taken = set()
        new_pid: dict[int, int] = {}
        need_new: list[int] = []
        for root in sorted(clusters):
            pid = _kept_id([old_pid[i] for i in clusters[root] if old_pid[i] is not None], taken)
            if pid is None:
                need_new.append(root)
            else:
                new_pid[root] = pid
        del taken
        created = set()
        for root, pid in zip(need_new, _new_persons(conn, len(need_new)), strict=True):
            new_pid[root] = pid
            created.add(pid)
        result.created = len(need_new)
        rewrite_records, guard = False, None
        old_ids = {old_pid[i] for i in chosen.tolist() if old_pid[i] is not None}
        retired = sorted(old_ids - set(new_pid.values()))
        result.merged = len(retired)

        now = dt.datetime.now(UTC)
        is_pending = pending.tolist()  # Python bools: no numpy scalar per record in the loops below
        touched_roots = [root for root, members in clusters.items()
                         if any(is_pending[i] or old_pid[i] != new_pid[root] for i in members)]
        # the records that are new, changed or change person, in record order, with their person
        changed = sorted((i, new_pid[root]) for root in touched_roots for i in clusters[root]
                         if is_pending[i] or old_pid[i] != new_pid[root])
        del is_pending
        result.persons = len(touched_roots)
    sources, external_ids = rec["source"], rec["external_id"]
    attached = [0]

    def merge_rows():
        """The person_merge rows, made as they are written (at 1,000,000 records, 201,760
        dicts with their evidence, listed, were the run's peak RSS)."""
        for joiner, other, why, score, fields in joins:
            pid = int(person_of[joiner]) if full else new_pid[uf.find(joiner)]
            if old_pid[joiner] is not None and old_pid[joiner] == old_pid[other]:
                continue  # already one person: nothing new
            if fields is not None:  # an accepted pair's index (see above)
                why = f"probabilistic match (weight {hit_weight[fields]:.1f})"
                fields = matching.evidence(columns, weights, hit_levels, fields, hit_common, shared=same_level)
            attached[0] += 1
            yield {"person_id": pid, "merged_person_id": None, "source": sources[joiner],
                   "external_id": external_ids[joiner], "evidence": why[:400],
                   "score": Decimal(str(round(score, 4))), "merged_at": now, "fields": fields}
        if retired:
            survivor_of = {}
            if full:
                for i, pid in zip(clustered.flat.tolist(), person_of[clustered.flat].tolist(), strict=True):
                    survivor_of.setdefault(old_pid[i], pid)
            for root, members in (clusters or {}).items():
                for i in members:
                    survivor_of.setdefault(old_pid[i], new_pid[root])
            for pid in retired:
                yield {"person_id": survivor_of[pid], "merged_person_id": pid, "source": None,
                       "external_id": None, "evidence": "its records now belong to this person",
                       "score": Decimal(1), "merged_at": now, "fields": None}

    # ---- writes: the changed records and the persons that changed, set-wise from scratch tables
    dirty = pid_of.tolist() if full else [new_pid[root] for root in touched_roots]
    # incremental runs: the persons that lost a record or whose record changed; the other
    # persons of the run only gain records (or are new), so none of their identity rows or
    # keys can have gone
    redo = set() if full else {old_pid[i] for i, _ in changed if old_pid[i] is not None} | set(retired)
    if not full:
        refs = ((sources[i], external_ids[i], pid) for i, pid in changed)
    elif len(restaged) == n:  # every record (a first run): in slices, no look-up per record
        refs = chain.from_iterable(zip(sources[start:start + 100_000], external_ids[start:start + 100_000],
                                       person_of[start:start + 100_000].tolist(), strict=True)
                                   for start in range(0, n, 100_000))
    else:
        refs = ((sources[i], external_ids[i], pid)
                for i, pid in zip(restaged.tolist(), person_of[restaged].tolist(), strict=True))
    _mark_dirty(conn, dirty, refs, redo)
    del refs
    with derive.without_indexes(conn, "source_person", rewrite_records, guard):
        updated = conn.exec_driver_sql("UPDATE source_person SET person_id = m.person_id, model_pending = false "
                                       "FROM model_refs m WHERE source_person.source = m.source "
                                       "AND source_person.external_id = m.external_id")
    derive.churned(conn, "source_person", updated.rowcount)
    moved = [] if full else [i for i, _ in changed]  # the records that are new, changed or change person
    del changed
    merges = merge_rows()
    while chunk := list(islice(merges, 50_000)):
        Upserter(conn).insert(PersonMerge.__table__, chunk)
    result.attached = attached[0]
    merges = chunk = joins = None  # (names the rows' maker reads: not del)
    if retired:
        for start in range(0, len(retired), BATCH):
            chunk = retired[start:start + BATCH]
            conn.execute(delete(Identity).where(Identity.person_id.in_(chunk)))
            conn.execute(delete(Person).where(Person.person_id.in_(chunk)))

    # ---- golden records and identities of the persons that changed
    members = clustered if full else [clusters[root] for root in touched_roots]
    _write_persons(conn, rec, dirty, members, created, opts)
    if not full:  # a person that only gained records holds its other records' rows already
        moved_set = set(moved)
        members = [records if pid in redo else [i for i in records if i in moved_set]
                   for pid, records in zip(dirty, members, strict=True)]
        del moved_set
    with derive.without_indexes(conn, "identity", rewrite):
        _write_identities(conn, rec, idents, dirty, members, full)
    # the records' columns go before the keys are written (at 1,000,000 records: the peak RSS)
    idents = rec = members = sources = external_ids = None
    if columns is not None and full:  # the blocking keys of every person
        keyed = clustered.flat
        pids = person_of[keyed]
        # and what the keys do not need goes before they are written
        clustered = person_of = pid_of = created = dirty = None
        _write_keys(conn, columns, keyed, pids, None)
        del keyed, pids
    elif columns is not None:
        # A person that only gained records keeps its keys and gets those of the new ones;
        # one that lost a record, or whose record changed (redo), has its keys written anew.
        keyed = sorted({*moved, *(i for root in clusters if new_pid[root] in redo for i in clusters[root])})
        _write_keys(conn, columns, keyed, [new_pid[uf.find(i)] for i in keyed], sorted(redo), held)
    columns = clusters = None
    if full and conn.dialect.name == "postgresql":
        # a run from scratch rewrote these tables: statistics for the linking SQL below and
        # the next runs, before autovacuum gets to them (a table never analysed has no row
        # count for the planner to go by)
        conn.exec_driver_sql("ANALYZE source_person, person, identity, person_key, person_merge")
    derive.link_records(conn, every=full)
    return result


def _kept_id(had: list[int], taken: set[int]) -> int | None:
    """The person id a cluster keeps: of the ids its records had (``had``), the one most of
    them had (ties: the lowest) that no cluster before it kept (``taken``, updated); None:
    the cluster needs a new person (none of its records had one, or every id was taken)."""
    if not had:  # no record had a person (every cluster of a first run): no Counter to build
        return None
    for pid, _ in sorted(Counter(had).items(), key=lambda kv: (-kv[1], kv[0])):
        if pid not in taken:
            taken.add(pid)
            return pid
    return None


def _ranked_pairs(pairs: np.ndarray, prob: np.ndarray, chunk: int = 50_000):
    """Edges (2, -score, i, j, None, k) of the accepted pairs ``pairs`` (k: the pair's
    index), by descending score, then i, then j (the order a sort of such tuples gives),
    made a chunk at a time: no tuple per pair held for all of them (at 1,000,000 records,
    237,164 pairs)."""
    order = np.lexsort((pairs[:, 1], pairs[:, 0], -prob))
    for start in range(0, len(order), chunk):
        part = order[start:start + chunk]
        yield from zip(repeat(2), (-prob[part]).tolist(), pairs[part, 0].tolist(), pairs[part, 1].tolist(),
                       repeat(None), part.tolist(), strict=False)


class _Clustered:
    """The clusters of a run from scratch, every record in one, as numpy arrays: the
    cluster of each record (``cluster``), the records of cluster 0, then 1, ..., each in
    record order (``flat``), and the clusters' sizes. Cluster k has the k-th smallest
    root (a union keeps the smaller root: each root is its cluster's first record), the
    order in which a dict of clusters filled in record order lists them. Iterated: each
    cluster's records as a list. At 1,000,000 records, 798,240 clusters as a dict of
    lists, their person ids as a dict and the union-find's parents took about 250 MB
    at the run's peak."""

    def __init__(self, uf: _UnionFind, n: int):
        roots = np.fromiter(map(uf.find, range(n)), dtype=np.int64, count=n)
        _, self.cluster, self.sizes = np.unique(roots, return_inverse=True, return_counts=True)
        del roots
        self.flat = np.argsort(self.cluster, kind="stable")
        self.starts = np.cumsum(self.sizes) - self.sizes

    def __len__(self) -> int:
        return len(self.sizes)

    def members(self, k: int) -> list[int]:
        return self.flat[self.starts[k]:self.starts[k] + self.sizes[k]].tolist()

    def __iter__(self):
        flat = self.flat
        ends = (self.starts + self.sizes).tolist()
        for start, end in zip(self.starts.tolist(), ends, strict=True):
            yield flat[start:end].tolist()


@contextlib.contextmanager
def _primary_key_after(conn: Connection, table: Any):
    """PostgreSQL: ``table``'s primary key dropped for the rows written inside, and added
    back after them, built by one sort instead of kept up row by row (for a table the
    run emptied: ``person_key``, ``identity``). The drop takes the table's lock until the
    run commits, as dropping a secondary index does (see :func:`crm_model.derive.without_indexes`). A key
    the rows break (a row another run committed meanwhile) fails adding it back, as a
    unique violation."""
    pk = table.primary_key
    conn.exec_driver_sql(f"ALTER TABLE {table.name} DROP CONSTRAINT {pk.name}")
    yield
    conn.execute(AddConstraint(pk))


_READ_CHUNK = 20_000  # rows fetched at a time by _read_records


def _read_records(conn: Connection, stmt: Any) -> Records:
    """The rows of a select on source_person as columns (see :data:`Records`), read
    through the driver's cursor in chunks, as tuples: no Row object per record.
    PostgreSQL: by a server-side cursor, a chunk at a time. A client-side cursor holds the
    whole result in libpq's memory while the columns are built, and the allocator kept
    those pages once it was freed: at 1,000,000 records the peak RSS of a run from
    scratch was 1,173 MB that way, 935 MB this way. (Not SQLAlchemy's ``stream_results``:
    its result fetches a row ahead into a buffer of its own, which the driver's cursor
    read here would skip.)"""
    names = [c.name for c in stmt.selected_columns]
    out: Records = {name: [] for name in names}
    shared = [(out[name], {} if name in _SHARED_VALUES else None) for name in names]
    if conn.dialect.name == "postgresql":
        compiled = stmt.compile(dialect=conn.dialect)
        cursor = conn.connection.driver_connection.cursor(name="crmhub_records")
        cursor.execute(str(compiled), compiled.params or None)
        close = cursor.close
    else:  # SQLite's cursor yields its rows as they are fetched
        result = conn.execute(stmt)
        cursor, close = result.cursor, result.close
    try:
        while chunk := cursor.fetchmany(_READ_CHUNK):
            for (column, seen), values in zip(shared, zip(*chunk, strict=True), strict=True):
                column.extend(values if seen is None else map(seen.setdefault, values, values))
    finally:
        close()
    return out


def _match_columns(rec: Records, opts: IdentitySettings) -> Records:
    """The columns the matcher compares: person fields, then attributes standing in for
    them (``attribute_fields``), and ``compare_attributes``."""
    if not (opts.attribute_fields or opts.compare_attributes):
        return rec
    out = {f: rec[f] for f in GOLDEN_FIELDS}
    attrs = [_attributes(a) for a in rec["attributes"]]
    for column, target in opts.attribute_fields.items():
        given = out.get(target) or [None] * len(attrs)
        out[target] = [x if x else (a.get(column) if a.get(column) not in (None, "") else x)
                       for x, a in zip(given, attrs, strict=True)]
    for column in opts.compare_attributes:
        out[column] = [a.get(column) for a in attrs]
    return out


def _write_persons(conn: Connection, rec: Records, pids: list[int], members: list[list[int]],
                   created: set[int], opts: IdentitySettings) -> None:
    """The golden records of persons ``pids`` (``members``: every record of each); persons
    in ``created`` are new (lifecycle stage lead until sql/model_persons says otherwise).
    With the first and last seen_at of their records, which sql/model_persons then
    recomputes only for persons with a touchpoint or an order."""
    if not pids:
        return
    picks, spans = _golden_picks(rec, members, opts, seen_span=True)
    fields = (*_GOLDEN, *_SEEN)

    def values(part: np.ndarray) -> list[list]:
        """The fields' values of persons ``part`` (indexes into pids)."""
        return [_take(rec[name], picks[name][part]) if name in picks else spans[name][part].tolist()
                for name in fields]

    if conn.dialect.name != "sqlite":  # new persons as leads, COPYed straight in (see _new_persons)
        for start in range(0, len(pids), 50_000):  # 50,000 persons at a time
            part = np.arange(start, min(start + 50_000, len(pids)))
            new, known = [], []
            for pid, row in zip(pids[start:start + 50_000], zip(*values(part), strict=True), strict=True):
                if pid in created:
                    new.append({"person_id": pid, "lifecycle_stage": "lead", **dict(zip(fields, row, strict=True))})
                else:
                    known.append({"person_id": pid, **dict(zip(fields, row, strict=True))})
            Upserter(conn).upsert("person", new)
            Upserter(conn).upsert("person", known)
        return
    # SQLite: new persons are inserted here (see _new_persons), with the values as the
    # driver read them (dates and timestamps as the text SQLite keeps)
    names = ", ".join(fields)
    head = f"INSERT INTO person (person_id, lifecycle_stage, {names})"
    tail = f"ON CONFLICT (person_id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in fields)}"
    # in person id order, the rows of 50,000 persons at a time: no tuple per person for all
    # of them (at 1,000,000 records, 798,240 tuples of 18 values at the run's peak RSS)
    order = np.argsort(np.asarray(pids, dtype=np.int64), kind="stable")
    cursor = conn.connection.driver_connection.cursor()
    try:
        for start in range(0, len(order), 50_000):
            part = order[start:start + 50_000]
            person_ids = list(map(pids.__getitem__, part.tolist()))
            picked = [person_ids, ["lead" if pid in created else None for pid in person_ids], *values(part)]
            _insert_rows_sqlite(cursor, head, tail, 2 + len(fields),
                                list(chain.from_iterable(zip(*picked, strict=True))))
    finally:
        cursor.close()


def golden_columns(rec: Records, members: list[list[int]], opts: IdentitySettings,
                   seen_span: bool = False) -> dict[str, list[Any]]:
    """Survivorship: the golden record of each person (``members``: its record indexes),
    as field -> one value per person (the person fields but the lifecycle stage); with
    ``seen_span``, also first_seen_at and last_seen_at: the earliest and latest seen_at of
    its records (as SQL's MIN and MAX give them: NULLs left out).

    Per field, the value of the member from the most trusted source (``source_priority``);
    among equally trusted sources the most recently seen non-empty value; ties by source
    and record key (the record order), so the result never depends on load order."""
    picks, seen = _golden_picks(rec, members, opts, seen_span)
    out: dict[str, list[Any]] = {name: _take(rec[name], pick) for name, pick in picks.items()}
    out.update((name, values.tolist()) for name, values in seen.items())
    return out


def _take(values: list, idx: np.ndarray) -> list:
    """``values[i]`` for each i of ``idx``, None where i is -1."""
    if not len(values):
        return [None] * len(idx)
    out = list(map(values.__getitem__, idx.tolist()))
    for k in np.flatnonzero(idx < 0).tolist():
        out[k] = None
    return out


def _golden_picks(rec: Records, members: Any, opts: IdentitySettings,
                  seen_span: bool = False) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """:func:`golden_columns` as, per field, the record each person's value is taken from
    (-1: none), and with ``seen_span`` first_seen_at and last_seen_at as arrays of values:
    a run from scratch takes the values of 50,000 persons at a time as it writes them (at
    1,000,000 records, 15 lists of 798,240 values were most of the RSS the person rows
    added)."""
    n = len(rec["source"])
    if isinstance(members, _Clustered):
        sizes, flat = members.sizes, members.flat
    else:
        sizes = np.fromiter(map(len, members), dtype=np.int64, count=len(members))
        flat = np.fromiter(chain.from_iterable(members), dtype=np.int64, count=int(sizes.sum()))
    # each person's members are one run of flat: the best of each by one reduceat
    starts = np.cumsum(sizes) - sizes if len(members) and sizes.min() > 0 else None
    # else (no persons, or one without members, which reduceat cannot tell): one scatter per field
    owner = np.repeat(np.arange(len(members)), sizes) if starts is None else None
    seen, seen_values = _seen_rank(rec["seen_at"])
    source_codes, source_names = _codes_of(rec["source"])
    orders: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]] = {}
    index = np.int32 if n < 2**31 else np.int64
    out: dict[str, np.ndarray] = {}
    spans: dict[str, np.ndarray] = {}
    for name in _GOLDEN:
        priority = tuple(opts.priority(name))
        if priority not in orders:  # each record's place in the order of preference (last: best)
            rank = np.array([priority.index(s) if s in priority else len(priority) for s in source_names],
                            dtype=np.int64)[source_codes] if priority else np.zeros(n, dtype=np.int64)
            position = np.empty(n, dtype=np.int64)
            position[np.lexsort((np.arange(n), seen, -rank))] = np.arange(n)
            by_position = np.empty(n, dtype=np.int64)
            by_position[position] = np.arange(n)
            orders[priority] = (position, by_position)
        position, by_position = orders[priority]
        # given: not None and not "" (the values are text, dates or None, for which that is
        # their truth: bool by a C loop (map), 5x faster than numpy comparing objects)
        given = np.fromiter(map(bool, rec[name]), dtype=bool, count=n)[flat]
        if starts is not None:
            best = np.maximum.reduceat(np.where(given, position[flat], -1), starts)
        else:
            best = np.full(len(members), -1, dtype=np.int64)
            np.maximum.at(best, owner[given], position[flat[given]])
        del given
        chosen = by_position[np.maximum(best, 0)].astype(index)
        chosen[best < 0] = -1
        out[name] = chosen
    if seen_span:  # by rank; rank len(seen_values) (none of the records was seen) is None
        ranks = seen[flat]
        unseen = len(seen_values)
        if starts is not None:
            first = np.minimum.reduceat(np.where(ranks < 0, unseen, ranks), starts)
            last = np.maximum.reduceat(ranks, starts)
        else:
            first, last = np.full(len(members), unseen, dtype=np.int64), np.full(len(members), -1, dtype=np.int64)
            np.minimum.at(first, owner, np.where(ranks < 0, unseen, ranks))
            np.maximum.at(last, owner, ranks)
        by_rank = np.empty(unseen + 1, dtype=object)
        by_rank[:unseen] = seen_values
        spans["first_seen_at"] = by_rank[first]
        spans["last_seen_at"] = by_rank[np.where(last < 0, unseen, last)]
    return out, spans


_SEEN = ("first_seen_at", "last_seen_at")


def _seen_rank(seen: list[Any]) -> tuple[np.ndarray, list[Any]]:
    """When each record was last seen, as a rank (-1: never), and the distinct values by
    rank; timestamps compare as UTC (SQLite keeps them as UTC text of one format, which
    sorts as the times do, and as SQL's MIN and MAX compare them)."""
    distinct = sorted({x for x in seen if x is not None}, key=_utc)
    rank = {x: k for k, x in enumerate(distinct)}
    ranks = np.fromiter(map(rank.get, seen, repeat(-1)), dtype=np.int64, count=len(seen))  # (None: -1)
    return ranks, distinct


def _utc(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _codes_of(values: list[str]) -> tuple[np.ndarray, list[str]]:
    """Integer codes of a column with few distinct values, and the values."""
    vocab = {x: k for k, x in enumerate(dict.fromkeys(values))}  # in order of first appearance
    codes = np.fromiter(map(vocab.__getitem__, values), dtype=np.int64, count=len(values))
    return codes, list(vocab)


def _write_identities(conn: Connection, rec: Records, idents: Any, pids: list[int],
                      members: list[list[int]], full: bool) -> None:
    """The identity rows of persons ``pids`` (those in model_dirty): the identifiers and
    external ids of their records ``members``. A repeated identifier: the last row wins,
    as it would row by row. A run from scratch deletes the persons' rows and writes them
    all. An incremental run is given, for a person in model_dirty's redo, every record,
    and deletes that person's rows its records no longer give; for any other person only
    the records that are new or changed or change person (the person only gained records:
    the rows of the others are stored under it already). Of the rows given it writes only
    those that are new or change person (most are the same: at 1,000,000 records, 10,000
    new records, sampled: 0.65 s -> 0.40 s here, and the commit 0.56 s -> 0.29 s)."""
    if full:
        conn.exec_driver_sql("DELETE FROM identity WHERE person_id IN (SELECT person_id FROM model_dirty)")
    sources, external_ids, shop_ids = rec["source"], rec["external_id"], rec["shop_customer_id"]
    made = [0]  # rows made so far

    def identity_rows():
        seq = 0
        for pid, records in zip(pids, members, strict=True):
            for i in records:
                source = sources[i]
                for kind, value in idents[i]:
                    if kind == "shop_customer":
                        kind, value = "external_id", shop_ids[i]
                    yield seq, kind[:16], str(value)[:320], source, pid
                    seq += 1
                yield seq, "external_id", external_ids[i][:320], source, pid
                seq += 1
        made[0] = seq

    # a run from scratch stages the rows as they are made (at 1,000,000 records, 2 million
    # tuples listed first were the run's peak RSS)
    rows = identity_rows() if full else list(identity_rows())
    conn.exec_driver_sql(MODEL_IDENTITY_DDL)
    conn.exec_driver_sql("DELETE FROM model_identity")
    if full or rows:
        _stage(conn, "model_identity", ("seq", "kind", "value", "source", "person_id"), rows)
    rows = made[0]
    if not full:  # the rows of these persons no longer given go (a row given again stays, and may change person)
        conn.exec_driver_sql(delete_absent_identities(conn.dialect.name))
    if not rows:
        return
    del rows
    if conn.dialect.name == "postgresql":  # one statement may not update a row twice: the last of each key
        insert = ("INSERT INTO identity (kind, value, source, person_id) SELECT DISTINCT ON (kind, value, source) "
                  "kind, value, source, person_id FROM model_identity ORDER BY kind, value, source, seq DESC")
        if full and not conn.exec_driver_sql("SELECT EXISTS (SELECT 1 FROM identity)").scalar_one():
            _insert_into_empty(conn, insert)
        else:
            conn.exec_driver_sql(f"{insert} ON CONFLICT (kind, value, source) DO UPDATE SET "
                                 "person_id = excluded.person_id WHERE identity.person_id <> excluded.person_id")
    else:  # in key order (neighbouring keys share B-tree pages), repeats in row order: the last wins
        conn.exec_driver_sql(
            "INSERT INTO identity (kind, value, source, person_id) SELECT kind, value, source, person_id "
            "FROM model_identity WHERE true ORDER BY kind, value, source, seq "
            "ON CONFLICT (kind, value, source) DO UPDATE SET person_id = excluded.person_id "
            "WHERE identity.person_id <> excluded.person_id")
    conn.exec_driver_sql("DELETE FROM model_identity")


def _insert_into_empty(conn: Connection, insert: str) -> None:
    """PostgreSQL, a run from scratch that emptied ``identity``: its rows, distinct by key,
    by a plain INSERT; no ON CONFLICT, whose speculative insertion cost most of the
    statement (at 1,000,000 records, without the person_id index: 11.5 s -> 6.4 s); and
    without the table's primary key, added back after the rows by one sort, as
    person_key's (2,000,000 rows in psql on a copy: 6.3-6.4 s kept up row by row, 4.3-4.4 s
    and 0.9 s for the key). Dropping the key takes the table's lock until the run commits,
    as dropping its person_id index already did (see derive.without_indexes). A row another
    run committed after this run's snapshot was taken (this one cannot see it) then fails
    adding the key back as a unique violation: the same :class:`ConcurrentWrite` as any
    other write of the run's rows by a concurrent transaction."""
    try:
        with _primary_key_after(conn, Identity.__table__):
            conn.exec_driver_sql(insert)
    except IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) != "23505":  # unique_violation
            raise
        raise ConcurrentWrite("another run wrote identities while this model run was writing them; nothing of "
                              "the run was kept: run `crmhub model` again") from exc


MODEL_IDENTITY_DDL = ("CREATE TEMPORARY TABLE IF NOT EXISTS model_identity (seq INTEGER PRIMARY KEY, "
                      "kind VARCHAR(16), value VARCHAR(320), source VARCHAR(64), person_id INTEGER)")


def delete_absent_identities(dialect: str) -> str:
    """The statement deleting identity rows of the run's persons that lost a record or
    whose record changed (model_dirty's redo: the others only gained records, so every row
    of theirs is given again; at 1,000,000 records, 1% new, 10,000 persons -> 100, 0.05 s
    -> 0.00 s) that its records no longer give (model_identity). PostgreSQL: NOT EXISTS, an anti-join; NOT IN
    (SELECT ...) cannot be one (NULL semantics) and runs as a scan of model_identity per
    row once model_identity outgrows work_mem. SQLite: NOT IN, one index built on
    model_identity for the statement (NOT EXISTS scans the unindexed scratch table per
    row: 0.07 s -> 13.6 s at 1,000,000 records, 1% new)."""
    absent = ("NOT EXISTS (SELECT 1 FROM model_identity m WHERE m.kind = identity.kind "
              "AND m.value = identity.value AND m.source = identity.source)" if dialect == "postgresql" else
              "(kind, value, source) NOT IN (SELECT kind, value, source FROM model_identity)")
    return f"DELETE FROM identity WHERE person_id IN (SELECT person_id FROM model_dirty WHERE redo) AND {absent}"


def _stage(conn: Connection, table: str, names: tuple[str, ...], rows: Any) -> None:
    """Rows (a list, or made as they are read) into a scratch table: COPY on PostgreSQL,
    INSERTs of many rows each on SQLite (see :func:`_insert_rows_sqlite`). PostgreSQL then
    analyses the table: autovacuum never sees a temporary table, and the planner would
    guess its size."""
    cursor = conn.connection.driver_connection.cursor()
    try:
        if conn.dialect.name == "postgresql":
            with cursor.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(f"ANALYZE {table}")
        else:
            rows = iter(rows)  # one flat list of 100,000 rows at a time
            while flat := list(chain.from_iterable(islice(rows, 100_000))):
                _insert_rows_sqlite(cursor, f"INSERT INTO {table} ({', '.join(names)})", "", len(names), flat)
    finally:
        cursor.close()


# Rows per INSERT statement on SQLite (fewer if the columns would pass SQLite's limit of
# bound values per statement, 32,766 by default since 3.32, 999 before)
_ROWS_PER_INSERT = 500


def _insert_rows_sqlite(cursor: Any, head: str, tail: str, width: int, flat: list) -> None:
    """Rows given flat (row after row, ``width`` values each) into SQLite, ``head``
    ("INSERT INTO t (a, b)") and ``tail`` (an ON CONFLICT clause or "") around VALUES
    lists of up to 500 rows: one statement step per 500 rows instead of one per row, in
    the order given. 700,000 sorted (key, person) rows into an empty person_key: 1.07 s
    by one executemany of one row per statement, 0.33-0.44 s this way (a test apart)."""
    limit = cursor.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    per = max(1, min(_ROWS_PER_INSERT, limit // width))
    row = f"({', '.join('?' * width)})"
    step = per * width
    whole = len(flat) // step * step
    if whole:
        cursor.executemany(f"{head} VALUES {', '.join([row] * per)} {tail}",
                           (flat[start:start + step] for start in range(0, whole, step)))
    if whole < len(flat):
        cursor.execute(f"{head} VALUES {', '.join([row] * ((len(flat) - whole) // width))} {tail}", flat[whole:])


# An incremental run takes at most this many persons per blocking key of a new record (a
# run from scratch pairs a record with its 40 neighbours in a key's sorted run).
KEY_PERSONS = 100
_IN = 5000  # values per IN (...) list


def _chunks(values: list, size: int = _IN):
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _neighbourhood(conn: Connection, cols: list, pending_filter: Any, rules: list[Rule], opts: IdentitySettings,
                   holding: dict[int, int], held: set[tuple[int, int]], memo: dict[str, dict] | None = None) -> Records:
    """The records an incremental run looks at: the pending ones, and every record of the
    persons they may belong to, found through indexes only: the pending records' old
    persons, the persons holding one of their identifiers (``identity``), the persons
    sharing one of their blocking keys (``person_key``), and the records a rule names
    together with a pending one. Sorted by (source, external_id). ``holding`` gets, per
    name-pair key of a pending record, how many persons hold it (common names, uncapped);
    ``held`` gets the (key, person) of every person_key row read, the key decoded;
    ``memo``: see :func:`matching.normalise_columns`."""
    sp = SourcePerson.__table__
    names = [c.name for c in cols]
    at_source, at_external_id, at_person = names.index("source"), names.index("external_id"), names.index("person_id")
    pending_rows = _raw_rows(conn, select(*cols).where(pending_filter))
    pending = _as_records(pending_rows, names)
    persons = {r[at_person] for r in pending_rows if r[at_person] is not None}
    refs = list(zip(pending["source"], pending["external_id"], strict=True))
    clicks, answers = _click_ids(conn, refs), _form_answers(conn, opts, refs)
    wanted: dict[str, set[str]] = defaultdict(set)
    for i, found in enumerate(_identifier_lists(pending, opts, clicks, answers)):
        for kind, value in found:
            if kind == "shop_customer":  # stored as the shop's external_id (see _write_identities)
                kind, value = "external_id", pending["shop_customer_id"][i]
            wanted[kind[:16]].add(str(value)[:320])
    for kind, values in sorted(wanted.items()):
        persons.update(pid for pid, in _rows_in(conn, "SELECT person_id FROM identity WHERE kind = {} AND value",
                                                sorted(values), (kind,)))
    if opts.probabilistic and pending_rows:
        keys = matching.blocking_keys(matching.normalise_columns(_match_columns(pending, opts), len(pending_rows),
                                                                 extra=opts.compare_attributes, memo=memo,
                                                                 keys_only=True))
        found = np.unique(np.concatenate([k[k >= 0] for k in keys.values()]))
        by_key: dict[int, set[int]] = defaultdict(set)
        for block_key, pid in _stored_keys(conn, found.tolist()):
            by_key[block_key if block_key >= 0 else ~block_key].add(pid)
        for block_key, pids in by_key.items():
            persons.update(sorted(pids)[:KEY_PERSONS])
            held.update((block_key, pid) for pid in pids)
        key_names = keys["names"]
        holding.update((k, len(by_key.get(k, ()))) for k in np.unique(key_names[key_names >= 0]).tolist())
    named_refs: set[tuple[str, str]] = set()
    index = {ref: i for i, ref in enumerate(refs)}
    for rule in rules:  # a rule naming a pending record brings the records it names
        named = rule.left + rule.right
        if _expand(named, pending, index, opts):
            for ref in named:
                kind, _, value = ref.partition(":")
                if kind == "record":
                    source, _, external_id = value.partition("/")
                    named_refs.add((source, external_id))
                elif kind in ("email", "phone"):
                    value = normalise_email(value, opts.email_provider_rules) if kind == "email" else value
                    persons.update(conn.execute(select(Identity.person_id).where(
                        Identity.kind == kind, Identity.value == value)).scalars())
    by_ref = {(r[at_source], r[at_external_id]): r for r in pending_rows}
    for source, external_id in sorted(named_refs - set(by_ref)):
        for row in _raw_rows(conn, select(*cols).where(sp.c.source == source, sp.c.external_id == external_id)):
            by_ref[(source, external_id)] = row
            if row[at_person] is not None:
                persons.add(row[at_person])
    for row in _rows_in(conn, f"SELECT {', '.join(names)} FROM source_person WHERE person_id", sorted(persons)):
        by_ref.setdefault((row[at_source], row[at_external_id]), row)
    return _as_records([by_ref[k] for k in sorted(by_ref)], names)


def _stored_keys(conn: Connection, keys: list[int]) -> list[tuple[int, int]]:
    """The (block_key, person_id) rows of person_key holding one of ``keys``, each key as
    written from scratch (``key``) and as a delta (``~key``, see :func:`_write_keys`).
    Deltas fill one small range of the key: while there are no more of them than four
    times the keys looked up, that whole range is read in one pass and filtered here
    instead of a look-up per key (none at all after a run from scratch). At 1,000,000
    records, 1% new: about 70,000 keys; 63,000 deltas after that run."""
    sql = "SELECT block_key, person_id FROM person_key WHERE block_key"
    rows = _rows_in(conn, sql, keys)
    # the keys from scratch of persons whose records changed since do not hold (see
    # _write_keys): the few such persons read whole (none after a run from scratch), or,
    # past as many as the persons found, looked up
    found = {pid for _, pid in rows}
    stale = {pid for pid, in conn.exec_driver_sql(f"SELECT person_id FROM person_key_stale LIMIT {len(found) + 1}")}
    if len(stale) > len(found):
        stale = {pid for pid, in _rows_in(conn, "SELECT person_id FROM person_key_stale WHERE person_id",
                                          sorted(found))}
    if stale:
        rows = [row for row in rows if row[1] not in stale]
    # the range read with a limit, not counted first (a count of 63,000 deltas: 0.05 s)
    limit = 4 * len(keys)
    deltas = conn.exec_driver_sql(f"{sql} < 0 LIMIT {limit + 1}").all()
    if len(deltas) > limit:
        rows += _rows_in(conn, sql, [~k for k in keys])
    elif deltas:
        wanted = set(keys)
        rows += [row for row in deltas if ~row[0] in wanted]
    return rows


def _rows_in(conn: Connection, sql: str, values: list, params: tuple = ()) -> list[tuple]:
    """The rows of ``sql`` (a select ending in a column: the rows whose column is one of
    ``values``) through the driver, with ``params`` for its ``{}`` placeholders: one
    statement on PostgreSQL (``= ANY(...)``), one per 5,000 values on SQLite (``IN``). No
    statement compiled per list of values, no SQLAlchemy row per result row: at 1,000,000
    records, 1% new, the neighbourhood's ~60,000 persons' records and identifiers."""
    if not values:
        return []
    postgres = conn.dialect.name == "postgresql"
    sql = sql.format(*(["%s" if postgres else "?"] * len(params)))
    cursor = conn.connection.driver_connection.cursor()
    try:
        if postgres:
            # = ANY(list): one pass down the index in the list's order (an index-only scan
            # of person_key). Long lists come only from incremental runs, planned with
            # random_page_cost 1.1 (derive.planned_for_few_rows); at the default 4.0 PostgreSQL
            # planned a long list as a scan of the whole table, and a join to the unnested
            # list was the better form (the 82,000 keys of 1% new records at 1,000,000:
            # 1.0-1.3 s that way, 0.44-0.53 s joined, 0.30-0.35 s this way at 1.1; the
            # persons' 14,000 records 0.18 -> 0.12-0.15 s)
            # the list as a binary parameter (%b): no text of it to write and parse again
            # (the 82,000 keys above: 0.28-0.29 s -> 0.22 s, a test apart)
            cast = "::text[]" if isinstance(values[0], str) else ""  # psycopg sends text untyped
            cursor.execute(f"{sql} = ANY(%b{cast})", (*params, values))
            return cursor.fetchall()
        rows: list[tuple] = []
        for chunk in _chunks(values):
            cursor.execute(f"{sql} IN ({', '.join('?' * len(chunk))})", (*params, *chunk))
            rows.extend(cursor.fetchall())
        return rows
    finally:
        cursor.close()


def _raw_rows(conn: Connection, stmt: Any) -> list[tuple]:
    """The rows of a select as the driver returns them (tuples, no type processing)."""
    result = conn.execute(stmt)
    try:
        return result.cursor.fetchall()
    finally:
        result.close()


def _as_records(rows: list[tuple], names: list[str]) -> Records:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return {name: list(values) for name, values in zip(names, columns, strict=True)}


def _write_keys(conn: Connection, columns: matching.Columns, members: list[int], pids: list[int],
                drop: list[int] | None, held: set[tuple[int, int]] | None = None) -> None:
    """Store the blocking keys of records ``members`` (row indexes) under their persons
    ``pids``, one row per distinct (key, person); keys a person has already stay. ``drop``:
    persons whose keys go first (None: every stored key goes, a run from scratch).

    A run from scratch stores each key as it is (>= 0); an incremental run stores it as
    its bitwise complement ``~key`` (< 0, a delta), and lookups read both. Keys are
    hashes: stored as they are, an incremental run's keys land on as many random pages of
    the big B-tree; as deltas they go to the small range of negative keys that incremental
    runs since the last run from scratch wrote, in person order (new persons' ids come
    last in the person_id index). At 1,000,000 records, the 80,677 rows of 10,000 new
    records: 0.73 s to insert and 1.11 s with the commit as they were, 0.31 s and 0.47 s
    as deltas. A key both ways under one person is one key to the lookups; the next run
    from scratch writes them all anew.

    The keys of ``drop`` stored from scratch are not deleted (they have no index by
    person, see :class:`~crm_model.schema.PersonKey`): those persons are listed in
    ``person_key_stale`` and lookups skip them (:func:`_stored_keys`); their deltas go.

    ``held``: (key, person) rows known to be stored (read by this run, the key decoded);
    those of persons not in ``drop`` are not written again. A record joining a person
    mostly shares its keys (same name, birth date, address): each row written for an
    existing person is an insert at a random page of the person_id index, most of them a
    page split. At 1,000,000 records, 1% new: 12,364 of the run's 32,123 changed
    database pages were that index's (when the keys from scratch had it too)."""
    if drop is None:  # every key anew
        for table in ("person_key", "person_key_stale"):
            conn.exec_driver_sql(f"TRUNCATE {table}" if conn.dialect.name == "postgresql" else f"DELETE FROM {table}")
    else:
        for chunk in _chunks(drop):
            conn.execute(delete(PersonKey).where(text(PERSON_KEY_FORMS[1]), PersonKey.person_id.in_(chunk)))
            conn.execute(text("INSERT INTO person_key_stale (person_id) VALUES (:p) ON CONFLICT DO NOTHING"),
                         [{"p": pid} for pid in chunk])
    if not len(members):
        return
    keys = columns.keys if columns.keys is not None else matching.blocking_keys(columns)
    idx = np.asarray(members, dtype=np.int64)
    # person ids as int32 where they fit, each key's rows taken straight into one array:
    # these arrays (9 keys x 1,000,000 records) were the peak RSS of a run from scratch
    owner = np.asarray(pids, dtype=np.int64)
    if len(owner) and owner.min() >= 0 and owner.max() < 2**31:
        owner = owner.astype(np.int32)
    block = np.empty(len(keys) * len(idx), dtype=np.int64)
    for j, k in enumerate(keys.values()):
        np.take(k, idx, out=block[j * len(idx):(j + 1) * len(idx)])
    person = np.tile(owner, len(keys))
    keep = block >= 0
    block, person = block[keep], person[keep]
    if held:  # rows already stored under a person whose keys stay: not written again
        dropped = set(drop or ())
        new = np.fromiter(((b, p) not in held or p in dropped
                           for b, p in zip(block.tolist(), person.tolist(), strict=True)), dtype=bool, count=len(block))
        block, person = block[new], person[new]
    if drop is None:  # in key order: each row lands next to the one before it in the B-tree
        order = np.lexsort((person, block))
    else:  # deltas (see above), in person order: the person_id index is the B-tree written at random
        block = ~block
        order = np.lexsort((block, person))
    block, person = block[order], person[order]
    first = np.ones(len(block), dtype=bool)
    first[1:] = (block[1:] != block[:-1]) | (person[1:] != person[:-1])
    block, person = block[first], person[first]
    if conn.dialect.name == "sqlite":
        _insert_keys_sqlite(conn, block, person)
    elif drop is None:  # into the emptied table: the rows are distinct, nothing can conflict
        # Its primary key is built after them (the TRUNCATE above holds the table's lock
        # until the run commits already): at 1,000,000 records, 7.1 million rows 15.2 s ->
        # 7.4 s and 2.3 s for the key. Written frozen (see _copy_keys_postgres)
        with _primary_key_after(conn, PersonKey.__table__):
            _copy_keys_postgres(conn, "person_key", block, person, freeze=True)
    else:  # a key may already be stored under its person: staged, then only the new ones
        conn.exec_driver_sql("CREATE TEMPORARY TABLE IF NOT EXISTS model_keys (block_key BIGINT, person_id INTEGER)")
        conn.exec_driver_sql("TRUNCATE model_keys")
        _copy_keys_postgres(conn, "model_keys", block, person)
        conn.exec_driver_sql("ANALYZE model_keys")  # see _stage
        conn.exec_driver_sql("INSERT INTO person_key (block_key, person_id) SELECT block_key, person_id "
                             "FROM model_keys ON CONFLICT DO NOTHING")
        conn.exec_driver_sql("TRUNCATE model_keys")


def _insert_keys_sqlite(conn: Connection, block: np.ndarray, person: np.ndarray, chunk: int = 200_000) -> None:
    """Rows (block, person), sorted and distinct, into person_key, in the order given,
    by INSERTs of many rows each (:func:`_insert_rows_sqlite`). 7,000,000 random keys in
    key order into an empty table (a test apart, load ~3): 14.8 s by one executemany of
    one row per statement, where a JSON document per chunk read by SQLite's json_each
    (the way before that) took 20.9 s. Python ints for one chunk at a time only."""
    cursor = conn.connection.driver_connection.cursor()
    try:
        for start in range(0, len(block), chunk):
            flat = np.empty(2 * len(block[start:start + chunk]), dtype=np.int64)
            flat[0::2], flat[1::2] = block[start:start + chunk], person[start:start + chunk]
            _insert_rows_sqlite(cursor, "INSERT INTO person_key (block_key, person_id)", "ON CONFLICT DO NOTHING", 2,
                                flat.tolist())
    finally:
        cursor.close()


# PostgreSQL's binary COPY: per row a field count, then each field's length and its bytes
# (big-endian), here a bigint and an integer
_COPY_KEY_ROW = np.dtype([("fields", ">i2"), ("key_size", ">i4"), ("key", ">i8"), ("person_size", ">i4"),
                          ("person", ">i4")])
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
_COPY_TRAILER = (-1).to_bytes(2, "big", signed=True)


def _copy_keys_postgres(conn: Connection, table: str, block: np.ndarray, person: np.ndarray,
                        chunk: int = 1_000_000, freeze: bool = False) -> None:
    """Rows (block, person) into ``table`` by one binary COPY, each chunk's bytes made by
    numpy, no Python object per row. The 7 million keys of a run from scratch at 1,000,000
    records took minutes as INSERTs of 100,000 rows per executemany.

    ``freeze``: into a table this transaction emptied by TRUNCATE, the rows written frozen
    and their pages marked all-visible (COPY's FREEZE). Otherwise every page is written
    again later: by the first statement that reads it (setting each row's hint bits) or by
    a vacuum, and an index-only scan reads the table's page of each row until then. At
    1,000,000 records, the first run after 1% new looked up 82,000 keys in 0.79 s, where
    the same look-up took 0.31 s once those pages were written (18,244 pages dirtied by
    one SELECT), and autovacuum may be off or not there yet. Like the TRUNCATE before
    it, this is not MVCC-safe: a transaction holding a snapshot older than the run's
    commit sees the new rows (without FREEZE, an empty table)."""
    options = "FORMAT BINARY, FREEZE" if freeze else "FORMAT BINARY"
    cursor = conn.connection.driver_connection.cursor()
    try:
        with cursor.copy(f"COPY {table} (block_key, person_id) FROM STDIN ({options})") as copy:
            copy.write(_COPY_HEADER)
            for start in range(0, len(block), chunk):
                rows = np.empty(len(block[start:start + chunk]), dtype=_COPY_KEY_ROW)
                rows["fields"], rows["key_size"], rows["person_size"] = 2, 8, 4
                rows["key"], rows["person"] = block[start:start + chunk], person[start:start + chunk]
                copy.write(rows.tobytes())
            copy.write(_COPY_TRAILER)
    finally:
        cursor.close()


def _guard(opts: IdentitySettings) -> dict[str, Any]:
    return {"guard": opts.household_guard, "household": opts.household_fields,
            "override": opts.household_override_bits}


class _NameKeys:
    """:func:`matching.name_key` of record ``i`` as ``keys[i]``, worked out when asked: only
    the holders of an identifier shared by several records are asked for (at 1,000,000
    records, a list of the million keys held 70 MB until the edges were made)."""

    def __init__(self, first: list[str], last: list[str]):
        self.first, self.last = first, last

    def __getitem__(self, i: int) -> str:
        return matching.name_key(self.first[i], self.last[i])


def _name_groups(holders: list[int], first: list[str], last: list[str], names: Any) -> list[list[int]]:
    """The holders of one identifier, grouped by the person their names describe.

    Names agree when the last names are close (Jaro-Winkler >= 0.85) and the first names
    are too, or are nicknames or initials of each other; a typo is not another person.
    Holders without a name are in no group. Holders all naming one name key (most: a
    person's records) are one group without comparing names; many holders: exact names only.
    """
    exact: dict[str, list[int]] = defaultdict(list)  # name key -> its holders, each key made once
    named = []
    for i in holders:
        if key := names[i]:
            exact[key].append(i)
            named.append(i)
    if len(exact) <= 1 or len(named) > 50:
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
    params = as_document(stored.params)
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


def _expand(refs: list[str], rec: Records, index: dict, opts: IdentitySettings) -> list[int]:
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
        for i, (email, phone) in enumerate(zip(rec["email"], rec["phone"], strict=True)):
            if (email and f"email:{email}" in wanted) or (phone and f"phone:{phone}" in wanted):
                out.append(i)
    return sorted(set(out))


def _click_ids(conn: Connection, refs: list[tuple[str, str]] | None = None) -> dict[tuple[str, str], list[str]]:
    """Ad click ids of leads, by the lead's source_person row (``refs``: of those rows only)."""
    out: dict[tuple[str, str], list[str]] = defaultdict(list)
    for source, person_ref, gclid, fbclid in _lead_rows(conn, "gclid, fbclid",
                                                        "(gclid IS NOT NULL OR fbclid IS NOT NULL)", refs):
        for click in (gclid, fbclid):
            if click and person_ref:
                out[(source, person_ref)].append(click)
    return out


def _lead_rows(conn: Connection, columns: str, where: str, refs: list[tuple[str, str]] | None,
               sources: set[str] | None = None) -> list[tuple]:
    """(source, person_ref, *``columns``) of the leads matching ``where`` (SQL text): all
    of them, or those of the source_person rows ``refs`` (through the (source, person_ref)
    index, by source, with :func:`_rows_in`: no statement compiled per list of refs; at
    1,000,000 records, 1% new, the run's two look-ups 0.08 s -> 0.03 s); ``sources``:
    of these sources only."""
    select_sql = f"SELECT source, person_ref, {columns} FROM lead WHERE {where}"
    if refs is None:
        if sources is None:
            return conn.exec_driver_sql(select_sql).all()
        return _rows_in(conn, f"{select_sql} AND source", sorted(sources))
    by_source: dict[str, set[str]] = defaultdict(set)
    for source, external_id in refs:
        if sources is None or source in sources:
            by_source[source].add(external_id)
    rows: list[tuple] = []
    for source, keys in sorted(by_source.items()):
        rows += _rows_in(conn, f"{select_sql} AND source = {{}} AND person_ref", sorted(keys), (source,))
    return rows


def _new_persons(conn: Connection, count: int) -> list[int]:
    """Ids for ``count`` new persons, in creation order; :func:`_write_persons` inserts
    their rows with their golden records. SQLite: the next free ids. PostgreSQL: ids
    taken from the table's sequence in one statement (inserting the rows here, with
    RETURNING, and updating them with their golden records later took 10 s and 16 s for
    800,000 persons; the rows now go in by one COPY)."""
    if not count:
        return []
    if conn.dialect.name == "sqlite":
        start = conn.execute(select(func.coalesce(func.max(Person.person_id), 0))).scalar_one() + 1
        return list(range(start, start + count))
    # the sequence's name looked up once: in the statement, pg_get_serial_sequence ran
    # once per id (798,240 ids: 1.9 s, and 0.22 s this way)
    sequence = conn.exec_driver_sql("SELECT pg_get_serial_sequence('person', 'person_id')").scalar_one()
    ids = text("SELECT nextval(CAST(:s AS regclass)) FROM generate_series(1, :n)").bindparams(s=sequence, n=count)
    return sorted(pid for pid, in _raw_rows(conn, ids))


# ----------------------------------------------------------------------------- records


def _mark_dirty(conn: Connection, persons: list[int], refs: Any, redo: set[int]) -> None:
    """List the persons and records (source, external_id, new person id) this run changed
    in the scratch tables (records in key order: neighbouring keys share B-tree pages),
    the rows made as they are staged; persons in ``redo`` are marked so (see
    :func:`delete_absent_identities`)."""
    if persons:
        _stage(conn, "model_dirty", ("person_id", "redo"), ((p, p in redo) for p in persons))
    _stage(conn, "model_refs", ("source", "external_id", "person_id"), refs)


__all__ = ["ModelResult", "golden_columns", "normalise_email", "ref_of", "resolve"]
