"""`crmhub grant-analyst`: a real login as the analyst role on PostgreSQL."""

from __future__ import annotations

import uuid

import psycopg
import pytest
import yaml
from sqlalchemy.engine import make_url

from crm_model import db
from crmhub.cli import main


@pytest.fixture
def pg_config(tmp_path, postgres_url):
    path = tmp_path / "crmhub.yml"
    path.write_text(yaml.safe_dump({"warehouse": {"url": postgres_url}, "sources": {}}))
    return path


def _login(postgres_url: str, role: str) -> psycopg.Connection:
    url = make_url(postgres_url)
    return psycopg.connect(host=url.host, port=url.port or 5432, dbname=url.database, user=role, autocommit=True)


@pytest.fixture
def role(postgres_url):
    name = f"analyst_{uuid.uuid4().hex[:8]}"
    yield name
    engine = db.connect(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP OWNED BY {name}")
        conn.exec_driver_sql(f"DROP ROLE IF EXISTS {name}")
    engine.dispose()


def _seed(postgres_url: str) -> None:
    engine = db.connect(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE raw_record, product RESTART IDENTITY")
        conn.exec_driver_sql(
            "INSERT INTO raw_record (source, stream, record_key, payload, hash, extracted_at)"
            " VALUES ('s', 'x', 'k1', '{\"secret_note\": \"raw\"}', 'h', now())")
        conn.exec_driver_sql("INSERT INTO product (source, external_id, title, price, currency)"
                             " VALUES ('s', 'p1', 'Kettle', 19.90, 'EUR')")
    engine.dispose()


def test_analyst_reads_tables_and_views_but_cannot_write(pg_config, postgres_url, role, capsys):
    _seed(postgres_url)
    assert main(["grant-analyst", role, "--config", str(pg_config)]) == 0
    out = capsys.readouterr().out
    assert f"role {role} created" in out and "raw_record" in out

    with _login(postgres_url, role) as conn:
        assert conn.execute("SELECT title FROM product").fetchall() == [("Kettle",)]
        conn.execute("SELECT count(*) FROM v_customer_sales").fetchone()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT payload FROM raw_record")
        # lifting the session's read-only default lifts nothing: privileges forbid writes
        conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE")
        for statement in ("INSERT INTO product (source, external_id, title) VALUES ('s', 'p2', 'x')",
                          "UPDATE product SET title = 'y'",
                          "DELETE FROM product",
                          "TRUNCATE person",
                          "CREATE TABLE mine (x int)",
                          "CREATE VIEW peek AS SELECT payload FROM raw_record",
                          "SELECT setval('person_person_id_seq', 99)"):
            with pytest.raises((psycopg.errors.InsufficientPrivilege, psycopg.errors.ReadOnlySqlTransaction)):
                conn.execute(statement)
            conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE")


def test_future_tables_are_readable_and_with_raw_is_explicit(pg_config, postgres_url, role, capsys):
    _seed(postgres_url)
    assert main(["grant-analyst", role, "--config", str(pg_config)]) == 0
    engine = db.connect(postgres_url)
    with engine.begin() as conn:  # a later migration adds a table
        conn.exec_driver_sql("CREATE TABLE later_mart (x int)")
        conn.exec_driver_sql("INSERT INTO later_mart VALUES (1)")
    try:
        with _login(postgres_url, role) as conn:
            assert conn.execute("SELECT x FROM later_mart").fetchall() == [(1,)]
        assert main(["grant-analyst", role, "--with-raw", "--config", str(pg_config)]) == 0
        assert "updated" in capsys.readouterr().out
        with _login(postgres_url, role) as conn:
            assert conn.execute("SELECT payload->>'secret_note' FROM raw_record").fetchall() == [("raw",)]
        assert main(["grant-analyst", role, "--config", str(pg_config)]) == 0  # taken back
        with _login(postgres_url, role) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT payload FROM raw_record")
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE later_mart")
        engine.dispose()


def test_no_analyst_view_reads_raw_payloads():
    for name, statement in db.VIEWS.items():
        lowered = statement.lower()
        assert "raw_record" not in lowered and "rejected_record" not in lowered, name


def test_sqlite_and_bad_names_are_clear_errors(tmp_path, capsys):
    path = tmp_path / "crmhub.yml"
    path.write_text(yaml.safe_dump({"warehouse": {"url": f"sqlite:///{tmp_path}/w.db"}}))
    assert main(["init", "--config", str(path)]) == 0
    assert main(["grant-analyst", "analyst", "--config", str(path)]) == 1
    assert "needs a PostgreSQL warehouse" in capsys.readouterr().err
