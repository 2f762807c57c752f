"""Google Ads rows (GAQL results as REST JSON, camelCase) -> campaign, ad_group, ad, ad_stat_daily, touchpoint.

One ad (``ad_group_ad.ad.id``) may serve in several ad groups: its daily metrics are kept
per (ad group, ad) in ``ad_stat_daily``, so neither ad group's day overwrites the other's.

int64 fields arrive as JSON strings ("costMicros": "1230000"); money is exact:
cost = cost_micros / 10^6 as a Decimal. conversions and conversions_value are doubles
in the API and are read through their shortest repr. A click (click_view) becomes an
``ad_click`` touchpoint keyed by its gclid, with no person yet: attribution
(sql/model/15_attribution.sql) gives it the person of the lead that carries the gclid.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from crm_model.mapping import MapContext, Reject, Row, mapping
from crm_model.mapping import values as v

PLATFORM = "google_ads"
# advertising_channel_type -> the warehouse's channel words
CHANNELS = {"SEARCH": "search", "DISPLAY": "display", "SHOPPING": "shopping", "VIDEO": "video",
            "PERFORMANCE_MAX": "performance_max", "DEMAND_GEN": "demand_gen", "DISCOVERY": "demand_gen",
            "MULTI_CHANNEL": "app", "SMART": "smart", "LOCAL": "local", "HOTEL": "hotel", "TRAVEL": "travel"}
MICROS = Decimal(10) ** 6


def _part(raw: dict[str, Any], *path: str) -> Any:
    value: Any = raw
    for name in path:
        value = value.get(name) if isinstance(value, dict) else None
    return value


def _required(raw: dict[str, Any], *path: str) -> str:
    value = v.text(_part(raw, *path))
    if value is None:
        raise Reject(f"{'.'.join(path)} is missing")
    return value


def channel(value: Any) -> str | None:
    text = v.text(value)
    return CHANNELS.get(text, text.lower()) if text else None


def status(value: Any) -> str | None:
    text = v.text(value, 32)
    return text.lower() if text else None


def micros(value: Any, field: str) -> Decimal | None:
    amount = v.decimal(value, field)
    return None if amount is None else amount / MICROS


@mapping(PLATFORM, "campaigns", version=1)
def map_campaign(raw: dict[str, Any], ctx: MapContext) -> list[Row]:
    return [Row("campaign", {
        "platform": PLATFORM,
        "campaign_id": _required(raw, "campaign", "id"),
        "name": v.text(_part(raw, "campaign", "name"), 255),
        "status": status(_part(raw, "campaign", "status")),
        "channel": channel(_part(raw, "campaign", "advertisingChannelType")),
    })]


@mapping(PLATFORM, "ads", version=2)
def map_ad(raw: dict[str, Any], ctx: MapContext) -> list[Row]:
    """One ad_group_ad row -> its ad group and its ad."""
    ad_id = _required(raw, "adGroupAd", "ad", "id")
    campaign_id = _required(raw, "campaign", "id")
    group_id = _required(raw, "adGroup", "id")
    group = v.text(_part(raw, "adGroup", "name"))
    name = v.text(_part(raw, "adGroupAd", "ad", "name"), 255)
    if name is None:  # search ads have no name of their own: say which ad group holds them
        name = v.text(f"{group} / ad {ad_id}" if group else None, 255)
    return [
        Row("ad_group", {
            "platform": PLATFORM,
            "ad_group_id": group_id,
            "campaign_id": campaign_id,
            "name": v.text(group, 255),
            "status": status(_part(raw, "adGroup", "status")),
        }),
        Row("ad", {
            "platform": PLATFORM,
            "ad_id": ad_id,
            "campaign_id": campaign_id,
            "ad_group_id": group_id,
            "name": name,
            "status": status(_part(raw, "adGroupAd", "status")),
            "channel": channel(_part(raw, "campaign", "advertisingChannelType")),
        }),
    ]


@mapping(PLATFORM, "ad_stats", version=2)
def map_ad_stat(raw: dict[str, Any], ctx: MapContext) -> list[Row]:
    metrics = raw.get("metrics") if isinstance(raw.get("metrics"), dict) else {}
    day = v.date(_part(raw, "segments", "date"), "segments.date")
    if day is None:
        raise Reject("segments.date is missing")
    return [Row("ad_stat_daily", {
        "platform": PLATFORM,
        "campaign_id": _required(raw, "campaign", "id"),
        "ad_group_id": _required(raw, "adGroup", "id"),
        "ad_id": _required(raw, "adGroupAd", "ad", "id"),
        "date": day,
        "impressions": v.integer(metrics.get("impressions", 0), "metrics.impressions"),
        "clicks": v.integer(metrics.get("clicks", 0), "metrics.clicks"),
        "cost": micros(metrics.get("costMicros", 0), "metrics.costMicros"),
        "currency": v.currency(_part(raw, "customer", "currencyCode"), "customer.currencyCode"),
        "conversions": v.decimal(metrics.get("conversions", 0), "metrics.conversions"),
        "conversion_value": v.decimal(metrics.get("conversionsValue", 0), "metrics.conversionsValue"),
    })]


def ad_of(resource_name: Any) -> str | None:
    """'customers/1/adGroupAds/22~333' -> '333'."""
    text = v.text(resource_name)
    if not text or "~" not in text:
        return None
    return text.rsplit("~", 1)[1] or None


def ad_group_of(resource_name: Any) -> str | None:
    """'customers/1/adGroupAds/22~333' -> '22'."""
    text = v.text(resource_name)
    if not text or "~" not in text:
        return None
    return text.rsplit("~", 1)[0].rsplit("/", 1)[-1] or None


@mapping(PLATFORM, "clicks", version=2)
def map_click(raw: dict[str, Any], ctx: MapContext) -> list[Row]:
    gclid = _required(raw, "clickView", "gclid")
    day = v.date(_part(raw, "segments", "date"), "segments.date")
    return [Row("touchpoint", {
        "external_id": f"gclid:{gclid}"[:255],
        "occurred_at": dt.datetime.combine(day, dt.time(), dt.UTC) if day else None,
        "channel": "ad_click",
        "utm_source": "google",
        "campaign_id": v.text(_part(raw, "campaign", "id"), 255),
        "ad_group_id": v.text(_part(raw, "adGroup", "id"), 255) or ad_group_of(_part(raw, "clickView", "adGroupAd")),
        "ad_id": ad_of(_part(raw, "clickView", "adGroupAd")),
        "click_id": gclid[:255],
        "ad_platform": PLATFORM,
    })]
