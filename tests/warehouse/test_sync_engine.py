"""The sync engine's guarantees, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import event, select, text

from connectors.sdk import (
    Connector,
    ConnectorConfig,
    Page,
    SourceError,
    StreamState,
    stream,
)
from crm_model import mapping as mapping_mod
from crm_model.mapping import Reject, Row, mapping
from crm_model.mapping import values as v
from crm_model.schema import SyncRun
from crm_model.sync import landed_streams, load_state, remap, sync
from tests.conftest import rows, snapshot

UTC = dt.UTC


class FeedConfig(ConnectorConfig):
    pages: list[list[dict]]
    fail_after: int | None = None


class Feed(Connector):
    """A connector over in-memory pages (the engine, not HTTP, is under test here)."""

    Config = FeedConfig

    @stream(primary_key="id", cursor="updated")
    def people(self, state: StreamState):
        self.seen_state = dict(state.saved)
        since = state.cursor
        for n, page in enumerate(self.config.pages):
            if self.config.fail_after is not None and n >= self.config.fail_after:
                raise SourceError("feed: the API went away")
            yield [r for r in page if since is None or r["updated"] >= since]

    @stream(primary_key="id", cursor="updated", ordered=True)
    def ordered(self, state: StreamState):
        for page in self.config.pages:
            yield Page([r for r in page if state.cursor is None or r["updated"] > state.cursor])


@mapping("feed", "*")
def map_person(raw: dict, ctx) -> list[Row]:
    email = v.email(raw.get("email"))  # a bad email is a field warning during a sync...
    if raw.get("email") and email is None:  # ...but this feed's people are nothing without one
        raise Reject(v.current_warnings()[-1].reason)
    if raw.get("explode"):
        raise RuntimeError("bug in mapping")
    return [Row("source_person", {"external_id": str(raw["id"]), "email": email,
                                  "display_name": v.text(raw.get("name")),
                                  "seen_at": v.timestamp(raw["updated"])})]


PAGES = [
    [{"id": 1, "name": "Ada", "email": "ada@example.com", "updated": "2026-01-01T00:00:00Z"},
     {"id": 2, "name": "Bob", "email": "bad address", "updated": "2026-01-02T00:00:00Z"}],
    [{"id": 3, "name": "Cy", "email": "cy@example.com", "updated": "2026-01-03T00:00:00Z"},
     {"name": "no id", "email": "x@example.com", "updated": "2026-01-03T00:00:00Z"},
     {"id": 4, "name": "Di", "email": "di@example.com", "updated": "2026-01-04T00:00:00Z", "explode": True}],
]
SYNC_TABLES = ("source_person", "raw_record", "rejected_record", "sync_state")


def feed(pages=PAGES, **kw) -> Feed:
    return Feed(FeedConfig(pages=pages, **kw), source="crm")


def stable(snap):
    """Drop run-dependent bookkeeping (timestamps, run ids) before comparing."""
    for table in snap.values():
        for row in table:
            for col in ("extracted_at", "rejected_at", "updated_at", "sync_run_id"):
                row.pop(col, None)
    return snap


def test_read_equals_loaded_plus_rejected_with_reasons(warehouse):
    result = sync(warehouse, "crm", feed(), "feed", streams=["people"])
    assert (result.read, result.loaded, result.rejected) == (5, 2, 3)
    assert result.status == "success"
    reasons = {r["record_key"]: r["reason"] for r in rows(warehouse, "rejected_record")}
    assert "not a valid email address" in reasons["2"]
    assert reasons["4"] == "people record 4: mapping failed: RuntimeError: bug in mapping"
    assert [k for k in reasons if k.startswith("#")] and "missing primary key id" in reasons[
        next(k for k in reasons if k.startswith("#"))]
    with warehouse.connect() as conn:
        run = conn.execute(select(SyncRun.__table__)).one()
    assert (run.records_read, run.records_loaded, run.records_rejected, run.pages) == (5, 2, 3, 2)
    assert [r["email"] for r in rows(warehouse, "source_person")] == ["ada@example.com", "cy@example.com"]
    assert len(rows(warehouse, "raw_record")) == 5  # rejected records land raw too: nothing is lost


def test_syncing_twice_changes_nothing(warehouse):
    sync(warehouse, "crm", feed(), "feed", streams=["people"])
    first = stable(snapshot(warehouse, SYNC_TABLES))
    second_result = sync(warehouse, "crm", feed(), "feed", streams=["people"], full_refresh=True)
    assert second_result.read == 5
    assert stable(snapshot(warehouse, SYNC_TABLES)) == first


def test_cursor_moves_only_when_the_stream_ends(warehouse):
    sync(warehouse, "crm", feed(), "feed", streams=["people"])
    with warehouse.connect() as conn:
        assert load_state(conn, "crm", "people") == {"cursor": "2026-01-04T00:00:00Z"}
    # the API fails on the second page: page one commits, the cursor stays put
    result = sync(warehouse, "crm", feed(PAGES + [[{"id": 9, "updated": "2026-02-01T00:00:00Z",
                                                    "email": "z@example.com"}]], fail_after=2),
                  "feed", streams=["people"], full_refresh=True)
    assert result.status == "failed" and "the API went away" in result.errors[0]
    with warehouse.connect() as conn:
        assert load_state(conn, "crm", "people") == {"cursor": "2026-01-04T00:00:00Z"}
        run = conn.execute(select(SyncRun.__table__).order_by(SyncRun.sync_run_id.desc())).first()
    assert run.status == "failed" and "went away" in run.error


def test_ordered_stream_checkpoints_every_page(warehouse):
    connector = feed(pages=[PAGES[0], [{"id": 5, "email": "e@example.com", "updated": "2026-01-09T00:00:00Z"}]])
    sync(warehouse, "crm", connector, "feed", streams=["ordered"])
    with warehouse.connect() as conn:
        assert load_state(conn, "crm", "ordered")["cursor"] == "2026-01-09T00:00:00Z"
    again = sync(warehouse, "crm", connector, "feed", streams=["ordered"])
    assert again.read == 0  # nothing newer than the cursor


def test_next_run_is_handed_the_saved_state(warehouse):
    sync(warehouse, "crm", feed(), "feed", streams=["people"])
    second = feed()
    result = sync(warehouse, "crm", second, "feed", streams=["people"])
    assert second.seen_state == {"cursor": "2026-01-04T00:00:00Z"}
    assert result.read == 1  # only the record at the cursor (>=) came back


def test_a_killed_run_is_marked_aborted_by_the_next(warehouse):
    with warehouse.begin() as conn:
        conn.execute(SyncRun.__table__.insert().values(
            source="crm", status="running", started_at=dt.datetime(2026, 1, 1, tzinfo=UTC),
            full_refresh=False, records_read=0, records_loaded=0, records_rejected=0, pages=0))
    sync(warehouse, "crm", feed(), "feed", streams=["people"])
    statuses = [r["status"] for r in rows(warehouse, "sync_run")]
    assert statuses == ["aborted", "success"]


def test_remap_applies_a_fixed_mapping_and_clears_rejects(warehouse, monkeypatch):
    sync(warehouse, "crm", feed(), "feed", streams=["people"])
    assert len(rows(warehouse, "rejected_record")) == 3

    def lenient(raw, ctx):  # version 2 of the mapping accepts any email text
        return [Row("source_person", {"external_id": str(raw["id"]), "email": raw.get("email")})]

    monkeypatch.setitem(mapping_mod._REGISTRY, ("feed", "*"), mapping_mod.Mapper(lenient, 2))
    asked = []

    def options():  # crmhub reads them off the connector's class: an import it spares when it can
        asked.append(1)
        return {}

    mapped, rejected = remap(warehouse, "crm", "feed", "people", options, batch_size=2)
    assert (mapped, rejected) == (4, 0)  # the keyless record is not offered to the mapping
    assert asked == [1]  # once, however many batches
    remaining = rows(warehouse, "rejected_record")
    assert len(remaining) == 1 and "missing primary key" in remaining[0]["reason"]
    assert {r["external_id"] for r in rows(warehouse, "source_person")} == {"1", "2", "3", "4"}
    assert remap(warehouse, "crm", "feed", "people", options) == (0, 0)  # nothing left to re-map
    assert asked == [1]  # ... and no options asked for


def test_remap_skips_a_stream_known_mapped_until_another_version_writes_to_it(warehouse, monkeypatch):
    """`mapped_stream` spares a model run reading every raw record to find nothing to do;
    a sync under another mapping version takes it away again."""
    sync(warehouse, "crm", feed(), "feed", streams=["people"])
    assert rows(warehouse, "mapped_stream") == []  # a sync alone says nothing about older records
    assert remap(warehouse, "crm", "feed", "people", {}) == (0, 0)
    assert [(r["stream"], r["version"]) for r in rows(warehouse, "mapped_stream")] == [("people", 1)]

    statements = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(warehouse, "before_cursor_execute", seen)
    try:
        assert remap(warehouse, "crm", "feed", "people", {}) == (0, 0)
    finally:
        event.remove(warehouse, "before_cursor_execute", seen)
    assert not [s for s in statements if "raw_record" in s]

    def renamed(raw, ctx):  # version 2 writes every name in capitals
        return [Row("source_person", {"external_id": str(raw["id"]), "display_name": raw["name"].upper()})]

    # records written by version 2 (a new release syncing): the version-1 mark goes
    monkeypatch.setitem(mapping_mod._REGISTRY, ("feed", "*"), mapping_mod.Mapper(renamed, 2))
    sync(warehouse, "crm", feed(pages=[PAGES[0][:1]]), "feed", streams=["people"], full_refresh=True)
    assert rows(warehouse, "mapped_stream") == []
    assert remap(warehouse, "crm", "feed", "people", {}) == (3, 0)  # Bob, Cy and Di, mapped by version 1
    names = {r["external_id"]: r["display_name"] for r in rows(warehouse, "source_person")}
    assert names == {"1": "ADA", "2": "BOB", "3": "CY", "4": "DI"}
    assert [r["version"] for r in rows(warehouse, "mapped_stream")] == [2]
    # a write by the version the mark names keeps it
    sync(warehouse, "crm", feed(pages=[PAGES[0][:1]]), "feed", streams=["people"], full_refresh=True)
    assert [r["version"] for r in rows(warehouse, "mapped_stream")] == [2]


def test_landed_streams_are_those_of_the_raw_records(warehouse):
    """The loose index scan finds every (source, stream) that DISTINCT finds, in order."""
    with warehouse.begin() as conn:
        assert landed_streams(conn) == []
        keys = [("a", "x", "1"), ("a", "x", "2"), ("a", "y", "1"), ("a_b", "x", "1"), ("b", "a", "9"),
                ("b", "ab", "1"), ("b", "ab", "2"), ("zz", "s", "#no-key")]
        conn.execute(text("INSERT INTO raw_record (source, stream, record_key, payload, hash, extracted_at) "
                          "VALUES (:s, :t, :k, '{}', 'h', :at)"),
                     [{"s": s, "t": t, "k": k, "at": dt.datetime(2026, 1, 1, tzinfo=UTC)} for s, t, k in keys])
        distinct = sorted(conn.execute(text("SELECT DISTINCT source, stream FROM raw_record")).all())
        assert landed_streams(conn) == [tuple(r) for r in distinct] == [
            ("a", "x"), ("a", "y"), ("a_b", "x"), ("b", "a"), ("b", "ab"), ("zz", "s")]


def test_mapped_values_that_do_not_fit_reject_the_record(warehouse, monkeypatch):
    def too_long(raw, ctx):
        return [Row("source_person", {"external_id": "1", "country": "DEU"})]

    monkeypatch.setitem(mapping_mod._REGISTRY, ("feed", "*"), mapping_mod.Mapper(too_long, 1))
    result = sync(warehouse, "crm", feed(pages=[PAGES[0][:1]]), "feed", streams=["people"])
    assert result.rejected == 1
    (rejected,) = rows(warehouse, "rejected_record")
    assert rejected["reason"] == f"people record {rejected['record_key']}: source_person.country: longer than 2 characters"


def test_reject_exception_is_a_value_error():
    assert issubclass(Reject, ValueError)


def test_a_failed_page_write_fails_the_run_and_keeps_earlier_pages(warehouse, monkeypatch):
    import crm_model.sync as engine_mod

    real_write, calls = engine_mod.write_batch, []

    def write_then_fail(conn, *args, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real_write(conn, *args, **kw)

    monkeypatch.setattr(engine_mod, "write_batch", write_then_fail)
    result = sync(warehouse, "crm", feed(), "feed", streams=["people"])
    assert result.status == "failed" and result.errors == ["people: RuntimeError: disk full"]
    assert {r["record_key"] for r in rows(warehouse, "raw_record")} == {"1", "2"}  # page one only
    with warehouse.connect() as conn:
        assert load_state(conn, "crm", "people") == {}  # the cursor did not move past the lost page


def test_one_sync_per_source_at_a_time(warehouse):
    from crm_model.locks import SourceBusy, source_lock

    with source_lock(warehouse, "crm"):  # as if another process were syncing "crm"
        with pytest.raises(SourceBusy, match="another sync of 'crm' is running"):
            sync(warehouse, "crm", feed(), "feed", streams=["people"])
        assert sync(warehouse, "other", feed(), "feed", streams=["people"]).status == "success"
    assert sync(warehouse, "crm", feed(), "feed", streams=["people"]).status == "success"
    assert [r["status"] for r in rows(warehouse, "sync_run")] == ["success", "success"]  # nothing half-started
