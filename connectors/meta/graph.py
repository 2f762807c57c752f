"""The Meta Graph API client shared by meta_ads and meta_leads.

- The token travels in the ``Authorization`` header, never in a URL; ``paging.next`` URLs
  are followed only on the configured host.
- Rate limits slow the connector down instead of failing it: an error with code 4, 17,
  32, 613, 80000-80014 (or a 429) waits ``estimated_time_to_regain_access`` from the
  ``X-Business-Use-Case-Usage`` header, else ``rate_limit_wait``, and retries; on success,
  usage headers (``X-Business-Use-Case-Usage``, ``X-Ad-Account-Usage``, ``X-App-Usage``,
  ``X-FB-Ads-Insights-Throttle``) at or above ``slow_down_at`` percent pause before the next call.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import requests
from pydantic import Field, SecretStr

from connectors.sdk import Http, HttpConfig, Record, SourceError, paginate

log = logging.getLogger("crmhub.meta")

GRAPH_API = "https://graph.facebook.com"
API_VERSION = "v24.0"
# Graph API error codes that mean "slow down" (developers.facebook.com/docs/graph-api/overview/rate-limiting)
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, *range(80000, 80015)})
USAGE_HEADERS = ("X-Business-Use-Case-Usage", "X-Ad-Account-Usage", "X-App-Usage", "X-FB-Ads-Insights-Throttle")


class MetaConfig(HttpConfig):
    base_url: str = GRAPH_API
    api_version: str = Field(API_VERSION, pattern=r"^v\d+\.\d+$", description="Graph API version, e.g. v24.0.")
    access_token: SecretStr = Field(description="A system-user access token (ads_read / leads_retrieval).")
    page_size: int = Field(500, ge=1, le=5000, description="Rows per page (limit).")
    rate_limit_wait: float = Field(60.0, gt=0, description="Wait after a rate-limit error without a hint, seconds.")
    slow_down_at: float = Field(75.0, gt=0, le=100, description="Usage percent from which calls are paced.")
    max_wait: float = Field(900.0, gt=0, description="Longest single wait for the rate limit, seconds.")
    max_pages: int = Field(10000, ge=1, description="Page bound per stream and account.")


def usage_percent(headers: Any) -> tuple[float, float]:
    """(highest usage percent in the usage headers, minutes until access is regained)."""
    highest, regain = 0.0, 0.0
    for name in USAGE_HEADERS:
        raw = headers.get(name)
        if not raw:
            continue
        try:
            value = json.loads(raw)
        except ValueError:
            continue
        for item in _usage_items(value):
            for key, number in item.items():
                if not isinstance(number, (int, float)) or isinstance(number, bool):
                    continue
                if key == "estimated_time_to_regain_access":
                    regain = max(regain, float(number))
                elif key in ("call_count", "total_cputime", "total_time", "acc_id_util_pct", "app_id_util_pct"):
                    highest = max(highest, float(number))
    return highest, regain


def _usage_items(value: Any) -> Iterator[dict]:
    """The flat usage dicts of any usage header (BUC nests them per business id in lists)."""
    if isinstance(value, dict):
        if any(not isinstance(v, (dict, list)) for v in value.values()):
            yield value
        for v in value.values():
            if isinstance(v, (dict, list)):
                yield from _usage_items(v)
    elif isinstance(value, list):
        for v in value:
            yield from _usage_items(v)


def error_of(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


class Graph:
    """GET/POST on the Graph API with paging, rate-limit waits and usage pacing."""

    def __init__(self, config: MetaConfig, name: str, sleep: Callable[[float], None] = time.sleep):
        self.config = config
        self.name = name
        self.sleep = sleep  # pacing between calls (tests record it instead of sleeping)
        self.host = urlsplit(config.base_url).netloc
        self.http = Http(f"{config.base_url.rstrip('/')}/{config.api_version}/", name=name,
                         headers={"Authorization": f"Bearer {config.access_token.get_secret_value()}"},
                         timeout=config.timeout, max_retries=config.max_retries, max_wait=config.max_wait,
                         throttle=self._rate_limited, throttle_errors=True)
        self.paused: list[float] = []  # every pause taken for high usage, in seconds

    def _rate_limited(self, response: requests.Response) -> float | None:
        if response.status_code < 400:
            return None
        code = error_of(response).get("code")
        if response.status_code == 429 or code in RATE_LIMIT_CODES:
            _, regain = usage_percent(response.headers)
            wait = regain * 60 if regain else self.config.rate_limit_wait
            log.warning("%s: rate limited (error code %s); waiting %.0fs", self.name, code, wait)
            return wait
        return None

    def _pace(self, response: requests.Response) -> None:
        """Pause before the next call while usage is high: the limit is never hit head-on."""
        pct, regain = usage_percent(response.headers)
        if pct < self.config.slow_down_at:
            return
        if regain:
            pause = regain * 60
        else:  # from no pause at slow_down_at to a full rate_limit_wait at 100%
            span = max(100.0 - self.config.slow_down_at, 1.0)
            pause = self.config.rate_limit_wait * min(1.0, (pct - self.config.slow_down_at) / span)
        pause = min(pause, self.config.max_wait)
        if pause > 0:
            log.info("%s: API usage at %.0f%%; pausing %.0fs", self.name, pct, pause)
            self.paused.append(pause)
            self.sleep(pause)

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        response = self.http.request("GET", path, params=params)
        self._pace(response)
        return response.json()

    def post(self, path: str, data: dict[str, Any]) -> Any:
        response = self.http.request("POST", path, data=data)
        self._pace(response)
        return response.json()

    def pages(self, path: str, params: dict[str, Any], what: str) -> Iterator[list[Record]]:
        """``data`` of each page, following ``paging.next`` (on the configured host only)."""
        count = 0

        def fetch(url: str | None) -> tuple[list[Record], str | None]:
            nonlocal count
            count += 1
            if count > self.config.max_pages:
                raise SourceError(f"{self.name}: {what}: more than max_pages={self.config.max_pages} pages")
            body = self.get(url, None) if url else self.get(path, params)
            if not isinstance(body, dict) or not isinstance(body.get("data", []), list):
                raise SourceError(f"{self.name}: {what}: the answer has no 'data' list")
            next_url = (body.get("paging") or {}).get("next")
            if next_url and urlsplit(next_url).netloc != self.host:
                raise SourceError(f"{self.name}: {what}: paging.next points to another host "
                                  f"({urlsplit(next_url).netloc}); not following it with the token")
            return body.get("data", []), next_url

        yield from paginate(fetch, what=f"{self.name} {what}")

    def close(self) -> None:
        self.http.close()
