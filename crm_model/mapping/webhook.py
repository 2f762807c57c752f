"""Form webhook submissions -> source_person + lead + touchpoint (via ``lead_rows``).

A submission record (``connectors.webhook``) is the body as posted plus ``form``,
``submission_id``, ``received_at``, ``format`` (json, form or typeform) and the
``referer`` header. Websites name their fields as they like, so people are found
by common field names (case, spaces and dashes do not matter):

- email: email, e_mail, email_address, mail, work_email
- name: name, full_name, your_name, contact_name; first_name/firstname/given_name;
  last_name/lastname/surname/family_name
- phone: phone, tel, telephone, phone_number, mobile; company, organisation, job_title
- utm_* and gclid/fbclid fields, else the landing page URL's query string
- landing page: a page_url/landing_page/page/url field, else the Referer header;
  referrer: a referrer/document_referrer field; time: a submitted_at field, else
  when crmhub received it

Where several names for one thing are filled, the first in the lists above wins; the
others stay in ``lead.answers`` with every other non-empty field, under its name as
posted. An invalid email or phone number rejects the submission (quarantined with the
field's name); a filled honeypot rejects it as spam. Typeform webhook bodies are
mapped exactly like responses pulled by the typeform connector.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from crm_model.mapping import MapContext, Reject, Row, mapping
from crm_model.mapping import values as v
from crm_model.mapping.common import lead_rows

# Person field -> field names that hold it, in order of preference (normalised: see _norm).
PERSON_FIELDS: dict[str, tuple[str, ...]] = {
    "email": ("email", "e_mail", "email_address", "mail", "work_email"),
    "display_name": ("name", "full_name", "fullname", "your_name", "contact_name"),
    "first_name": ("first_name", "firstname", "given_name", "fname"),
    "last_name": ("last_name", "lastname", "surname", "family_name", "lname"),
    "phone": ("phone", "tel", "telephone", "phone_number", "mobile", "mobile_phone"),
    "company": ("company", "company_name", "organisation", "organization"),
    "job_title": ("job_title", "jobtitle", "position"),
}
PAGE_FIELDS = ("page_url", "landing_page", "page", "url", "page_location")
REFERRER_FIELDS = ("referrer", "referer", "document_referrer")
TIME_FIELDS = ("submitted_at",)
ID_FIELDS = ("submission_id", "id")


def _norm(name: str) -> str:
    """'E-Mail' -> 'e_mail', 'First Name' -> 'first_name'."""
    return re.sub(r"[^a-z0-9]+", "_", str(name).lower()).strip("_")


def _blank(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_blank(item) for item in value)
    if isinstance(value, dict):
        return not value
    return value is None or (isinstance(value, str) and not value.strip())


def _single(value: Any, name: str) -> Any:
    """One value of a field that must have one (a repeated form field is a list)."""
    if isinstance(value, (list, tuple)):
        filled = [item for item in value if not _blank(item)]
        if len(filled) > 1:
            raise Reject(f"{name}: several values {filled!r}, expected one")
        return filled[0] if filled else None
    if isinstance(value, dict):
        raise Reject(f"{name}: expected a single value, got an object")
    return value


@mapping("webhook", "submissions", version=1,
         label=lambda raw: f"submission {raw.get('form')}:{raw.get('submission_id')}")
def map_submission(raw: dict[str, Any], ctx: MapContext) -> list[Row]:
    if raw.get("unreadable"):  # connectors.webhook.unstorable: the body is kept as text
        raise Reject(f"unstorable value, body kept as text in body_text: {str(raw['unreadable'])[:200]}")
    if raw.get("honeypot"):
        raise Reject(f"honeypot: the hidden field {raw['honeypot']!r} was filled in (spam)")
    if raw.get("format") == "typeform":
        return _typeform(raw, ctx)
    body = raw.get("body")
    if not isinstance(body, Mapping):
        raise Reject("submission has no body of fields")
    region = ctx.options.get("default_region")
    # the first field of each normalised name; a second spelling stays in the answers
    by_name: dict[str, str] = {}
    for name in body:
        by_name.setdefault(_norm(name), name)
    used: set[str] = set()

    def take(candidates: tuple[str, ...]) -> tuple[str, Any] | tuple[None, None]:
        for candidate in candidates:
            name = by_name.get(candidate)
            if name is not None and not _blank(body[name]):
                used.add(name)
                return name, _single(body[name], name)
        return None, None

    person: dict[str, Any] = {}
    for target, candidates in PERSON_FIELDS.items():
        name, value = take(candidates)
        if name is None:
            continue
        if target == "email":
            person[target] = v.email(value, name)
        elif target == "phone":
            person[target] = v.phone(value, region, name)
        else:
            person[target] = v.text(value, 255)

    tracking = {key: v.text(take((key,))[1]) for key in (*v.UTM_KEYS, *v.CLICK_IDS)}
    _, page = take(PAGE_FIELDS)
    _, referrer = take(REFERRER_FIELDS)
    time_field, submitted = take(TIME_FIELDS)
    for name in ID_FIELDS:  # the submission's id is its key, not an answer
        if name in body and str(body[name]).strip() == str(raw.get("submission_id")):
            used.add(name)
    answers = {name: value for name, value in body.items() if name not in used and not _blank(value)}

    return lead_rows(
        external_id=f"{raw['form']}:{raw['submission_id']}",
        submitted_at=(v.timestamp(submitted, time_field) if submitted is not None
                      else v.timestamp(raw.get("received_at"), "received_at")),
        person=person,
        form=raw.get("form"),
        answers=answers or None,
        landing_page=v.text(page) or v.text(raw.get("referer")),
        referrer=v.text(referrer),
        tracking=tracking,
    )


def _typeform(raw: dict[str, Any], ctx: MapContext) -> list[Row]:
    """A Typeform webhook body, as the typeform mapping reads a pulled response."""
    # The typeform connector and mapping own what a Typeform response means; a webhook
    # carries the same response plus the form's definition, so it maps the same way.
    from connectors.typeform import form_summary
    from crm_model.mapping.typeform import map_response

    response = (raw.get("body") or {}).get("form_response")
    if not isinstance(response, Mapping):
        raise Reject("typeform webhook without a form_response")
    definition = response.get("definition") if isinstance(response.get("definition"), Mapping) else {}
    form_id = response.get("form_id") or definition.get("id")
    return map_response({**response, "form": form_summary(form_id, dict(definition))}, ctx)
