"""Google Forms responses -> source_person + lead + touchpoint (via ``lead_rows``).

The connector hands each response with its form's questions (``raw["form"]``:
id, title, responderUri and ``questions`` = [{id, title, multiple?}] in form order):

- ``lead.answers`` is ``{question title: answer}``: a string, a list of strings
  for checkboxes (even one ticked box), file uploads as [{fileId, fileName, mimeType}].
- Every Google Forms answer is free text, so who the respondent is comes from the
  question titles ("Work email", "Phone number", "Full name", "Company", ...);
  ``respondentEmail`` (collected by the form itself) wins over a typed email.
- Questions titled exactly like a tracking parameter (utm_source, gclid, ...),
  usually filled through a pre-filled link, fill the lead's tracking columns.
- The lead is submitted at ``createTime`` (the first submit; an edit moves only
  ``lastSubmittedTime``), on the form's public page (``responderUri``).
- An invalid email or phone number rejects the response, naming the question.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crm_model.mapping import MapContext, Reject, Row, mapping
from crm_model.mapping import values as v
from crm_model.mapping.common import lead_rows, person_field_for_title

TRACKING = (*v.UTM_KEYS, *v.CLICK_IDS)


def answer_value(answer: Mapping[str, Any], multiple: bool = False) -> Any:
    """One answer as plain JSON: a string, a list of strings (checkboxes), or uploaded files."""
    if "textAnswers" in answer:
        values = [a.get("value") for a in (answer["textAnswers"] or {}).get("answers") or []]
        return values[0] if len(values) == 1 and not multiple else values
    if "fileUploadAnswers" in answer:
        return [{k: f.get(k) for k in ("fileId", "fileName", "mimeType")}
                for f in (answer["fileUploadAnswers"] or {}).get("answers") or []]
    raise Reject(f"answer to question {answer.get('questionId')!r} has neither textAnswers nor fileUploadAnswers")


@mapping("google_forms", "responses", version=1,
         label=lambda raw: f"Google Forms response {raw.get('responseId')}")
def map_response(raw: dict[str, Any], ctx: MapContext) -> list[Row]:
    form = raw.get("form") or {}
    submitted_at = v.timestamp(raw.get("createTime") or raw.get("lastSubmittedTime"), "createTime")
    if submitted_at is None:
        raise Reject("response has no createTime")

    given = raw.get("answers") or {}
    if not isinstance(given, Mapping):
        raise Reject("answers is not an object")
    questions = [q for q in form.get("questions") or [] if isinstance(q, Mapping)]
    titles = {q.get("id"): q.get("title") for q in questions}
    multiple = {q.get("id") for q in questions if q.get("multiple")}
    order = [*titles, *(qid for qid in given if qid not in titles)]  # questions deleted since: kept too

    answers: dict[str, Any] = {}
    tracking: dict[str, Any] = {}
    person: dict[str, Any] = {}
    if raw.get("respondentEmail"):
        person["email"] = v.email(raw["respondentEmail"], "respondentEmail")
    region = ctx.options.get("default_region")
    for qid in order:
        if qid not in given:
            continue
        title = str(titles.get(qid) or qid).strip()
        value = answer_value(given[qid], qid in multiple)
        if title.lower() in TRACKING:
            tracking[title.lower()] = v.text(value)
            continue
        answers[title if title not in answers else f"{title} ({qid})"] = value
        kind = person_field_for_title(title)
        if kind is None or kind in person or not isinstance(value, str):
            continue
        label = f"answer to {title!r}"
        if kind == "email":
            parsed = v.email(value, label)
        elif kind == "phone":
            parsed = v.phone(value, region, label)
        else:
            parsed = v.text(value, 255)
        if parsed is not None:
            person[kind] = parsed

    return lead_rows(
        external_id=f"{form.get('id')}:{raw.get('responseId')}",
        submitted_at=submitted_at,
        person=person,
        form=form.get("title") or form.get("id"),
        answers=answers,
        landing_page=v.text(form.get("responderUri")),
        tracking=tracking,
    )
