"""Meta lead ads: form submissions as leads that carry the ad they came from.

    sources:
      fb_leads:
        connector: meta_leads
        schedule: "*/30 * * * *"
        start_date: 2026-01-01
        config:
          access_token: ${META_PAGE_TOKEN}       # a page token with leads_retrieval
          forms: ["987654321012345"]            # lead form ids
          app_secret: ${META_APP_SECRET}        # webhook: checks X-Hub-Signature-256
          verify_token: ${META_VERIFY_TOKEN}    # webhook: the subscription handshake
          default_region: GB

Pull: ``GET /{form_id}/leads`` with ``field_data``, ad and campaign ids, filtered with
``filtering=[{"field": "time_created", "operator": "GREATER_THAN", "value": <epoch>}]`` from
each form's watermark (the newest ``created_time`` read, minus one second so a lead at the
boundary is read again and upserted, never missed); watermarks move once every form is read.

Push: with ``app_secret`` and ``verify_token`` set, `crmhub serve` answers Meta's webhook at
``/meta/{source}`` (crmhub/meta_webhook.py). A ``leadgen`` change names only the lead's id; the
lead is read with :meth:`MetaLeadsConnector.lead` and lands in the same stream under the same
key (its id) as a pulled copy, so a lead pulled and pushed is one lead.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import Field, SecretStr, field_validator

from connectors.meta.graph import Graph, MetaConfig
from connectors.sdk import Connector, Record, SourceError, StreamState, parse_utc, stream

LEAD_FIELDS = ("id,created_time,ad_id,ad_name,adset_id,adset_name,campaign_id,campaign_name,form_id,"
               "field_data,is_organic,platform")


class MetaLeadsConfig(MetaConfig):
    forms: list[str] = Field(min_length=1, description="Lead form ids.")
    app_secret: SecretStr | None = Field(None, description="App secret: webhook signatures (X-Hub-Signature-256).")
    verify_token: SecretStr | None = Field(None, description="Token Meta echoes in the webhook handshake.")
    default_region: str | None = Field(None, description="Country for phone numbers without +code, e.g. GB.")
    max_body_bytes: int = Field(1_000_000, ge=1024, description="Largest webhook body accepted.")

    @field_validator("forms")
    @classmethod
    def _forms(cls, value: list[str]) -> list[str]:
        for form in value:
            if not form.isdigit():
                raise ValueError(f"{form!r} is not a lead form id (digits)")
        if len(set(value)) != len(value):
            raise ValueError("a form id is listed twice")
        return value


class MetaLeadsConnector(Connector):
    Config = MetaLeadsConfig
    config: MetaLeadsConfig
    mapping_options = ("default_region",)

    def __init__(self, config: MetaLeadsConfig, *, sleep: Callable[[float], None] = time.sleep, **kw: Any):
        super().__init__(config, **kw)
        self.graph = Graph(config, "meta_leads", sleep=sleep)

    @stream(primary_key="id")
    def leads(self, state: StreamState) -> Iterator[list[Record]]:
        watermarks: dict[str, int] = dict(state.saved.get("forms", {}))
        start = state.since()
        for form in self.config.forms:
            since = watermarks.get(form)
            if since is None and start is not None:
                since = int(start.timestamp())
            params: dict[str, Any] = {"fields": LEAD_FIELDS, "limit": self.config.page_size}
            if since is not None:
                params["filtering"] = json.dumps([{"field": "time_created", "operator": "GREATER_THAN",
                                                   "value": since - 1}], separators=(",", ":"))
            newest = since
            for page in self.graph.pages(f"{form}/leads", params, f"leads of form {form}"):
                for lead in page:
                    created = _epoch(lead.get("created_time"))
                    if created is not None:
                        newest = created if newest is None else max(newest, created)
                yield [{**lead, "form_id": lead.get("form_id") or form} for lead in page]
            if newest is not None:
                watermarks[form] = newest
        if watermarks:
            newest_all = max(watermarks.values())
            return {"cursor": dt.datetime.fromtimestamp(newest_all, dt.UTC).isoformat(), "forms": watermarks}
        return None

    # ------------------------------------------------------------------ webhook

    @property
    def webhook_enabled(self) -> bool:
        return self.config.app_secret is not None and self.config.verify_token is not None

    def verify_token_matches(self, token: str | None) -> bool:
        expected = self.config.verify_token
        return expected is not None and token is not None and hmac.compare_digest(
            token.encode(), expected.get_secret_value().encode())

    def signature_valid(self, body: bytes, header: str | None) -> bool:
        """``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body with the app secret>``."""
        secret = self.config.app_secret
        if secret is None or not header or not header.startswith("sha256="):
            return False
        digest = hmac.new(secret.get_secret_value().encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(digest, header.removeprefix("sha256=").strip().lower())

    def leadgen_ids(self, payload: Any) -> list[str]:
        """Ids of the leads a webhook payload announces for this source's forms."""
        found: list[str] = []
        entries = payload.get("entry") if isinstance(payload, dict) else None
        for entry in entries if isinstance(entries, list) else []:
            for change in (entry.get("changes") or []) if isinstance(entry, dict) else []:
                value = change.get("value") if isinstance(change, dict) else None
                if change.get("field") != "leadgen" or not isinstance(value, dict):
                    continue
                if str(value.get("form_id")) in self.config.forms and value.get("leadgen_id"):
                    found.append(str(value["leadgen_id"]))
        return found

    def lead(self, leadgen_id: str) -> Record:
        """One lead as the pull reads it (same fields, same key)."""
        lead = self.graph.get(leadgen_id, {"fields": LEAD_FIELDS})
        if not isinstance(lead, dict) or not lead.get("id"):
            raise SourceError(f"meta_leads: lead {leadgen_id}: the answer is not a lead")
        return lead

    def check(self) -> str:
        form = self.config.forms[0]
        page = next(self.graph.pages(f"{form}/leads", {"fields": "id", "limit": 25}, "leads"), [])
        return f"ok: form {form} answers ({len(page)} lead(s) on the first page)"

    def close(self) -> None:
        self.graph.close()


def _epoch(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return int(parse_utc(value).timestamp())
    except ValueError:
        return None
