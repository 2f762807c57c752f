"""indexes for attribution's per-lead and per-order look-ups (sql/model/15_attribution.sql,
every model run): campaign by its id alone, a campaign's ads, an ad's daily stats; each
was read by a scan (of every campaign, of a platform's ads or daily stats) per lead

Revision ID: 0031
Revises: 0030
"""
from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_campaign_campaign_id", "campaign", ["campaign_id"])
    # the ad id and the ad group in the indexes too: SQLite, without statistics, prefers a
    # key giving the rows in the order asked for, or holding every column read
    op.create_index("ix_ad_platform_campaign_id_ad_id", "ad", ["platform", "campaign_id", "ad_id"])
    op.create_index("ix_ad_stat_daily_platform_ad_id_ad_group_id", "ad_stat_daily", ["platform", "ad_id", "ad_group_id"])


def downgrade() -> None:
    op.drop_index("ix_ad_stat_daily_platform_ad_id_ad_group_id", table_name="ad_stat_daily")
    op.drop_index("ix_ad_platform_campaign_id_ad_id", table_name="ad")
    op.drop_index("ix_campaign_campaign_id", table_name="campaign")
