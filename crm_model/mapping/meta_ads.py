"""Meta Marketing API records -> campaign, ad_group (ad sets), ad, ad_stat_daily.

The ad set is Meta's ad group level: ``ad_group_id`` is the ``adset_id`` (an ad is in
exactly one ad set).

Insights numbers are JSON strings ("spend": "12.34", in the account currency, exact);
conversions are the sum of ``actions[].value`` whose ``action_type`` is one of the
source's ``conversion_action_types``, their value the same sum over ``action_values``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from crm_model.mapping import MapContext, Reject, Row, mapping
from crm_model.mapping import values as v

PLATFORM = "meta_ads"
DEFAULT_ACTION_TYPES = ("lead", "offsite_conversion.fb_pixel_purchase")


def _required(raw: dict[str, Any], name: str) -> str:
    value = v.text(raw.get(name))
    if value is None:
        raise Reject(f"{name} is missing")
    return value


def status(raw: dict[str, Any]) -> str | None:
    text = v.text(raw.get("effective_status") or raw.get("status"), 32)
    return text.lower() if text else None


def action_sum(actions: Any, types: tuple[str, ...] | list[str], field: str) -> Decimal:
    total = Decimal(0)
    for action in actions if isinstance(actions, list) else []:
        if isinstance(action, dict) and action.get("action_type") in types:
            total += v.decimal(action.get("value"), f"{field}[{action.get('action_type')}]") or 0
    return total


@mapping(PLATFORM, "campaigns", version=1)
def map_campaign(raw: dict[str, Any], ctx: MapContext) -> list[Row]:
    return [Row("campaign", {"platform": PLATFORM, "campaign_id": _required(raw, "id"),
                             "name": v.text(raw.get("name"), 255), "status": status(raw), "channel": "social"})]


@mapping(PLATFORM, "adsets", version=1)
def map_adset(raw: dict[str, Any], ctx: MapContext) -> list[Row]:
    return [Row("ad_group", {"platform": PLATFORM, "ad_group_id": _required(raw, "id"),
                             "campaign_id": v.text(raw.get("campaign_id"), 255), "name": v.text(raw.get("name"), 255),
                             "status": status(raw)})]


@mapping(PLATFORM, "ads", version=2)
def map_ad(raw: dict[str, Any], ctx: MapContext) -> list[Row]:
    return [Row("ad", {"platform": PLATFORM, "ad_id": _required(raw, "id"),
                       "campaign_id": v.text(raw.get("campaign_id"), 255),
                       "ad_group_id": v.text(raw.get("adset_id"), 255), "name": v.text(raw.get("name"), 255),
                       "status": status(raw), "channel": "social"})]


@mapping(PLATFORM, "insights", version=2)
def map_insight(raw: dict[str, Any], ctx: MapContext) -> list[Row]:
    types = tuple(ctx.options.get("conversion_action_types") or DEFAULT_ACTION_TYPES)
    day = v.date(raw.get("date_start"), "date_start")
    if day is None:
        raise Reject("date_start is missing")
    return [Row("ad_stat_daily", {
        "platform": PLATFORM,
        "campaign_id": _required(raw, "campaign_id"),
        "ad_group_id": _required(raw, "adset_id"),
        "ad_id": _required(raw, "ad_id"),
        "date": day,
        "impressions": v.integer(raw.get("impressions") or 0, "impressions"),
        "clicks": v.integer(raw.get("clicks") or 0, "clicks"),
        "cost": v.decimal(raw.get("spend") or 0, "spend"),
        "currency": v.currency(raw.get("account_currency"), "account_currency"),
        "conversions": action_sum(raw.get("actions"), types, "actions"),
        "conversion_value": action_sum(raw.get("action_values"), types, "action_values"),
    })]
