"""A model run derives attribution, affiliate sites, support cases and touch facts only from
the rows written since the last run (model_pending), and ends with the same warehouse as a
run that derives everything again."""

from __future__ import annotations

import datetime as dt
import sqlite3
from decimal import Decimal

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from crm_model import affiliates, db, derive, identity
from crm_model.derive import MODEL_INPUTS
from crm_model.identity_settings import IdentitySettings
from crm_model.load import Upserter
from crmhub.config import loads
from tests.conftest import rows
from tests.warehouse.test_attribution import at, google_rows, person

DERIVED = ("lead", "customer_order", "touchpoint", "web_traffic_daily", "service_case", "person")
RULES = """
affiliates:
  url_params: [aff_id]
  sites:
    bestdeals.example: {param_values: ["4711"], utm_sources: [bestdeals]}
"""


def write(warehouse, **tables: list[dict]) -> None:
    """Rows written as a sync writes them: an unchanged row is left alone."""
    with warehouse.begin() as conn:
        for table, values in tables.items():
            Upserter(conn).upsert(table, values, skip_unchanged=True)


def model(warehouse, rules: str = RULES) -> None:
    with db.snapshot_transaction(warehouse) as conn:
        affiliates.store_rules(conn, loads(rules).settings.affiliates)
        identity.resolve(conn)


def derived(warehouse) -> dict[str, list[dict]]:
    return {t: [{k: v for k, v in r.items() if k != "model_pending"} for r in rows(warehouse, t)] for t in DERIVED}


def everything_again(warehouse) -> dict[str, list[dict]]:
    """The warehouse after a run that derives every row again, then put back as it was."""
    before = derived(warehouse)
    with warehouse.begin() as conn:
        for table in MODEL_INPUTS:
            conn.exec_driver_sql(f"UPDATE {table} SET model_pending = true")
        identity.resolve(conn)
    after = derived(warehouse)
    return after if after == before else {"differs": after}


def pending(warehouse) -> dict[str, int]:
    with warehouse.connect() as conn:
        counts = {t: conn.execute(text(f"SELECT COUNT(*) FROM {t} WHERE model_pending = true")).scalar_one()
                  for t in MODEL_INPUTS}
    return {t: n for t, n in counts.items() if n}


def start(warehouse) -> None:
    write(warehouse, **google_rows())
    write(
        warehouse,
        source_person=[person("web", f"lead:L{n}", f"p{n}@example.com", at(1)) for n in range(1, 6)]
        + [person("shop", "c1", "p1@example.com", at(2)), person("shop", "c4", "p4@example.com", at(2))],
        lead=[
            {"source": "web", "external_id": "L1", "person_ref": "lead:L1", "submitted_at": at(1, 14),
             "gclid": "Cj0KCQiA-demo-gclid-1", "landing_page": "https://shop.example/?aff_id=4711"},
            {"source": "web", "external_id": "L2", "person_ref": "lead:L2", "submitted_at": at(2),
             "utm_campaign": "20002", "utm_content": "90002"},
            {"source": "web", "external_id": "L4", "person_ref": "lead:L4", "submitted_at": at(2),
             "gclid": "click-that-comes-later"},
            {"source": "web", "external_id": "L5", "person_ref": "lead:L5", "submitted_at": at(2),
             "utm_campaign": "Autumn Sale"},
        ],
        touchpoint=[{"source": "web", "external_id": f"lead:L{n}", "person_ref": f"lead:L{n}", "channel": "form",
                     "occurred_at": at(2, 9)} for n in (1, 2, 4, 5)],
        customer_order=[
            {"source": "shop", "external_id": "o1", "person_ref": "c1", "ordered_at": at(3), "status": "paid",
             "currency": "EUR", "total": Decimal("10")},
            {"source": "shop", "external_id": "o4", "person_ref": "c4", "ordered_at": at(3), "status": "paid",
             "currency": "EUR", "total": Decimal("20")},
        ],
        web_traffic_daily=[{"property_id": "1", "date": dt.date(2026, 3, 2), "source": "bestdeals",
                            "medium": "affiliate", "campaign": "", "landing_page": "/", "sessions": 4}],
        email_message=[{"source": "support", "message_id": "<m1@x>", "direction": "inbound", "subject": "Broken",
                        "sent_at": at(3), "case_id": "MAIL-1", "complaint": True}],
    )
    model(warehouse)


def test_a_run_with_nothing_written_derives_nothing_again(warehouse):
    start(warehouse)
    assert pending(warehouse) == {}
    lead = {r["external_id"]: r for r in rows(warehouse, "lead")}
    assert (lead["L1"]["attribution_rule"], lead["L1"]["affiliate_site"]) == ("click_id", "bestdeals.example")
    # derived values changed behind the model's back stay: the run does not read those rows
    with warehouse.begin() as conn:
        conn.exec_driver_sql("UPDATE lead SET campaign_id = 'stale' WHERE external_id = 'L2'")
        conn.exec_driver_sql("UPDATE customer_order SET affiliate_site = 'stale' WHERE external_id = 'o1'")
        conn.exec_driver_sql("UPDATE person SET last_touch_channel = 'stale' WHERE last_touch_channel IS NOT NULL")
        conn.exec_driver_sql("UPDATE service_case SET status = 'stale'")
    model(warehouse)
    assert next(r for r in rows(warehouse, "lead") if r["external_id"] == "L2")["campaign_id"] == "stale"
    assert {p["last_touch_channel"] for p in rows(warehouse, "person")} == {"stale", None}
    assert {c["status"] for c in rows(warehouse, "service_case")} == {"stale"}
    # ... until they are written again
    with warehouse.begin() as conn:
        for table in MODEL_INPUTS:
            conn.exec_driver_sql(f"UPDATE {table} SET model_pending = true")
    model(warehouse)
    assert next(r for r in rows(warehouse, "lead") if r["external_id"] == "L2")["campaign_id"] == "20002"
    assert "stale" not in {p["last_touch_channel"] for p in rows(warehouse, "person")}
    assert {c["status"] for c in rows(warehouse, "service_case")} == {"new"}
    assert rows(warehouse, "customer_order")[0]["affiliate_site"] is None


def test_rows_written_again_unchanged_are_not_pending(warehouse):
    start(warehouse)
    lead = next(r for r in rows(warehouse, "lead") if r["external_id"] == "L2")
    written = {k: lead[k] for k in ("source", "external_id", "person_ref", "submitted_at", "utm_campaign",
                                    "utm_content")}
    write(warehouse, lead=[written])
    assert pending(warehouse) == {}
    write(warehouse, lead=[{**written, "utm_content": "90001"}])
    assert pending(warehouse) == {"lead": 1}


@pytest.mark.parametrize("set_wise", [False, True], ids=["per-person", "set-wise"])
def test_new_clicks_orders_visits_and_campaigns_end_as_a_run_of_everything(warehouse, monkeypatch, set_wise):
    if set_wise:  # sql/model_persons_all's forms, as for a run with very many persons to recompute
        monkeypatch.setattr(derive, "SET_WISE_FROM", 1)
    start(warehouse)
    before = {r["external_id"]: r for r in rows(warehouse, "lead")}
    assert before["L4"]["attribution_rule"] is None and before["L5"]["attribution_rule"] is None

    # the click L4's gclid names arrives; p2 visits the site; o1 is refunded; a support reply
    click = {**google_rows()["touchpoint"][0], "external_id": "click-later", "click_id": "click-that-comes-later",
             "occurred_at": at(2, 8)}
    write(warehouse,
          touchpoint=[click, {"source": "web", "external_id": "visit-2", "person_ref": "lead:L2",
                              "channel": "web_visit", "occurred_at": at(4)}],
          customer_order=[{"source": "shop", "external_id": "o1", "person_ref": "c1", "ordered_at": at(3),
                           "status": "refunded", "currency": "EUR", "total": Decimal("10")}],
          email_message=[{"source": "support", "message_id": "<m2@x>", "direction": "outbound",
                          "subject": "Re: Broken", "sent_at": at(4), "case_id": "MAIL-1"}])
    model(warehouse)
    lead = {r["external_id"]: r for r in rows(warehouse, "lead")}
    assert (lead["L4"]["campaign_id"], lead["L4"]["attribution_rule"]) == (click["campaign_id"], "click_id")
    moved = next(t for t in rows(warehouse, "touchpoint") if t["external_id"] == "click-later")
    assert moved["person_id"] == lead["L4"]["person_id"]
    persons = {p["person_id"]: p for p in rows(warehouse, "person")}
    assert persons[lead["L4"]["person_id"]]["first_touch_channel"] == "ad_click"
    assert persons[lead["L2"]["person_id"]]["last_touch_channel"] == "web_visit"
    orders = {o["external_id"]: o for o in rows(warehouse, "customer_order")}
    assert orders["o1"]["status"] == "refunded"
    assert orders["o4"]["attribution_rule"] == "click_id"  # not written again: its buyer's new click
    assert rows(warehouse, "service_case")[0]["status"] == "answered"
    assert pending(warehouse) == {}
    assert everything_again(warehouse) == derived(warehouse)

    # a campaign L5's utm_campaign names appears: every lead and order is looked at again
    write(warehouse, campaign=[{"platform": "google_ads", "campaign_id": "20009", "source": "google",
                                "name": "autumn sale"}])
    model(warehouse)
    l5 = next(r for r in rows(warehouse, "lead") if r["external_id"] == "L5")
    assert (l5["campaign_id"], l5["attribution_rule"]) == ("20009", "utm_campaign_name")
    assert everything_again(warehouse) == derived(warehouse)

    # other affiliate rules: every lead, order, touchpoint and visit is named again
    model(warehouse, rules=RULES.replace('utm_sources: [bestdeals]', 'utm_sources: [other]'))
    assert rows(warehouse, "web_traffic_daily")[0]["affiliate_site"] is None
    assert next(r for r in rows(warehouse, "lead") if r["external_id"] == "L1")["affiliate_site"] == (
        "bestdeals.example")  # its aff_id
    assert everything_again(warehouse) == derived(warehouse)
    monkeypatch.undo()  # and the per-person forms give what the set-wise ones gave
    assert everything_again(warehouse) == derived(warehouse)


def _sync_meanwhile(monkeypatch, warehouse, module, step: str, **tables: list[dict]) -> list[str]:
    """Have a sync write ``tables`` (and commit) while a model run is at ``step`` (a function
    of ``module`` taking the run's connection first); what the write ran into is returned."""
    clear, seen = getattr(module, step), []

    def meanwhile(conn, *args, **kw):
        try:
            engine = db.connect(str(warehouse.url))
            if engine.dialect.name == "sqlite":  # do not wait 30 s for the model run's lock
                event.listen(engine, "connect", lambda c, _: c.execute("PRAGMA busy_timeout=100"))
            write(engine, **tables)
            seen.append("written")
        except (OperationalError, sqlite3.OperationalError) as exc:  # the Upserter's SQLite path: the driver's
            seen.append(str(getattr(exc, "orig", exc)))
        finally:
            engine.dispose()
        clear(conn, *args, **kw)

    monkeypatch.setattr(module, step, meanwhile)
    return seen


def test_rows_a_sync_writes_while_the_model_runs_are_not_cleared_unread(warehouse, monkeypatch):
    start(warehouse)
    new_lead = {"source": "web", "external_id": "L9", "person_ref": "lead:L1", "submitted_at": at(5),
                "utm_campaign": "20002"}
    # written after the run derived from the pending rows, before it clears their marks
    seen = _sync_meanwhile(monkeypatch, warehouse, derive, "_clear_pending", lead=[new_lead])
    with db.snapshot_transaction(warehouse) as conn:
        identity.resolve(conn)
    if warehouse.dialect.name == "sqlite":  # the run holds the write lock: the sync waits for it
        assert seen == ["database is locked"] and pending(warehouse) == {}
        return
    # PostgreSQL: the run did not see the lead (its snapshot is older), so it is still pending
    assert seen == ["written"] and pending(warehouse) == {"lead": 1}
    monkeypatch.undo()
    model(warehouse)
    assert next(r for r in rows(warehouse, "lead") if r["external_id"] == "L9")["attribution_rule"] == (
        "utm_campaign_id")


def test_a_pending_row_a_sync_changes_while_the_model_runs_fails_the_run(warehouse, monkeypatch):
    start(warehouse)
    if warehouse.dialect.name == "sqlite":
        return  # the write lock keeps syncs out (the test above)
    lead = {"source": "web", "external_id": "L2", "person_ref": "lead:L2", "submitted_at": at(2),
            "utm_campaign": "20002", "utm_content": "90001"}
    write(warehouse, lead=[lead])
    # written after the run's snapshot, before it derives from L2 (a sync that writes L2 after
    # that waits for the run's commit, then marks it pending again)
    seen = _sync_meanwhile(monkeypatch, warehouse, derive, "_widen_pending", lead=[{**lead, "utm_content": "90002"}])
    with pytest.raises(db.ConcurrentWrite, match="run `crmhub model` again"):
        with db.snapshot_transaction(warehouse) as conn:
            identity.resolve(conn)
    assert seen == ["written"] and pending(warehouse) == {"lead": 1}
    monkeypatch.undo()
    model(warehouse)
    assert next(r for r in rows(warehouse, "lead") if r["external_id"] == "L2")["ad_id"] == "90002"


def test_tables_a_run_rewrote_much_of_are_vacuumed_and_analysed_on_postgres(warehouse, monkeypatch):
    """PostgreSQL: with no statistics and the dead row versions of a large run in its
    indexes, the next run read whole tables for their few pending rows (autovacuum is off
    on some servers, as on this project's test machine)."""
    from crmhub import jobs

    if warehouse.dialect.name == "sqlite":
        return  # nothing to do there (VACUUM rebuilds a whole SQLite file)
    start(warehouse)

    def tidy() -> dict[str, tuple[int, bool]]:
        with warehouse.connect() as conn:
            return {t: (conn.execute(text("SELECT relallvisible FROM pg_class WHERE relname = :t"), {"t": t}).scalar(),
                        conn.execute(text("SELECT count(*) FROM pg_stats WHERE tablename = :t "
                                          "AND attname = 'model_pending'"), {"t": t}).scalar() > 0)
                    for t in ("lead", "customer_order")}

    assert tidy() == {"lead": (0, False), "customer_order": (0, False)}  # never vacuumed or analysed
    monkeypatch.setattr(derive, "CHURNED_ROWS", 4)  # the test's 4 leads; 10,000 rows otherwise
    write(warehouse, lead=[{**r, "model_pending": True} for r in rows(warehouse, "lead")])
    jobs.model(loads(f"warehouse: {{url: '{warehouse.url.render_as_string(hide_password=False)}'}}"),
               engine=warehouse)
    done = tidy()
    assert done["lead"][0] > 0 and done["lead"][1]  # all-visible pages (vacuumed), statistics (analysed)
    assert done["customer_order"] == (0, False)  # 2 orders cleared: left to autovacuum


def test_a_run_that_rewrote_a_small_share_of_a_table_leaves_it_to_autovacuum(warehouse, monkeypatch):
    """A vacuum reads the whole table and its indexes: after 1% new records at 1,000,000
    it took 0.74 s of the run for 10,067 rewritten rows. Only a tenth of a table or more
    is worth it (or a table never analysed)."""
    from crmhub import jobs

    if warehouse.dialect.name == "sqlite":
        return
    start(warehouse)
    write(warehouse, lead=[{"source": "web", "external_id": f"X{n}", "submitted_at": at(3)} for n in range(30)])
    tidied: list[set[str]] = []
    monkeypatch.setattr(db, "tidy_after", lambda engine, tables: tidied.append(set(tables)))
    monkeypatch.setattr(derive, "CHURNED_ROWS", 2)
    config = loads(f"warehouse: {{url: '{warehouse.url.render_as_string(hide_password=False)}'}}")
    with warehouse.begin() as conn:  # statistics, as a vacuum or autovacuum leaves them
        conn.exec_driver_sql("ANALYZE lead")
    jobs.model(config, engine=warehouse)  # all 34 leads cleared
    assert "lead" in tidied[-1]
    write(warehouse, lead=[{"source": "web", "external_id": f"X{n}", "submitted_at": at(4)} for n in range(2)])
    jobs.model(config, engine=warehouse)  # 2 of 34 leads rewritten: 6%
    assert "lead" not in tidied[-1]
    write(warehouse, lead=[{"source": "web", "external_id": f"X{n}", "submitted_at": at(5)} for n in range(4)])
    jobs.model(config, engine=warehouse)  # 4 of 34: 12%
    assert "lead" in tidied[-1]


def test_flags_of_most_of_a_large_table_are_cleared_without_its_indexes_on_postgres(warehouse, monkeypatch):
    """PostgreSQL writes a new version of each row whose pending flag flips, and an entry
    in each of the table's indexes: clearing the flags of 1,000,000 synced leads took
    14.5-19.5 s with lead's six secondary indexes, 5.4 s + 4.6 s to build them again. Past
    REWRITE_FROM rows (100,000; 3 here) and half the table, clearing drops them for the
    update; the same indexes are there after, and the flags as before. Marking does not:
    its run goes on to use the indexes (the next test)."""
    start(warehouse)
    monkeypatch.setattr(derive, "REWRITE_FROM", 3)

    def indexes() -> list[tuple[str, str]]:
        sql = ("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'lead'" if warehouse.dialect.name ==
               "postgresql" else "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'lead'")
        with warehouse.connect() as conn:
            return sorted(tuple(r) for r in conn.exec_driver_sql(sql))

    before = indexes()
    run: list[str] = []

    def record(conn, cursor, statement, *rest) -> None:
        run.append(statement)

    event.listen(warehouse, "before_cursor_execute", record)
    with warehouse.begin() as conn:
        derive.mark_all_pending(conn, ["lead"])  # all 4 leads
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM lead WHERE model_pending = true").scalar_one() == 4
        marked = [s for s in run if s.startswith("DROP INDEX")]
        derive._clear_pending(conn)
        cleared = [s for s in run if s.startswith("DROP INDEX")]
        run.clear()
        conn.exec_driver_sql("UPDATE lead SET model_pending = true WHERE external_id IN ('L1', 'L2')")
        derive._clear_pending(conn)  # 2 of 4 leads: fewer than REWRITE_FROM
        assert not [s for s in run if s.startswith("DROP INDEX")]
    event.remove(warehouse, "before_cursor_execute", record)
    assert indexes() == before and pending(warehouse) == {} and marked == []
    if warehouse.dialect.name == "sqlite":  # an update writes only the indexes of the columns it changes
        assert cleared == []
    else:  # every index of lead but its primary key
        assert sorted(cleared) == sorted(f'DROP INDEX "{name}"' for name, _ in before if name != "pk_lead")


def test_a_run_can_use_the_indexes_of_what_it_marked_and_resolved_on_postgres(warehouse, monkeypatch):
    """An index PostgreSQL builds over a table holding HOT-updated rows of the building
    transaction (an update with the indexes dropped can be HOT) is not used by that
    transaction again. Marking most of a table (a run with --full, a changed campaign) and
    a run from scratch's person ids onto source_person keep their indexes, so the rest of
    the run can look rows up by them: with sequential scans off, the planner takes them.
    A first run writes every record's person id without source_person's person_id index
    but keeps the index of the pending flag, which every row written changes: no update
    is HOT, and the person_id index built again is used."""
    if warehouse.dialect.name == "sqlite":
        return
    monkeypatch.setattr(derive, "REWRITE_FROM", 3)
    write(warehouse, source_person=[person("web", f"lead:N{n}", f"n{n}@example.com", at(1)) for n in range(4)],
          lead=[{"source": "web", "external_id": f"N{n}", "person_ref": f"lead:N{n}", "submitted_at": at(1)}
                for n in range(4)])  # none resolved yet: a run from scratch gives every record its person

    def looked_up(conn, table: str) -> str:
        return " ".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN SELECT 1 FROM {table} WHERE person_id = 1"))

    run: list[str] = []

    def record(conn, cursor, statement, *rest) -> None:
        if statement.startswith('DROP INDEX "ix_source_person'):
            run.append(statement)

    event.listen(warehouse, "before_cursor_execute", record)
    with warehouse.begin() as conn:
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        derive.mark_all_pending(conn, ["lead"])
        assert "Index" in looked_up(conn, "lead")
        # large: a rewrite of source_person (and, last, the leads' flags cleared without lead's indexes)
        identity.resolve(conn, IdentitySettings(full_run_below=0), full=True)
        assert "Index" in looked_up(conn, "source_person")
    assert run == ['DROP INDEX "ix_source_person_person_id"']
    # a record whose flag is already clear (its person changes, by a never-merge rule, say)
    # could be written as a HOT update: a run from scratch that writes it keeps the indexes
    run.clear()
    with warehouse.begin() as conn:
        conn.exec_driver_sql("UPDATE source_person SET person_id = NULL, model_pending = false "
                             "WHERE external_id = 'lead:N0'")
        conn.exec_driver_sql("UPDATE source_person SET model_pending = true WHERE external_id <> 'lead:N0'")
        identity.resolve(conn, IdentitySettings(full_run_below=0), full=True)
    event.remove(warehouse, "before_cursor_execute", record)
    assert run == []


def test_a_run_from_scratch_writes_the_blocking_keys_frozen_on_postgres(warehouse):
    """The keys of a run from scratch go into the table it emptied by COPY FREEZE: every
    page all-visible at once, so the next run's index-only look-ups read no table page and
    set no hint bits. Within the model's own snapshot transaction, as `crmhub model` runs."""
    if warehouse.dialect.name == "sqlite":
        return
    names = ("Ada", "Lovelace"), ("Grace", "Hopper"), ("Alan", "Turing"), ("Edsger", "Dijkstra")
    write(warehouse, source_person=[{**person("web", f"lead:F{n}", f"f{n}@example.com", at(1)),
                                     "first_name": first, "last_name": last, "city": "Berlin", "postal_code": f"1011{n}"}
                                    for n, (first, last) in enumerate(names * 10)])
    with db.snapshot_transaction(warehouse) as conn:
        identity.resolve(conn, IdentitySettings(), full=True)
    with warehouse.connect() as conn:
        conn.exec_driver_sql("ANALYZE person_key")  # relallvisible: read off the visibility map
        pages, visible, keys = conn.exec_driver_sql(
            "SELECT relpages, relallvisible, (SELECT count(*) FROM person_key) FROM pg_class "
            "WHERE oid = 'person_key'::regclass").one()
    assert keys > 0 and pages > 0
    assert visible == pages


def test_incremental_runs_cost_random_reads_as_cached_ones_on_postgres(warehouse):
    """At the default random_page_cost (4.0) PostgreSQL joined a 1% run's pending rows to
    source_person and person by reading those tables whole. Incremental runs plan with
    1.1 (never above the server's own setting); runs from scratch keep the server's."""
    if warehouse.dialect.name == "sqlite":
        return
    start(warehouse)

    def planned_with(before: str | None = None, full: bool = False, opts=None) -> str:
        with warehouse.begin() as conn:
            if before:
                conn.exec_driver_sql(f"SET LOCAL random_page_cost = {before}")
            identity.resolve(conn, opts, full=full)
            return conn.exec_driver_sql("SHOW random_page_cost").scalar_one()

    assert planned_with(full=True) == "4"  # from scratch
    assert planned_with() == "1.1"  # nothing new
    incremental = IdentitySettings(full_run_below=0)  # no run from scratch for being small
    write(warehouse, source_person=[person("web", "lead:L9", "p9@example.com", at(4))])
    assert planned_with() == "4"  # a new record in a warehouse this small: from scratch
    write(warehouse, source_person=[person("web", "lead:L8", "p8@example.com", at(4))])
    assert planned_with(opts=incremental) == "1.1"  # a new record, incremental
    assert planned_with("1") == "1"  # a server already set lower keeps its figure
    with warehouse.connect() as conn:  # for this transaction only
        assert conn.exec_driver_sql("SHOW random_page_cost").scalar_one() == "4"


def test_the_same_affiliate_rules_stored_again_mark_nothing(warehouse):
    """Only other rules make every row's affiliate site worth deriving again. The stored
    rules are compared as a set, not in the database's order (a server collation such as
    en_US orders 'best-deals' and 'bestdeals' unlike Python; this test server's is C)."""
    start(warehouse)
    rules = RULES + """
    best-deals.example: {utm_sources: [best-deals, best_deals, BestDeals2]}
    a.example: {referrer_domains: [a.example, www.b.example]}
"""
    model(warehouse, rules=rules)  # other rules: everything marked, derived, cleared
    with db.snapshot_transaction(warehouse) as conn:
        affiliates.store_rules(conn, loads(rules).settings.affiliates)
    assert pending(warehouse) == {}
    with db.snapshot_transaction(warehouse) as conn:
        affiliates.store_rules(conn, loads(RULES).settings.affiliates)
    assert set(pending(warehouse)) == {"lead", "customer_order", "touchpoint", "web_traffic_daily"}


def _indexes(warehouse, table: str) -> list[tuple[str, str]]:
    with warehouse.connect() as conn:
        return conn.exec_driver_sql("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s "
                                    "ORDER BY indexname", (table,)).all()


def test_identities_another_run_writes_while_a_run_from_scratch_writes_them_fail_the_run(warehouse, monkeypatch):
    """PostgreSQL: a large run from scratch writes the identities into the table it emptied
    by a plain INSERT, without the tables' secondary indexes (built again after); an
    identity another transaction committed meanwhile (the run's snapshot cannot see it)
    fails the run as a concurrent write, and the next run takes it in."""
    if warehouse.dialect.name == "sqlite":
        return  # the write lock keeps other writers out
    opts = IdentitySettings(full_run_below=0)  # large: every run from scratch drops the indexes
    indexes = {t: _indexes(warehouse, t) for t in ("source_person", "identity")}
    ada = {"source": "crm", "external_id": "P1", "first_name": "Ada", "last_name": "Byron",
           "email": "ada@example.com"}
    write(warehouse, source_person=[ada])
    with db.snapshot_transaction(warehouse) as conn:
        identity.resolve(conn, opts)
    assert {t: _indexes(warehouse, t) for t in indexes} == indexes
    (pid,) = [r["person_id"] for r in rows(warehouse, "person")]
    write(warehouse, source_person=[{**ada, "external_id": "P2", "first_name": "Grace", "email": "grace@example.com"}])
    seen = _sync_meanwhile(monkeypatch, warehouse, identity, "_write_persons",
                           identity=[{"kind": "external_id", "value": "P2", "source": "crm", "person_id": pid}])
    with pytest.raises(db.ConcurrentWrite, match="run `crmhub model` again"):
        with db.snapshot_transaction(warehouse) as conn:
            identity.resolve(conn, opts, full=True)
    assert seen == ["written"]
    monkeypatch.undo()
    with db.snapshot_transaction(warehouse) as conn:  # identity is not empty now: rows are upserted
        identity.resolve(conn, opts, full=True)
    owner = {r["external_id"]: r["person_id"] for r in rows(warehouse, "source_person")}
    assert owner["P1"] != owner["P2"]
    assert {(r["kind"], r["value"]): r["person_id"] for r in rows(warehouse, "identity")} == {
        ("external_id", "P1"): owner["P1"], ("email", "ada@example.com"): owner["P1"],
        ("external_id", "P2"): owner["P2"], ("email", "grace@example.com"): owner["P2"]}
    assert {t: _indexes(warehouse, t) for t in indexes} == indexes
