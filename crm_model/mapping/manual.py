"""Leads a rep entered with `crmhub lead add` -> source_person + lead + touchpoint.

The raw record is what the rep typed (``lead_id``, ``entered_at``, ``email``, ``phone``,
``name``, ``company``, ``channel``, ``note``, ``form``, ``entered_by``). The lead's
channel (phone_call, walk_in, referral, ...) is kept in ``lead.answers.channel`` and
becomes the touchpoint's channel when the warehouse knows it (walk_in counts as a
site_visit); any other channel is recorded as a ``form`` touchpoint.
"""

from __future__ import annotations

import re
from typing import Any

from crm_model.mapping import MapContext, Reject, Row, mapping
from crm_model.mapping import values as v
from crm_model.mapping.common import lead_rows, person_row

# touchpoint.channel values (crm_model.schema.Touchpoint)
TOUCHPOINT_CHANNELS = ("ad_click", "email", "email_click", "web_visit", "form", "phone_call", "site_visit",
                       "meeting")
# what reps call a channel -> the touchpoint channel it is
CHANNEL_ALIASES = {"phone": "phone_call", "call": "phone_call", "walk_in": "site_visit",
                   "visit": "site_visit", "e_mail": "email"}


def lead_channel(value: Any) -> str | None:
    """'Walk-in' -> 'walk_in': the channel as stored on the lead."""
    text = v.text(value)
    if text is None:
        return None
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or None


def touchpoint_channel(channel: str | None) -> str:
    channel = CHANNEL_ALIASES.get(channel or "", channel)
    return channel if channel in TOUCHPOINT_CHANNELS else "form"


@mapping("manual", "leads", version=2)
def map_manual_lead(raw: dict[str, Any], ctx: MapContext) -> list[Row]:
    entered_at = v.timestamp(raw.get("entered_at"), "entered_at")
    if entered_at is None:
        raise Reject("entered_at is missing")
    person = {
        "email": v.email(raw.get("email")),
        "phone": v.phone(raw.get("phone"), ctx.options.get("default_region")),
        "display_name": v.text(raw.get("name"), 255),
        "company": v.text(raw.get("company"), 255),
    }
    channel = lead_channel(raw.get("channel"))
    answers = {"channel": channel, "entered_by": v.text(raw.get("entered_by"))}
    return lead_rows(
        external_id=str(raw["lead_id"]),
        submitted_at=entered_at,
        person=person,
        form=v.text(raw.get("form")),
        answers={k: val for k, val in answers.items() if val is not None} or None,
        note=v.text(raw.get("note")),
        channel=touchpoint_channel(channel),
    )


# What a rep logs with `crmhub touchpoint add`.
REP_CHANNELS = ("phone_call", "site_visit", "meeting")


@mapping("manual", "touchpoints", version=1)
def map_manual_touchpoint(raw: dict[str, Any], ctx: MapContext) -> list[Row]:
    """A logged call, visit or meeting -> source_person (who) + touchpoint."""
    occurred_at = v.timestamp(raw.get("occurred_at"), "occurred_at")
    if occurred_at is None:
        raise Reject("occurred_at is missing")
    channel = raw.get("channel")
    if channel not in REP_CHANNELS:
        raise Reject(f"channel {channel!r} is not one of {', '.join(REP_CHANNELS)}")
    email = v.email(raw.get("email"))
    phone = v.phone(raw.get("phone"), ctx.options.get("default_region"))
    if email is None and phone is None:
        raise Reject("neither email nor phone: the touchpoint names nobody")
    ref = f"touch:{raw['touchpoint_id']}"
    return [
        person_row(ref, seen_at=occurred_at, email=email, phone=phone),
        Row("touchpoint", {"external_id": str(raw["touchpoint_id"]), "person_ref": ref,
                           "occurred_at": occurred_at, "channel": channel, "note": v.text(raw.get("note"))}),
    ]
