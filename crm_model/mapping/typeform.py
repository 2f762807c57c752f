"""Typeform responses -> source_person + lead + touchpoint (via ``lead_rows``).

The connector hands each response with its form's questions (``raw["form"]``:
id, title and the fields flattened in form order), so this mapping needs no API:

- ``lead.answers`` is ``{question title: answer}``; recall placeholders in titles
  (``{{field:full_name}}``) become ``[full_name]`` so a question has one key for
  every respondent; parts of a contact_info question are "<question> - <part>".
  Hidden fields other than utm_* and click ids are kept as ``hidden.<name>``.
- Who the respondent is comes from the form's questions, never from answer order:
  the first email-type (phone_number-type) question, else a text question whose
  title says "email" ("phone"); names, company and job title by title. A
  contact_info question counts only on forms that ask for no email, phone or name
  elsewhere; otherwise it is about someone else ("Who else should we loop in?").
- utm_* and gclid/fbclid come from hidden fields, else from ``metadata.referer``
  (the page the form was opened on, which is the landing page); a hidden field
  named ``referrer`` fills ``lead.referrer``.
- An invalid email or phone number rejects the response, naming the question.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from crm_model.mapping import MapContext, Reject, Row, mapping
from crm_model.mapping import values as v
from crm_model.mapping.common import RECALL, lead_rows, person_field_for_title

# Question types that already say what they ask for.
TYPED = {"email": "email", "phone_number": "phone"}
# contact_info parts (subfield_key) -> person field.
SUBFIELDS = {"first_name": "first_name", "last_name": "last_name", "email": "email",
             "phone_number": "phone", "company": "company"}
TEXT_TYPES = {"short_text", "long_text"}
PART_GROUPS = {"contact_info", "matrix", "address"}  # groups whose children are parts of one question


def question_title(field: Mapping[str, Any]) -> str:
    title = _readable(field.get("title") or field.get("ref") or field.get("id") or "?")
    if field.get("group_type") in PART_GROUPS and field.get("group"):
        return f"{_readable(field['group'])} - {title}"
    return title


def _readable(title: Any) -> str:
    return RECALL.sub(r"[\1]", str(title)).strip()


def answer_value(answer: Mapping[str, Any]) -> Any:
    """An answer's value as plain JSON: text, number, bool, a choice label or a list of labels."""
    kind = answer.get("type")
    value = answer.get(kind) if isinstance(kind, str) else None
    if kind == "choice" and isinstance(value, Mapping):
        return value.get("label") if value.get("label") is not None else value.get("other")
    if kind == "choices" and isinstance(value, Mapping):
        labels = list(value.get("labels") or [])
        return labels + [value["other"]] if value.get("other") else labels
    return value


def person_questions(fields: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Person field -> id of the question that asks for the respondent's own value."""
    typed: dict[str, str] = {}
    titled: dict[str, str] = {}
    parts: dict[str, str] = {}
    for field in fields:
        field_id, kind = field.get("id"), field.get("type")
        if not field_id:
            continue
        if field.get("group_type") == "contact_info":
            name = SUBFIELDS.get(field.get("subfield_key") or "")
            if name:
                parts.setdefault(name, field_id)
        elif field.get("group_type") in PART_GROUPS:
            continue
        elif kind in TYPED:
            typed.setdefault(TYPED[kind], field_id)
        elif kind in TEXT_TYPES:
            name = person_field_for_title(field.get("title")) or person_field_for_title(field.get("ref"))
            if name:
                titled.setdefault(name, field_id)
    picked = {**titled, **typed}  # a typed email question beats a text question titled "email"
    if any(k in picked for k in ("email", "phone", "display_name", "first_name", "last_name")):
        return picked  # the form asks who you are elsewhere: its contact_info is about someone else
    return {**parts, **picked}


@mapping("typeform", "responses", version=1,
         label=lambda raw: f"Typeform response {raw.get('response_id') or raw.get('token')}")
def map_response(raw: dict[str, Any], ctx: MapContext) -> list[Row]:
    form = raw.get("form") or {}
    fields = [f for f in form.get("fields") or [] if isinstance(f, Mapping)]
    submitted_at = v.timestamp(raw.get("submitted_at"), "submitted_at")
    if submitted_at is None or submitted_at.year <= 1:
        raise Reject("response was never submitted (no submitted_at)")

    given: dict[str, Any] = {}
    for answer in raw.get("answers") or []:
        field_id = (answer.get("field") or {}).get("id") if isinstance(answer, Mapping) else None
        if field_id is None:
            raise Reject("an answer names no field id")
        given[field_id] = answer_value(answer)

    answers: dict[str, Any] = {}
    known = {f.get("id"): f for f in fields}
    for field in [*fields, *({"id": i} for i in given if i not in known)]:  # deleted questions too
        if field.get("id") in given:
            title = question_title(field)
            if title in answers:  # two questions with one title: the ref tells them apart
                title = f"{title} ({field.get('ref') or field.get('id')})"
            answers[title] = given[field["id"]]

    hidden = raw.get("hidden") if isinstance(raw.get("hidden"), Mapping) else {}
    tracked = (*v.UTM_KEYS, *v.CLICK_IDS, "referrer")
    for name, value in hidden.items():
        if name not in tracked and v.text(value) is not None:
            answers[f"hidden.{name}"] = value

    person = respondent(fields, given, ctx.options.get("default_region"))
    metadata = raw.get("metadata") if isinstance(raw.get("metadata"), Mapping) else {}
    return lead_rows(
        external_id=f"{form.get('id')}:{raw.get('token')}",
        submitted_at=submitted_at,
        person=person,
        form=form.get("title") or form.get("id"),
        answers=answers,
        landing_page=v.text(metadata.get("referer")),
        referrer=v.text(hidden.get("referrer")),
        tracking={k: v.text(hidden.get(k)) for k in (*v.UTM_KEYS, *v.CLICK_IDS)},
    )


def respondent(fields: list[Mapping[str, Any]], given: Mapping[str, Any], region: str | None) -> dict[str, Any]:
    """The respondent's person fields, parsed; a bad email or phone rejects the response."""
    titles = {f.get("id"): question_title(f) for f in fields}
    person: dict[str, Any] = {}
    for name, field_id in person_questions(fields).items():
        value = given.get(field_id)
        if value is None:
            continue
        label = f"answer to {titles[field_id]!r}"
        if name == "email":
            person["email"] = v.email(value, label)
        elif name == "phone":
            person["phone"] = v.phone(value, region, label)
        else:
            person[name] = v.text(value, 255)
    return person
