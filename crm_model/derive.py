"""What a model run derives in SQL once identities are resolved, and how it knows there
is nothing to resolve.

``crmhub model`` resolves the pending ``source_person`` records (:mod:`crm_model.identity`),
then links person ids onto leads, orders, touchpoints, support cases and mail and derives
their attribution (sql/model), recomputes the lifecycle and touch facts of the persons that
changed (sql/model_persons), and marks the rows it derived from as no longer pending. A run
with nothing to resolve (no record pending, the identity config unchanged) does only the
second part: :func:`nothing_to_resolve` and :func:`link_without_resolving` let it do so
without loading the matcher (numpy and rapidfuzz: 0.05 s of the 0.4 s such a command takes).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, func, or_, select, text, true, update

from crm_model.identity_settings import IdentitySettings
from crm_model.load import Upserter
from crm_model.mapping import values as v
from crm_model.paths import sql_dir
from crm_model.schema import Base, Identity, MatchModel, ModelInput, SourcePerson, Touchpoint
from crm_model.types import as_document

SQL_DIR = sql_dir()


def nothing_to_resolve(conn: Connection, opts: IdentitySettings) -> bool:
    """No ``source_person`` record is new or changed since the last run, and the identity
    config is the one that run applied: counted through the two indexes of the pending
    records (see :func:`pending_count`)."""
    return not config_changed(conn, opts) and pending_count(conn) == 0


def link_without_resolving(conn: Connection) -> None:
    """A run with nothing to resolve: only what the other pending rows (new leads, orders,
    touchpoints, mail) give, with the persons as they are."""
    prepare_scratch(conn)
    planned_for_few_rows(conn)
    link_records(conn, identities_changed=False)


def config_changed(conn: Connection, opts: IdentitySettings) -> bool:
    """Whether the identity config in crmhub.yml differs from the one the last run applied
    (a warehouse no run has resolved yet has none: that is no change, a first run looks at
    everything anyway)."""
    stored = _stored_digest(conn)
    return stored is not None and stored != _config_digest(opts)


def store_config(conn: Connection, opts: IdentitySettings) -> None:
    """Note the identity config this run applies (see :func:`config_changed`)."""
    digest = _config_digest(opts)
    if _stored_digest(conn) != digest:
        Upserter(conn).upsert("match_model", [{"name": "config", "params": {"digest": digest}, "trained_on": 0,
                                                "trained_at": dt.datetime.now(dt.UTC)}])


def _config_digest(opts: IdentitySettings) -> str:
    return hashlib.sha256(json.dumps([opts.must_merge, opts.never_merge, opts.identifiers,
                                      opts.email_provider_rules, opts.shared_identifier_names,
                                      opts.source_priority, opts.match_threshold,
                                      opts.compare_attributes, opts.attribute_fields,
                                      opts.probabilistic, opts.household_guard, opts.household_fields,
                                      opts.household_override_bits]).encode()).hexdigest()


def _stored_digest(conn: Connection) -> str | None:
    stored = conn.execute(select(MatchModel.params).where(MatchModel.name == "config")).scalar_one_or_none()
    if stored is None:
        return None
    return as_document(stored).get("digest")


def planned_for_few_rows(conn: Connection) -> None:
    """PostgreSQL, incremental runs: random page reads costed as an SSD or a cached table
    costs them (``random_page_cost`` 1.1, for this transaction only, never above the
    server's own setting). An incremental run joins a few thousand pending rows to tables
    of a million through their indexes; at the default 4.0 (a spinning disk's figure) the
    planner read ``source_person`` and ``person`` whole instead, by hash joins. At
    1,000,000 records, 1% new: the run's SQL 2.44 -> 1.77 s (the ``source_person``
    update 0.41 -> 0.18 s, the lifecycle stages 0.37 -> 0.17 s, the touch facts cleared
    0.15 -> 0.03 s). Runs from scratch keep the server's costs: they read whole tables."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SELECT set_config('random_page_cost', "
                             "LEAST(current_setting('random_page_cost')::float8, 1.1)::text, true)")


def prepare_scratch(conn: Connection) -> None:
    """Per-run scratch tables (temporary, per connection) that sql/model reads."""
    conn.exec_driver_sql("CREATE TEMPORARY TABLE IF NOT EXISTS model_dirty (person_id INTEGER PRIMARY KEY, "
                         "redo BOOLEAN)")
    conn.exec_driver_sql("CREATE TEMPORARY TABLE IF NOT EXISTS model_refs (source VARCHAR(64), "
                         "external_id VARCHAR(255), person_id INTEGER, PRIMARY KEY (source, external_id))")
    conn.exec_driver_sql("DELETE FROM model_dirty")
    conn.exec_driver_sql("DELETE FROM model_refs")
    conn.info.pop(CHURNED, None)  # left by a run that failed on this connection


def link_records(conn: Connection, every: bool = False, identities_changed: bool = True) -> None:
    """Ad clicks onto the person of the click id in their URL, person ids onto records,
    support cases, attribution and affiliate sites (sql/model), then the lifecycle and
    touch facts of every person that changed (sql/model_persons) and the products of
    support cases; last, the rows all this was derived from are no longer pending.

    sql/model reads only the leads, orders, touchpoints, messages and web-traffic rows
    marked ``model_pending`` (every write marks its rows): what is marked besides is
    decided first (:func:`_widen_pending`). ``every``: a run from scratch, which wrote
    every person's golden record: every row is derived again, and the set-wise forms of
    sql/model_persons_all run in place of the per-person ones (at 1,000,000 records,
    798,240 persons, on SQLite, measured apart at load 2: lifecycle and first/last seen
    7.8 s -> 0.6 s); so do runs with ``SET_WISE_FROM`` persons or more to recompute (a
    first run over the activity of 600,000 persons). ``identities_changed`` false
    (nothing new to resolve): only pending clicks can have gained a person."""
    from crm_model import mail_cases

    _widen_pending(conn, every)
    _link_ad_clicks(conn, every_click=identities_changed)
    run_sql(conn, "model")
    if conn.dialect.name == "postgresql":  # as filled by this run and sql/model (see _stage)
        conn.exec_driver_sql("ANALYZE model_dirty")
    many = every or conn.exec_driver_sql("SELECT COUNT(*) FROM model_dirty").scalar_one() >= SET_WISE_FROM
    run_sql(conn, "model_persons", instead="model_persons_all" if many else None)
    mail_cases.link_products(conn, everything=every or _any_pending(conn, "product"))
    _clear_pending(conn)


def _clear_pending(conn: Connection) -> None:
    """The rows the run derived from are no longer pending (rows written since the run's
    snapshot stay pending: crm_model.db.snapshot_transaction)."""
    for table in MODEL_INPUTS:
        with without_indexes(conn, table, _clears_most(conn, table)):
            cleared = conn.exec_driver_sql(f"UPDATE {table} SET model_pending = false WHERE model_pending = true")
        churned(conn, table, cleared.rowcount)


REWRITE_FROM = 100_000


def _clears_most(conn: Connection, table: str) -> bool:
    """PostgreSQL: the run clears the flags of ``REWRITE_FROM`` rows of ``table`` or more,
    and of half its rows or more (counted only past the first test, one scan of the
    table). Each row cleared is a new version with an entry in every index of the table
    (the flag is indexed itself, so no such update is HOT): there (a first run after a
    sync of a million leads) the clearing drops the table's secondary indexes and builds
    them again after it (:func:`without_indexes`). 1,000,000 leads synced from csv, in
    psql: 14.5-19.5 s with the six indexes, 5.4 s + 4.6 s to build them again.

    Only the clearing, the run's last write: without the indexes an update can be HOT,
    and an index PostgreSQL builds over a table holding HOT-updated rows of the building
    transaction is marked ``indcheckxmin`` and is not used by that transaction again (its
    planner skips it). Marking (:func:`mark_all_pending`, at the run's start) so would
    leave every later statement of the run without the table's indexes (a seq scan per
    order, per person)."""
    pending = "model_pending = true"
    if conn.dialect.name != "postgresql" or conn.exec_driver_sql(
            f"SELECT COUNT(*) FROM (SELECT 1 FROM {table} WHERE {pending} LIMIT {REWRITE_FROM}) s").scalar_one() < REWRITE_FROM:
        return False
    rows, total = conn.exec_driver_sql(f"SELECT COUNT(*) FILTER (WHERE {pending}), COUNT(*) FROM {table}").one()
    return 2 * rows >= total


def churned(conn: Connection, table: str, rows: int) -> None:
    """Note a table in which the run rewrote many rows, for crm_model.db.tidy_after to
    vacuum and analyse once the run has committed (PostgreSQL): ``CHURNED_ROWS`` rows or
    more, and a ``CHURNED_SHARE`` of the table or more (or a table never analysed: no row
    count for the planner). A run after 1% new records rewrote 10,067 of 1,010,000
    ``source_person`` rows: vacuuming the whole table and its three indexes for them took
    0.74 s of that run, where autovacuum (analyse at 10% changed, vacuum at 20% dead)
    would not have started."""
    if rows < CHURNED_ROWS or conn.dialect.name != "postgresql":
        return
    size = conn.execute(text("SELECT reltuples FROM pg_class WHERE oid = CAST(:t AS regclass)"), {"t": table}).scalar()
    if size is None or size < 0 or rows >= CHURNED_SHARE * size:
        conn.info.setdefault(CHURNED, set()).add(table)


CHURNED, CHURNED_ROWS, CHURNED_SHARE = "crmhub_churned", 10_000, 0.1


@contextlib.contextmanager
def without_indexes(conn: Connection, table: str, rewrite: bool, guard: str | None = None):
    """When a run rewrites most rows of ``table`` (``rewrite``: a run from scratch, or
    pending flags cleared on most of a large table, see :func:`_clears_most`), its
    secondary indexes (those behind no constraint) are dropped for the writes and built
    again after: one sort each instead of an entry per row at a random B-tree page.

    ``guard``: an index kept, over a column that every row written changes. No update
    is then HOT, and the indexes built again after the writes can be used by the rest of
    the run (see :func:`_clears_most`), so a table's update need not be its last in the
    run: ``source_person``'s person ids in a first run, where every flag is cleared.
    SQLite, at 1,000,000 records: the identity rows 19 s -> 8 s with the index built
    again; PostgreSQL, the same: 15.1 s -> 12.2 s. On PostgreSQL the drop locks the table
    until the run commits: a reader of it waits for the run to end (a sync writing the
    table would fail that run anyway: see :func:`crm_model.db.snapshot_transaction`), so
    PostgreSQL does this only for large rewrites (a run from scratch past
    ``full_run_below`` records, which is rare and long; flags cleared on ``REWRITE_FROM``
    rows or more), and only for rows inserted (``identity``, emptied first) or for a
    table's last update in the run: the indexes built after an update the run made
    without them may not be used by the run again (see :func:`_clears_most`)."""
    if not rewrite:
        yield
        return
    if conn.dialect.name == "postgresql":
        indexes = conn.exec_driver_sql(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = %s::regclass AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) "
            "ORDER BY c.relname", (table,)).all()
    else:
        indexes = conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
                                       "AND sql IS NOT NULL ORDER BY name", (table,)).all()
    indexes = [(name, sql) for name, sql in indexes if name != guard]
    for name, _ in indexes:
        conn.exec_driver_sql(f'DROP INDEX "{name}"')
    yield
    for _, sql in indexes:
        conn.exec_driver_sql(sql)


SET_WISE_FROM = 100_000  # persons in model_dirty from which sql/model_persons_all's forms run

# The tables with a model_pending column (crm_model.schema.ModelInput); sql/model derives
# from the pending rows of DERIVED_FROM, and a change to the others widens what it reads.
MODEL_INPUTS = tuple(name for name, cls in Base.classes.items() if issubclass(cls, ModelInput))
DERIVED_FROM = ("lead", "customer_order", "touchpoint", "web_traffic_daily", "email_message")


def _widen_pending(conn: Connection, every: bool) -> None:
    """Mark what sql/model must derive again beyond the rows written since the last run.
    A run from scratch: everything. A campaign or ad written (new, renamed, moved to
    another ad group), or daily stats of an ad in an ad group its ``ad`` row does not
    name: every lead's and order's attribution (a utm_campaign may name the new campaign;
    the ad group of an ad that serves in two is no longer known). Daily stats in the ad
    group the ad already names change nothing that attribution reads, so a daily ads sync
    does not make the next run recompute everything."""
    if every:
        tables = DERIVED_FROM
    elif (_any_pending(conn, "campaign") or _any_pending(conn, "ad") or conn.exec_driver_sql(
            "SELECT 1 FROM ad_stat_daily s JOIN ad a ON a.platform = s.platform AND a.ad_id = s.ad_id "
            "WHERE s.model_pending = true AND s.ad_group_id <> '' AND s.ad_group_id <> a.ad_group_id LIMIT 1").first()):
        tables = ("lead", "customer_order")
    else:
        return
    mark_all_pending(conn, tables)


def mark_all_pending(conn: Connection, tables: Iterable[str]) -> None:
    """Every row of ``tables`` (of MODEL_INPUTS) for the model run to derive from again."""
    for table in tables:  # with the indexes, which the run goes on to use (see _clears_most)
        conn.exec_driver_sql(f"UPDATE {table} SET model_pending = true WHERE model_pending IS NOT true")


def _any_pending(conn: Connection, table: str) -> bool:
    return conn.exec_driver_sql(f"SELECT 1 FROM {table} WHERE model_pending = true LIMIT 1").first() is not None


def _link_ad_clicks(conn: Connection, every_click: bool = True) -> None:
    """An ad_click touchpoint whose URL carries a lead's gclid/fbclid joins that lead's
    person. ``every_click`` false: only clicks written since the last run (no identity
    changed, so no click looked at before can match now)."""
    tp = Touchpoint.__table__
    clicks = conn.execute(select(tp.c.source, tp.c.external_id, tp.c.url).where(
        tp.c.person_id.is_(None), tp.c.person_ref.is_(None), tp.c.channel == "ad_click",
        tp.c.url.is_not(None), *(() if every_click else (tp.c.model_pending == true(),)))).all()
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
        conn.execute(text("UPDATE touchpoint SET person_id = :p, model_pending = true "
                          "WHERE source = :s AND external_id = :e"), updates)
        conn.execute(text("INSERT INTO model_dirty (person_id) SELECT :p WHERE NOT EXISTS "
                          "(SELECT 1 FROM model_dirty WHERE person_id = :p)"), [{"p": u["p"]} for u in updates])


def run_sql(conn: Connection, folder: str, instead: str | None = None) -> None:
    """Run every statement of ``sql/<folder>/*.sql`` in file-name order; a file of
    ``sql/<instead>/`` runs in place of the file of the same name."""
    for path in sorted((SQL_DIR / folder).glob("*.sql")):
        if instead is not None and (SQL_DIR / instead / path.name).exists():
            path = SQL_DIR / instead / path.name
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


def pending_records() -> Any:
    """source_person rows a model run must look at: new or changed since the last run, or
    never resolved."""
    sp = SourcePerson.__table__
    return or_(sp.c.model_pending.is_(True), sp.c.person_id.is_(None))


def pending_count(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(SourcePerson.__table__).where(
        pending_records())).scalar_one()
