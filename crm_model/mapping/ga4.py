"""GA4 report rows -> web_traffic_daily.

Dates come as YYYYMMDD; metric values as strings. GA4's "(not set)" campaign is stored
as '' (the key column's "none"); "(direct)" / "(none)" sources and mediums stay as GA4 says.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from crm_model.mapping import MapContext, Reject, Row, mapping
from crm_model.mapping import values as v


def ga4_date(value: Any) -> dt.date:
    text = v.text(value)
    try:
        return dt.datetime.strptime(text or "", "%Y%m%d").date()
    except ValueError:
        raise Reject(f"date: {value!r} is not a GA4 date (YYYYMMDD)") from None


@mapping("ga4", "traffic", version=1)
def map_traffic(raw: dict[str, Any], ctx: MapContext) -> list[Row]:
    campaign = v.text(raw.get("sessionCampaignName"), 255) or ""
    return [Row("web_traffic_daily", {
        "property_id": v.text(raw.get("property_id"), 64),
        "date": ga4_date(raw.get("date")),
        "source": v.text(raw.get("sessionSource"), 255) or "",
        "medium": v.text(raw.get("sessionMedium"), 255) or "",
        "campaign": "" if campaign == "(not set)" else campaign,
        "landing_page": v.text(raw.get("landingPage"), 1024) or "",
        "sessions": v.integer(raw.get("sessions") or 0, "sessions"),
        "engaged_sessions": v.integer(raw.get("engagedSessions") or 0, "engagedSessions"),
        "conversions": v.decimal(raw.get("conversions") or 0, "conversions"),
    })]
