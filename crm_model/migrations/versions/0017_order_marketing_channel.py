"""customer_order.marketing_channel: attribution placeholders as a channel, not a utm_source

Revision ID: 0017
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customer_order") as batch:
        batch.add_column(sa.Column(
            "marketing_channel", sa.String(length=32), nullable=True,
            comment="How that visit came without a campaign: direct, organic, referral, utm, admin, ..."))


def downgrade() -> None:
    with op.batch_alter_table("customer_order") as batch:
        batch.drop_column("marketing_channel")
