"""The unified CRM warehouse: its tables, declared as classes (SQLAlchemy Core underneath).

Read this file as the data dictionary: every column carries a ``comment`` that is
also written into PostgreSQL (``\\d+ person`` in psql shows it) and into
``docs/warehouse.md``. Tables are created and upgraded only by the Alembic
migrations in ``crm_model/migrations``; a test checks that the two agree.

Conventions
- Every table that holds data from a source has ``source`` (the source name from
  ``crmhub.yml``) and ``external_id`` (the record's id in that source) as its
  primary key. References inside one source use those ids: ``order_line.order_id``
  is the ``external_id`` of a ``customer_order`` with the same ``source``.
- ``person_ref`` is the ``external_id`` of the ``source_person`` row (same source)
  that describes who the record belongs to; ``person_id`` is filled in from it by
  identity resolution (``crmhub model``).
- Money is NUMERIC(18, 4) plus an ISO 4217 ``currency``; timestamps are UTC.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
    true,
)

from crm_model.types import Document, Micros, Money, Quantity, UtcDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class _Column:
    """A column declared on a table class, or on a mixin several tables share.

    Each table gets its own ``Column`` built from it; ``sort_order`` places it
    (lower first; ties: the table's own columns in declaration order, then its mixins').
    """

    def __init__(self, type_: Any, *, sort_order: int = 0, **kw: Any):
        self.type, self.kw, self.sort_order = type_, kw, sort_order

    def build(self, name: str) -> Column:
        return Column(name, self.type, **self.kw)


class Base:
    """A table declared as a class: ``__tablename__``, columns, optional ``__table_args__``.

    Plain SQLAlchemy Core underneath (no ORM: nothing here is ever loaded as an object,
    and the ORM's mapping costs every command about a third of a second at start-up).
    The class's attributes are then the table's columns (``SyncRun.status``),
    ``__table__`` is the table, and the class itself stands for the table in
    ``select``/``insert``/``update``/``delete``.
    """

    metadata: ClassVar[MetaData] = MetaData(naming_convention=NAMING_CONVENTION)
    classes: ClassVar[dict[str, type[Base]]] = {}  # table name -> its class
    __table__: ClassVar[Table]

    def __init_subclass__(cls, **kw: Any):
        super().__init_subclass__(**kw)
        name = cls.__dict__.get("__tablename__")
        if name is None:
            return
        declared: dict[str, _Column] = {}  # the class's own columns, then its mixins' in MRO order
        for klass in cls.__mro__:
            for attr, value in vars(klass).items():
                if isinstance(value, _Column):
                    declared.setdefault(attr, value)
        args = cls.__dict__.get("__table_args__", ())
        options: dict[str, Any] = {}
        if isinstance(args, dict):
            args, options = (), args
        elif args and isinstance(args[-1], dict):
            args, options = args[:-1], args[-1]
        ordered = sorted(declared.items(), key=lambda item: item[1].sort_order)  # stable: ties keep that order
        cls.__table__ = Table(name, cls.metadata, *(spec.build(attr) for attr, spec in ordered), *args, **options)
        if "person_ref" in cls.__table__.c:
            # sql/model/10_link_person_ids.sql looks the records of each re-resolved
            # source_person row up by it (a scan of the table on every model run without),
            # and identity resolution the click ids and answers of the leads it looks at
            Index(f"ix_{name}_source_person_ref", cls.__table__.c.source, cls.__table__.c.person_ref)
        for column in cls.__table__.columns:
            setattr(cls, column.name, column)
        Base.classes[name] = cls

    @classmethod
    def __clause_element__(cls) -> Table:
        return cls.__table__


def col(type_: Any, comment: str, **kw: Any) -> Any:
    """A nullable column with its data-dictionary comment."""
    kw.setdefault("nullable", True)
    return _Column(type_, comment=comment, **kw)


def key(type_: Any, comment: str) -> Any:
    return _Column(type_, primary_key=True, nullable=False, comment=comment)


def column(type_: Any, **kw: Any) -> Any:
    """A column that must have a value (NOT NULL), or says otherwise in ``kw``."""
    kw.setdefault("nullable", False)
    return _Column(type_, **kw)


SOURCE = "Source name from crmhub.yml (e.g. web_leads, shop)."
EXTERNAL_ID = "The record's id in its source."
PERSON_ID = "The resolved person (person.person_id); filled by identity resolution."
PERSON_REF = "external_id of the source_person row (same source) this record belongs to."


class SourceRecord:
    """Columns shared by every table loaded from a source: the natural key."""

    # sort_order puts the key first in the table, before the subclass's own columns
    source = column(String(64), primary_key=True, comment=SOURCE, sort_order=-20)
    external_id = column(
        String(255), primary_key=True, comment=EXTERNAL_ID, sort_order=-19
    )


class PersonLinked:
    person_id = col(Integer, PERSON_ID, index=True, sort_order=-11)
    person_ref = col(String(255), PERSON_REF, sort_order=-10)


class PersonFields:
    """Who someone is, as one source or the golden record describes them."""

    display_name = col(String(255), "Full name as best known.", sort_order=-5)
    first_name = col(String(255), "Given name.", sort_order=-5)
    last_name = col(String(255), "Family name.", sort_order=-5)
    email = col(String(320), "Email address, lower-cased.", sort_order=-5)
    phone = col(String(32), "Phone number in E.164 form (+4930123456).", sort_order=-5)
    company = col(String(255), "Company or organisation.", sort_order=-5)
    job_title = col(String(255), "Job title.", sort_order=-5)
    street = col(String(255), "Street address (lines joined by ', ').", sort_order=-5)
    postal_code = col(String(32), "Postal or ZIP code.", sort_order=-5)
    city = col(String(255), "City.", sort_order=-5)
    region = col(String(255), "State, province or region.", sort_order=-5)
    country = col(String(2), "ISO 3166-1 alpha-2 country code.", sort_order=-5)
    birth_date = col(Date, "Date of birth, where a source gives it.", sort_order=-5)
    lifecycle_stage = col(String(16), "lead, prospect or customer.", sort_order=-5)


# --------------------------------------------------------------------------- people


class Person(PersonFields, Base):
    """One row per real person, merged across sources."""

    __tablename__ = "person"

    person_id = column(
        Integer, primary_key=True, comment="Stable person id.", sort_order=-30
    )
    first_touch_source = col(String(255), "Source/utm_source of the first touch.")
    first_touch_campaign = col(String(255), "Campaign of the first touch.")
    last_touch_source = col(String(255), "Source/utm_source of the latest touch.")
    last_touch_campaign = col(String(255), "Campaign of the latest touch.")
    first_touch_channel = col(String(32), "Touchpoint channel of the first touch.")
    last_touch_channel = col(String(32), "Touchpoint channel of the latest touch.")
    first_seen_at = col(UtcDateTime, "Earliest activity in any source.")
    last_seen_at = col(UtcDateTime, "Latest activity in any source.")


class SourcePerson(SourceRecord, PersonFields, Base):
    """A person as one source describes them (a form respondent, a shop customer, ...).

    Identity resolution groups these into ``person`` rows.
    """

    __tablename__ = "source_person"

    person_id = col(Integer, PERSON_ID, index=True)
    shop_customer_id = col(String(255), "Customer id in a shop system.")
    seen_at = col(UtcDateTime, "When the source last saw this person.")
    marketing_consent = col(Boolean, "Opted in to marketing email, if known.")
    attributes = col(
        Document, "Source columns with no warehouse field, as JSON {column: value} (kept, never dropped)."
    )
    model_pending = col(
        Boolean, "True when the row is new or changed since identity resolution last looked at it.",
        index=True,
    )


class Identity(Base):
    """Normalised identifiers that tie a person to records in each source."""

    __tablename__ = "identity"

    kind = key(String(16), "email, phone, external_id, click_id or cookie.")
    value = key(String(320), "Normalised value (lower-case email, E.164 phone, ...).")
    source = key(String(64), SOURCE)
    person_id = column(Integer, index=True, comment=PERSON_ID)


class PersonMerge(Base):
    """Audit trail of identity resolution: what was merged, on what evidence."""

    __tablename__ = "person_merge"

    merge_id = column(Integer, primary_key=True, comment="Row id.")
    person_id = column(Integer, index=True, comment="The surviving person.")
    merged_person_id = col(Integer, "A person folded into person_id, if any.")
    source = col(String(64), "Source of the record that was attached.")
    external_id = col(String(255), "source_person.external_id attached.")
    evidence = column(String(400), comment="Shared identifier, kind:value.")
    score = column(Money, comment="Match confidence, 0..1 (1 = exact id).")
    merged_at = column(UtcDateTime, comment="When the merge was made.")
    fields = col(
        Document, "Probabilistic matches: per field, the comparison level and its weight (JSON)."
    )


class PersonRule(Base):
    """Manual identity decisions (`crmhub person link|unlink`), applied on every model run."""

    __tablename__ = "person_rule"

    rule_id = column(Integer, primary_key=True, comment="Row id.")
    kind = column(String(8), comment="must (always one person) or never (never one person).")
    left_refs = column(
        Document, comment="One side: JSON list of 'email:...', 'phone:...' or 'record:SOURCE/EXTERNAL_ID'."
    )
    right_refs = column(Document, comment="The other side, same form.")
    note = col(String(255), "What the user typed (ids or emails).")
    created_at = column(UtcDateTime, comment="When the rule was made.")


class PersonKey(Base):
    """Blocking keys of each person's records, so an incremental model run finds the
    persons a new record may match through an index instead of reading every record.
    A run from scratch stores each key as it is (>= 0); incremental runs store the keys
    they add as the key's bitwise complement (-key - 1, < 0), so their rows go to a small
    range of the B-tree; lookups read both.

    Deltas have a partial index on person_id (block_key < 0): an incremental run deletes
    and writes the keys of the persons it changes there. The keys a run from scratch
    stored are never deleted by person: when a person's records change or leave it, the
    person is listed in ``person_key_stale`` and lookups skip its keys >= 0 (its keys are
    stored again as deltas). Without an index on person_id for millions of rows, a run
    from scratch writes one B-tree instead of two."""

    __tablename__ = "person_key"
    __table_args__ = (
        Index("ix_person_key_delta_person_id", "person_id", sqlite_where=text("block_key < 0"),
              postgresql_where=text("block_key < 0")),
        {"sqlite_with_rowid": False},  # the key is the table: one B-tree less to write
    )

    block_key = key(
        BigInteger, "64-bit hash of one blocking key of a record (e.g. last name + birth date); derived from personal data, erased with the person."
    )
    person_id = column(Integer, primary_key=True, comment=PERSON_ID)


class PersonKeyStale(Base):
    """Persons whose keys as the last run from scratch stored them (``person_key`` rows
    with block_key >= 0) no longer hold: a record of theirs changed or left them since.
    Lookups skip those rows; the next run from scratch empties this table."""

    __tablename__ = "person_key_stale"

    person_id = _Column(Integer, primary_key=True, nullable=False, autoincrement=False, comment=PERSON_ID)


# person_key's two forms of a key: as a run from scratch stored it and as a delta
PERSON_KEY_FORMS = ("block_key >= 0", "block_key < 0")


class MatchModel(Base):
    """The trained probabilistic matching model (Fellegi-Sunter m/u per comparison level)."""

    __tablename__ = "match_model"

    name = key(String(64), "Model name ('default').")
    params = column(Document, comment="m and u probabilities per field level (JSON).")
    trained_on = column(Integer, comment="Records it was trained on.")
    trained_at = column(UtcDateTime, comment="When.")


class ErasureTombstone(Base):
    """Hashes of erased people's identifiers: a sync drops records that match one."""

    __tablename__ = "erasure_tombstone"

    digest = key(String(64), "SHA-256 of kind:normalised value (no personal data kept).")
    kind = column(String(16), comment="email, phone or name_birth (name and birth date).")
    erased_at = column(UtcDateTime, comment="When `crmhub forget` ran.")


# --------------------------------------------------------------------- leads, prospects


class Utm:
    utm_source = col(String(255), "utm_source of the landing URL.")
    utm_medium = col(String(255), "utm_medium.")
    utm_campaign = col(String(255), "utm_campaign.")
    utm_content = col(String(255), "utm_content.")
    utm_term = col(String(255), "utm_term.")


class Kept:
    """Columns of a source file with no warehouse field, kept with the record."""

    attributes = col(
        Document, "Source columns with no warehouse field, as JSON {column: value} (kept, never dropped).")


class ModelInput:
    """Rows `crmhub model` derives something from (attribution, affiliate sites, support
    cases, touch channels): a model run looks only at the rows written since the last one."""

    model_pending = col(
        Boolean, "True when the row was written (new or changed) since `crmhub model` last read it; "
        "every write sets it (its default), the model run clears it.",
        index=True, server_default=true(), sort_order=90)


class Attributed:
    """Where a lead or order came from, filled by sql/model/15_attribution.sql (docs/attribution.md)."""

    ad_platform = col(String(32), "Platform of the attributed campaign (campaign.platform).")
    campaign_id = col(String(255), "Attributed campaign (campaign.campaign_id).")
    ad_group_id = col(
        String(255), "Attributed ad group (ad_group.ad_group_id; Meta: ad set), where known.")
    ad_id = col(String(255), "Attributed ad (ad.ad_id), where known.")
    attribution_rule = col(
        String(32), "Rule that attributed it: lead_ad, click_id, utm_campaign_id, utm_campaign_name, person.")
    affiliate_site = col(String(255), "Affiliate site that referred it (affiliate rules).")


class Lead(SourceRecord, PersonLinked, Utm, Attributed, ModelInput, Base):
    """A lead: a form submission or a lead a sales rep entered."""

    __tablename__ = "lead"

    form = col(String(255), "Form name or id the lead came through.")
    submitted_at = col(UtcDateTime, "When the lead was submitted.", index=True)
    gclid = col(String(255), "Google Ads click id.", index=True)
    fbclid = col(String(255), "Meta click id.", index=True)
    landing_page = col(Text, "Page the form was filled on.")
    referrer = col(Text, "HTTP referrer of the visit.")
    note = col(Text, "Free-text note (e.g. from a rep).")
    answers = col(Document, "All answers as JSON: {question title: answer}.")


class Touchpoint(SourceRecord, PersonLinked, Kept, ModelInput, Base):
    """One interaction on the path to purchase (ad click, email, visit, call, form)."""

    __tablename__ = "touchpoint"
    occurred_at = col(UtcDateTime, "When it happened.", index=True)
    channel = column(
        String(32),
        comment="ad_click, email, email_open, email_click, web_visit, form, phone_call, site_visit or meeting.",
    )
    utm_source = col(String(255), "Marketing source (utm_source or platform).")
    campaign_id = col(String(255), "Campaign (platform id or utm_campaign).")
    ad_group_id = col(String(255), "Ad group (Meta: ad set) id on the platform.")
    ad_id = col(String(255), "Ad id on the platform.")
    affiliate_site = col(String(255), "Referring affiliate site (host).")
    url = col(Text, "URL involved (landing page, clicked link).")
    click_id = col(String(255), "Ad click id (gclid, fbclid) of an ad_click.", index=True)
    ad_platform = col(String(32), "Platform of campaign_id/ad_id (campaign.platform).")
    note = col(Text, "Free-text note (e.g. a rep's call notes).")


class Campaign(ModelInput, Base):
    __tablename__ = "campaign"
    # attribution (sql/model/15_attribution.sql) looks a lead's utm_campaign up as an id,
    # else as a name compared case-insensitively
    __table_args__ = (Index("ix_campaign_campaign_id", "campaign_id"), Index("ix_campaign_lower_name", text("lower(name)")))

    platform = key(String(32), "Ad platform (google_ads, meta_ads, ...).")
    campaign_id = key(String(255), "Campaign id on the platform.")
    source = col(String(64), SOURCE)
    name = col(String(255), "Campaign name.")
    status = col(String(32), "Status on the platform.")
    channel = col(String(32), "search, display, social, video, ...")


class AdGroup(Base):
    """The level between campaign and ad: a Google Ads ad group, a Meta ad set."""

    __tablename__ = "ad_group"

    platform = key(String(32), "Ad platform.")
    ad_group_id = key(String(255), "Ad group id on the platform (Meta: the ad set id).")
    campaign_id = col(String(255), "campaign.campaign_id it belongs to.")
    source = col(String(64), SOURCE)
    name = col(String(255), "Ad group (ad set) name.")
    status = col(String(32), "Status on the platform.")


class Ad(ModelInput, Base):
    __tablename__ = "ad"
    # attribution looks an attributed lead's utm_content up among its campaign's ads, by ad id
    __table_args__ = (Index("ix_ad_platform_campaign_id_ad_id", "platform", "campaign_id", "ad_id"),)

    platform = key(String(32), "Ad platform.")
    ad_id = key(String(255), "Ad id on the platform.")
    campaign_id = col(String(255), "campaign.campaign_id it belongs to.")
    ad_group_id = col(
        String(255), "ad_group.ad_group_id it is in; Google Ads: the last read of several ad groups "
        "one ad serves in (ad_stat_daily has each).")
    source = col(String(64), SOURCE)
    name = col(String(255), "Ad name.")
    status = col(String(32), "Status on the platform.")
    channel = col(String(32), "search, display, social, video, ...")


class AdStatDaily(ModelInput, Base):
    __tablename__ = "ad_stat_daily"
    # Reports read one period of days across all ads: the primary key starts with platform.
    # attribution asks whether an ad has daily stats in another ad group
    __table_args__ = (Index("ix_ad_stat_daily_date", "date"),
                      Index("ix_ad_stat_daily_platform_ad_id_ad_group_id", "platform", "ad_id", "ad_group_id"))

    platform = key(String(32), "Ad platform.")
    campaign_id = key(String(255), "campaign.campaign_id.")
    # server default '': rows written before ad groups existed, and by platforms without the level
    ad_group_id = column(
        String(255), primary_key=True, server_default="",
        comment="ad_group.ad_group_id ('' where the platform or the row has no ad group level).")
    ad_id = key(String(255), "ad.ad_id ('' for campaign-level rows).")
    date = key(Date, "Day, in the ad account's time zone.")
    source = col(String(64), SOURCE)
    impressions = col(Integer, "Impressions.")
    clicks = col(Integer, "Clicks.")
    cost = col(Micros, "Spend (6 decimals: Google's cost_micros / 10^6 exactly).")
    currency = col(String(3), "ISO 4217 currency of cost.")
    conversions = col(Quantity, "Conversions (may be fractional).")
    conversion_value = col(Money, "Value of conversions.")


class WebTrafficDaily(ModelInput, Base):
    __tablename__ = "web_traffic_daily"

    property_id = key(String(64), "Analytics property (e.g. GA4 property id).")
    date = key(Date, "Day.")
    source = key(String(255), "Traffic source (utm_source / session source).")
    medium = key(String(255), "Traffic medium.")
    campaign = key(String(255), "Campaign name ('' if none).")
    landing_page = key(String(1024), "Landing page path.")
    sessions = col(Integer, "Sessions.")
    engaged_sessions = col(Integer, "Engaged sessions.")
    conversions = col(Quantity, "Key events / conversions.")
    affiliate_site = col(String(255), "Affiliate site the source names (affiliate rules).")


class AffiliateRule(Base):
    """How an affiliate site is recognised; written from crmhub.yml's ``affiliates`` by `crmhub model`."""

    __tablename__ = "affiliate_rule"

    kind = key(String(16), "url_param (name=value on a landing page), utm_source or referrer_domain.")
    value = key(String(320), "Lower-cased value to match (aff_id=4711, bestdeals, bestdeals.example).")
    affiliate_site = column(String(255), comment="The affiliate site it names.")


# ------------------------------------------------------------------ mail, customers


class EmailMessage(ModelInput, Base):
    __tablename__ = "email_message"
    # a support thread's messages, as sql/model/05_mail_service_cases.sql reads them per case
    __table_args__ = (Index("ix_email_message_source_case_id", "source", "case_id"),)

    source = key(String(64), SOURCE)
    message_id = key(String(998), "RFC 5322 Message-ID.")
    thread_id = col(String(998), "Conversation/thread id.")
    direction = col(String(8), "inbound or outbound.")
    from_address = col(String(320), "Sender address.")
    to_addresses = col(JSON, "Recipient addresses (JSON list).")
    cc_addresses = col(JSON, "Cc addresses (JSON list).")
    subject = col(Text, "Subject line.")
    sent_at = col(UtcDateTime, "Date header, in UTC.")
    person_ref = col(String(255), PERSON_REF)
    person_id = col(Integer, PERSON_ID, index=True)
    folder = col(String(255), "Mailbox folder or Gmail label it was read from.")
    bulk = col(Boolean, "Bulk or automatic mail (list, newsletter, auto-reply): no persons.")
    case_id = col(
        String(255), "service_case.external_id (same source) of the support thread it belongs to.")
    tracking_number = col(String(255), "Case tracking number found in its subject.")
    complaint = col(Boolean, "Support mail: complaint keywords matched.")
    closes_case = col(Boolean, "Support mail: a closing phrase or label matched.")
    body_excerpt = col(
        Text, "Support mail only: the message's own words (quotes left out), capped at 4,000 characters.")


class Product(SourceRecord, Kept, ModelInput, Base):
    __tablename__ = "product"

    sku = col(String(255), "Stock keeping unit.")
    title = col(String(512), "Product (and variant) title.")
    category = col(String(255), "Category or product type.")
    price = col(Money, "List price.")
    currency = col(String(3), "ISO 4217 currency of price.")
    parent_id = col(String(255), "external_id of the parent product (variants).")
    unit_cost = col(
        Money, "What one unit costs the business (CSV cost column, a shop's unit cost); gives gross margin."
    )


class CustomerOrder(SourceRecord, PersonLinked, Attributed, Kept, ModelInput, Base):
    __tablename__ = "customer_order"

    order_number = col(String(64), "Order number shown to the customer.")
    ordered_at = col(UtcDateTime, "When the order was placed.", index=True)
    updated_at = col(UtcDateTime, "Last change in the source.")
    status = col(String(32), "Order status (paid, refunded, cancelled, ...).")
    currency = col(String(3), "ISO 4217 currency of all amounts.")
    subtotal = col(Money, "Sum of lines before discounts and tax.")
    discount = col(Money, "Total discounts.")
    tax = col(Money, "Total tax.")
    total = col(Money, "Amount charged.")
    refunded = col(Money, "Amount refunded so far.")
    sales_rep = col(String(255), "Sales rep or staff member who took it.")
    special_instructions = col(Text, "Customer's note / instructions.")
    channel = col(String(64), "Sales channel (web, pos, phone, ...).")
    utm_source = col(String(255), "utm_source of the visit that led to it.")
    utm_medium = col(String(255), "utm_medium.")
    utm_campaign = col(String(255), "utm_campaign.")
    landing_page = col(Text, "Landing page of that visit.")
    referrer = col(Text, "Referring site of that visit.")
    tags = col(JSON, "Tags (JSON list).")
    marketing_channel = col(
        String(32), "How that visit came without a campaign: direct, organic, referral, utm, admin, ...")


class OrderLine(SourceRecord, Kept, Base):
    __tablename__ = "order_line"
    __table_args__ = (Index("ix_order_line_source_order_id", "source", "order_id"),)

    order_id = column(String(255), comment="customer_order.external_id.")
    product_id = col(String(255), "product.external_id (same source).")
    sku = col(String(255), "SKU at the time of sale.")
    title = col(String(512), "Line title at the time of sale.")
    quantity = col(Quantity, "Quantity.")
    unit_price = col(Money, "Price per unit before discounts.")
    discount = col(Money, "Discount on this line.")
    total = col(Money, "Line total after discounts.")
    currency = col(String(3), "ISO 4217 currency.")
    cost = col(
        Money, "What the line's units cost the business, as the shop recorded it at the sale (WooCommerce's "
               "cost of goods sold); where unknown, gross margin uses quantity x product.unit_cost.")


class ServiceCase(SourceRecord, PersonLinked, Kept, Base):
    __tablename__ = "service_case"

    tracking_number = col(String(255), "Support ticket / tracking number.")
    kind = col(String(32), "complaint, question, return, repair, ...")
    subject = col(Text, "Subject.")
    status = col(String(32), "open, pending, solved, closed, ...")
    product_id = col(String(255), "product.external_id concerned.")
    product_source = col(
        String(64), "Source of that product when it is another source's (mail cases); NULL: this source.")
    opened_at = col(UtcDateTime, "Opened.")
    closed_at = col(UtcDateTime, "Closed, if closed.")
    channel = col(String(32), "email, phone, web, chat, ...")


class ServiceContract(SourceRecord, PersonLinked, Kept, Base):
    __tablename__ = "service_contract"

    product_id = col(String(255), "product.external_id covered.")
    starts_on = col(Date, "First day covered.")
    ends_on = col(Date, "Last day covered.")
    level = col(String(64), "Service level (basic, premium, ...).")
    value = col(Money, "Contract value.")
    currency = col(String(3), "ISO 4217 currency of value.")


class Feedback(SourceRecord, PersonLinked, Kept, Base):
    __tablename__ = "feedback"

    order_id = col(String(255), "customer_order.external_id, if tied to one.")
    product_id = col(String(255), "product.external_id, if about one.")
    rating = col(Quantity, "Rating as given (e.g. 1-5).")
    comment = col(Text, "Free-text feedback.")
    received_at = col(UtcDateTime, "When it was given.")


# -------------------------------------------------------------------------- operations


class SyncRun(Base):
    """One run of one source: what was read, loaded and rejected."""

    __tablename__ = "sync_run"
    __table_args__ = (Index("ix_sync_run_source_started_at", "source", "started_at"),)

    sync_run_id = column(Integer, primary_key=True, comment="Run id.")
    source = column(String(64), comment=SOURCE)
    status = column(
        String(16), comment="running, success, failed or aborted (killed; see the next run)."
    )
    started_at = column(UtcDateTime, comment="Start.")
    finished_at = col(UtcDateTime, "End.")
    full_refresh = column(Boolean, default=False, comment="Ignored cursors.")
    records_read = column(Integer, default=0, comment="Records read.")
    records_loaded = column(Integer, default=0, comment="Records loaded.")
    records_rejected = column(Integer, default=0, comment="Quarantined.")
    pages = column(Integer, default=0, comment="Pages committed.")
    error = col(Text, "Error message if the run failed.")
    records_warned = column(
        Integer, default=0, server_default="0",
        comment="Records loaded with a field warning (a bad optional detail left out; see field_warning).",
    )


class SyncState(Base):
    """Per-stream cursor, committed in the same transaction as the data it covers."""

    __tablename__ = "sync_state"

    source = key(String(64), SOURCE)
    stream = key(String(64), "Stream name.")
    state = col(JSON, "Connector state (cursor, page tokens, file marks).")
    cursor = col(String(255), "Human-readable cursor, for `crmhub status`.")
    sync_run_id = col(Integer, "Run that wrote this state.")
    updated_at = col(UtcDateTime, "When it was written.")


class RawRecord(Base):
    """Every record as its source sent it: the landing zone that mapping reads from."""

    __tablename__ = "raw_record"

    source = key(String(64), SOURCE)
    stream = key(String(64), "Stream name.")
    record_key = key(String(512), "Primary key of the record in its stream.")
    payload = column(JSON, comment="The record as extracted (JSON).")
    hash = column(String(40), comment="Hash of the payload (change detection).")
    extracted_at = column(UtcDateTime, comment="When it last changed.")
    sync_run_id = col(Integer, "Run that last changed it.")
    mapped_version = col(
        Integer, "Version of the mapping that turned it into unified rows (NULL: rejected)."
    )


class MappedStream(Base):
    """Streams whose every raw record was mapped by one version of the stream's mapping.

    `crmhub model` sets a row when a pass over the stream left nothing to re-map; every
    write of raw records by another version removes it. With the row matching the
    mapping's version, a model run skips reading the stream's raw records (0.6-0.8 s
    per million records on SQLite) to find that nothing changed."""

    __tablename__ = "mapped_stream"

    source = key(String(64), SOURCE)
    stream = key(String(64), "Stream name.")
    version = column(Integer, comment="Version of the mapping that mapped every raw record of the stream.")
    checked_at = column(UtcDateTime, comment="When `crmhub model` found nothing left to re-map.")


class RejectedRecord(Base):
    """Records quarantined by validation or mapping, with the reason."""

    __tablename__ = "rejected_record"

    source = key(String(64), SOURCE)
    stream = key(String(64), "Stream name.")
    record_key = key(String(512), "Record key, or a hash of the payload.")
    payload = col(JSON, "The record as extracted.")
    reason = column(Text, comment="Why it was rejected.")
    sync_run_id = col(Integer, "Run that rejected it.")
    rejected_at = column(UtcDateTime, comment="When.")


class FieldWarning(Base):
    """A bad optional detail left out of a record that loaded anyway (a birth date, a phone)."""

    __tablename__ = "field_warning"

    source = key(String(64), SOURCE)
    stream = key(String(64), "Stream name.")
    record_key = key(String(512), "Key of the record that loaded without the field.")
    field = key(String(255), "The field (column or question) left out.")
    raw_value = col(Text, "The value as the source sent it (at most 1,000 characters).")
    reason = column(Text, comment="What is wrong with it.")
    sync_run_id = col(Integer, "Run that loaded the record.")
    warned_at = column(UtcDateTime, comment="When.")


class ReportRun(Base):
    __tablename__ = "report_run"

    report_run_id = column(Integer, primary_key=True, comment="Run id.")
    name = column(String(64), comment="Report name from crmhub.yml.")
    report = column(String(64), comment="Registered report type.")
    status = column(String(16), comment="running, success or failed.")
    period_start = col(UtcDateTime, "Start of the period covered.")
    period_end = col(UtcDateTime, "End of the period covered.")
    started_at = column(UtcDateTime, comment="Start.")
    finished_at = col(UtcDateTime, "End.")
    recipients = col(JSON, "Who it was sent to (JSON list).")
    output_path = col(Text, "Where the HTML/CSV were written.")
    error = col(Text, "Error if it failed.")
    files = col(JSON, "Files the run wrote or attached: HTML, text, PNG charts, CSVs (JSON list).")
    period_label = col(String(64), "The period as asked for (7d, month, 2026-01-01..2026-01-31).")


UNIFIED_TABLES = (
    "person", "source_person", "identity", "person_merge", "lead", "touchpoint", "campaign",
    "ad_group", "ad", "ad_stat_daily", "web_traffic_daily", "affiliate_rule", "email_message", "product", "customer_order",
    "order_line", "service_case", "service_contract", "feedback",
)
OPERATIONS_TABLES = ("sync_run", "sync_state", "raw_record", "mapped_stream", "rejected_record", "report_run",
                     "person_rule", "match_model", "person_key", "person_key_stale", "erasure_tombstone")
