"""Reports: the cost of an order line as the shop recorded it at the sale (gross margin), and
PostgreSQL statistics on how many ads ad_stat_daily holds.

PostgreSQL estimates the number of (platform, campaign_id, ad_id) groups by multiplying the
columns' distinct counts (100 campaigns x 10,000 ads), so over a 10M-row table it planned a
sort of a period's 600,000 rows spilled to disk for the per-ad report instead of a hash
aggregate over its 10,000 ads (5.9 s against 1.5 s). Extended ``ndistinct`` statistics tell
it the real count; ANALYZE fills them (autovacuum keeps them current).

Revision ID: 0025
Revises: 0022
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import crm_model.types

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("order_line") as batch_op:
        batch_op.add_column(sa.Column(
            "cost", crm_model.types.Money, nullable=True,
            comment="What the line's units cost the business, as the shop recorded it at the sale (WooCommerce's "
                    "cost of goods sold); where unknown, gross margin uses quantity x product.unit_cost."))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE STATISTICS IF NOT EXISTS st_ad_stat_daily_ads (ndistinct) "
                   "ON platform, campaign_id, ad_id FROM ad_stat_daily")
        op.execute("ANALYZE ad_stat_daily")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP STATISTICS IF EXISTS st_ad_stat_daily_ads")
    with op.batch_alter_table("order_line") as batch_op:
        batch_op.drop_column("cost")
