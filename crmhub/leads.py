"""`crmhub lead add`: a rep enters a lead by hand (a call, a walk-in, a referral).

The lead lands like any pushed record (``crm_model.sync.ingest``): raw landing,
mapping (``crm_model.mapping.manual``), quarantine. It goes into a source of type
``manual``, by default one named ``manual`` that crmhub.yml need not declare; declare
it (or another) to set options:

    sources:
      manual:
        connector: manual
        config: {default_region: DE}     # phone numbers typed without +49

A person is at the keyboard, so a bad email or phone number is refused with one line
instead of being quarantined. Entering the same email again creates a new lead; the
next `crmhub model` resolves both to one person.
"""

from __future__ import annotations

import datetime as dt
import getpass
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, select

from connectors.manual import DEFAULT_SOURCE, ManualConfig, ManualConnector
from connectors.sdk import registry
from crm_model.mapping import Reject
from crm_model.mapping import values as v
from crm_model.mapping.manual import lead_channel
from crm_model.schema import RejectedRecord
from crm_model.sync import ingest
from crmhub.config import SOURCE_NAME, Config
from crmhub.errors import CrmhubError

CONNECTOR_TYPE = "manual"


class LeadError(CrmhubError):
    """The lead as typed cannot be stored; the message says what to fix."""


@dataclass(frozen=True)
class AddedLead:
    source: str
    key: str  # lead.external_id


def add_lead(cfg: Config, *, email: str | None = None, name: str | None = None, phone: str | None = None,
             company: str | None = None, channel: str = "phone_call", note: str | None = None,
             form: str | None = None, into: str = DEFAULT_SOURCE, engine: Engine | None = None) -> AddedLead:
    connector, connector_type = _manual_source(cfg, into)
    region = connector.config.default_region
    try:
        checked_email = v.email(email, "--email")
    except Reject as exc:
        raise LeadError(str(exc)) from None
    try:
        checked_phone = v.phone(phone, region, "--phone")
    except Reject as exc:
        hint = "" if region else f"; type it with its +country code, or set default_region in sources.{into}.config"
        raise LeadError(f"{exc}{hint}") from None
    if checked_email is None and checked_phone is None:
        raise LeadError("give --email or --phone: a lead nobody can reach is not a lead")
    if lead_channel(channel) is None:
        raise LeadError("--source must name the lead's channel, e.g. phone_call, walk_in, referral")

    entered_at = dt.datetime.now(dt.UTC)
    key = f"{entered_at:%Y%m%d%H%M%S}-{secrets.token_hex(3)}"
    record = {  # as typed: the mapping normalises, and can do it again on `crmhub model`
        "lead_id": key, "entered_at": entered_at.isoformat(), "email": v.text(email),
        "phone": v.text(phone), "name": v.text(name), "company": v.text(company),
        "channel": v.text(channel), "note": v.text(note), "form": v.text(form),
        "entered_by": _user(),
    }
    reason = push_record(cfg, engine, into, connector, connector_type, "leads", record, key)
    if reason is not None:
        raise LeadError(f"lead {key} was quarantined in rejected_record: {reason}")
    return AddedLead(into, key)


def push_record(cfg: Config, engine: Engine | None, into: str, connector: ManualConnector, connector_type: str,
                stream: str, record: dict, key: str) -> str | None:
    """Land one hand-entered record of ``stream`` (raw + mapping, one transaction); the
    reason it was quarantined, or None when it loaded."""
    spec = connector.stream_specs()[stream]
    own = engine is None
    if own:
        from crmhub.jobs import warehouse

        engine = warehouse(cfg)
    try:
        result = ingest(engine, into, connector_type, spec, [record], connector.options())
        if not result.rejected:
            return None
        with engine.connect() as conn:
            return conn.execute(select(RejectedRecord.reason).where(
                RejectedRecord.source == into, RejectedRecord.stream == spec.name,
                RejectedRecord.record_key == key)).scalar_one_or_none()
    finally:
        if own:
            engine.dispose()


def _manual_source(cfg: Config, name: str) -> tuple[ManualConnector, str]:
    """The manual source ``name``: declared in crmhub.yml, or the built-in default."""
    if not SOURCE_NAME.match(name):
        raise LeadError(f"--into {name!r}: a source name is lower-case letters, digits and _")
    settings = cfg.settings.sources.get(name)
    if settings is None:
        return ManualConnector(ManualConfig(), source=name, base_dir=cfg.base_dir), CONNECTOR_TYPE
    cls = registry.load(settings.connector)
    if not issubclass(cls, ManualConnector):
        raise LeadError(f"source {name!r} is a {settings.connector} source; leads are added to a source "
                        f"of connector type {CONNECTOR_TYPE}")
    config = cfg.source_config(name, cls.Config)
    return cls(config, source=name, base_dir=cfg.base_dir), settings.connector


def _user() -> str | None:
    """Who entered the lead (the OS account), where the system knows."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. in some containers
        return None
