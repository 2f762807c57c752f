"""Google Analytics 4: daily sessions by source, medium, campaign and landing page.

    sources:
      site_analytics:
        connector: ga4
        schedule: "@daily"
        start_date: 2026-01-01
        config:
          property_id: "345678901"
          credentials_file: secrets/ga4-reader.json   # service account (Viewer on the property)
          lookback_days: 3                             # GA4 keeps processing the last days

The client is google-api-python-client with its bundled ``analyticsdata`` v1beta discovery
document (no discovery request). One ``properties.runReport`` per page: dimensions date,
sessionSource, sessionMedium, sessionCampaignName, landingPage; metrics sessions,
engagedSessions and ``conversion_metric`` (keyEvents; ``conversions`` on older setups);
``limit``/``offset`` paging up to ``rowCount``. Every request asks for ``returnPropertyQuota``:
when the tokens left this hour or today fall below ``min_quota_tokens`` the stream stops with
one line, after committing what it read (the next sync re-reads the window).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from pydantic import Field, SecretStr, model_validator

from connectors.sdk import Connector, HttpConfig, Record, SourceError, StreamState, stream
from connectors.sdk.google import execute, google_credentials, google_service
from connectors.sdk.streams import lookback_window

DATA_API = "https://analyticsdata.googleapis.com/"
SCOPES = ("https://www.googleapis.com/auth/analytics.readonly",)
DIMENSIONS = ("date", "sessionSource", "sessionMedium", "sessionCampaignName", "landingPage")
QUOTAS = ("tokensPerHour", "tokensPerDay", "tokensPerProjectPerHour")
HINTS = {
    400: "the report request was refused: check property_id and conversion_metric",
    401: "the credentials were refused: renew them",
    403: ("access denied: give the service account Viewer access to the GA4 property and enable the "
          "Google Analytics Data API in its Cloud project"),
    404: "property not found: property_id is the number in Admin > Property settings",
    429: "the GA4 quota is used up: sync less often",
}


class Ga4Config(HttpConfig):
    base_url: str = DATA_API
    property_id: str = Field(pattern=r"^\d+$", description="GA4 property id (digits).")
    credentials_file: str | None = Field(None, description="Service-account or authorized-user JSON file.")
    access_token: SecretStr | None = Field(None, description="A short-lived OAuth access token, used as is.")
    conversion_metric: str = Field("keyEvents", pattern=r"^[A-Za-z][A-Za-z0-9:_]*$",
                                   description="Metric counted as conversions (keyEvents, conversions, ...).")
    lookback_days: int = Field(3, ge=0, le=60, description="Days re-read on every sync.")
    page_size: int = Field(10000, ge=1, le=250000, description="Rows per runReport call (limit).")
    min_quota_tokens: int = Field(50, ge=0, description="Stop when fewer quota tokens remain.")

    @model_validator(mode="after")
    def _one_credential(self) -> Ga4Config:
        if (self.credentials_file is None) == (self.access_token is None):
            raise ValueError("set exactly one of credentials_file and access_token")
        return self


class Ga4Connector(Connector):
    Config = Ga4Config
    config: Ga4Config

    def __init__(self, config: Ga4Config, **kw: Any):
        super().__init__(config, **kw)
        self._service: Any = None
        self.quota: dict[str, Any] = {}  # propertyQuota of the latest answer

    def today(self) -> dt.date:
        return dt.datetime.now(dt.UTC).date()

    @stream(primary_key=("property_id", "date", "sessionSource", "sessionMedium", "sessionCampaignName",
                         "landingPage"))
    def traffic(self, state: StreamState) -> Iterator[list[Record]]:
        first, last = self.window(state)
        offset = 0
        while True:
            body = self.report(first, last, offset)
            rows = [self.record(row) for row in body.get("rows") or []]
            yield rows
            offset += len(rows)
            total = int(body.get("rowCount") or 0)
            if not rows or offset >= total:
                break
            self.respect_quota(body.get("propertyQuota"))
        return {"cursor": last.isoformat()}

    def window(self, state: StreamState) -> tuple[dt.date, dt.date]:
        return lookback_window(state, self.today(), self.config.lookback_days)

    def respect_quota(self, quota: Any) -> None:
        """Stop before the next page when the property's token quota runs low."""
        self.quota = quota if isinstance(quota, dict) else {}
        for name in QUOTAS:
            remaining = (self.quota.get(name) or {}).get("remaining")
            if isinstance(remaining, int) and remaining < self.config.min_quota_tokens:
                raise SourceError(f"ga4: property {self.config.property_id}: only {remaining} {name} quota "
                                  f"tokens left (min_quota_tokens={self.config.min_quota_tokens}); stopped "
                                  "after the pages read so far, the next sync reads the window again")

    def record(self, row: dict[str, Any]) -> Record:
        dims = [d.get("value") for d in row.get("dimensionValues") or []]
        mets = [m.get("value") for m in row.get("metricValues") or []]
        if len(dims) != len(DIMENSIONS) or len(mets) != 3:
            raise SourceError("ga4: a report row does not have the requested dimensions and metrics")
        record: Record = {"property_id": self.config.property_id, **dict(zip(DIMENSIONS, dims, strict=True))}
        record.update(sessions=mets[0], engagedSessions=mets[1], conversions=mets[2])
        return record

    def report(self, first: dt.date, last: dt.date, offset: int) -> dict[str, Any]:
        request_body = {
            "dateRanges": [{"startDate": first.isoformat(), "endDate": last.isoformat()}],
            "dimensions": [{"name": name} for name in DIMENSIONS],
            "metrics": [{"name": "sessions"}, {"name": "engagedSessions"}, {"name": self.config.conversion_metric}],
            "limit": str(self.config.page_size),
            "offset": str(offset),
            "returnPropertyQuota": True,
        }
        request = self.service.properties().runReport(property=f"properties/{self.config.property_id}",
                                                      body=request_body)
        return execute(request, who="ga4", what=f"runReport on property {self.config.property_id}",
                       retries=self.config.max_retries, hints=HINTS, credentials=self.config.credentials_file)

    @property
    def service(self) -> Any:
        if self._service is None:
            self._service = google_service("analyticsdata", "v1beta", self.credentials(), who="ga4",
                                           config=self.config)
        return self._service

    def credentials(self) -> Any:
        cfg = self.config
        return google_credentials("ga4", access_token=cfg.access_token, credentials_file=cfg.credentials_file,
                                  subject=None, scopes=SCOPES, base_dir=self.base_dir)

    def close(self) -> None:
        if self._service is not None:
            self._service.close()
            self._service = None
