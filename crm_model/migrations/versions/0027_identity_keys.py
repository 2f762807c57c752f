"""person_key: blocking keys of each person's records, and lead (source, person_ref) indexed,
for incremental identity resolution

Revision ID: 0027
Revises: 0026
"""
import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "person_key",
        sa.Column("block_key", sa.BigInteger(), nullable=False,
                  comment="64-bit hash of one blocking key of a record (e.g. last name + birth date); "
                          "derived from personal data, erased with the person."),
        sa.Column("person_id", sa.Integer(), nullable=False,
                  comment="The resolved person (person.person_id); filled by identity resolution."),
        sa.PrimaryKeyConstraint("block_key", "person_id", name=op.f("pk_person_key")),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("person_key", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_person_key_person_id"), ["person_id"], unique=False)
    # the next `crmhub model` fills the keys in a run from scratch (the stored model has no "keys" mark)
    op.create_index("ix_lead_source_person_ref", "lead", ["source", "person_ref"])


def downgrade() -> None:
    op.drop_index("ix_lead_source_person_ref", table_name="lead")
    with op.batch_alter_table("person_key", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_person_key_person_id"))
    op.drop_table("person_key")
