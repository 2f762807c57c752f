"""Typeform: completed form responses, as leads.

    sources:
      web_leads:
        connector: typeform
        start_date: 2026-01-01          # the first sync reads responses submitted since then
        config:
          token: ${TYPEFORM_TOKEN}      # personal access token, scopes forms:read responses:read
          forms: [Xk9Lm2Qp, Pq8Rs7Tu]   # form ids, as in https://<you>.typeform.com/to/<form id>
          default_region: US            # country for phone answers written without +<code>
          # base_url: https://api.eu.typeform.com   # EU data center accounts (see below)

Each form's definition is read first (``GET /forms/{id}``), and its question titles
and types travel with every response (``record["form"]``), so the mapping can key
answers by question title and find the email, phone and name questions by their
type and title, and `crmhub model` can re-map stored responses without the API.

Responses are listed newest first (``GET /forms/{id}/responses``), paging backwards
with ``before=<token of the oldest response on the page>`` until a short page.
Each form keeps its own watermark (the newest ``submitted_at`` read), stored only
when every form has been read to its end, so a run that fails half-way reads the
same range again instead of skipping it. Typeform may list a response up to about
30 minutes after it was submitted, so each sync starts ``overlap_minutes`` before
the watermark; responses read twice are upserted by (form id, token).

With the default ``base_url``, a form's responses are read from the host its
definition names (``_links.responses``), so EU accounts work without changes;
an explicit ``base_url`` is always used as given.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from connectors.sdk import (
    Connector,
    Http,
    HttpConfig,
    SourceError,
    StreamState,
    paginate,
    parse_utc,
    stream,
)
from connectors.sdk.streams import Record

TYPEFORM_API = "https://api.typeform.com"
# Typeform's own API hosts (US, EU data center): the only hosts a form's links may send us to.
TYPEFORM_HOSTS = frozenset({"api.typeform.com", "api.eu.typeform.com", "api.typeform.eu"})
SINCE_FORMAT = "%Y-%m-%dT%H:%M:%S"  # UTC, to the second, as the Responses API documents it


class TypeformConfig(HttpConfig):
    base_url: str = TYPEFORM_API
    token: SecretStr = Field(description="Personal access token (forms:read, responses:read).")
    forms: list[str] = Field(min_length=1, description="Ids of the forms to read.")
    page_size: int = Field(1000, ge=1, le=1000, description="Responses per request (Typeform's maximum is 1000).")
    overlap_minutes: int = Field(
        60, ge=0, le=7 * 24 * 60,
        description="Re-read this far before the last response seen: Typeform lists some responses late.",
    )
    default_region: str | None = Field(None, description="Country for phone numbers without +code, e.g. US.")

    @field_validator("forms")
    @classmethod
    def _form_ids(cls, value: list[str]) -> list[str]:
        for form_id in value:
            if not form_id or not form_id.replace("_", "").replace("-", "").isalnum():
                raise ValueError(f"{form_id!r} is not a Typeform form id (letters and digits, from the form's URL)")
        if len(set(value)) != len(value):
            raise ValueError("a form id is listed twice")
        return value


class TypeformConnector(Connector):
    Config = TypeformConfig
    config: TypeformConfig
    mapping_options = ("default_region",)

    def __init__(self, config: TypeformConfig, **kw: Any):
        super().__init__(config, **kw)
        self.http = Http(
            config.base_url, name="typeform", **config.http_options(),
            headers={"Authorization": f"Bearer {config.token.get_secret_value()}"},
        )

    @stream(primary_key=("form.id", "token"), cursor="submitted_at")
    def responses(self, state: StreamState) -> Iterator[list[Record]]:
        """Completed responses of every configured form submitted since that form's watermark."""
        watermarks: dict[str, str] = dict(state.saved.get("forms", {}))
        for form_id in self.config.forms:
            definition = self.http.get_json(f"/forms/{form_id}")
            if not isinstance(definition, dict):
                raise SourceError(f"typeform: form {form_id}: the form definition is not a JSON object")
            form = form_summary(form_id, definition)
            newest = watermarks.get(form_id)
            for items in self._pages(form_id, self.responses_url(form_id, definition),
                                     self._since(watermarks.get(form_id), state)):
                for item in items:
                    newest = later(newest, item.get("submitted_at"))
                yield [{**item, "form": form} for item in items]
            if newest:
                watermarks[form_id] = newest
        # Reached only when every form was read to its end: the watermarks may move now.
        if watermarks:
            return {"cursor": max(watermarks.values(), key=parse_utc), "forms": watermarks}
        return None

    def responses_url(self, form_id: str, definition: dict[str, Any]) -> str:
        """Where this form's responses live (the form's own link, on its data center's host)."""
        link = (definition.get("_links") or {}).get("responses")
        if self.config.base_url.rstrip("/") == TYPEFORM_API and link and urlsplit(link).hostname in TYPEFORM_HOSTS:
            return link
        return f"/forms/{form_id}/responses"

    def _since(self, watermark: str | None, state: StreamState) -> dt.datetime | None:
        if watermark:
            return parse_utc(watermark) - dt.timedelta(minutes=self.config.overlap_minutes)
        if state.start_date:
            return dt.datetime.combine(state.start_date, dt.time(), dt.UTC)
        return None

    def _pages(self, form_id: str, url: str, since: dt.datetime | None) -> Iterator[list[Record]]:
        page_size = self.config.page_size
        params = {"page_size": page_size,
                  "since": since.astimezone(dt.UTC).strftime(SINCE_FORMAT) if since else None}

        def fetch(before: str | None) -> tuple[list[Record], str | None]:
            body = self.http.get_json(url, params={**params, "before": before})
            items = body.get("items") if isinstance(body, dict) else None
            if not isinstance(items, list):
                raise SourceError(f"typeform: form {form_id} responses: the answer has no 'items' list")
            if len(items) < page_size:  # a short page is the last one (total_items is no guide)
                return items, None
            oldest = items[-1].get("token") if isinstance(items[-1], dict) else None
            if not oldest:
                raise SourceError(f"typeform: form {form_id} responses: the last response on a page has "
                                  "no token, so the next page cannot be asked for")
            return items, oldest

        yield from paginate(fetch, what=f"typeform form {form_id} responses")

    def close(self) -> None:
        self.http.close()


def form_summary(form_id: str, definition: dict[str, Any]) -> dict[str, Any]:
    """What the mapping needs of a form: its title and its questions, flattened, in form order."""
    return {"id": form_id, "title": definition.get("title"),
            "fields": list(_flatten(definition.get("fields") or [], None))}


def _flatten(fields: list[dict[str, Any]], parent: dict[str, Any] | None) -> Iterator[dict[str, Any]]:
    for field in fields:
        if not isinstance(field, dict):
            continue
        entry = {k: field[k] for k in ("id", "ref", "type", "title", "subfield_key") if field.get(k) is not None}
        if parent is not None:
            # Question groups hold ordinary questions; contact_info/matrix fields hold parts of one.
            entry["group"] = parent.get("title")
            entry["group_type"] = parent.get("type")
        yield entry
        children = (field.get("properties") or {}).get("fields")
        if isinstance(children, list):
            yield from _flatten(children, field)


def later(a: str | None, b: Any) -> str | None:
    """The later of two submitted_at values (text kept as Typeform wrote it)."""
    if not isinstance(b, str) or not b:
        return a
    try:
        b_time = parse_utc(b)
    except ValueError:
        return a  # the mapping rejects that response with the reason; it does not move the watermark
    if b_time.year <= 1:  # "0001-01-01T00:00:00Z": never submitted
        return a
    return b if a is None or b_time > parse_utc(a) else a
