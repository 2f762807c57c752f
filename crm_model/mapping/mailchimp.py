"""Mailchimp campaigns -> campaign; opens and clicks -> touchpoint (email_open / email_click).

A recipient becomes a ``source_person`` keyed ``email:<address>`` (no lifecycle stage of its
own), so identity resolution links the touch to the person with that email elsewhere.
"""

from __future__ import annotations

from typing import Any

from crm_model.mapping import MapContext, Reject, Row, mapping
from crm_model.mapping import values as v
from crm_model.mapping.common import person_row

PLATFORM = "mailchimp"
CHANNELS = {"open": "email_open", "click": "email_click"}


@mapping(PLATFORM, "campaigns", version=1)
def map_campaign(raw: dict[str, Any], ctx: MapContext) -> list[Row]:
    campaign_id = v.text(raw.get("id"), 255)
    if campaign_id is None:
        raise Reject("id is missing")
    settings = raw.get("settings") if isinstance(raw.get("settings"), dict) else {}
    return [Row("campaign", {
        "platform": PLATFORM, "campaign_id": campaign_id,
        "name": v.text(settings.get("title") or settings.get("subject_line"), 255),
        "status": v.text(raw.get("status"), 32), "channel": "email",
    })]


@mapping(PLATFORM, "email_activity", version=1)
def map_activity(raw: dict[str, Any], ctx: MapContext) -> list[Row]:
    channel = CHANNELS.get(raw.get("action") or "")
    if channel is None:
        raise Reject(f"action {raw.get('action')!r} is not an open or a click")
    email = v.email(raw.get("email_address"), "email_address")
    if email is None:
        raise Reject("email_address is missing")
    at = v.timestamp(raw.get("timestamp"), "timestamp")
    ref = f"email:{email}"
    key = f"{raw.get('campaign_id')}:{raw.get('email_id')}:{raw.get('action')}:{raw.get('timestamp')}"
    return [
        person_row(ref, seen_at=at, email=email),
        Row("touchpoint", {
            "external_id": key[:255], "person_ref": ref, "occurred_at": at, "channel": channel,
            "utm_source": PLATFORM, "campaign_id": v.text(raw.get("campaign_id"), 255),
            "ad_platform": PLATFORM, "url": v.text(raw.get("url")),
        }),
    ]
