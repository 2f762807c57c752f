"""model_pending on the tables `crmhub model` derives from (lead, touchpoint, customer_order,
email_message, web_traffic_daily, campaign, ad, ad_stat_daily, product): every write sets it,
the model run reads only the rows it marks and clears it, so a run with nothing new no
longer recomputes the attribution, affiliate site and touch channels of every lead, order
and person. Rows there before this revision are pending (the next model run reads them
all once). And an index on (source, person_ref) of every table linked to persons but
lead, which had one: linking person ids read those tables whole on every model run.

Revision ID: 0033
Revises: 0032
"""
import sqlalchemy as sa
from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None

TABLES = ("lead", "touchpoint", "customer_order", "email_message", "web_traffic_daily", "campaign", "ad",
          "ad_stat_daily", "product")
COMMENT = ("True when the row was written (new or changed) since `crmhub model` last read it; "
           "every write sets it (its default), the model run clears it.")


# sql/model/10_link_person_ids.sql looks records up by the source_person row they name
# (lead has had this index since revision 0027)
LINKED = ("touchpoint", "customer_order", "service_case", "service_contract", "feedback", "email_message")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("model_pending", sa.Boolean(), server_default=sa.true(), nullable=True,
                                       comment=COMMENT))
        op.create_index(f"ix_{table}_model_pending", table, ["model_pending"])
    for table in LINKED:
        op.create_index(f"ix_{table}_source_person_ref", table, ["source", "person_ref"])


def downgrade() -> None:
    for table in LINKED:
        op.drop_index(f"ix_{table}_source_person_ref", table_name=table)
    for table in TABLES:
        op.drop_index(f"ix_{table}_model_pending", table_name=table)
        op.drop_column(table, "model_pending")  # SQLite >= 3.35 drops a column in place
