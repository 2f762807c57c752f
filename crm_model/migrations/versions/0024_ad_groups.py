"""ad groups: the ad_group table; ad_group_id on ad, touchpoint, lead, customer_order and in
ad_stat_daily's primary key (one ad serving in two Google Ads ad groups on one day is two rows)

Existing ad_stat_daily rows get the ad group their stored raw record names (google_ads
``ad_stats``: adGroup.id, meta_ads ``insights``: adset_id), else ''. Run `crmhub model` after
upgrading: the google_ads and meta_ads mappings changed (version 2) and re-map the stored
records into ad groups, restoring the rows of an ad's other ad groups that the old key lost.

Revision ID: 0024
Revises: 0022
"""
import datetime as dt
import json

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0022"
branch_labels = None
depends_on = None

PK = ("platform", "campaign_id", "ad_group_id", "ad_id", "date")
OLD_PK = ("platform", "campaign_id", "ad_id", "date")
ATTRIBUTED_COMMENT = "Attributed ad group (ad_group.ad_group_id; Meta: ad set), where known."
STAT_COMMENT = "ad_group.ad_group_id ('' where the platform or the row has no ad group level)."
AD_COMMENT = ("ad_group.ad_group_id it is in; Google Ads: the last read of several ad groups "
              "one ad serves in (ad_stat_daily has each).")


def upgrade() -> None:
    op.create_table(
        "ad_group",
        sa.Column("platform", sa.String(length=32), nullable=False, comment="Ad platform."),
        sa.Column("ad_group_id", sa.String(length=255), nullable=False,
                  comment="Ad group id on the platform (Meta: the ad set id)."),
        sa.Column("campaign_id", sa.String(length=255), nullable=True, comment="campaign.campaign_id it belongs to."),
        sa.Column("source", sa.String(length=64), nullable=True,
                  comment="Source name from crmhub.yml (e.g. web_leads, shop)."),
        sa.Column("name", sa.String(length=255), nullable=True, comment="Ad group (ad set) name."),
        sa.Column("status", sa.String(length=32), nullable=True, comment="Status on the platform."),
        sa.PrimaryKeyConstraint("platform", "ad_group_id", name=op.f("pk_ad_group")),
    )
    with op.batch_alter_table("ad", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ad_group_id", sa.String(length=255), nullable=True, comment=AD_COMMENT))
    with op.batch_alter_table("touchpoint", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ad_group_id", sa.String(length=255), nullable=True,
                                      comment="Ad group (Meta: ad set) id on the platform."))
    for table in ("lead", "customer_order"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("ad_group_id", sa.String(length=255), nullable=True,
                                          comment=ATTRIBUTED_COMMENT))
    with op.batch_alter_table("ad_stat_daily", schema=None, recreate="always") as batch_op:
        batch_op.add_column(sa.Column("ad_group_id", sa.String(length=255), nullable=False, server_default="",
                                      comment=STAT_COMMENT))
        batch_op.drop_constraint("pk_ad_stat_daily", type_="primary")
        batch_op.create_primary_key("pk_ad_stat_daily", list(PK))
    _fill_stat_ad_groups(op.get_bind())


def _fill_stat_ad_groups(conn: sa.Connection) -> None:
    """Give each existing ad_stat_daily row the ad group its stored raw record names."""
    found: dict[tuple, str] = {}
    raw = conn.execute(sa.text("SELECT source, stream, payload FROM raw_record "
                               "WHERE stream IN ('ad_stats', 'insights')")).yield_per(5000)
    for source, stream, payload in raw:
        record = json.loads(payload) if isinstance(payload, str) else payload
        if not isinstance(record, dict):
            continue
        if stream == "ad_stats":  # google_ads: GAQL REST rows
            platform = "google_ads"
            group = _at(record, "adGroup", "id")
            campaign, ad, day = _at(record, "campaign", "id"), _at(record, "adGroupAd", "ad", "id"), \
                _at(record, "segments", "date")
        else:  # meta_ads insights at ad level
            platform = "meta_ads"
            group, campaign, ad, day = (_at(record, name) for name in ("adset_id", "campaign_id", "ad_id",
                                                                         "date_start"))
        if group and campaign and ad and day:
            found[(platform, source, campaign, ad, day[:10])] = group
    update = sa.text("UPDATE ad_stat_daily SET ad_group_id = :g WHERE platform = :p AND source = :s "
                     "AND campaign_id = :c AND ad_id = :a AND date = :d AND ad_group_id = ''")
    params = [{"g": g, "p": p, "s": s, "c": c, "a": a, "d": _day(d)} for (p, s, c, a, d), g in found.items()]
    for start in range(0, len(params), 5000):
        conn.execute(update, params[start:start + 5000])


def _at(record: dict, *path: str) -> str | None:
    value = record
    for name in path:
        value = value.get(name) if isinstance(value, dict) else None
    return str(value) if value not in (None, "") else None


def _day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def downgrade() -> None:
    # rows of one ad in several ad groups on one day fold into one (the old key keeps the largest ad group id)
    op.execute("DELETE FROM ad_stat_daily WHERE EXISTS (SELECT 1 FROM ad_stat_daily o "
               "WHERE o.platform = ad_stat_daily.platform AND o.campaign_id = ad_stat_daily.campaign_id "
               "AND o.ad_id = ad_stat_daily.ad_id AND o.date = ad_stat_daily.date "
               "AND o.ad_group_id > ad_stat_daily.ad_group_id)")
    with op.batch_alter_table("ad_stat_daily", schema=None, recreate="always") as batch_op:
        batch_op.drop_constraint("pk_ad_stat_daily", type_="primary")
        batch_op.create_primary_key("pk_ad_stat_daily", list(OLD_PK))
        batch_op.drop_column("ad_group_id")
    for table in ("customer_order", "lead", "touchpoint", "ad"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("ad_group_id")
    op.drop_table("ad_group")
