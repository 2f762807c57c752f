"""The warehouse schema: migrations match the models, types round-trip exactly."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from decimal import Decimal
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event

from crm_model import db
from crm_model.dictionary import render
from crm_model.load import Upserter
from crm_model.schema import Base
from tests.conftest import rows

ROOT = Path(__file__).resolve().parents[2]


def test_migrations_create_exactly_the_models(warehouse):
    with warehouse.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []
    assert db.current_revision(warehouse) == db.head_revision()


def test_migrating_again_is_a_no_op(warehouse):
    db.migrate(warehouse)
    db.require_current(warehouse)


def test_money_is_exact_and_timestamps_are_utc(warehouse):
    ordered = dt.datetime(2026, 5, 1, 12, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    with warehouse.begin() as conn:
        Upserter(conn).upsert("customer_order", [{
            "source": "shop", "external_id": "1", "total": Decimal("1234567.8912"),
            "discount": Decimal("0.1"), "currency": "EUR", "ordered_at": ordered, "tags": ["vip", "b2b"]}])
    (order,) = rows(warehouse, "customer_order")
    assert order["total"] == Decimal("1234567.8912") and order["discount"] == Decimal("0.1")
    assert order["ordered_at"] == ordered and order["ordered_at"].tzinfo == dt.UTC
    assert order["tags"] == ["vip", "b2b"]


def test_upsert_keeps_known_person_details(warehouse):
    with warehouse.begin() as conn:
        Upserter(conn).upsert("source_person", [{"source": "s", "external_id": "c1", "email": "a@example.com",
                                                 "phone": "+4930123456"}])
        Upserter(conn).upsert("source_person", [{"source": "s", "external_id": "c1", "email": None,
                                                 "city": "Berlin"}], keep_known=True)
    (person,) = rows(warehouse, "source_person")
    assert (person["email"], person["phone"], person["city"]) == ("a@example.com", "+4930123456", "Berlin")


def test_data_dictionary_is_current():
    assert (ROOT / "docs" / "warehouse.md").read_text() == render(), "run `make docs`"


def test_rows_naming_different_columns_in_one_batch(warehouse):
    with warehouse.begin() as conn:
        Upserter(conn).upsert("source_person", [
            {"source": "s", "external_id": "1", "email": "a@example.com"},
            {"source": "s", "external_id": "2", "phone": "+4930123456"},  # same count, other column
        ])
    people = rows(warehouse, "source_person")
    assert [(p["email"], p["phone"]) for p in people] == [("a@example.com", None), (None, "+4930123456")]


def test_a_rolled_back_batch_does_not_break_the_next(warehouse):
    """Staging tables created inside a rolled-back transaction are gone; the loader must know."""
    try:
        with warehouse.begin() as conn:
            Upserter(conn).upsert("product", [{"source": "s", "external_id": "1", "title": "Lamp"}])
            raise RuntimeError("the page failed")
    except RuntimeError:
        pass
    with warehouse.begin() as conn:
        Upserter(conn).upsert("product", [{"source": "s", "external_id": "2", "title": "Bulb"}])
    assert [p["title"] for p in rows(warehouse, "product")] == ["Bulb"]


def test_analyst_views_answer(warehouse):
    from crm_model import identity

    at = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    with warehouse.begin() as conn:
        up = Upserter(conn)
        up.upsert("source_person", [{"source": "shop", "external_id": "customer:1", "email": "ada@example.com",
                                     "display_name": "Ada Lovelace", "lifecycle_stage": "customer"},
                                    {"source": "web", "external_id": "lead:9", "email": "ada@example.com"}])
        up.upsert("lead", [{"source": "web", "external_id": "9", "person_ref": "lead:9", "submitted_at": at,
                            "utm_source": "google", "gclid": "abc"}])
        up.upsert("customer_order", [
            {"source": "shop", "external_id": "1", "person_ref": "customer:1", "ordered_at": at, "status": "paid",
             "currency": "EUR", "total": Decimal("100.00"), "refunded": Decimal("10.00")},
            {"source": "shop", "external_id": "2", "person_ref": "customer:1", "ordered_at": at,
             "status": "cancelled", "currency": "EUR", "total": Decimal("50.00")}])
        up.upsert("product", [{"source": "shop", "external_id": "p1", "title": "Lamp", "category": "Lighting"}])
        up.upsert("order_line", [{"source": "shop", "external_id": "l1", "order_id": "1", "product_id": "p1",
                                  "quantity": Decimal(2), "unit_price": Decimal("50.00"), "total": Decimal("100.00")}])
        identity.resolve(conn)
    with warehouse.connect() as conn:
        sales = conn.exec_driver_sql("SELECT email, orders, net_revenue FROM v_customer_sales").all()
        lead = conn.exec_driver_sql("SELECT utm_source, has_google_click, lifecycle_stage FROM v_lead_attribution").one()
        line = conn.exec_driver_sql("SELECT product_title, category, line_total FROM v_order_line_detail").one()
    assert [(e, n, Decimal(str(r))) for e, n, r in sales] == [("ada@example.com", 1, Decimal("90"))]
    assert (lead[0], bool(lead[1]), lead[2]) == ("google", True, "customer")
    assert (line[0], line[1], Decimal(str(line[2]))) == ("Lamp", "Lighting", Decimal("100"))


def test_every_person_linked_table_is_linked_by_the_model_sql():
    linked = {t.name for t in Base.metadata.tables.values() if "person_ref" in t.c}
    sql = (ROOT / "sql" / "model" / "10_link_person_ids.sql").read_text()
    assert linked == set(re.findall(r"^UPDATE (\w+) SET (?:model_pending = true, )?person_id", sql, re.M))


def test_large_batches_of_new_and_of_known_keys_upsert_alike(warehouse):
    """A batch of new keys goes straight into its table on PostgreSQL; one holding a known
    key is merged instead (known details kept, the rest inserted), the same rows as SQLite's.
    A batch that starts or ends with a known key is merged without trying the COPY."""
    def people(start, stop, **values):
        return [{"source": "s", "external_id": f"p{i}", **values} for i in range(start, stop)]

    tried = []  # the direct COPYs attempted (each under its own savepoint)

    @event.listens_for(warehouse, "before_cursor_execute")
    def count_attempts(conn, cursor, sql, *rest):
        if sql == "SAVEPOINT crmhub_direct":
            tried.append(sql)

    pg = warehouse.dialect.name == "postgresql"
    with warehouse.begin() as conn:
        up = Upserter(conn)
        skips = conn.connection.info.setdefault("crmhub_direct_skip", {})
        skips.clear()  # as on a new connection
        up.upsert("source_person", people(0, 300, email="a@example.com"), keep_known=True)
        if pg:
            assert skips["source_person"] == (0, 0) and len(tried) == 1  # looked up, then straight in
        # p299 is known: the COPY is refused, the batch merged; its email is kept (keep_known)
        up.upsert("source_person", people(299, 600, email=None, city="Berlin"), keep_known=True)
        if pg:
            assert skips["source_person"] == (1, 1) and len(tried) == 2
        up.upsert("source_person", people(0, 300, city="Hamburg"), keep_known=True)  # merged (paused)
        up.upsert("source_person", people(600, 900, city="Köln"), keep_known=True)  # looked up: new, straight in
        if pg:
            assert skips["source_person"] == (0, 0) and len(tried) == 3
        # p100 is known, in the middle: the COPY is tried, refused and undone, the batch merged
        up.upsert("source_person", people(900, 1000, city="Bonn") + people(100, 101, city="Bonn")
                  + people(1000, 1100, city="Bonn"), keep_known=True)
        if pg:
            assert skips["source_person"] == (1, 1) and len(tried) == 4
        # a re-sync's first batch on a new connection starts with a known key: merged, no COPY tried
        skips.clear()
        up.upsert("source_person", people(1000, 1100, city="Bonn"), keep_known=True)
        if pg:
            assert skips["source_person"] == (1, 1) and len(tried) == 4
    found = {p["external_id"]: (p["email"], p["city"]) for p in rows(warehouse, "source_person")}
    assert len(found) == 1100
    assert found["p0"] == ("a@example.com", "Hamburg")
    assert found["p100"] == ("a@example.com", "Bonn")
    assert found["p299"] == ("a@example.com", "Hamburg")
    assert found["p300"] == (None, "Berlin")
    assert found["p899"] == (None, "Köln")
    assert found["p1099"] == (None, "Bonn")
    if warehouse.dialect.name == "postgresql":  # the refused COPY left nothing behind
        with warehouse.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM source_person").scalar() == 1100


def test_skip_unchanged_leaves_unchanged_rows_alone(warehouse):
    """An unchanged row keeps its row version (PostgreSQL's xmin); a changed one, JSON included, is updated."""
    orders = [{"source": "s", "external_id": str(i), "total": Decimal("1.5"), "tags": ["a"],
               "attributes": {"n": i}} for i in range(3)]
    with warehouse.begin() as conn:
        Upserter(conn).upsert("customer_order", orders, skip_unchanged=True)
    pg = warehouse.dialect.name == "postgresql"

    def versions():
        with warehouse.connect() as conn:
            return dict(conn.exec_driver_sql("SELECT external_id, xmin::text FROM customer_order").all())

    before = versions() if pg else {}
    again = [dict(o) for o in orders]
    again[1]["tags"] = ["a", "b"]  # json
    again[2]["attributes"] = {"n": 20}  # jsonb
    with warehouse.begin() as conn:
        Upserter(conn).upsert("customer_order", again, skip_unchanged=True)
    found = {o["external_id"]: (o["tags"], o["attributes"]) for o in rows(warehouse, "customer_order")}
    assert found == {"0": (["a"], {"n": 0}), "1": (["a", "b"], {"n": 1}), "2": (["a"], {"n": 20})}
    if pg:
        after = versions()
        assert after["0"] == before["0"] and after["1"] != before["1"] and after["2"] != before["2"]


def test_sqlite_binds_none_and_bools_by_registered_adapters(tmp_path):
    """A SQLite warehouse's driver finds None and bools in its adapter registry (see
    db._sqlite_binds_none_and_bools_directly), and they are stored as before: NULL and 0/1."""
    engine = db.connect(f"sqlite:///{tmp_path / 'w.db'}")
    try:
        protocol = sqlite3.PrepareProtocol
        assert sqlite3.adapters[(type(None), protocol)](None) is None
        assert sqlite3.adapters[(bool, protocol)](True) == 1
        with engine.begin() as conn:
            cursor = conn.connection.driver_connection.cursor()
            cursor.execute("CREATE TABLE t (a, b, c)")
            cursor.execute("INSERT INTO t VALUES (?, ?, ?)", (None, True, False))
            assert cursor.execute("SELECT a, typeof(a), b, typeof(b), c FROM t").fetchall() == [
                (None, "null", 1, "integer", 0)]
    finally:
        engine.dispose()


def test_only_person_draws_person_ids(warehouse):
    """PostgreSQL: of the columns naming a person, only person's own key draws ids from a
    sequence (migration 0036 took the default that 0035 gave person_key_stale)."""
    if warehouse.dialect.name != "postgresql":
        return  # SQLite keeps no sequences
    with warehouse.connect() as conn:
        drawing = conn.exec_driver_sql(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND column_name = 'person_id' AND column_default IS NOT NULL ORDER BY table_name").scalars().all()
        sequences = conn.exec_driver_sql("SELECT sequence_name FROM information_schema.sequences "
                                         "WHERE sequence_name LIKE 'person%%' ORDER BY 1").scalars().all()
    assert drawing == ["person"]
    assert "person_key_stale_person_id_seq" not in sequences
