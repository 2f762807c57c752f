"""The one HTTP client every connector uses: timeouts, retries, clear errors.

- 429: waits for ``Retry-After`` (seconds or an HTTP date), else backs off.
- 5xx, timeouts, connection resets and unparseable JSON bodies: retried with
  exponential backoff and jitter, ``max_retries`` times.
- Other 4xx: fail at once with a message that says what to check. Secrets in
  headers or in the query string never appear in a message.
- A connector-specific ``throttle`` hook can ask for a wait on a response that is
  otherwise a success (Shopify's cost-based throttling answers 200), on a 429 (Google
  Ads' quota errors carry their own retry delay) and, with ``throttle_errors``, on any
  4xx (Meta reports its rate limits as 400s with error codes 4, 17, 613, 80004).
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
)

from crmhub.errors import SourceError

log = logging.getLogger("crmhub.http")

SECRET_PARAMS = ("key", "secret", "token", "password", "signature", "auth")
HINTS = {
    400: "the request was malformed: check the connector config",
    401: "authentication failed: check the credentials",
    403: "access denied: check the credentials' scopes/permissions",
    404: "not found: check base_url and the ids in the config",
    422: "the source rejected a parameter: check the config",
}


class Retryable(Exception):
    """A failure worth trying again; ``wait`` is the server's requested delay, if any."""

    def __init__(self, message: str, wait: float | None = None):
        super().__init__(message)
        self.wait = wait


class PaginationLoop(SourceError):
    """The source returned a next-page cursor it had returned before."""


def redact_url(url: str) -> str:
    """The URL with secret-looking query values replaced by '***'."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = [
        (k, "***" if any(s in k.lower() for s in SECRET_PARAMS) else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*")))


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_detail(response: requests.Response, limit: int = 300) -> str:
    """The error message a JSON API put in its body, else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:limit].strip()
    for path in (("error", "message"), ("message",), ("error_description",), ("error",),
                 ("errors",), ("description",), ("detail",)):
        value: Any = body
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if value:
            text = value if isinstance(value, str) else json.dumps(value)
            return text[:limit]
    return json.dumps(body)[:limit]


def _is_json(content_type: str) -> bool:
    """application/json or application/*+json (not JSON Lines, which is many documents)."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


class Http:
    """A requests session bound to one API's base URL."""

    def __init__(
        self,
        base_url: str,
        *,
        name: str = "http",
        headers: dict[str, str] | None = None,
        auth: Any = None,
        timeout: float = 30.0,
        max_retries: int = 5,
        max_wait: float = 300.0,
        backoff: float = 0.5,
        throttle: Callable[[requests.Response], float | None] | None = None,
        throttle_errors: bool = False,
    ):
        self.base_url = base_url.rstrip("/") + "/"
        self.name = name
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_wait = max_wait
        self.backoff = backoff
        self.throttle = throttle
        self.throttle_errors = throttle_errors
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "crmhub/0.1"
        if headers:
            self.session.headers.update(headers)
        self.session.auth = auth
        self.requests_made = 0

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return urljoin(self.base_url, path.lstrip("/"))

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send a request, retrying what is worth retrying; return a 2xx response."""
        url = self.url(path)
        retrying = Retrying(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            retry=retry_if_exception_type(Retryable),
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            return retrying(self._attempt, method, url, kwargs)
        except Retryable as exc:
            raise SourceError(
                f"{self.name}: {method} {redact_url(url)} still failing after "
                f"{self.max_retries} retries: {exc}"
            ) from None

    def get_json(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs).json()

    def post_json(self, path: str, payload: Any, **kwargs: Any) -> Any:
        return self.request("POST", path, json=payload, **kwargs).json()

    # ------------------------------------------------------------------ internals

    def _attempt(self, method: str, url: str, kwargs: dict[str, Any]) -> requests.Response:
        self.requests_made += 1
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            raise Retryable(f"{type(exc).__name__}: {exc}") from None
        status = response.status_code
        if self.throttle is not None and (status < 400 or status == 429 or (self.throttle_errors and status < 500)):
            wait = self.throttle(response)  # the API's own throttling math beats a generic wait
            if wait is not None:
                raise Retryable(f"{status}: throttled by the source", wait)
        if status == 429:
            raise Retryable("429 Too Many Requests", retry_after_seconds(response.headers.get("Retry-After")))
        if status >= 500:
            raise Retryable(f"{status} {response.reason}: {error_detail(response, 120)}",
                            retry_after_seconds(response.headers.get("Retry-After")))
        if status >= 400:
            hint = HINTS.get(status, "the request was refused")
            raise SourceError(
                f"{self.name}: {method} {redact_url(response.url)} -> {status} {response.reason}: "
                f"{hint} ({error_detail(response)})"
            )
        if response.content and _is_json(response.headers.get("Content-Type", "application/json")):
            try:
                response.json()
            except ValueError:
                raise Retryable(f"{status} with a body that is not valid JSON "
                                f"({len(response.content)} bytes)") from None
        return response

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, Retryable) and exc.wait is not None:
            return min(exc.wait, self.max_wait)
        exp = self.backoff * 2 ** (state.attempt_number - 1)
        return min(exp, 30.0) * (0.5 + random.random() / 2)

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning("%s: retry %d/%d in %.1fs after %s", self.name, state.attempt_number,
                    self.max_retries, state.upcoming_sleep, exc)

    def close(self) -> None:
        self.session.close()


def paginate(fetch: Callable[[Any], tuple[list[Any], Any]], first: Any = None, *, what: str = "pages"):
    """Follow next-page cursors: ``fetch(cursor) -> (records, next_cursor or None)``.

    Yields each page's records. A cursor seen before means the source is looping:
    the run stops with :class:`PaginationLoop` instead of reading forever.
    """
    seen: set[str] = set()
    cursor = first
    while True:
        records, next_cursor = fetch(cursor)
        yield records
        if next_cursor in (None, ""):
            return
        marker = json.dumps(next_cursor, sort_keys=True, default=str)
        if marker in seen or next_cursor == cursor:
            raise PaginationLoop(f"{what}: the source returned next-page cursor {str(next_cursor)[:80]!r} "
                                 "twice; stopping instead of looping")
        seen.add(marker)
        cursor = next_cursor
