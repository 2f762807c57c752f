"""Mailchimp: sent email campaigns and who opened them or clicked which link.

    sources:
      newsletter:
        connector: mailchimp
        schedule: "@hourly"
        start_date: 2026-01-01
        config:
          api_key: ${MAILCHIMP_API_KEY}     # ends in -<dc>, e.g. -us6: the API host is us6.api.mailchimp.com
          activity_days: 30                 # campaigns sent this recently still collect opens and clicks

Marketing API 3.0 with HTTP basic auth (the key as password). Lists are paged with
``count``/``offset`` until ``total_items``.

Streams (keys in brackets):
- ``campaigns`` [id]: ``GET /campaigns?status=sent&since_send_time=<start_date>``, read whole
  every sync (titles and report figures change).
- ``email_activity`` [campaign_id, email_id, action, timestamp]: one record per open or
  click (with its URL) from ``GET /reports/{campaign_id}/email-activity?since=<watermark>``
  for each campaign sent within ``activity_days`` (or since start_date). Watermarks are kept
  per campaign and move once every campaign was read.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

from pydantic import Field, SecretStr, field_validator

from connectors.sdk import Connector, Http, HttpConfig, Record, SourceError, StreamState, parse_utc, stream

CAMPAIGN_FIELDS = ("campaigns.id,campaigns.web_id,campaigns.type,campaigns.status,campaigns.create_time,"
                   "campaigns.send_time,campaigns.emails_sent,campaigns.settings.title,"
                   "campaigns.settings.subject_line,campaigns.recipients.list_id,total_items")
TRACKED = ("open", "click")


class MailchimpConfig(HttpConfig):
    base_url: str | None = Field(None, description="API root; default https://<dc>.api.mailchimp.com/3.0/.")
    api_key: SecretStr = Field(description="API key, ending in -<datacenter> (e.g. -us6).")
    page_size: int = Field(500, ge=1, le=1000, description="Items per request (count).")
    activity_days: int = Field(30, ge=1, le=365, description="Read activity of campaigns sent this many days back.")
    max_pages: int = Field(10000, ge=1, description="Page bound per list.")

    @field_validator("api_key")
    @classmethod
    def _datacenter(cls, value: SecretStr) -> SecretStr:
        if not re.fullmatch(r"[0-9a-f]+-[a-z]+\d+", value.get_secret_value().strip()):
            raise ValueError("a Mailchimp API key ends in -<datacenter>, e.g. 0123abcd...-us6")
        return value


def datacenter(api_key: str) -> str:
    return api_key.strip().rsplit("-", 1)[1]


class MailchimpConnector(Connector):
    Config = MailchimpConfig
    config: MailchimpConfig

    def __init__(self, config: MailchimpConfig, **kw: Any):
        super().__init__(config, **kw)
        key = config.api_key.get_secret_value().strip()
        base = config.base_url or f"https://{datacenter(key)}.api.mailchimp.com/3.0/"
        self.http = Http(base, name="mailchimp", auth=("crmhub", key), timeout=config.timeout,
                         max_retries=config.max_retries)

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    @stream(primary_key="id")
    def campaigns(self, state: StreamState) -> Iterator[list[Record]]:
        params: dict[str, Any] = {"status": "sent", "sort_field": "send_time", "sort_dir": "ASC",
                                  "fields": CAMPAIGN_FIELDS}
        if state.start_date:
            params["since_send_time"] = f"{state.start_date.isoformat()}T00:00:00+00:00"
        yield from self.pages("campaigns", "campaigns", params)

    @stream(primary_key=("campaign_id", "email_id", "action", "timestamp"))
    def email_activity(self, state: StreamState) -> Iterator[list[Record]]:
        watermarks: dict[str, str] = dict(state.saved.get("campaigns", {}))
        since = self.now() - dt.timedelta(days=self.config.activity_days)
        if state.start_date:  # the source's start_date, or a backfill's --since
            since = max(since, dt.datetime.combine(state.start_date, dt.time(), dt.UTC))
        recent = {"status": "sent", "since_send_time": since.isoformat(timespec="seconds"),
                  "fields": "campaigns.id,campaigns.send_time,total_items"}
        campaign_ids = [c["id"] for page in self.pages("campaigns", "campaigns", recent) for c in page if c.get("id")]
        for campaign_id in campaign_ids:
            params = {"since": watermarks[campaign_id]} if campaign_id in watermarks else {}
            newest = watermarks.get(campaign_id)
            for page in self.pages(f"reports/{campaign_id}/email-activity", "emails", params):
                events = list(flatten(page, campaign_id))
                for event in events:
                    if newest is None or parse_utc(event["timestamp"]) > parse_utc(newest):
                        newest = event["timestamp"]
                yield events
            if newest:
                watermarks[campaign_id] = newest
        if watermarks:
            return {"cursor": max(watermarks.values(), key=parse_utc), "campaigns": watermarks}
        return None

    def pages(self, path: str, items: str, params: dict[str, Any]) -> Iterator[list[Record]]:
        """Each page of ``items``, by count/offset until total_items."""
        offset = 0
        for _ in range(self.config.max_pages):
            body = self.http.get_json(path, params={**params, "count": self.config.page_size, "offset": offset})
            page = body.get(items) if isinstance(body, dict) else None
            if not isinstance(page, list):
                raise SourceError(f"mailchimp: GET {path}: the answer has no {items!r} list")
            yield page
            offset += len(page)
            total = body.get("total_items")
            if not page or not isinstance(total, int) or offset >= total:
                return
        raise SourceError(f"mailchimp: GET {path}: more than max_pages={self.config.max_pages} pages")

    def check(self) -> str:
        body = self.http.get_json("ping")
        return f"ok: {body.get('health_status', 'answered')}" if isinstance(body, dict) else "ok"

    def close(self) -> None:
        self.http.close()


def flatten(emails: list[dict[str, Any]], campaign_id: str) -> Iterator[Record]:
    """One record per tracked action (open, click) of each recipient."""
    for email in emails:
        if not isinstance(email, dict):
            continue
        for action in email.get("activity") or []:
            if not isinstance(action, dict) or action.get("action") not in TRACKED or not action.get("timestamp"):
                continue
            yield {"campaign_id": email.get("campaign_id") or campaign_id, "list_id": email.get("list_id"),
                   "email_id": email.get("email_id"), "email_address": email.get("email_address"),
                   "action": action["action"], "timestamp": action["timestamp"], "url": action.get("url")}
