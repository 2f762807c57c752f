"""email_message: an index on (source, case_id), so the model's support threads
(sql/model/05_mail_service_cases.sql) read each case's messages by a look-up instead of
a scan of the mailbox per case

Revision ID: 0030
Revises: 0029
"""
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_email_message_source_case_id", "email_message", ["source", "case_id"])


def downgrade() -> None:
    op.drop_index("ix_email_message_source_case_id", table_name="email_message")
