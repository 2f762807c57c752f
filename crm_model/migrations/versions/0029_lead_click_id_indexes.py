"""lead: indexes on gclid and fbclid, so an ad click finds the lead carrying its click id
(sql/model/15_attribution.sql) by a look-up instead of a scan of every lead per click

Revision ID: 0029
Revises: 0028
"""
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_lead_gclid", "lead", ["gclid"])
    op.create_index("ix_lead_fbclid", "lead", ["fbclid"])


def downgrade() -> None:
    op.drop_index("ix_lead_fbclid", table_name="lead")
    op.drop_index("ix_lead_gclid", table_name="lead")
