"""prospect tracking: attribution columns on lead/order, click ids on touchpoints

Revision ID: 0021
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = "0023"
branch_labels = None
depends_on = None

ATTRIBUTED = (
    ('ad_platform', sa.String(length=32), 'Platform of the attributed campaign (campaign.platform).'),
    ('campaign_id', sa.String(length=255), 'Attributed campaign (campaign.campaign_id).'),
    ('ad_id', sa.String(length=255), 'Attributed ad (ad.ad_id), where known.'),
    ('attribution_rule', sa.String(length=32),
     'Rule that attributed it: lead_ad, click_id, utm_campaign_id, utm_campaign_name, person.'),
    ('affiliate_site', sa.String(length=255), 'Affiliate site that referred it (affiliate rules).'),
)


def upgrade() -> None:
    op.create_table('affiliate_rule',
    sa.Column('kind', sa.String(length=16), nullable=False,
              comment='url_param (name=value on a landing page), utm_source or referrer_domain.'),
    sa.Column('value', sa.String(length=320), nullable=False,
              comment='Lower-cased value to match (aff_id=4711, bestdeals, bestdeals.example).'),
    sa.Column('affiliate_site', sa.String(length=255), nullable=False, comment='The affiliate site it names.'),
    sa.PrimaryKeyConstraint('kind', 'value', name=op.f('pk_affiliate_rule'))
    )
    for table in ('lead', 'customer_order'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, type_, comment in ATTRIBUTED:
                batch_op.add_column(sa.Column(name, type_, nullable=True, comment=comment))
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.add_column(sa.Column('first_touch_channel', sa.String(length=32), nullable=True,
                                      comment='Touchpoint channel of the first touch.'))
        batch_op.add_column(sa.Column('last_touch_channel', sa.String(length=32), nullable=True,
                                      comment='Touchpoint channel of the latest touch.'))
    with op.batch_alter_table('touchpoint', schema=None) as batch_op:
        batch_op.add_column(sa.Column('click_id', sa.String(length=255), nullable=True,
                                      comment='Ad click id (gclid, fbclid) of an ad_click.'))
        batch_op.add_column(sa.Column('ad_platform', sa.String(length=32), nullable=True,
                                      comment='Platform of campaign_id/ad_id (campaign.platform).'))
        batch_op.add_column(sa.Column('note', sa.Text(), nullable=True,
                                      comment="Free-text note (e.g. a rep's call notes)."))
        batch_op.alter_column('channel', existing_type=sa.String(length=32), existing_nullable=False,
                              comment='ad_click, email, email_open, email_click, web_visit, form, phone_call, '
                                      'site_visit or meeting.',
                              existing_comment='ad_click, email, email_click, web_visit, form, phone_call or site_visit.')
        batch_op.create_index(batch_op.f('ix_touchpoint_click_id'), ['click_id'], unique=False)
    with op.batch_alter_table('ad_stat_daily', schema=None) as batch_op:
        batch_op.alter_column('cost', existing_type=sa.Numeric(precision=18, scale=4),
                              type_=sa.Numeric(precision=18, scale=6), existing_nullable=True,
                              comment="Spend (6 decimals: Google's cost_micros / 10^6 exactly).",
                              existing_comment='Spend.')
    with op.batch_alter_table('web_traffic_daily', schema=None) as batch_op:
        batch_op.add_column(sa.Column('affiliate_site', sa.String(length=255), nullable=True,
                                      comment='Affiliate site the source names (affiliate rules).'))


def downgrade() -> None:
    op.drop_table('affiliate_rule')
    with op.batch_alter_table('web_traffic_daily', schema=None) as batch_op:
        batch_op.drop_column('affiliate_site')
    with op.batch_alter_table('ad_stat_daily', schema=None) as batch_op:
        batch_op.alter_column('cost', existing_type=sa.Numeric(precision=18, scale=6),
                              type_=sa.Numeric(precision=18, scale=4), existing_nullable=True,
                              comment='Spend.', existing_comment="Spend (6 decimals: Google's cost_micros / 10^6 exactly).")
    with op.batch_alter_table('touchpoint', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_touchpoint_click_id'))
        batch_op.alter_column('channel', existing_type=sa.String(length=32), existing_nullable=False,
                              comment='ad_click, email, email_click, web_visit, form, phone_call or site_visit.')
        batch_op.drop_column('note')
        batch_op.drop_column('ad_platform')
        batch_op.drop_column('click_id')
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.drop_column('last_touch_channel')
        batch_op.drop_column('first_touch_channel')
    for table in ('customer_order', 'lead'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, _, _ in reversed(ATTRIBUTED):
                batch_op.drop_column(name)
