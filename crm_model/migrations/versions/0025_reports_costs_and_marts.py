"""Reports: the cost of an order line as the shop recorded it at the sale (gross margin).

Revision ID: 0025
Revises: 0022
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import crm_model.types

revision = "0025"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("order_line") as batch_op:
        batch_op.add_column(sa.Column(
            "cost", crm_model.types.Money, nullable=True,
            comment="What the line's units cost the business, as the shop recorded it at the sale (WooCommerce's "
                    "cost of goods sold); where unknown, gross margin uses quantity x product.unit_cost."))


def downgrade() -> None:
    with op.batch_alter_table("order_line") as batch_op:
        batch_op.drop_column("cost")
