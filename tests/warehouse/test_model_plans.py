"""The model run's set-wise statements keep plans that grow about linearly on PostgreSQL.

A statement that reads the run's scratch tables (model_dirty, model_refs, model_identity)
through ``IN (SELECT ...)`` under an OR, or through ``NOT IN (SELECT ...)``, is planned by
PostgreSQL as a hashed lookup while the scratch table fits in work_mem, and as a scan of
the scratch table per row once it does not: a run from scratch at 1,000,000 records
(800,000 persons in model_dirty) never finished the touch-channel statement that way.
No timer here: the planner's own cost estimate at n and at 4n rows, with work_mem as small
as PostgreSQL allows, must grow like n (about 4x), not like n squared (about 16x).
"""

from __future__ import annotations

import json
import re
import shutil

import pytest

from crm_model import db
from crm_model.derive import SQL_DIR, _statements, prepare_scratch
from crm_model.identity import MODEL_IDENTITY_DDL, delete_absent_identities

SIZES = (2_000, 8_000)
TABLES = ("source_person", "person", "identity", "lead", "touchpoint", "customer_order", "email_message")


def _fill(conn, n: int) -> None:
    """n persons with a record, a lead (with a click id), a touchpoint, an ad click with
    that click id, an order and a support mail each (threads of two); every one listed in
    the run's scratch tables, as after a run from scratch."""
    conn.exec_driver_sql(f"TRUNCATE {', '.join(TABLES)}")
    prepare_scratch(conn)
    conn.exec_driver_sql(MODEL_IDENTITY_DDL)
    conn.exec_driver_sql("DELETE FROM model_identity")
    series = f"FROM generate_series(1, {n}) g"
    for sql in (
        f"INSERT INTO person (person_id, lifecycle_stage, first_touch_channel) SELECT g, 'lead', 'ad_click' {series}",
        "INSERT INTO source_person (source, external_id, person_id, lifecycle_stage, seen_at) "
        f"SELECT 'crm', 'r' || g, g, 'lead', now() {series}",
        f"INSERT INTO identity (kind, value, source, person_id) SELECT 'email', g || '@x.example', 'crm', g {series}",
        "INSERT INTO lead (source, external_id, person_ref, person_id, gclid) "
        f"SELECT 'crm', 'l' || g, 'r' || g, CASE WHEN g %% 2 = 0 THEN g END, 'g' || g {series}",
        # ad clicks that name no record, only the click id a lead carries
        "INSERT INTO touchpoint (source, external_id, click_id, channel, occurred_at) "
        f"SELECT 'ads', 'c' || g, 'g' || g, 'ad_click', now() {series}",
        # half the touchpoints and orders linked to their person already, half not yet
        "INSERT INTO touchpoint (source, external_id, person_ref, person_id, channel, occurred_at, url) "
        "SELECT 'crm', 't' || g, 'r' || g, CASE WHEN g %% 2 = 0 THEN g END, 'ad_click', now(), "
        f"'https://x.example/?gclid=' || g {series}",
        "INSERT INTO customer_order (source, external_id, person_ref, person_id, status, ordered_at) "
        f"SELECT 'crm', 'o' || g, 'r' || g, CASE WHEN g %% 2 = 0 THEN g END, 'paid', now() {series}",
        # support mail: threads of two messages each
        "INSERT INTO email_message (source, message_id, direction, subject, sent_at, person_ref, case_id) "
        "SELECT 'support', '<m' || g || '@x>', CASE WHEN g %% 2 = 0 THEN 'inbound' ELSE 'outbound' END, "
        f"'Order ' || g / 2, now(), 'r' || g, 'C' || g / 2 {series}",
        f"INSERT INTO model_dirty (person_id, redo) SELECT g, true {series}",
        f"INSERT INTO model_refs (source, external_id, person_id) SELECT 'crm', 'r' || g, g {series}",
        "INSERT INTO model_identity (seq, kind, value, source, person_id) "
        f"SELECT g, 'email', g || '@y.example', 'crm', g {series}",
    ):
        conn.exec_driver_sql(sql)
    for table in (*TABLES, "model_dirty", "model_refs", "model_identity"):
        conn.exec_driver_sql(f"ANALYZE {table}")
    conn.exec_driver_sql("SET LOCAL work_mem = '64kB'")
    conn.exec_driver_sql("SET LOCAL hash_mem_multiplier = 1")


def _model_statements() -> list[str]:
    statements = [delete_absent_identities("postgresql")]
    for folder in sorted(p.name for p in SQL_DIR.iterdir() if p.is_dir() and p.name.startswith("model")):
        for path in sorted((SQL_DIR / folder).glob("*.sql")):
            statements += _statements(path.read_text())
    return statements


def _cost(conn, statement: str) -> float:
    plan = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}").scalar()
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return float(plan[0]["Plan"]["Total Cost"])


def test_model_statements_plan_about_linearly_on_postgres(postgres_url):
    engine = db.connect(postgres_url)
    statements = _model_statements()
    costs: dict[int, list[float]] = {}
    try:
        for n in SIZES:
            with engine.begin() as conn:
                _fill(conn, n)
                costs[n] = [_cost(conn, statement) for statement in statements]
                conn.rollback()
    finally:
        engine.dispose()
    growth = SIZES[1] / SIZES[0]
    worse = [(round(big / small, 1), " ".join(statement.split())[:160])
             for statement, small, big in zip(statements, costs[SIZES[0]], costs[SIZES[1]], strict=True)
             if big > 2 * growth * max(small, 1.0)]
    assert not worse, f"plans that grow faster than the rows ({growth:.0f}x): {worse}"


@pytest.mark.parametrize("statement", [
    # the touch-channel statement before it was split in two: model_dirty under an OR
    "UPDATE person SET first_touch_channel = NULL WHERE person_id IN (SELECT t.person_id FROM touchpoint t) "
    "OR (person_id IN (SELECT d.person_id FROM model_dirty d) AND first_touch_channel IS NOT NULL)",
    # identity's NOT IN on PostgreSQL
    delete_absent_identities("sqlite"),
])
def test_the_plan_check_tells_a_quadratic_plan(postgres_url, statement):
    """The check above fails for the forms the model run no longer uses."""
    engine = db.connect(postgres_url)
    try:
        costs = []
        for n in SIZES:
            with engine.begin() as conn:
                _fill(conn, n)
                costs.append(_cost(conn, statement))
                conn.rollback()
    finally:
        engine.dispose()
    assert costs[1] > 2 * (SIZES[1] / SIZES[0]) * costs[0], costs


# ---- SQLite: no statistics on a warehouse (nothing runs ANALYZE), so its planner picks the
# loop order from the statement's shape. sql/model_persons runs once per model run for
# the persons in model_dirty (10,000 of 800,000 after 1% new records at 1,000,000), and
# sql/model for the rows written since the last run (model_pending) and those model_refs
# lists: a statement there that scans a warehouse table costs the whole table every run,
# with nothing new too (beside 337,000 leads, 589,000 touchpoints and 202,000 orders:
# 7.4-8.1 s before sql/model read only pending rows).

def _scanned_tables(conn, statement: str, tables: set[str]) -> list[str]:
    """The warehouse tables (by name or by the alias the statement gives them) that
    SQLite's plan for ``statement`` reads whole."""
    aliases = {alias.lower(): table.lower() for table, alias in
               re.findall(r"(?=\b(\w+)\s+(?:AS\s+)?(\w+)\b)", statement, flags=re.IGNORECASE)
               if table.lower() in tables}
    scanned = []
    for *_, detail in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}"):
        if detail.startswith("SCAN "):
            name = detail.split()[1].lower()
            table = name if name in tables else aliases.get(name)
            if table is not None:
                scanned.append(table)
    return scanned


def _sqlite_scratch(tmp_path, sqlite_template):
    path = tmp_path / "plans.db"
    shutil.copy(sqlite_template, path)
    engine = db.connect(f"sqlite:///{path}")
    with engine.connect() as conn:
        tables = {name.lower() for name, in conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
    return engine, tables


def test_model_statements_read_pending_rows_and_persons_through_indexes_on_sqlite(tmp_path, sqlite_template):
    engine, tables = _sqlite_scratch(tmp_path, sqlite_template)
    try:
        with engine.begin() as conn:
            prepare_scratch(conn)
            scans = {f"{folder}/{path.name}: " + " ".join(statement.split())[:120]:
                     _scanned_tables(conn, statement, tables)
                     for folder in ("model", "model_persons")
                     for path in sorted((SQL_DIR / folder).glob("*.sql"))
                     for statement in _statements(path.read_text())}
    finally:
        engine.dispose()
    assert scans and not {k: v for k, v in scans.items() if v}, scans


def test_the_sqlite_scan_check_tells_a_scan(tmp_path, sqlite_template):
    """The lifecycle statement as it was: joined to model_dirty only through its FROM
    subquery, SQLite scanned every person and looked each up in model_dirty."""
    engine, tables = _sqlite_scratch(tmp_path, sqlite_template)
    statement = ("UPDATE person SET lifecycle_stage = s.stage FROM (SELECT d.person_id, 'lead' AS stage "
                 "FROM model_dirty d) s WHERE person.person_id = s.person_id "
                 "AND person.lifecycle_stage IS DISTINCT FROM s.stage")
    try:
        with engine.begin() as conn:
            prepare_scratch(conn)
            assert _scanned_tables(conn, statement, tables) == ["person"]
    finally:
        engine.dispose()


def _per_row_reads(conn, statement: str, tables: set[str]) -> list[str]:
    """What SQLite's plan reads inside a correlated subquery (once per outer row) by a scan
    of a warehouse table, or by a look-up on the first column of a key only (all of a
    source's or a platform's rows)."""
    plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}").all()
    parent = {row[0]: row[1] for row in plan}
    detail = {row[0]: row[3] for row in plan}

    def per_row(node: int) -> bool:
        while node in parent:
            node = parent[node]
            if detail.get(node, "").startswith("CORRELATED"):
                return True
        return False

    aliases = {alias.lower(): table.lower() for table, alias in
               re.findall(r"(?=\b(\w+)\s+(?:AS\s+)?(\w+)\b)", statement, flags=re.IGNORECASE)
               if table.lower() in tables}
    found = []
    for node, *_, text in plan:
        if not per_row(node):
            continue
        name = text.split()[1].lower() if len(text.split()) > 1 else ""
        table = name if name in tables else aliases.get(name)
        if table and (text.startswith("SCAN ") or text.endswith(("(source=?)", "(platform=?)"))):
            found.append(text)
    return found


def test_per_row_subqueries_of_the_model_look_rows_up_on_sqlite(tmp_path, sqlite_template):
    """Every model run executes sql/model*: a subquery that reads a table whole once per
    lead, order, touchpoint or support case grows with the product of two tables (support
    threads: 263.6 s for 50,000 messages in 10,000 cases before migration 0030; ad clicks
    before 0029: a run beside 337,000 leads did not finish in ten minutes). It also checks
    the index on campaign's lower(name) (0032), which test_schema's comparison of
    migrations and models skips on SQLite (it cannot reflect an expression index)."""
    engine, tables = _sqlite_scratch(tmp_path, sqlite_template)
    found = {}
    try:
        with engine.begin() as conn:  # the check tells the form before migration 0030 (no index on a thread's case)
            index = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = "
                                         "'ix_email_message_source_case_id'").scalar_one()
            conn.exec_driver_sql("DROP INDEX ix_email_message_source_case_id")
            support = _statements((SQL_DIR / "model" / "05_mail_service_cases.sql").read_text())[0]
            assert len(_per_row_reads(conn, support, tables)) >= 2  # a scan per case for each subquery
            conn.exec_driver_sql(index)
        with engine.begin() as conn:
            prepare_scratch(conn)
            conn.exec_driver_sql(MODEL_IDENTITY_DDL)
            for folder in sorted(p.name for p in SQL_DIR.iterdir() if p.is_dir() and p.name.startswith("model")):
                for path in sorted((SQL_DIR / folder).glob("*.sql")):
                    for k, statement in enumerate(_statements(path.read_text())):
                        reads = _per_row_reads(conn, statement, tables)
                        if reads:
                            found[f"{folder}/{path.name} #{k}"] = reads
    finally:
        engine.dispose()
    assert not found, found
