"""attributes (source columns with no warehouse field) on the records a csv file can load

Revision ID: 0026
Revises: 0022
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TABLES = ("touchpoint", "product", "customer_order", "order_line", "service_case", "service_contract", "feedback")
COMMENT = "Source columns with no warehouse field, as JSON {column: value} (kept, never dropped)."


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("attributes", DOCUMENT, nullable=True, comment=COMMENT))


def downgrade() -> None:
    for table in reversed(TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("attributes")
