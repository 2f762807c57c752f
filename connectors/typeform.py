"""Typeform: completed form responses, as leads.

    sources:
      web_leads:
        connector: typeform
        start_date: 2026-01-01          # the first sync reads responses submitted since then
        config:
          token: ${TYPEFORM_TOKEN}      # personal access token, scopes forms:read responses:read
          forms: [Xk9Lm2Qp, Pq8Rs7Tu]   # form ids, as in https://<you>.typeform.com/to/<form id>
          default_region: US            # country for phone answers written without +<code>
          # data_center: eu             # accounts that store responses in the EU data center

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

Data center: an account stores its responses either in the US (``api.typeform.com``)
or in the EU (``api.eu.typeform.com``), and nothing in a form's definition says which
(``_links`` holds only ``display``). Asking the wrong host for responses answers an
empty list, not an error, so ``data_center`` (us, the default, or eu) names the host,
and a form that has never given a response is checked once per run on the other
data center: if responses are there, the sync fails with a line that says to set
``data_center``, instead of succeeding with nothing. An explicit ``base_url`` (a proxy)
is used as given and not checked.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any, Literal
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

log = logging.getLogger("crmhub.typeform")

# Where an account's responses live; Typeform's docs and SDK name these two hosts.
DATA_CENTERS = {"us": "https://api.typeform.com", "eu": "https://api.eu.typeform.com"}
DataCenter = Literal["us", "eu"]
SINCE_FORMAT = "%Y-%m-%dT%H:%M:%S"  # UTC, to the second, as the Responses API documents it


class TypeformConfig(HttpConfig):
    base_url: str | None = Field(None, description="An explicit API URL (a proxy); default: the data center's host.")
    data_center: DataCenter = Field(
        "us", description="Where the account stores responses: us (api.typeform.com) or eu (api.eu.typeform.com).")
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
        self.http = self._client(config.base_url or DATA_CENTERS[config.data_center])

    def _client(self, base_url: str, max_retries: int | None = None) -> Http:
        options = self.config.http_options()
        if max_retries is not None:
            options["max_retries"] = max_retries
        return Http(base_url, name="typeform", **options,
                    headers={"Authorization": f"Bearer {self.config.token.get_secret_value()}"})

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
            read = 0
            for items in self._pages(form_id, self._since(watermarks.get(form_id), state)):
                for item in items:
                    newest = later(newest, item.get("submitted_at"))
                read += len(items)
                yield [{**item, "form": form} for item in items]
            if not read and form_id not in watermarks:
                self._refuse_if_elsewhere(form_id)
            if newest:
                watermarks[form_id] = newest
        # Reached only when every form was read to its end: the watermarks may move now.
        if watermarks:
            return {"cursor": max(watermarks.values(), key=parse_utc), "forms": watermarks}
        return None

    def _refuse_if_elsewhere(self, form_id: str) -> None:
        """A form that never answered here: fail clearly if its responses are in the other data center."""
        if self.config.base_url:
            return  # an explicit URL is the user's choice; there is no "other" host to ask
        here = self.config.data_center
        for other, base in DATA_CENTERS.items():
            if other == here:
                continue
            probe = self._client(base, max_retries=min(1, self.config.max_retries))  # a check, not the read
            try:
                body = probe.get_json(f"/forms/{form_id}/responses", params={"page_size": 1})
            except SourceError as exc:  # the token is unknown there: the account is not there either
                log.debug("typeform: form %s: the %s data center does not know it (%s)", form_id, other, exc)
                continue
            finally:
                probe.close()
            found = body.get("total_items") if isinstance(body, dict) else None
            items = body.get("items") if isinstance(body, dict) else None
            if (isinstance(found, int) and found > 0) or (isinstance(items, list) and items):
                count = found if isinstance(found, int) and found > 0 else "some"
                raise SourceError(
                    f"typeform: form {form_id} has no responses in the {here.upper()} data center "
                    f"({urlsplit(DATA_CENTERS[here]).hostname}) but {count} in the {other.upper()} one "
                    f"({urlsplit(base).hostname}): this token's account stores its responses there; "
                    f"set data_center: {other} in the source config")

    def _since(self, watermark: str | None, state: StreamState) -> dt.datetime | None:
        if watermark:
            return parse_utc(watermark) - dt.timedelta(minutes=self.config.overlap_minutes)
        if state.start_date:
            return dt.datetime.combine(state.start_date, dt.time(), dt.UTC)
        return None

    def _pages(self, form_id: str, since: dt.datetime | None) -> Iterator[list[Record]]:
        url = f"/forms/{form_id}/responses"
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
