"""Meta lead ads -> source_person + lead + touchpoint, the lead carrying its ad.

``field_data`` is ``[{"name": "email", "values": ["ada@example.com"]}, ...]``. Meta's
standard question keys (email, full_name, first_name, last_name, phone_number,
company_name, job_title, street_address, city, state, zip_code/post_code, country) fill
the person; every answer is kept in ``lead.answers``. A paid lead (``ad_id`` set, not
``is_organic``) is attributed by rule ``lead_ad`` to its campaign and ad on meta_ads.
"""

from __future__ import annotations

from typing import Any

from crm_model.mapping import MapContext, Reject, Row, mapping
from crm_model.mapping import values as v
from crm_model.mapping.common import lead_rows

PERSON_KEYS = {
    "email": "email", "full_name": "display_name", "first_name": "first_name", "last_name": "last_name",
    "phone_number": "phone", "company_name": "company", "job_title": "job_title",
    "street_address": "street", "city": "city", "state": "region", "province": "region",
    "zip_code": "postal_code", "post_code": "postal_code", "country": "country",
}


def answers_of(field_data: Any) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for item in field_data if isinstance(field_data, list) else []:
        if not isinstance(item, dict) or not item.get("name"):
            continue
        values = item.get("values") if isinstance(item.get("values"), list) else []
        answers[str(item["name"])] = values[0] if len(values) == 1 else values
    return answers


@mapping("meta_leads", "leads", version=2)
def map_lead(raw: dict[str, Any], ctx: MapContext) -> list[Row]:
    lead_id = v.text(raw.get("id"))
    if lead_id is None:
        raise Reject("id is missing")
    submitted_at = v.timestamp(raw.get("created_time"), "created_time")
    if submitted_at is None:
        raise Reject("created_time is missing")
    answers = answers_of(raw.get("field_data"))
    person: dict[str, Any] = {}
    for key, value in answers.items():
        name = PERSON_KEYS.get(key.lower())
        if name is None or isinstance(value, list):
            continue
        if name == "email":
            person[name] = v.email(value, f"field_data {key}")
        elif name == "phone":
            person[name] = v.phone(value, ctx.options.get("default_region"), f"field_data {key}")
        elif name == "country":
            try:
                person[name] = v.country(value, f"field_data {key}")
            except Reject:
                continue  # an unknown country is a detail, not a reason to lose the lead
        else:
            person[name] = v.text(value, 255)
    rows = lead_rows(external_id=lead_id, submitted_at=submitted_at, person=person,
                     form=v.text(raw.get("form_id")), answers=answers or None,
                     tracking={"utm_source": "facebook" if raw.get("platform") != "ig" else "instagram",
                               "utm_medium": "paid_social" if raw.get("ad_id") else "social",
                               "utm_campaign": v.text(raw.get("campaign_name"))})
    ad_id = v.text(raw.get("ad_id"), 255)
    if ad_id and not raw.get("is_organic"):
        attribution = {"ad_platform": "meta_ads", "campaign_id": v.text(raw.get("campaign_id"), 255),
                       "ad_group_id": v.text(raw.get("adset_id"), 255), "ad_id": ad_id}
        for row in rows:
            if row.table == "lead":
                row.values.update(attribution, attribution_rule="lead_ad")
            elif row.table == "touchpoint":
                row.values.update(attribution)
    return rows
