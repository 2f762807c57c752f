"""Reports: product unit cost (gross margin), report_run files, indexes for period scans.

Revision ID: 0023
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import crm_model.types

revision = "0023"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("product") as batch_op:
        batch_op.add_column(sa.Column(
            "unit_cost", crm_model.types.Money, nullable=True,
            comment="What one unit costs the business (CSV cost column, a shop's unit cost); gives gross margin."))
    with op.batch_alter_table("report_run") as batch_op:
        batch_op.add_column(sa.Column(
            "files", sa.JSON(), nullable=True,
            comment="Files the run wrote or attached: HTML, text, PNG charts, CSVs (JSON list)."))
        batch_op.add_column(sa.Column(
            "period_label", sa.String(length=64), nullable=True,
            comment="The period as asked for (7d, month, 2026-01-01..2026-01-31)."))
    op.create_index("ix_ad_stat_daily_date", "ad_stat_daily", ["date"])
    op.create_index("ix_lead_submitted_at", "lead", ["submitted_at"])


def downgrade() -> None:
    op.drop_index("ix_lead_submitted_at", table_name="lead")
    op.drop_index("ix_ad_stat_daily_date", table_name="ad_stat_daily")
    with op.batch_alter_table("report_run") as batch_op:
        batch_op.drop_column("period_label")
        batch_op.drop_column("files")
    with op.batch_alter_table("product") as batch_op:
        batch_op.drop_column("unit_cost")
