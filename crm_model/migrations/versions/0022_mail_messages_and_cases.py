"""mail: email_message folder, bulk flag and support-case signals; service_case.product_source

Revision ID: 0022
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

EMAIL_COLUMNS = (
    ("folder", sa.String(length=255), "Mailbox folder or Gmail label it was read from."),
    ("bulk", sa.Boolean(), "Bulk or automatic mail (list, newsletter, auto-reply): no persons."),
    ("case_id", sa.String(length=255),
     "service_case.external_id (same source) of the support thread it belongs to."),
    ("tracking_number", sa.String(length=255), "Case tracking number found in its subject."),
    ("complaint", sa.Boolean(), "Support mail: complaint keywords matched."),
    ("closes_case", sa.Boolean(), "Support mail: a closing phrase or label matched."),
    ("body_excerpt", sa.Text(),
     "Support mail only: the message's own words (quotes left out), capped at 4,000 characters."),
)


def upgrade() -> None:
    with op.batch_alter_table("email_message", schema=None) as batch_op:
        for name, type_, comment in EMAIL_COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True, comment=comment))
    with op.batch_alter_table("service_case", schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            "product_source", sa.String(length=64), nullable=True,
            comment="Source of that product when it is another source's (mail cases); NULL: this source."))


def downgrade() -> None:
    with op.batch_alter_table("service_case", schema=None) as batch_op:
        batch_op.drop_column("product_source")
    with op.batch_alter_table("email_message", schema=None) as batch_op:
        for name, _, _ in reversed(EMAIL_COLUMNS):
            batch_op.drop_column(name)
