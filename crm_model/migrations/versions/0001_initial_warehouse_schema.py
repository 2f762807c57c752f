"""initial warehouse schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-23 06:55:57.942050
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import crm_model.types

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ad',
    sa.Column('platform', sa.String(length=32), nullable=False, comment='Ad platform.'),
    sa.Column('ad_id', sa.String(length=255), nullable=False, comment='Ad id on the platform.'),
    sa.Column('campaign_id', sa.String(length=255), nullable=True, comment='campaign.campaign_id it belongs to.'),
    sa.Column('source', sa.String(length=64), nullable=True, comment='Source name from crmhub.yml (e.g. web_leads, shop).'),
    sa.Column('name', sa.String(length=255), nullable=True, comment='Ad name.'),
    sa.Column('status', sa.String(length=32), nullable=True, comment='Status on the platform.'),
    sa.Column('channel', sa.String(length=32), nullable=True, comment='search, display, social, video, ...'),
    sa.PrimaryKeyConstraint('platform', 'ad_id', name=op.f('pk_ad'))
    )
    op.create_table('ad_stat_daily',
    sa.Column('platform', sa.String(length=32), nullable=False, comment='Ad platform.'),
    sa.Column('campaign_id', sa.String(length=255), nullable=False, comment='campaign.campaign_id.'),
    sa.Column('ad_id', sa.String(length=255), nullable=False, comment="ad.ad_id ('' for campaign-level rows)."),
    sa.Column('date', sa.Date(), nullable=False, comment="Day, in the ad account's time zone."),
    sa.Column('source', sa.String(length=64), nullable=True, comment='Source name from crmhub.yml (e.g. web_leads, shop).'),
    sa.Column('impressions', sa.Integer(), nullable=True, comment='Impressions.'),
    sa.Column('clicks', sa.Integer(), nullable=True, comment='Clicks.'),
    sa.Column('cost', sa.Numeric(precision=18, scale=4), nullable=True, comment='Spend.'),
    sa.Column('currency', sa.String(length=3), nullable=True, comment='ISO 4217 currency of cost.'),
    sa.Column('conversions', sa.Numeric(precision=18, scale=4), nullable=True, comment='Conversions (may be fractional).'),
    sa.Column('conversion_value', sa.Numeric(precision=18, scale=4), nullable=True, comment='Value of conversions.'),
    sa.PrimaryKeyConstraint('platform', 'campaign_id', 'ad_id', 'date', name=op.f('pk_ad_stat_daily'))
    )
    op.create_table('campaign',
    sa.Column('platform', sa.String(length=32), nullable=False, comment='Ad platform (google_ads, meta_ads, ...).'),
    sa.Column('campaign_id', sa.String(length=255), nullable=False, comment='Campaign id on the platform.'),
    sa.Column('source', sa.String(length=64), nullable=True, comment='Source name from crmhub.yml (e.g. web_leads, shop).'),
    sa.Column('name', sa.String(length=255), nullable=True, comment='Campaign name.'),
    sa.Column('status', sa.String(length=32), nullable=True, comment='Status on the platform.'),
    sa.Column('channel', sa.String(length=32), nullable=True, comment='search, display, social, video, ...'),
    sa.PrimaryKeyConstraint('platform', 'campaign_id', name=op.f('pk_campaign'))
    )
    op.create_table('customer_order',
    sa.Column('source', sa.String(length=64), nullable=False, comment='Source name from crmhub.yml (e.g. web_leads, shop).'),
    sa.Column('external_id', sa.String(length=255), nullable=False, comment="The record's id in its source."),
    sa.Column('person_id', sa.Integer(), nullable=True, comment='The resolved person (person.person_id); filled by identity resolution.'),
    sa.Column('person_ref', sa.String(length=255), nullable=True, comment='external_id of the source_person row (same source) this record belongs to.'),
    sa.Column('order_number', sa.String(length=64), nullable=True, comment='Order number shown to the customer.'),
    sa.Column('ordered_at', crm_model.types.UtcDateTime(timezone=True), nullable=True, comment='When the order was placed.'),
    sa.Column('updated_at', crm_model.types.UtcDateTime(timezone=True), nullable=True, comment='Last change in the source.'),
    sa.Column('status', sa.String(length=32), nullable=True, comment='Order status (paid, refunded, cancelled, ...).'),
    sa.Column('currency', sa.String(length=3), nullable=True, comment='ISO 4217 currency of all amounts.'),
    sa.Column('subtotal', sa.Numeric(precision=18, scale=4), nullable=True, comment='Sum of lines before discounts and tax.'),
    sa.Column('discount', sa.Numeric(precision=18, scale=4), nullable=True, comment='Total discounts.'),
    sa.Column('tax', sa.Numeric(precision=18, scale=4), nullable=True, comment='Total tax.'),
    sa.Column('total', sa.Numeric(precision=18, scale=4), nullable=True, comment='Amount charged.'),
    sa.Column('refunded', sa.Numeric(precision=18, scale=4), nullable=True, comment='Amount refunded so far.'),
    sa.Column('sales_rep', sa.String(length=255), nullable=True, comment='Sales rep or staff member who took it.'),
    sa.Column('special_instructions', sa.Text(), nullable=True, comment="Customer's note / instructions."),
    sa.Column('channel', sa.String(length=64), nullable=True, comment='Sales channel (web, pos, phone, ...).'),
    sa.Column('utm_source', sa.String(length=255), nullable=True, comment='utm_source of the visit that led to it.'),
    sa.Column('utm_medium', sa.String(length=255), nullable=True, comment='utm_medium.'),
    sa.Column('utm_campaign', sa.String(length=255), nullable=True, comment='utm_campaign.'),
    sa.Column('landing_page', sa.Text(), nullable=True, comment='Landing page of that visit.'),
    sa.Column('referrer', sa.Text(), nullable=True, comment='Referring site of that visit.'),
    sa.Column('tags', sa.JSON(), nullable=True, comment='Tags (JSON list).'),
    sa.PrimaryKeyConstraint('source', 'external_id', name=op.f('pk_customer_order'))
    )
    with op.batch_alter_table('customer_order', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_order_ordered_at'), ['ordered_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_customer_order_person_id'), ['person_id'], unique=False)

    op.create_table('email_message',
    sa.Column('source', sa.String(length=64), nullable=False, comment='Source name from crmhub.yml (e.g. web_leads, shop).'),
    sa.Column('message_id', sa.String(length=998), nullable=False, comment='RFC 5322 Message-ID.'),
    sa.Column('thread_id', sa.String(length=998), nullable=True, comment='Conversation/thread id.'),
    sa.Column('direction', sa.String(length=8), nullable=True, comment='inbound or outbound.'),
    sa.Column('from_address', sa.String(length=320), nullable=True, comment='Sender address.'),
    sa.Column('to_addresses', sa.JSON(), nullable=True, comment='Recipient addresses (JSON list).'),
    sa.Column('cc_addresses', sa.JSON(), nullable=True, comment='Cc addresses (JSON list).'),
    sa.Column('subject', sa.Text(), nullable=True, comment='Subject line.'),
    sa.Column('sent_at', crm_model.types.UtcDateTime(timezone=True), nullable=True, comment='Date header, in UTC.'),
    sa.Column('person_ref', sa.String(length=255), nullable=True, comment='external_id of the source_person row (same source) this record belongs to.'),
    sa.Column('person_id', sa.Integer(), nullable=True, comment='The resolved person (person.person_id); filled by identity resolution.'),
    sa.PrimaryKeyConstraint('source', 'message_id', name=op.f('pk_email_message'))
    )
    with op.batch_alter_table('email_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_email_message_person_id'), ['person_id'], unique=False)

    op.create_table('feedback',
    sa.Column('source', sa.String(length=64), nullable=False, comment='Source name from crmhub.yml (e.g. web_leads, shop).'),
    sa.Column('external_id', sa.String(length=255), nullable=False, comment="The record's id in its source."),
    sa.Column('person_id', sa.Integer(), nullable=True, comment='The resolved person (person.person_id); filled by identity resolution.'),
    sa.Column('person_ref', sa.String(length=255), nullable=True, comment='external_id of the source_person row (same source) this record belongs to.'),
    sa.Column('order_id', sa.String(length=255), nullable=True, comment='customer_order.external_id, if tied to one.'),
    sa.Column('product_id', sa.String(length=255), nullable=True, comment='product.external_id, if about one.'),
    sa.Column('rating', sa.Numeric(precision=18, scale=4), nullable=True, comment='Rating as given (e.g. 1-5).'),
    sa.Column('comment', sa.Text(), nullable=True, comment='Free-text feedback.'),
    sa.Column('received_at', crm_model.types.UtcDateTime(timezone=True), nullable=True, comment='When it was given.'),
    sa.PrimaryKeyConstraint('source', 'external_id', name=op.f('pk_feedback'))
    )
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feedback_person_id'), ['person_id'], unique=False)

    op.create_table('identity',
    sa.Column('kind', sa.String(length=16), nullable=False, comment='email, phone, external_id, click_id or cookie.'),
    sa.Column('value', sa.String(length=320), nullable=False, comment='Normalised value (lower-case email, E.164 phone, ...).'),
    sa.Column('source', sa.String(length=64), nullable=False, comment='Source name from crmhub.yml (e.g. web_leads, shop).'),
    sa.Column('person_id', sa.Integer(), nullable=False, comment='The resolved person (person.person_id); filled by identity resolution.'),
    sa.PrimaryKeyConstraint('kind', 'value', 'source', name=op.f('pk_identity'))
    )
    with op.batch_alter_table('identity', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_person_id'), ['person_id'], unique=False)

    op.create_table('lead',
    sa.Column('source', sa.String(length=64), nullable=False, comment='Source name from crmhub.yml (e.g. web_leads, shop).'),
    sa.Column('external_id', sa.String(length=255), nullable=False, comment="The record's id in its source."),
    sa.Column('person_id', sa.Integer(), nullable=True, comment='The resolved person (person.person_id); filled by identity resolution.'),
    sa.Column('person_ref', sa.String(length=255), nullable=True, comment='external_id of the source_person row (same source) this record belongs to.'),
    sa.Column('form', sa.String(length=255), nullable=True, comment='Form name or id the lead came through.'),
    sa.Column('submitted_at', crm_model.types.UtcDateTime(timezone=True), nullable=True, comment='When the lead was submitted.'),
    sa.Column('gclid', sa.String(length=255), nullable=True, comment='Google Ads click id.'),
    sa.Column('fbclid', sa.String(length=255), nullable=True, comment='Meta click id.'),
    sa.Column('landing_page', sa.Text(), nullable=True, comment='Page the form was filled on.'),
    sa.Column('referrer', sa.Text(), nullable=True, comment='HTTP referrer of the visit.'),
    sa.Column('note', sa.Text(), nullable=True, comment='Free-text note (e.g. from a rep).'),
    sa.Column('answers', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True, comment='All answers as JSON: {question title: answer}.'),
    sa.Column('utm_source', sa.String(length=255), nullable=True, comment='utm_source of the landing URL.'),
    sa.Column('utm_medium', sa.String(length=255), nullable=True, comment='utm_medium.'),
    sa.Column('utm_campaign', sa.String(length=255), nullable=True, comment='utm_campaign.'),
    sa.Column('utm_content', sa.String(length=255), nullable=True, comment='utm_content.'),
    sa.Column('utm_term', sa.String(length=255), nullable=True, comment='utm_term.'),
    sa.PrimaryKeyConstraint('source', 'external_id', name=op.f('pk_lead'))
    )
    with op.batch_alter_table('lead', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lead_person_id'), ['person_id'], unique=False)

    op.create_table('order_line',
    sa.Column('source', sa.String(length=64), nullable=False, comment='Source name from crmhub.yml (e.g. web_leads, shop).'),
    sa.Column('external_id', sa.String(length=255), nullable=False, comment="The record's id in its source."),
    sa.Column('order_id', sa.String(length=255), nullable=False, comment='customer_order.external_id.'),
    sa.Column('product_id', sa.String(length=255), nullable=True, comment='product.external_id (same source).'),
    sa.Column('sku', sa.String(length=255), nullable=True, comment='SKU at the time of sale.'),
    sa.Column('title', sa.String(length=512), nullable=True, comment='Line title at the time of sale.'),
    sa.Column('quantity', sa.Numeric(precision=18, scale=4), nullable=True, comment='Quantity.'),
    sa.Column('unit_price', sa.Numeric(precision=18, scale=4), nullable=True, comment='Price per unit before discounts.'),
    sa.Column('discount', sa.Numeric(precision=18, scale=4), nullable=True, comment='Discount on this line.'),
    sa.Column('total', sa.Numeric(precision=18, scale=4), nullable=True, comment='Line total after discounts.'),
    sa.Column('currency', sa.String(length=3), nullable=True, comment='ISO 4217 currency.'),
    sa.PrimaryKeyConstraint('source', 'external_id', name=op.f('pk_order_line'))
    )
    with op.batch_alter_table('order_line', schema=None) as batch_op:
        batch_op.create_index('ix_order_line_source_order_id', ['source', 'order_id'], unique=False)

    op.create_table('person',
    sa.Column('person_id', sa.Integer(), nullable=False, comment='Stable person id.'),
    sa.Column('display_name', sa.String(length=255), nullable=True, comment='Full name as best known.'),
    sa.Column('first_name', sa.String(length=255), nullable=True, comment='Given name.'),
    sa.Column('last_name', sa.String(length=255), nullable=True, comment='Family name.'),
    sa.Column('email', sa.String(length=320), nullable=True, comment='Email address, lower-cased.'),
    sa.Column('phone', sa.String(length=32), nullable=True, comment='Phone number in E.164 form (+4930123456).'),
    sa.Column('company', sa.String(length=255), nullable=True, comment='Company or organisation.'),
    sa.Column('job_title', sa.String(length=255), nullable=True, comment='Job title.'),
    sa.Column('street', sa.String(length=255), nullable=True, comment="Street address (lines joined by ', ')."),
    sa.Column('postal_code', sa.String(length=32), nullable=True, comment='Postal or ZIP code.'),
    sa.Column('city', sa.String(length=255), nullable=True, comment='City.'),
    sa.Column('region', sa.String(length=255), nullable=True, comment='State, province or region.'),
    sa.Column('country', sa.String(length=2), nullable=True, comment='ISO 3166-1 alpha-2 country code.'),
    sa.Column('birth_date', sa.Date(), nullable=True, comment='Date of birth, where a source gives it.'),
    sa.Column('lifecycle_stage', sa.String(length=16), nullable=True, comment='lead, prospect or customer.'),
    sa.Column('first_touch_source', sa.String(length=255), nullable=True, comment='Source/utm_source of the first touch.'),
    sa.Column('first_touch_campaign', sa.String(length=255), nullable=True, comment='Campaign of the first touch.'),
    sa.Column('last_touch_source', sa.String(length=255), nullable=True, comment='Source/utm_source of the latest touch.'),
    sa.Column('last_touch_campaign', sa.String(length=255), nullable=True, comment='Campaign of the latest touch.'),
    sa.Column('first_seen_at', crm_model.types.UtcDateTime(timezone=True), nullable=True, comment='Earliest activity in any source.'),
    sa.Column('last_seen_at', crm_model.types.UtcDateTime(timezone=True), nullable=True, comment='Latest activity in any source.'),
    sa.PrimaryKeyConstraint('person_id', name=op.f('pk_person'))
    )
    op.create_table('person_merge',
    sa.Column('merge_id', sa.Integer(), nullable=False, comment='Row id.'),
    sa.Column('person_id', sa.Integer(), nullable=False, comment='The surviving person.'),
    sa.Column('merged_person_id', sa.Integer(), nullable=True, comment='A person folded into person_id, if any.'),
    sa.Column('source', sa.String(length=64), nullable=True, comment='Source of the record that was attached.'),
    sa.Column('external_id', sa.String(length=255), nullable=True, comment='source_person.external_id attached.'),
    sa.Column('evidence', sa.String(length=400), nullable=False, comment='Shared identifier, kind:value.'),
    sa.Column('score', sa.Numeric(precision=18, scale=4), nullable=False, comment='Match confidence, 0..1 (1 = exact id).'),
    sa.Column('merged_at', crm_model.types.UtcDateTime(timezone=True), nullable=False, comment='When the merge was made.'),
    sa.PrimaryKeyConstraint('merge_id', name=op.f('pk_person_merge'))
    )
    with op.batch_alter_table('person_merge', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_person_merge_person_id'), ['person_id'], unique=False)

    op.create_table('product',
    sa.Column('source', sa.String(length=64), nullable=False, comment='Source name from crmhub.yml (e.g. web_leads, shop).'),
    sa.Column('external_id', sa.String(length=255), nullable=False, comment="The record's id in its source."),
    sa.Column('sku', sa.String(length=255), nullable=True, comment='Stock keeping unit.'),
    sa.Column('title', sa.String(length=512), nullable=True, comment='Product (and variant) title.'),
    sa.Column('category', sa.String(length=255), nullable=True, comment='Category or product type.'),
    sa.Column('price', sa.Numeric(precision=18, scale=4), nullable=True, comment='List price.'),
    sa.Column('currency', sa.String(length=3), nullable=True, comment='ISO 4217 currency of price.'),
    sa.Column('parent_id', sa.String(length=255), nullable=True, comment='external_id of the parent product (variants).'),
    sa.PrimaryKeyConstraint('source', 'external_id', name=op.f('pk_product'))
    )
    op.create_table('raw_record',
    sa.Column('source', sa.String(length=64), nullable=False, comment='Source name from crmhub.yml (e.g. web_leads, shop).'),
    sa.Column('stream', sa.String(length=64), nullable=False, comment='Stream name.'),
    sa.Column('record_key', sa.String(length=512), nullable=False, comment='Primary key of the record in its stream.'),
    sa.Column('payload', sa.JSON(), nullable=False, comment='The record as extracted (JSON).'),
    sa.Column('hash', sa.String(length=40), nullable=False, comment='Hash of the payload (change detection).'),
    sa.Column('extracted_at', crm_model.types.UtcDateTime(timezone=True), nullable=False, comment='When it last changed.'),
    sa.Column('sync_run_id', sa.Integer(), nullable=True, comment='Run that last changed it.'),
    sa.Column('mapped_version', sa.Integer(), nullable=True, comment='Version of the mapping that turned it into unified rows (NULL: rejected).'),
    sa.PrimaryKeyConstraint('source', 'stream', 'record_key', name=op.f('pk_raw_record'))
    )
    op.create_table('rejected_record',
    sa.Column('source', sa.String(length=64), nullable=False, comment='Source name from crmhub.yml (e.g. web_leads, shop).'),
    sa.Column('stream', sa.String(length=64), nullable=False, comment='Stream name.'),
    sa.Column('record_key', sa.String(length=512), nullable=False, comment='Record key, or a hash of the payload.'),
    sa.Column('payload', sa.JSON(), nullable=True, comment='The record as extracted.'),
    sa.Column('reason', sa.Text(), nullable=False, comment='Why it was rejected.'),
    sa.Column('sync_run_id', sa.Integer(), nullable=True, comment='Run that rejected it.'),
    sa.Column('rejected_at', crm_model.types.UtcDateTime(timezone=True), nullable=False, comment='When.'),
    sa.PrimaryKeyConstraint('source', 'stream', 'record_key', name=op.f('pk_rejected_record'))
    )
    op.create_table('report_run',
    sa.Column('report_run_id', sa.Integer(), nullable=False, comment='Run id.'),
    sa.Column('name', sa.String(length=64), nullable=False, comment='Report name from crmhub.yml.'),
    sa.Column('report', sa.String(length=64), nullable=False, comment='Registered report type.'),
    sa.Column('status', sa.String(length=16), nullable=False, comment='running, success or failed.'),
    sa.Column('period_start', crm_model.types.UtcDateTime(timezone=True), nullable=True, comment='Start of the period covered.'),
    sa.Column('period_end', crm_model.types.UtcDateTime(timezone=True), nullable=True, comment='End of the period covered.'),
    sa.Column('started_at', crm_model.types.UtcDateTime(timezone=True), nullable=False, comment='Start.'),
    sa.Column('finished_at', crm_model.types.UtcDateTime(timezone=True), nullable=True, comment='End.'),
    sa.Column('recipients', sa.JSON(), nullable=True, comment='Who it was sent to (JSON list).'),
    sa.Column('output_path', sa.Text(), nullable=True, comment='Where the HTML/CSV were written.'),
    sa.Column('error', sa.Text(), nullable=True, comment='Error if it failed.'),
    sa.PrimaryKeyConstraint('report_run_id', name=op.f('pk_report_run'))
    )
    op.create_table('service_case',
    sa.Column('source', sa.String(length=64), nullable=False, comment='Source name from crmhub.yml (e.g. web_leads, shop).'),
    sa.Column('external_id', sa.String(length=255), nullable=False, comment="The record's id in its source."),
    sa.Column('person_id', sa.Integer(), nullable=True, comment='The resolved person (person.person_id); filled by identity resolution.'),
    sa.Column('person_ref', sa.String(length=255), nullable=True, comment='external_id of the source_person row (same source) this record belongs to.'),
    sa.Column('tracking_number', sa.String(length=255), nullable=True, comment='Support ticket / tracking number.'),
    sa.Column('kind', sa.String(length=32), nullable=True, comment='complaint, question, return, repair, ...'),
    sa.Column('subject', sa.Text(), nullable=True, comment='Subject.'),
    sa.Column('status', sa.String(length=32), nullable=True, comment='open, pending, solved, closed, ...'),
    sa.Column('product_id', sa.String(length=255), nullable=True, comment='product.external_id concerned.'),
    sa.Column('opened_at', crm_model.types.UtcDateTime(timezone=True), nullable=True, comment='Opened.'),
    sa.Column('closed_at', crm_model.types.UtcDateTime(timezone=True), nullable=True, comment='Closed, if closed.'),
    sa.Column('channel', sa.String(length=32), nullable=True, comment='email, phone, web, chat, ...'),
    sa.PrimaryKeyConstraint('source', 'external_id', name=op.f('pk_service_case'))
    )
    with op.batch_alter_table('service_case', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_service_case_person_id'), ['person_id'], unique=False)

    op.create_table('service_contract',
    sa.Column('source', sa.String(length=64), nullable=False, comment='Source name from crmhub.yml (e.g. web_leads, shop).'),
    sa.Column('external_id', sa.String(length=255), nullable=False, comment="The record's id in its source."),
    sa.Column('person_id', sa.Integer(), nullable=True, comment='The resolved person (person.person_id); filled by identity resolution.'),
    sa.Column('person_ref', sa.String(length=255), nullable=True, comment='external_id of the source_person row (same source) this record belongs to.'),
    sa.Column('product_id', sa.String(length=255), nullable=True, comment='product.external_id covered.'),
    sa.Column('starts_on', sa.Date(), nullable=True, comment='First day covered.'),
    sa.Column('ends_on', sa.Date(), nullable=True, comment='Last day covered.'),
    sa.Column('level', sa.String(length=64), nullable=True, comment='Service level (basic, premium, ...).'),
    sa.Column('value', sa.Numeric(precision=18, scale=4), nullable=True, comment='Contract value.'),
    sa.Column('currency', sa.String(length=3), nullable=True, comment='ISO 4217 currency of value.'),
    sa.PrimaryKeyConstraint('source', 'external_id', name=op.f('pk_service_contract'))
    )
    with op.batch_alter_table('service_contract', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_service_contract_person_id'), ['person_id'], unique=False)

    op.create_table('source_person',
    sa.Column('source', sa.String(length=64), nullable=False, comment='Source name from crmhub.yml (e.g. web_leads, shop).'),
    sa.Column('external_id', sa.String(length=255), nullable=False, comment="The record's id in its source."),
    sa.Column('display_name', sa.String(length=255), nullable=True, comment='Full name as best known.'),
    sa.Column('first_name', sa.String(length=255), nullable=True, comment='Given name.'),
    sa.Column('last_name', sa.String(length=255), nullable=True, comment='Family name.'),
    sa.Column('email', sa.String(length=320), nullable=True, comment='Email address, lower-cased.'),
    sa.Column('phone', sa.String(length=32), nullable=True, comment='Phone number in E.164 form (+4930123456).'),
    sa.Column('company', sa.String(length=255), nullable=True, comment='Company or organisation.'),
    sa.Column('job_title', sa.String(length=255), nullable=True, comment='Job title.'),
    sa.Column('street', sa.String(length=255), nullable=True, comment="Street address (lines joined by ', ')."),
    sa.Column('postal_code', sa.String(length=32), nullable=True, comment='Postal or ZIP code.'),
    sa.Column('city', sa.String(length=255), nullable=True, comment='City.'),
    sa.Column('region', sa.String(length=255), nullable=True, comment='State, province or region.'),
    sa.Column('country', sa.String(length=2), nullable=True, comment='ISO 3166-1 alpha-2 country code.'),
    sa.Column('birth_date', sa.Date(), nullable=True, comment='Date of birth, where a source gives it.'),
    sa.Column('lifecycle_stage', sa.String(length=16), nullable=True, comment='lead, prospect or customer.'),
    sa.Column('person_id', sa.Integer(), nullable=True, comment='The resolved person (person.person_id); filled by identity resolution.'),
    sa.Column('shop_customer_id', sa.String(length=255), nullable=True, comment='Customer id in a shop system.'),
    sa.Column('seen_at', crm_model.types.UtcDateTime(timezone=True), nullable=True, comment='When the source last saw this person.'),
    sa.Column('marketing_consent', sa.Boolean(), nullable=True, comment='Opted in to marketing email, if known.'),
    sa.PrimaryKeyConstraint('source', 'external_id', name=op.f('pk_source_person'))
    )
    with op.batch_alter_table('source_person', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_source_person_person_id'), ['person_id'], unique=False)

    op.create_table('sync_run',
    sa.Column('sync_run_id', sa.Integer(), nullable=False, comment='Run id.'),
    sa.Column('source', sa.String(length=64), nullable=False, comment='Source name from crmhub.yml (e.g. web_leads, shop).'),
    sa.Column('status', sa.String(length=16), nullable=False, comment='running, success, failed or aborted (killed; see the next run).'),
    sa.Column('started_at', crm_model.types.UtcDateTime(timezone=True), nullable=False, comment='Start.'),
    sa.Column('finished_at', crm_model.types.UtcDateTime(timezone=True), nullable=True, comment='End.'),
    sa.Column('full_refresh', sa.Boolean(), nullable=False, comment='Ignored cursors.'),
    sa.Column('records_read', sa.Integer(), nullable=False, comment='Records read.'),
    sa.Column('records_loaded', sa.Integer(), nullable=False, comment='Records loaded.'),
    sa.Column('records_rejected', sa.Integer(), nullable=False, comment='Quarantined.'),
    sa.Column('pages', sa.Integer(), nullable=False, comment='Pages committed.'),
    sa.Column('error', sa.Text(), nullable=True, comment='Error message if the run failed.'),
    sa.PrimaryKeyConstraint('sync_run_id', name=op.f('pk_sync_run'))
    )
    with op.batch_alter_table('sync_run', schema=None) as batch_op:
        batch_op.create_index('ix_sync_run_source_started_at', ['source', 'started_at'], unique=False)

    op.create_table('sync_state',
    sa.Column('source', sa.String(length=64), nullable=False, comment='Source name from crmhub.yml (e.g. web_leads, shop).'),
    sa.Column('stream', sa.String(length=64), nullable=False, comment='Stream name.'),
    sa.Column('state', sa.JSON(), nullable=True, comment='Connector state (cursor, page tokens, file marks).'),
    sa.Column('cursor', sa.String(length=255), nullable=True, comment='Human-readable cursor, for `crmhub status`.'),
    sa.Column('sync_run_id', sa.Integer(), nullable=True, comment='Run that wrote this state.'),
    sa.Column('updated_at', crm_model.types.UtcDateTime(timezone=True), nullable=True, comment='When it was written.'),
    sa.PrimaryKeyConstraint('source', 'stream', name=op.f('pk_sync_state'))
    )
    op.create_table('touchpoint',
    sa.Column('source', sa.String(length=64), nullable=False, comment='Source name from crmhub.yml (e.g. web_leads, shop).'),
    sa.Column('external_id', sa.String(length=255), nullable=False, comment="The record's id in its source."),
    sa.Column('person_id', sa.Integer(), nullable=True, comment='The resolved person (person.person_id); filled by identity resolution.'),
    sa.Column('person_ref', sa.String(length=255), nullable=True, comment='external_id of the source_person row (same source) this record belongs to.'),
    sa.Column('occurred_at', crm_model.types.UtcDateTime(timezone=True), nullable=True, comment='When it happened.'),
    sa.Column('channel', sa.String(length=32), nullable=False, comment='ad_click, email, email_click, web_visit, form, phone_call or site_visit.'),
    sa.Column('utm_source', sa.String(length=255), nullable=True, comment='Marketing source (utm_source or platform).'),
    sa.Column('campaign_id', sa.String(length=255), nullable=True, comment='Campaign (platform id or utm_campaign).'),
    sa.Column('ad_id', sa.String(length=255), nullable=True, comment='Ad id on the platform.'),
    sa.Column('affiliate_site', sa.String(length=255), nullable=True, comment='Referring affiliate site (host).'),
    sa.Column('url', sa.Text(), nullable=True, comment='URL involved (landing page, clicked link).'),
    sa.PrimaryKeyConstraint('source', 'external_id', name=op.f('pk_touchpoint'))
    )
    with op.batch_alter_table('touchpoint', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_touchpoint_occurred_at'), ['occurred_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_touchpoint_person_id'), ['person_id'], unique=False)

    op.create_table('web_traffic_daily',
    sa.Column('property_id', sa.String(length=64), nullable=False, comment='Analytics property (e.g. GA4 property id).'),
    sa.Column('date', sa.Date(), nullable=False, comment='Day.'),
    sa.Column('source', sa.String(length=255), nullable=False, comment='Traffic source (utm_source / session source).'),
    sa.Column('medium', sa.String(length=255), nullable=False, comment='Traffic medium.'),
    sa.Column('campaign', sa.String(length=255), nullable=False, comment="Campaign name ('' if none)."),
    sa.Column('landing_page', sa.String(length=1024), nullable=False, comment='Landing page path.'),
    sa.Column('sessions', sa.Integer(), nullable=True, comment='Sessions.'),
    sa.Column('engaged_sessions', sa.Integer(), nullable=True, comment='Engaged sessions.'),
    sa.Column('conversions', sa.Numeric(precision=18, scale=4), nullable=True, comment='Key events / conversions.'),
    sa.PrimaryKeyConstraint('property_id', 'date', 'source', 'medium', 'campaign', 'landing_page', name=op.f('pk_web_traffic_daily'))
    )


def downgrade() -> None:
    op.drop_table('web_traffic_daily')
    with op.batch_alter_table('touchpoint', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_touchpoint_person_id'))
        batch_op.drop_index(batch_op.f('ix_touchpoint_occurred_at'))

    op.drop_table('touchpoint')
    op.drop_table('sync_state')
    with op.batch_alter_table('sync_run', schema=None) as batch_op:
        batch_op.drop_index('ix_sync_run_source_started_at')

    op.drop_table('sync_run')
    with op.batch_alter_table('source_person', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_source_person_person_id'))

    op.drop_table('source_person')
    with op.batch_alter_table('service_contract', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_service_contract_person_id'))

    op.drop_table('service_contract')
    with op.batch_alter_table('service_case', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_service_case_person_id'))

    op.drop_table('service_case')
    op.drop_table('report_run')
    op.drop_table('rejected_record')
    op.drop_table('raw_record')
    op.drop_table('product')
    with op.batch_alter_table('person_merge', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_person_merge_person_id'))

    op.drop_table('person_merge')
    op.drop_table('person')
    with op.batch_alter_table('order_line', schema=None) as batch_op:
        batch_op.drop_index('ix_order_line_source_order_id')

    op.drop_table('order_line')
    with op.batch_alter_table('lead', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lead_person_id'))

    op.drop_table('lead')
    with op.batch_alter_table('identity', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identity_person_id'))

    op.drop_table('identity')
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feedback_person_id'))

    op.drop_table('feedback')
    with op.batch_alter_table('email_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_email_message_person_id'))

    op.drop_table('email_message')
    with op.batch_alter_table('customer_order', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_order_person_id'))
        batch_op.drop_index(batch_op.f('ix_customer_order_ordered_at'))

    op.drop_table('customer_order')
    op.drop_table('campaign')
    op.drop_table('ad_stat_daily')
    op.drop_table('ad')
