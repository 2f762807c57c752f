"""`crmhub touchpoint add`: a rep logs a call, a site visit or a meeting with someone.

The same push path as `crmhub lead add` (crmhub/leads.py): the record lands through
``crm_model.sync.ingest`` in the ``touchpoints`` stream of a ``manual`` source (default
``manual``), is mapped by ``crm_model.mapping.manual.map_manual_touchpoint`` and tied to
the person with that email or phone by the next `crmhub model`. A person with a logged
call or visit and no purchase counts as a prospect.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine

from connectors.manual import DEFAULT_SOURCE
from crm_model.mapping import Reject
from crm_model.mapping import values as v
from crm_model.mapping.manual import REP_CHANNELS
from crmhub.config import Config
from crmhub.leads import LeadError, _manual_source, _user, push_record


class TouchpointError(LeadError):
    """The touchpoint as typed cannot be stored; the message says what to fix."""


@dataclass(frozen=True)
class AddedTouchpoint:
    source: str
    key: str  # touchpoint.external_id


def add_touchpoint(cfg: Config, *, email: str | None = None, phone: str | None = None,
                   channel: str = "phone_call", at: str | None = None, note: str | None = None,
                   into: str = DEFAULT_SOURCE, engine: Engine | None = None) -> AddedTouchpoint:
    connector, connector_type = _manual_source(cfg, into)
    region = connector.config.default_region
    try:
        v.email(email, "--email")
        v.phone(phone, region, "--phone")
        when = v.timestamp(at, "--at") if at else dt.datetime.now(dt.UTC)
    except Reject as exc:
        raise TouchpointError(str(exc)) from None
    if not v.text(email) and not v.text(phone):
        raise TouchpointError("give --email or --phone: whom was the call, visit or meeting with?")
    if channel not in REP_CHANNELS:
        raise TouchpointError(f"--channel must be one of {', '.join(REP_CHANNELS)}")
    key = f"{dt.datetime.now(dt.UTC):%Y%m%d%H%M%S}-{secrets.token_hex(3)}"
    record = {"touchpoint_id": key, "occurred_at": when.isoformat(), "email": v.text(email),
              "phone": v.text(phone), "channel": channel, "note": v.text(note), "entered_by": _user()}
    reason = push_record(cfg, engine, into, connector, connector_type, "touchpoints", record, key)
    if reason is not None:
        raise TouchpointError(f"touchpoint {key} was quarantined in rejected_record: {reason}")
    return AddedTouchpoint(into, key)
