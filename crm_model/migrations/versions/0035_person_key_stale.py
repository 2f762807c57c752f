"""person_key: no index on person_id for the keys a run from scratch stored (>= 0); a
person whose records changed since is listed in person_key_stale and lookups skip those
keys. A run from scratch at 1,000,000 records no longer builds an index of 7 million
entries. The table starts empty: every key stored so far is still its person's.

Revision ID: 0035
Revises: 0034
"""
import sqlalchemy as sa
from alembic import op

revision = "0035"
down_revision = "0034"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "person_key_stale",
        sa.Column("person_id", sa.Integer(), nullable=False,
                  comment="The resolved person (person.person_id); filled by identity resolution."),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_person_key_stale")),
    )
    op.drop_index("ix_person_key_person_id", table_name="person_key")


def downgrade() -> None:
    # the keys lookups skipped go, so that every key left is its person's again
    op.execute("DELETE FROM person_key WHERE block_key >= 0 AND person_id IN (SELECT person_id FROM person_key_stale)")
    op.create_index("ix_person_key_person_id", "person_key", ["person_id"], sqlite_where=sa.text("block_key >= 0"),
                    postgresql_where=sa.text("block_key >= 0"))
    op.drop_table("person_key_stale")
