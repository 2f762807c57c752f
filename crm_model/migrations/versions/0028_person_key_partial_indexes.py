"""person_key: one partial index on person_id per form of a key (as stored by a run from
scratch, >= 0; as a delta of an incremental run, < 0), so incremental runs write to the
small delta index instead of splitting pages of the full one

Revision ID: 0028
Revises: 0027
"""
import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def _partial(condition: str) -> dict:
    return {"sqlite_where": sa.text(condition), "postgresql_where": sa.text(condition)}


def upgrade() -> None:
    op.drop_index("ix_person_key_person_id", table_name="person_key")
    op.create_index("ix_person_key_person_id", "person_key", ["person_id"], **_partial("block_key >= 0"))
    op.create_index("ix_person_key_delta_person_id", "person_key", ["person_id"], **_partial("block_key < 0"))


def downgrade() -> None:
    op.drop_index("ix_person_key_delta_person_id", table_name="person_key")
    op.drop_index("ix_person_key_person_id", table_name="person_key")
    op.create_index("ix_person_key_person_id", "person_key", ["person_id"])
