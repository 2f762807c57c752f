"""Alembic environment: runs on the connection crm_model.db.migrate() hands over."""

from alembic import context

from crm_model.schema import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `crmhub init` (crm_model.db.migrate)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copy-and-move
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
