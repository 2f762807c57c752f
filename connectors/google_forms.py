"""Google Forms: form responses, as leads, through the Google Forms API v1.

    sources:
      demo_requests:
        connector: google_forms
        start_date: 2026-01-01
        config:
          forms: [1vQ7xR2mK9pL4nT8sW3yB6cD0fG5hJ1kZ8aE2uI7oPq4]   # from /forms/d/<id>/edit
          credentials_file: secrets/forms-reader.json  # service account or authorized-user JSON
          default_region: US                           # for phone answers without +<code>

Credentials (exactly one):
- ``credentials_file``: a service-account key (share each form with the service
  account's email; ``subject`` impersonates a Workspace user with domain-wide
  delegation) or an authorized-user file (OAuth client id/secret + refresh token,
  as ``gcloud auth application-default login`` writes). Relative paths start at
  crmhub.yml's folder. Scopes: forms.body.readonly and forms.responses.readonly.
- ``access_token``: a short-lived OAuth access token (an Airflow connection or a
  secrets manager that hands out tokens); it is sent as is and never refreshed.

The client is google-api-python-client with its bundled discovery document (no
network call for discovery). Each form's definition (``forms.get``) gives the
question titles, which travel with every response (``record["form"]``) so the
mapping keys answers by title and `crmhub model` can re-map without the API.
Responses are listed with ``filter=timestamp >= <watermark>`` (the newest
``lastSubmittedTime`` read from that form), page after page; the response at the
watermark comes back and is upserted by (form id, responseId), and so does a
response edited since (its ``lastSubmittedTime`` moves). Watermarks are stored
only when every form was read to its end.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator

from connectors.sdk import (
    Connector,
    HttpConfig,
    SourceError,
    StreamState,
    paginate,
    stream,
)
from connectors.sdk.google import execute, google_credentials, google_service
from connectors.sdk.streams import Record

FORMS_API = "https://forms.googleapis.com/"
SCOPES = (
    "https://www.googleapis.com/auth/forms.body.readonly",
    "https://www.googleapis.com/auth/forms.responses.readonly",
)
HINTS = {
    400: "the request was refused: check the form ids in the config",
    401: "the credentials were refused (an expired access_token, or a revoked key): renew them",
    403: ("access denied: share the form with the service account's email (or use an account that can "
          "edit it), grant the scopes forms.body.readonly and forms.responses.readonly, and enable the "
          "Google Forms API in the Cloud project"),
    404: "not found: use the form id from the form's edit URL (/forms/d/<id>/edit), not the /viewform one",
    429: "the Forms API quota is used up: sync less often or raise the quota",
}
RFC3339_ZULU = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z$")


class GoogleFormsConfig(HttpConfig):
    base_url: str = FORMS_API
    forms: list[str] = Field(min_length=1, description="Form ids (from each form's edit URL).")
    credentials_file: str | None = Field(None, description="Service-account or authorized-user JSON file.")
    access_token: SecretStr | None = Field(None, description="A short-lived OAuth access token, used as is.")
    subject: str | None = Field(None, description="Workspace user a service account acts for (domain-wide delegation).")
    page_size: int | None = Field(None, ge=1, description="Responses per request (Google's default: up to 5000).")
    default_region: str | None = Field(None, description="Country for phone numbers without +code, e.g. US.")

    @field_validator("forms")
    @classmethod
    def _form_ids(cls, value: list[str]) -> list[str]:
        for form_id in value:
            if not re.fullmatch(r"[A-Za-z0-9_-]+", form_id):
                raise ValueError(f"{form_id!r} is not a form id (the part after /forms/d/ in the edit URL)")
        if len(set(value)) != len(value):
            raise ValueError("a form id is listed twice")
        return value

    @model_validator(mode="after")
    def _one_credential(self) -> GoogleFormsConfig:
        if (self.credentials_file is None) == (self.access_token is None):
            raise ValueError("set exactly one of credentials_file and access_token")
        if self.subject and not self.credentials_file:
            raise ValueError("subject needs a service-account credentials_file")
        return self


class GoogleFormsConnector(Connector):
    Config = GoogleFormsConfig
    config: GoogleFormsConfig
    mapping_options = ("default_region",)

    def __init__(self, config: GoogleFormsConfig, **kw: Any):
        super().__init__(config, **kw)
        self._service: Any = None

    @property
    def service(self) -> Any:
        """The Forms API client, built on first use (reads the credentials file then)."""
        if self._service is None:
            self._service = google_service("forms", "v1", self.credentials(), who="google_forms",
                                           config=self.config)
        return self._service

    def credentials(self) -> Any:
        cfg = self.config
        return google_credentials("google_forms", access_token=cfg.access_token, credentials_file=cfg.credentials_file,
                                  subject=cfg.subject, scopes=SCOPES, base_dir=self.base_dir)

    @stream(primary_key=("form.id", "responseId"), cursor="lastSubmittedTime")
    def responses(self, state: StreamState) -> Iterator[list[Record]]:
        """Responses of every configured form last submitted at or after that form's watermark."""
        watermarks: dict[str, str] = dict(state.saved.get("forms", {}))
        for form_id in self.config.forms:
            definition = self._execute(self.service.forms().get(formId=form_id), "reading form", form_id)
            form = form_summary(form_id, definition)
            newest = watermarks.get(form_id)
            for page in self._pages(form_id, self._filter(watermarks.get(form_id), state)):
                for response in page:
                    newest = later(newest, response.get("lastSubmittedTime"))
                yield [{**response, "form": form} for response in page]
            if newest:
                watermarks[form_id] = newest
        # Reached only when every form was read to its end: the watermarks may move now.
        if watermarks:
            return {"cursor": max(watermarks.values(), key=time_key), "forms": watermarks}
        return None

    def _filter(self, watermark: str | None, state: StreamState) -> str | None:
        if watermark:
            return f"timestamp >= {watermark}"
        if state.start_date:
            return f"timestamp >= {start_of(state.start_date)}"
        return None

    def _pages(self, form_id: str, filter_: str | None) -> Iterator[list[Record]]:
        def fetch(page_token: str | None) -> tuple[list[Record], str | None]:
            request = self.service.forms().responses().list(
                formId=form_id, filter=filter_, pageSize=self.config.page_size, pageToken=page_token)
            body = self._execute(request, "listing responses of form", form_id)
            responses = body.get("responses", [])  # proto3 JSON leaves out an empty list
            if not isinstance(responses, list):
                raise SourceError(f"google_forms: form {form_id}: 'responses' is not a list")
            return responses, body.get("nextPageToken")

        yield from paginate(fetch, what=f"google_forms form {form_id} responses")

    def _execute(self, request: Any, what: str, form_id: str) -> dict[str, Any]:
        return execute(request, who="google_forms", what=f"{what} {form_id}", retries=self.config.max_retries,
                       hints=HINTS, credentials=self.config.credentials_file)

    def close(self) -> None:
        if self._service is not None:
            self._service.close()
            self._service = None


def form_summary(form_id: str, definition: dict[str, Any]) -> dict[str, Any]:
    """What the mapping needs of a form: title, the page it is filled on, its questions in order."""
    info = definition.get("info") or {}
    return {
        "id": form_id,
        "title": info.get("title") or info.get("documentTitle"),
        "responderUri": definition.get("responderUri"),
        "questions": list(_questions(definition.get("items") or [])),
    }


def _questions(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Each question's id and title (a grid row is "Grid [Row]"); ``multiple`` for checkboxes."""
    for item in items:
        title = item.get("title") or ""
        single = (item.get("questionItem") or {}).get("question") or {}
        if single.get("questionId"):
            yield _question(single, title or single["questionId"])
        group = item.get("questionGroupItem") or {}
        for row in group.get("questions") or []:
            if row.get("questionId"):
                row_title = (row.get("rowQuestion") or {}).get("title") or row["questionId"]
                question = _question(row, f"{title} [{row_title}]" if title else row_title)
                if (group.get("grid") or {}).get("columns", {}).get("type") == "CHECKBOX":
                    question["multiple"] = True  # a checkbox grid: several columns per row
                yield question


def _question(question: dict[str, Any], title: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": question["questionId"], "title": title}
    if (question.get("choiceQuestion") or {}).get("type") == "CHECKBOX":
        entry["multiple"] = True  # answers are a list, even when one box is ticked
    return entry


def time_key(value: str) -> tuple[str, str]:
    """A sort key for RFC3339 Zulu times with 0-9 fractional digits (finer than datetime)."""
    match = RFC3339_ZULU.match(value)
    if not match:
        raise ValueError(f"{value!r} is not an RFC 3339 UTC time")
    return match.group(1), (match.group(2) or "").ljust(9, "0")


def later(a: str | None, b: Any) -> str | None:
    """The later of two lastSubmittedTime values (text kept exactly: it goes back into the filter)."""
    if not isinstance(b, str):
        return a
    try:
        b_key = time_key(b)
    except ValueError:
        return a  # the mapping rejects that response with the reason; it does not move the watermark
    return b if a is None or b_key > time_key(a) else a


def start_of(day: dt.date) -> str:
    """Midnight UTC of a day, as the filter wants it."""
    return f"{day.isoformat()}T00:00:00Z"
