"""person_key_stale.person_id: a plain integer on PostgreSQL. Created by 0035 as the
table's only integer key, PostgreSQL made it a serial column (a sequence and a default
drawing ids from it), where it names persons of ``person``: the default and its
sequence go. SQLite keeps no sequence for it (its integer key is the table's rowid).

Revision ID: 0036
Revises: 0035
"""
from alembic import op

revision = "0036"
down_revision = "0035"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE person_key_stale ALTER COLUMN person_id DROP DEFAULT")
        op.execute("DROP SEQUENCE IF EXISTS person_key_stale_person_id_seq")


def downgrade() -> None:
    pass  # a default that drew person ids of no person: not put back
