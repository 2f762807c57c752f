"""field warnings: bad optional details kept beside records that loaded without them

Revision ID: 0016
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

import crm_model.types

revision = "0016"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "field_warning",
        sa.Column("source", sa.String(length=64), nullable=False,
                  comment="Source name from crmhub.yml (e.g. web_leads, shop)."),
        sa.Column("stream", sa.String(length=64), nullable=False, comment="Stream name."),
        sa.Column("record_key", sa.String(length=512), nullable=False,
                  comment="Key of the record that loaded without the field."),
        sa.Column("field", sa.String(length=255), nullable=False,
                  comment="The field (column or question) left out."),
        sa.Column("raw_value", sa.Text(), nullable=True,
                  comment="The value as the source sent it (at most 1,000 characters)."),
        sa.Column("reason", sa.Text(), nullable=False, comment="What is wrong with it."),
        sa.Column("sync_run_id", sa.Integer(), nullable=True, comment="Run that loaded the record."),
        sa.Column("warned_at", crm_model.types.UtcDateTime(timezone=True), nullable=False, comment="When."),
        sa.PrimaryKeyConstraint("source", "stream", "record_key", "field", name=op.f("pk_field_warning")),
    )
    with op.batch_alter_table("sync_run", schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            "records_warned", sa.Integer(), server_default="0", nullable=False,
            comment="Records loaded with a field warning (a bad optional detail left out; see field_warning).",
        ))


def downgrade() -> None:
    with op.batch_alter_table("sync_run", schema=None) as batch_op:
        batch_op.drop_column("records_warned")
    op.drop_table("field_warning")
