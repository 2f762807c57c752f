"""A read-only PostgreSQL role for analysts (`crmhub grant-analyst ROLE`).

Read-only is enforced by privileges, not by a session setting an analyst can change:
the role gets USAGE on the warehouse schema and SELECT on its tables and views (and,
through default privileges, on tables and views created later by the warehouse owner),
nothing else. `SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE` therefore lifts
nothing: there is no INSERT, UPDATE, DELETE, TRUNCATE or CREATE to lift it to.

Raw payloads (`raw_record`, `rejected_record`: whole API responses, which may hold
personal data the unified tables leave out) are withheld unless ``with_raw`` is given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, text

from crmhub.errors import CrmhubError, WarehouseError

# Tables holding whole source payloads: not for analysts unless asked.
RAW_TABLES = ("raw_record", "rejected_record")
ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass
class Grant:
    role: str
    created: bool
    schema: str
    tables: list[str] = field(default_factory=list)
    withheld: list[str] = field(default_factory=list)


def grant_analyst(engine: Engine, role: str, *, with_raw: bool = False, login: bool = True) -> Grant:
    """Create ``role`` if missing and make it a read-only reader of the warehouse."""
    if engine.dialect.name != "postgresql":
        raise WarehouseError("grant-analyst needs a PostgreSQL warehouse: a SQLite file has no roles "
                             "(share a copy of the file, or open it read-only: sqlite3 'file:crm.db?mode=ro')")
    if not ROLE_NAME.match(role):
        raise CrmhubError(f"role name {role!r}: use lower-case letters, digits and _ (at most 63)")
    with engine.begin() as conn:
        return _grant(conn, role, with_raw=with_raw, login=login)


def _grant(conn: Connection, role: str, *, with_raw: bool, login: bool) -> Grant:
    q = conn.dialect.identifier_preparer.quote
    schema = conn.execute(text("SELECT current_schema()")).scalar_one()
    owner = conn.execute(text("SELECT current_user")).scalar_one()
    exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first()
    if exists is None:
        conn.exec_driver_sql(f"CREATE ROLE {q(role)} {'LOGIN' if login else 'NOLOGIN'}")
    else:
        superuser = conn.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar()
        if superuser:
            raise CrmhubError(f"role {role!r} is a superuser: it can write whatever it is granted; "
                              "choose a role that is not")
    relations = [name for (name,) in conn.execute(text(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = :s AND c.relkind IN ('r', 'v', 'm', 'p') ORDER BY c.relname"), {"s": schema})]
    withheld = [] if with_raw else [t for t in RAW_TABLES if t in relations]
    readable = [t for t in relations if t not in withheld]

    # Start from nothing, so a second run (e.g. without --with-raw) takes back what it no longer grants.
    conn.exec_driver_sql(f"REVOKE ALL ON ALL TABLES IN SCHEMA {q(schema)} FROM {q(role)}")
    conn.exec_driver_sql(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {q(schema)} FROM {q(role)}")
    conn.exec_driver_sql(f"REVOKE CREATE ON SCHEMA {q(schema)} FROM {q(role)}")
    conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA {q(schema)} TO {q(role)}")
    for name in readable:
        conn.exec_driver_sql(f"GRANT SELECT ON {q(schema)}.{q(name)} TO {q(role)}")
    # Tables and views the warehouse owner creates later (new migrations, new views).
    conn.exec_driver_sql(f"ALTER DEFAULT PRIVILEGES FOR ROLE {q(owner)} IN SCHEMA {q(schema)} "
                         f"GRANT SELECT ON TABLES TO {q(role)}")
    # A second belt: sessions start read-only (an analyst may lift this, privileges still hold).
    conn.exec_driver_sql(f"ALTER ROLE {q(role)} SET default_transaction_read_only = on")
    can_create = conn.execute(text("SELECT has_schema_privilege(:r, :s, 'CREATE')"),
                              {"r": role, "s": schema}).scalar()
    if can_create:  # PostgreSQL < 15 gives PUBLIC CREATE on schema public
        raise CrmhubError(f"role {role!r} can still create tables in schema {schema!r} through PUBLIC; run "
                          f"REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC (the default since PostgreSQL 15) and retry")
    return Grant(role=role, created=exists is None, schema=schema, tables=readable, withheld=withheld)
