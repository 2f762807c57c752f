"""campaign: an index on lower(name), so attribution (sql/model/15_attribution.sql) finds
the campaign a lead's or order's utm_campaign names, compared case-insensitively, by a
look-up instead of a scan of every campaign per lead

Revision ID: 0032
Revises: 0031
"""
import sqlalchemy as sa
from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_campaign_lower_name", "campaign", [sa.text("lower(name)")])


def downgrade() -> None:
    op.drop_index("ix_campaign_lower_name", table_name="campaign")
