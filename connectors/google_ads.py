"""Google Ads: campaigns, ads, daily ad metrics and gclid clicks over the REST API.

    sources:
      google:
        connector: google_ads
        schedule: "@daily"
        start_date: 2026-01-01
        config:
          developer_token: ${GOOGLE_ADS_DEVELOPER_TOKEN}
          client_id: 1234-abc.apps.googleusercontent.com
          client_secret: ${GOOGLE_ADS_CLIENT_SECRET}
          refresh_token: ${GOOGLE_ADS_REFRESH_TOKEN}
          login_customer_id: "123-456-7890"   # the manager account, if access goes through one
          customer_ids: ["987-654-3210"]      # omitted: every enabled client of the manager
          lookback_days: 30                   # re-read every sync: Google restates conversions

Every query is GAQL sent to ``POST /{api_version}/customers/{id}/googleAds:searchStream``,
whose answer is a JSON array of batches (``[{"results": [...], "fieldMask": ...}, ...]``);
each batch is one page. Requests carry ``developer-token`` and, when set,
``login-customer-id``; the access token comes from the OAuth refresh token through
google-auth (``token_uri`` may point elsewhere, e.g. a test server).

Streams (keys in brackets):
- ``campaigns`` [customer_id, campaign.id], ``ads`` [customer_id, adGroup.id, adGroupAd.ad.id]:
  read whole on every sync (names and status change).
- ``ad_stats`` [customer_id, adGroup.id, adGroupAd.ad.id, segments.date]: metrics per ad and day
  with the customer's currency, for the days from (last day read - ``lookback_days``) to
  today; a re-read day replaces the stored one.
- ``clicks`` [clickView.gclid]: click_view answers one day per query, so the days are walked
  one by one (Google keeps 90 days); the state moves after each day.

``end_date`` (default: today) ends every window, for a backfill of a past period.

Quota: a ``RESOURCE_TEMPORARILY_EXHAUSTED`` (or other 429) waits for the ``retryDelay`` the
error carries; ``RESOURCE_EXHAUSTED`` (the daily operations quota) stops the run with one line.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterator
from typing import Any

import google.auth.transport.requests
import google.oauth2.credentials
import requests
from google.auth.exceptions import RefreshError, TransportError
from pydantic import Field, SecretStr, field_validator, model_validator

from connectors.sdk import (
    Connector,
    Http,
    HttpConfig,
    Page,
    Record,
    SourceError,
    StreamState,
    stream,
)
from connectors.sdk.streams import lookback_window

log = logging.getLogger("crmhub.google_ads")

GOOGLE_ADS_API = "https://googleads.googleapis.com"
TOKEN_URI = "https://oauth2.googleapis.com/token"
API_VERSION = "v26"
CLICK_VIEW_DAYS = 90  # click_view reaches back 90 days

CAMPAIGNS = ("SELECT customer.id, campaign.id, campaign.name, campaign.status, "
             "campaign.advertising_channel_type FROM campaign")
ADS = ("SELECT campaign.id, ad_group.id, ad_group.name, ad_group.status, ad_group_ad.ad.id, "
       "ad_group_ad.ad.name, ad_group_ad.ad.type, ad_group_ad.ad.final_urls, ad_group_ad.status, "
       "campaign.advertising_channel_type FROM ad_group_ad")
AD_STATS = ("SELECT customer.currency_code, campaign.id, ad_group.id, ad_group_ad.ad.id, segments.date, "
            "metrics.impressions, metrics.clicks, metrics.cost_micros, metrics.conversions, "
            "metrics.conversions_value FROM ad_group_ad "
            "WHERE segments.date BETWEEN '{first}' AND '{last}'")
CLICKS = ("SELECT click_view.gclid, click_view.ad_group_ad, campaign.id, ad_group.id, segments.date "
          "FROM click_view WHERE segments.date = '{day}'")
CLIENTS = ("SELECT customer_client.id, customer_client.descriptive_name, customer_client.manager, "
           "customer_client.status, customer_client.currency_code FROM customer_client "
           "WHERE customer_client.level <= 1")


def customer_id(value: str) -> str:
    """'123-456-7890' -> '1234567890'."""
    digits = str(value).replace("-", "").strip()
    if not re.fullmatch(r"\d{10}", digits):
        raise ValueError(f"{value!r} is not a Google Ads customer id (ten digits, dashes allowed)")
    return digits


class GoogleAdsConfig(HttpConfig):
    base_url: str = GOOGLE_ADS_API
    api_version: str = Field(API_VERSION, pattern=r"^v\d+$", description="Google Ads API version, e.g. v26.")
    developer_token: SecretStr = Field(description="The developer token of the API Center.")
    client_id: str = Field(description="OAuth client id.")
    client_secret: SecretStr = Field(description="OAuth client secret.")
    refresh_token: SecretStr = Field(description="OAuth refresh token with the adwords scope.")
    token_uri: str = Field(TOKEN_URI, description="OAuth token endpoint.")
    login_customer_id: str | None = Field(None, description="Manager account the access goes through.")
    customer_ids: list[str] = Field(default_factory=list, description="Accounts to read (default: the manager's clients).")
    lookback_days: int = Field(30, ge=0, le=365, description="Days re-read on every sync (restated conversions).")
    click_view: bool = Field(True, description="Read gclid clicks (click_view), one day per query.")
    end_date: dt.date | None = Field(None, description="Last day to read (default: today); for backfills.")
    max_wait: float = Field(300.0, gt=0, description="Longest wait for a quota retry delay, in seconds.")

    @field_validator("login_customer_id")
    @classmethod
    def _login(cls, value: str | None) -> str | None:
        return customer_id(value) if value else None

    @field_validator("customer_ids")
    @classmethod
    def _customers(cls, value: list[str]) -> list[str]:
        ids = [customer_id(v) for v in value]
        if len(set(ids)) != len(ids):
            raise ValueError("a customer id is listed twice")
        return ids

    @model_validator(mode="after")
    def _someone(self) -> GoogleAdsConfig:
        if not self.customer_ids and not self.login_customer_id:
            raise ValueError("set customer_ids, or login_customer_id to read every client of a manager account")
        return self


class _RefreshingAuth(requests.auth.AuthBase):
    """Bearer token from an OAuth refresh token (google-auth), renewed when it expires."""

    def __init__(self, cfg: GoogleAdsConfig):
        self.credentials = google.oauth2.credentials.Credentials(
            None, refresh_token=cfg.refresh_token.get_secret_value(), client_id=cfg.client_id,
            client_secret=cfg.client_secret.get_secret_value(), token_uri=cfg.token_uri)
        self.transport = google.auth.transport.requests.Request()

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if not self.credentials.valid:
            try:
                self.credentials.refresh(self.transport)
            except RefreshError as exc:
                reason = str(exc.args[0] if exc.args else exc).splitlines()[0][:200]
                raise SourceError(f"google_ads: the OAuth token endpoint refused the refresh token ({reason}): "
                                  "check client_id, client_secret and refresh_token") from None
            except TransportError as exc:
                raise SourceError(f"google_ads: cannot reach the OAuth token endpoint: "
                                  f"{str(exc).splitlines()[0][:200]}") from None
        request.headers["Authorization"] = f"Bearer {self.credentials.token}"
        return request


def quota_wait(response: requests.Response) -> float | None:
    """The wait a Google Ads quota error asks for; raises on the daily quota.

    The error is ``{"error": {"status": "RESOURCE_EXHAUSTED", "details": [{"errors": [
    {"errorCode": {"quotaError": ...}, "details": {"quotaErrorDetails": {"retryDelay": "30s"}}}]}]}}``.
    """
    if response.status_code != 429:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    for detail in details if isinstance(details, list) else []:
        for failure in (detail.get("errors") or []) if isinstance(detail, dict) else []:
            code = (failure.get("errorCode") or {}).get("quotaError")
            info = (failure.get("details") or {}).get("quotaErrorDetails") or {}
            delay = _seconds(info.get("retryDelay"))
            if code == "RESOURCE_EXHAUSTED":
                limit = info.get("rateName") or "daily operations"
                after = f"; Google asks to retry in {delay:.0f}s" if delay is not None else ""
                raise SourceError(f"google_ads: the API quota '{limit}' is used up for today "
                                  f"(RESOURCE_EXHAUSTED){after}; the run stops here and the next sync "
                                  "resumes from the stored state")
            if delay is not None:
                return delay
    return None


def _seconds(value: Any) -> float | None:
    """A protobuf Duration in JSON ('30s', '1.5s') as seconds."""
    if isinstance(value, str) and value.endswith("s"):
        try:
            return max(0.0, float(value[:-1]))
        except ValueError:
            return None
    return None


class GoogleAdsConnector(Connector):
    Config = GoogleAdsConfig
    config: GoogleAdsConfig

    def __init__(self, config: GoogleAdsConfig, **kw: Any):
        super().__init__(config, **kw)
        headers = {"developer-token": config.developer_token.get_secret_value()}
        if config.login_customer_id:
            headers["login-customer-id"] = config.login_customer_id
        self.http = Http(config.base_url, name="google_ads", headers=headers, auth=_RefreshingAuth(config),
                         timeout=config.timeout, max_retries=config.max_retries, max_wait=config.max_wait,
                         throttle=quota_wait)
        self._customers: list[str] | None = None

    def today(self) -> dt.date:
        return dt.datetime.now(dt.UTC).date()

    # ------------------------------------------------------------------ streams

    @stream(primary_key=("customer_id", "campaign.id"))
    def campaigns(self, state: StreamState) -> Iterator[list[Record]]:
        for cid in self.customers():
            yield from self.search(cid, CAMPAIGNS)

    @stream(primary_key=("customer_id", "adGroup.id", "adGroupAd.ad.id"))
    def ads(self, state: StreamState) -> Iterator[list[Record]]:
        for cid in self.customers():
            yield from self.search(cid, ADS)

    @stream(primary_key=("customer_id", "adGroup.id", "adGroupAd.ad.id", "segments.date"))
    def ad_stats(self, state: StreamState) -> Iterator[list[Record]]:
        first, last = self.window(state)
        query = AD_STATS.format(first=first.isoformat(), last=last.isoformat())
        for cid in self.customers():
            yield from self.search(cid, query)
        return {"cursor": last.isoformat()}

    @stream(primary_key="clickView.gclid")
    def clicks(self, state: StreamState) -> Iterator[Page]:
        if not self.config.click_view:
            return None
        first, last = self.window(state, lookback=0)
        oldest = last - dt.timedelta(days=CLICK_VIEW_DAYS - 1)
        if first < oldest:
            log.warning("google_ads: click_view reaches back %d days only; reading clicks from %s",
                        CLICK_VIEW_DAYS, oldest)
            first = oldest
        customers = self.customers()
        day = first
        while day <= last:
            query = CLICKS.format(day=day.isoformat())
            for n, cid in enumerate(customers):
                records = [r for batch in self.search(cid, query) for r in batch]
                # the day is done once its last customer is read: the state moves then
                yield Page(records, {"cursor": day.isoformat()} if n == len(customers) - 1 else None)
            day += dt.timedelta(days=1)
        return None

    def window(self, state: StreamState, lookback: int | None = None) -> tuple[dt.date, dt.date]:
        """Days to read: from the last day read minus the lookback (or start_date) to today."""
        lookback = self.config.lookback_days if lookback is None else lookback
        today = min(self.today(), self.config.end_date or self.today())
        return lookback_window(state, today, lookback)

    # ------------------------------------------------------------------ API

    def customers(self) -> list[str]:
        """The configured accounts, else the enabled non-manager clients of the manager."""
        if self._customers is None:
            if self.config.customer_ids:
                self._customers = list(self.config.customer_ids)
            else:
                manager = self.config.login_customer_id
                found = []
                for batch in self.search(manager, CLIENTS, with_customer=False):
                    for row in batch:
                        client = row.get("customerClient") or {}
                        if client.get("manager") or client.get("status", "ENABLED") != "ENABLED":
                            continue
                        if client.get("id"):
                            found.append(str(client["id"]))
                if not found:
                    raise SourceError(f"google_ads: manager account {manager} has no enabled client accounts; "
                                      "set customer_ids")
                self._customers = sorted(set(found))
        return self._customers

    def search(self, cid: str, query: str, *, with_customer: bool = True) -> Iterator[list[Record]]:
        """Run one GAQL query through searchStream; yield each batch's rows."""
        path = f"{self.config.api_version}/customers/{cid}/googleAds:searchStream"
        body = self.http.post_json(path, {"query": query})
        if isinstance(body, dict):  # one batch may come unwrapped
            body = [body]
        if not isinstance(body, list):
            raise SourceError(f"google_ads: searchStream for customer {cid} answered something that is "
                              "not a list of result batches")
        for batch in body:
            if not isinstance(batch, dict):
                raise SourceError(f"google_ads: searchStream for customer {cid}: a batch is not an object")
            if "error" in batch:  # an error after the stream began arrives as the last element
                error = batch["error"] if isinstance(batch["error"], dict) else {}
                raise SourceError(f"google_ads: customer {cid}: {error.get('status', 'error')}: "
                                  f"{str(error.get('message', ''))[:300]}")
            results = batch.get("results") or []
            if with_customer:
                results = [{**row, "customer_id": cid} for row in results]
            yield results

    def check(self) -> str:
        customers = self.customers()
        rows = sum(len(b) for b in self.search(customers[0], CAMPAIGNS))
        return f"ok: {len(customers)} account(s); {rows} campaign(s) in {customers[0]}"

    def close(self) -> None:
        self.http.close()


__all__ = ["GoogleAdsConfig", "GoogleAdsConnector", "customer_id", "quota_wait"]
