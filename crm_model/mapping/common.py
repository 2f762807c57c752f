"""Row builders shared by mappings, so every form and shop lands leads/people alike."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from crm_model.mapping import Row
from crm_model.mapping import values as v

PERSON_FIELDS = (
    "display_name", "first_name", "last_name", "email", "phone", "company", "job_title",
    "street", "postal_code", "city", "region", "country", "birth_date",
)


# Person fields a question may ask for, recognised by its title (or ref), most specific first.
TITLE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("email", re.compile(r"\be-?mail\b")),
    ("phone", re.compile(r"\b(phone|mobile|telephone|cell)\b")),
    ("company", re.compile(r"\b(company|organi[sz]ation|employer)( name)?\W*$|"
                           r"\b(what|which|your) (company|organi[sz]ation|employer)\b")),
    ("job_title", re.compile(r"\b(job title|your role|your position)\b")),
    ("first_name", re.compile(r"\b(first|given) ?name\b")),
    ("last_name", re.compile(r"\b(last|family|sur) ?name\b")),
    ("display_name", re.compile(r"\byour (full )?name\b|\bfull name\b|^\W*name\W*$")),
)
# Typeform-style recall placeholders in question titles: {{field:full_name}}
RECALL = re.compile(r"\{\{\s*(?:field|hidden|var|variable):([^}]+?)\s*\}\}")


def person_field_for_title(title: str | None) -> str | None:
    """The person field a question asks for, judged by its title: 'Work email' -> 'email'."""
    text = RECALL.sub(" ", (title or "").lower().replace("_", " "))
    for name, pattern in TITLE_PATTERNS:
        if pattern.search(text):
            return name
    return None



def person_row(external_id: str, *, stage: str | None = None, seen_at: dt.datetime | None = None,
               **fields: Any) -> Row:
    """A ``source_person`` row; first/last/display names complete each other."""
    values = {k: val for k, val in fields.items() if val is not None}
    if "display_name" not in values and ("first_name" in values or "last_name" in values):
        full = v.join_name(values.get("first_name"), values.get("last_name"))
        if full:
            values["display_name"] = full
    if "display_name" in values and "first_name" not in values and "last_name" not in values:
        values["first_name"], values["last_name"] = v.split_name(values["display_name"])
    return Row("source_person", {"external_id": external_id, "lifecycle_stage": stage,
                                 "seen_at": seen_at, **values})


def lead_rows(
    *,
    external_id: str,
    submitted_at: dt.datetime | None,
    person: Mapping[str, Any],
    form: str | None = None,
    answers: Mapping[str, Any] | None = None,
    landing_page: str | None = None,
    referrer: str | None = None,
    tracking: Mapping[str, Any] | None = None,
    note: str | None = None,
    channel: str = "form",
    attributes: Mapping[str, Any] | None = None,
) -> list[Row]:
    """The rows a lead becomes: who (source_person), the lead, and its touchpoint.

    ``tracking`` holds utm_* and click ids (hidden fields, query parameters); what it
    lacks is taken from the landing page URL.
    """
    if not person.get("email") and not person.get("phone"):
        bad = [w.reason for w in v.current_warnings() if w.contact]
        if bad:  # the only way to reach this lead is broken: the lead is not usable
            raise v.Reject(f"{'; '.join(bad)} (the lead's only contact)")
    track = {**v.url_params(landing_page), **{k: val for k, val in (tracking or {}).items() if val}}
    person_ref = f"lead:{external_id}"
    utm = {k: v.text(track.get(k), 255) for k in v.UTM_KEYS}
    lead = {
        "external_id": external_id,
        "person_ref": person_ref,
        "form": v.text(form, 255),
        "submitted_at": submitted_at,
        **utm,
        "gclid": v.text(track.get("gclid"), 255),
        "fbclid": v.text(track.get("fbclid"), 255),
        "landing_page": v.text(landing_page),
        "referrer": v.text(referrer),
        "note": v.text(note),
        "answers": dict(answers) if answers else None,
    }
    touch = {
        "external_id": person_ref,
        "person_ref": person_ref,
        "occurred_at": submitted_at,
        "channel": channel,
        "utm_source": utm["utm_source"],
        "campaign_id": utm["utm_campaign"],
        "affiliate_site": v.host(referrer) if (utm["utm_medium"] or "").lower() in ("affiliate", "referral") else None,
        "url": v.text(landing_page),
    }
    return [
        person_row(person_ref, stage="lead", seen_at=submitted_at,
                   **({"attributes": dict(attributes)} if attributes else {}), **person),
        Row("lead", lead),
        Row("touchpoint", touch),
    ]
