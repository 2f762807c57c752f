"""The one HTTP client every connector uses: timeouts, retries, bounds, clear errors.

- 429: waits for ``Retry-After`` (seconds or an HTTP date), else backs off.
- 5xx, timeouts, connection resets and bodies that are not the JSON expected (an HTML
  maintenance page served with 200 included): retried with exponential backoff and
  jitter, ``max_retries`` times.
- Other 4xx: fail at once with a message that says what to check.
- Bounds: ``timeout`` is the total time of one request (connect, headers, the whole
  body), enforced by a watchdog that closes a connection trickling bytes; a body is
  read up to ``max_body_bytes`` after decompression (a gzip bomb stops there).
- Credentials go only to the host of ``base_url``: a request to any other host (a
  redirect, a URL taken from an API response) leaves out every header and query
  value that carries a configured secret, whatever its name.
- Every message is redacted of every configured secret (``connectors.sdk.redact``).
- A connector-specific ``throttle`` hook can ask for a wait on a response that is
  otherwise a success (Shopify's cost-based throttling answers 200), on a 429 (Google
  Ads' quota errors carry their own retry delay) and, with ``throttle_errors``, on any
  4xx (Meta reports its rate limits as 400s with error codes 4, 17, 613, 80004).
"""

from __future__ import annotations

import email.utils
import heapq
import json
import logging
import os
import random
import re
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import orjson
import requests
from requests.adapters import HTTPAdapter
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
)
from urllib3 import exceptions as urllib3_errors
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from crmhub import redact as redaction
from crmhub.errors import SourceError
from crmhub.redact import redact

log = logging.getLogger("crmhub.http")

SECRET_PARAMS = ("key", "secret", "token", "password", "signature", "auth")
HINTS = {
    400: "the request was malformed: check the connector config",
    401: "authentication failed: check the credentials",
    403: "access denied: check the credentials' scopes/permissions",
    404: "not found: check base_url and the ids in the config",
    422: "the source rejected a parameter: check the config",
}
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
MAX_REDIRECTS = 5
CHUNK = 64 * 1024
# Headers that carry credentials by their nature; any other header is dropped too when
# its value carries a configured secret.
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie"})
# Headers a connector sets that carry no credential; any other header it sets (an API key
# header like X-Shopify-Access-Token) stays with the configured host.
PLAIN_HEADERS = frozenset({"accept", "accept-encoding", "accept-language", "user-agent", "content-type",
                           "stripe-version"})


class Retryable(Exception):
    """A failure worth trying again; ``wait`` is the server's requested delay, if any."""

    def __init__(self, message: str, wait: float | None = None):
        super().__init__(message)
        self.wait = wait


class _GarbageBody(Retryable):
    """A body that is not the JSON expected: retried like any transient garbage."""


class _TimedOut(Retryable):
    """No complete answer within the request's total time."""


class NotJson(SourceError):
    """The source kept answering with something that is not the JSON expected (an HTML page)."""


class PaginationLoop(SourceError):
    """The source returned a next-page cursor it had returned before."""


class TooManyPages(SourceError):
    """A pagination went on past its page bound."""


def redact_url(url: str) -> str:
    """The URL with secret-looking query values, user info and configured secrets masked."""
    parts = urlsplit(url)
    if parts.password:
        parts = parts._replace(netloc=f"{parts.username}:***@{parts.hostname}"
                                      + (f":{parts.port}" if parts.port else ""))
    if parts.query:
        query = [
            (k, "***" if any(s in k.lower() for s in SECRET_PARAMS) else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ]
        parts = parts._replace(query=urlencode(query, safe="*"))
    return redact(urlunsplit(parts))


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


def _one_line(text: str, limit: int) -> str:
    return redact(" ".join(text.split()))[:limit]


def error_detail(response: requests.Response, limit: int = 300) -> str:
    """The error message a JSON API put in its body, else the start of the body (redacted)."""
    try:
        body = response.json()
    except ValueError:
        return _one_line(response.text[:limit * 4], limit)
    for path in (("error", "message"), ("message",), ("error_description",), ("error",),
                 ("errors",), ("description",), ("detail",)):
        value: Any = body
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if value:
            text = value if isinstance(value, str) else json.dumps(value)
            return _one_line(text, limit)
    return _one_line(json.dumps(body), limit)


def json_body(response: requests.Response) -> Any:
    """The response's JSON body, parsed once and kept on the response.

    The SDK's validity check, a connector's throttle hook and the connector's data all
    read the same parsed document instead of parsing the body again (a big page costs
    more to parse than to fetch). orjson first; the standard library for what orjson
    refuses and JSON still allows (NaN, integers beyond 64 bits). Raises ValueError.
    """
    try:
        return response.__dict__["_crmhub_json"]
    except KeyError:
        pass
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = json.loads(response.content)  # raises ValueError for what is not JSON at all
    response.__dict__["_crmhub_json"] = body
    return body


def _is_json(content_type: str) -> bool:
    """application/json or application/*+json (not JSON Lines, which is many documents)."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _json_problem(response: requests.Response) -> str | None:
    """Why the body is not the JSON document that was expected, or None if it is."""
    try:
        json_body(response)  # parsed once: the caller's data reads the same document
    except ValueError:
        pass
    else:
        return None
    content_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip() or "no content type"
    if not response.content:
        return f"{response.status_code} with an empty body where JSON was expected"
    start = _one_line(response.content[:200].decode("utf-8", "replace"), 40)
    what = "an HTML page" if "html" in content_type.lower() or start.lstrip().startswith("<") else "a body"
    return (f"{response.status_code} {content_type}: {what} where JSON was expected "
            f"({len(response.content):,} bytes, starting {start!r})")


def _transport_problem(exc: requests.RequestException) -> str:
    """A connection error as one short line, without the URL requests puts in it."""
    reason: BaseException = exc
    seen: set[int] = set()
    while id(reason) not in seen:
        seen.add(id(reason))
        inner = getattr(reason, "reason", None)
        if not isinstance(inner, BaseException):
            inner = next((a for a in getattr(reason, "args", ()) if isinstance(a, BaseException)), None)
        if inner is None:
            break
        reason = inner
    text = re.sub(r"<[^<>]*? object at 0x[0-9a-f]+>:?\s*", "", str(reason))
    text = re.sub(r"\(?(with )?url: \S+", "", text)
    text = re.sub(r"https?://\S+", lambda m: redact_url(m.group(0)), text)
    return f"{type(exc).__name__}: {_one_line(text, 200)}"


# ------------------------------------------------------------------ credentials stay home


def _decoder(response: requests.Response) -> Any:
    """A zlib decoder for a gzip/deflate body (read raw, so its output can be bounded), else None."""
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    return zlib.decompressobj(zlib.MAX_WBITS | 32) if encoding in ("gzip", "x-gzip", "deflate") else None


def _with_params(url: str, params: Any) -> str:
    """The URL a request with ``params`` goes to (for messages: redact it before showing)."""
    if not params:
        return url
    try:
        return requests.Request("GET", url, params=params).prepare().url or url
    except requests.RequestException:
        return url


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


def _same_home(home: tuple[str, str, int | None], url: str) -> bool:
    """The configured host (an upgrade from http:80 to https:443 included), never a downgrade."""
    target = _origin(url)
    if target == home:
        return True
    return target[1] == home[1] and home[0] == "http" and home[2] == 80 and target[0] == "https" \
        and target[2] == 443


def _carries_secret(value: str) -> bool:
    return any(secret in value for secret in redaction.registered())


def _strip_credentials(prepared: requests.PreparedRequest, own: frozenset[str] = frozenset()) -> None:
    """Remove every credential from a request bound for a host it was not configured for.

    ``own``: the (lower-case) names of headers the connector set itself, other than plain ones.
    """
    for name in list(prepared.headers):
        value = prepared.headers[name]
        if name.lower() in CREDENTIAL_HEADERS or name.lower() in own \
                or (isinstance(value, str) and _carries_secret(value)):
            del prepared.headers[name]
    parts = urlsplit(prepared.url or "")
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        kept = [(k, v) for k, v in pairs if not _carries_secret(v)]
        if len(kept) != len(pairs):
            prepared.url = urlunsplit(parts._replace(query=urlencode(kept)))


class _HomeSession(requests.Session):
    """A session whose credentials (headers, auth, query values) go only to ``home``'s host."""

    def __init__(self, home: str):
        super().__init__()
        self.home = _origin(home)
        self.max_redirects = MAX_REDIRECTS
        self.own_headers: frozenset[str] = frozenset()

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        prepared = super().prepare_request(request)
        if not _same_home(self.home, prepared.url or ""):
            _strip_credentials(prepared, self.own_headers)
        return prepared

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: requests.Response) -> None:
        super().rebuild_auth(prepared_request, response)  # drops Authorization across hosts
        if not _same_home(self.home, prepared_request.url or ""):
            _strip_credentials(prepared_request, self.own_headers)  # ... and every other credential header


# ------------------------------------------------------------------ total time per request

_inflight = threading.local()


class _Alarms:
    """One background thread that runs each callback once its time is up.

    Every request has a watchdog; starting a timer thread for each of them cost a
    thread start per request (and, while another thread held the GIL, up to a switch
    interval of waiting for it to run). One thread serves them all; a cancelled alarm
    is only marked, and dropped when it comes up.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[list[Any]] = []  # [when, seq, callback or None once cancelled]
        self._seq = 0
        self._thread: threading.Thread | None = None
        self._pid = 0

    def add(self, seconds: float, callback: Callable[[], None]) -> list[Any]:
        """Run ``callback`` on the alarm thread in ``seconds``; the entry returned cancels it."""
        with self._cond:
            self._seq += 1
            entry = [time.monotonic() + seconds, self._seq, callback]
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._heap = []  # a forked child inherits the list but not the thread
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="crmhub-http-watchdog", daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, entry)
            if self._heap[0] is entry:
                self._cond.notify()
        return entry

    @staticmethod
    def cancel(entry: list[Any]) -> None:
        entry[2] = None

    def _run(self) -> None:
        while True:
            with self._cond:
                heap = self._heap
                while heap and heap[0][2] is None:
                    heapq.heappop(heap)
                if not heap:
                    self._cond.wait()
                    continue
                delay = heap[0][0] - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                entry = heapq.heappop(heap)
                callback, entry[2] = entry[2], None
            try:
                callback()
            except Exception:  # a watchdog's failure must not stop every other watchdog
                log.debug("http watchdog failed", exc_info=True)


_alarms = _Alarms()


class _Watchdog:
    """Closes the connection of the request in flight once its total time is up.

    A socket timeout bounds each read only: a server sending a byte a second never
    trips it. The watchdog shuts the socket down instead, so the blocked read ends.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expired = False
        self.conn: Any = None
        self._done = False
        self._lock = threading.Lock()
        self._timer: list[Any] | None = None

    def __enter__(self) -> _Watchdog:
        _inflight.watchdog = self
        self._schedule(self.seconds)
        return self

    def __exit__(self, *exc: object) -> None:
        _inflight.watchdog = None
        with self._lock:
            self._done, self.conn = True, None
            if self._timer is not None:
                _alarms.cancel(self._timer)

    def _schedule(self, seconds: float) -> None:
        self._timer = _alarms.add(seconds, self._expire)

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            sock = getattr(self.conn, "sock", None)
            if sock is None:  # still connecting (bounded by the connect timeout): look again soon
                self._schedule(0.2)
                return
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Watched:
    def _make_request(self, conn: Any, *args: Any, **kwargs: Any) -> Any:
        watchdog = getattr(_inflight, "watchdog", None)
        if watchdog is not None:
            with watchdog._lock:
                watchdog.conn = conn
        return super()._make_request(conn, *args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPPool(_Watched, HTTPConnectionPool):
    pass


class _WatchedHTTPSPool(_Watched, HTTPSConnectionPool):
    pass


class _WatchedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class _TooSlow(Exception):
    pass


class BodyTooLarge(SourceError):
    """A response body over ``max_body_bytes`` (after decompression)."""


# ------------------------------------------------------------------ the client


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
        check: Callable[[requests.Response], None] | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        secrets: Iterable[str] = (),
        throttle_errors: bool = False,
    ):
        self.base_url = base_url.rstrip("/") + "/"
        self.name = name
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_wait = max_wait
        self.backoff = backoff
        self.throttle = throttle
        self.check = check  # a connector's look at a response before its status is judged
        self.max_body_bytes = max_body_bytes
        self.throttle_errors = throttle_errors
        redaction.register(*secrets)
        if isinstance(auth, tuple) and len(auth) == 2 and all(isinstance(a, str) for a in auth):
            redaction.register_basic_auth(*auth)
        self.session = _HomeSession(self.base_url)
        for prefix in ("http://", "https://"):
            self.session.mount(prefix, _WatchedAdapter())
        self.session.headers["User-Agent"] = "crmhub/0.1"
        self.session.headers["Accept-Encoding"] = "gzip, deflate"  # what _read_body decodes, bounded
        if headers:
            self.session.headers.update(headers)
            self.session.own_headers = frozenset(h.lower() for h in headers) - PLAIN_HEADERS
        self.session.auth = auth
        self.requests_made = 0

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path  # another host gets no credentials (_HomeSession)
        return urljoin(self.base_url, path.lstrip("/"))

    def request(self, method: str, path: str, *, expect_json: bool = False, **kwargs: Any) -> requests.Response:
        """Send a request, retrying what is worth retrying; return a 2xx response.

        ``expect_json``: a 2xx body that is not JSON (an HTML page served with 200)
        counts as transient garbage and is retried, then fails naming the URL.
        """
        url = self.url(path)
        retrying = Retrying(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            retry=retry_if_exception_type(Retryable),
            before_sleep=self._log_retry,
            reraise=True,
        )
        shown = redact_url(_with_params(url, kwargs.get("params")))
        try:
            return retrying(self._attempt, method, url, kwargs, expect_json, shown)
        except Retryable as exc:
            kind = NotJson if isinstance(exc, _GarbageBody) else SourceError
            raise kind(redact(
                f"{self.name}: {method} {shown} still failing after "
                f"{self.max_retries} retries: {exc}"
            )) from None

    def get_json(self, path: str, **kwargs: Any) -> Any:
        return json_body(self.request("GET", path, expect_json=True, **kwargs))

    def post_json(self, path: str, payload: Any, **kwargs: Any) -> Any:
        return json_body(self.request("POST", path, json=payload, expect_json=True, **kwargs))

    # ------------------------------------------------------------------ internals

    def _fail(self, method: str, url: str, text: str) -> SourceError:
        return SourceError(redact(f"{self.name}: {method} {redact_url(url)}: {text}"))

    def _send(self, method: str, url: str, kwargs: dict[str, Any]) -> requests.Response:
        """One request with its body read, within ``timeout`` in total."""
        deadline = time.monotonic() + self.timeout
        with _Watchdog(self.timeout) as watchdog:
            try:
                response = self.session.request(method, url, timeout=self.timeout, stream=True, **kwargs)
                try:
                    response._content = self._read_body(response, deadline)
                finally:
                    response.close()
            except (requests.ConnectionError, requests.Timeout,
                    requests.exceptions.ChunkedEncodingError, _TooSlow) as exc:
                if watchdog.expired or isinstance(exc, (_TooSlow, requests.Timeout)):
                    raise _TimedOut(f"no complete answer within {self.timeout:g} s "
                                    "(the timeout bounds a request's total time)") from None
                raise Retryable(_transport_problem(exc)) from None
            except requests.exceptions.InvalidHeader:
                raise self._fail(method, url, "a header value has a line break or leading/trailing "
                                 "whitespace: check the credentials in the config (a secret read from "
                                 "a file often ends with a newline)") from None
            except requests.TooManyRedirects:
                raise self._fail(method, url, f"more than {MAX_REDIRECTS} redirects") from None
            except requests.RequestException as exc:
                raise self._fail(method, url, _transport_problem(exc)) from None
        return response

    def _read_body(self, response: requests.Response, deadline: float) -> bytes:
        """The decoded body, at most ``max_body_bytes`` of it, by ``deadline``."""
        limit = self.max_body_bytes
        decoder = _decoder(response)
        declared = response.headers.get("Content-Length", "")
        if decoder is None and declared.isdigit() and int(declared) > limit:
            raise self._too_large(response)
        chunks: list[bytes] = []
        size = 0
        for data in response.raw.stream(CHUNK, decode_content=False):
            if time.monotonic() > deadline:
                raise _TooSlow()
            while data:
                if decoder is None:
                    out, data = data, b""
                else:
                    out = decoder.decompress(data, limit - size + 1)  # never more than the room left
                    data = decoder.unconsumed_tail
                size += len(out)
                if size > limit:
                    raise self._too_large(response)
                chunks.append(out)
        if decoder is not None:
            try:
                tail = decoder.flush()
            except zlib.error:
                tail = b""
            size += len(tail)
            if size > limit:
                raise self._too_large(response)
            chunks.append(tail)
        return b"".join(chunks)

    def send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One attempt, no retries, any status: the bounds (total time, body cap) and
        host-restricted credentials of :meth:`request`, for a caller that judges the
        answer itself (the Google API client does its own retries). A transport failure
        raises ``TimeoutError`` or ``ConnectionError`` with a redacted one-line reason."""
        self.requests_made += 1
        try:
            return self._send(method, self.url(url), kwargs)
        except zlib.error:
            raise ConnectionError(redact(f"{self.name}: {method} {redact_url(url)}: "
                                         "the compressed body is corrupt")) from None
        except Retryable as exc:
            kind = TimeoutError if isinstance(exc, _TimedOut) else ConnectionError
            raise kind(redact(f"{self.name}: {method} {redact_url(url)}: {exc}")) from None

    def lines(self, url: str, *, what: str, max_line_bytes: int | None = None,
              read_budget: float = 3600.0) -> Iterator[bytes]:
        """A large line-delimited download (a JSONL export), streamed in flat memory.

        Not retried (the caller knows whether a download can start over). Bounds: each
        line at most ``max_line_bytes`` after decompression (default ``max_body_bytes``);
        each read within ``timeout``; and the time spent waiting on the network for the
        whole file within ``read_budget`` seconds, so a server trickling bytes cannot keep
        the run going (the caller's own time between lines does not count).
        """
        limit = max_line_bytes or self.max_body_bytes
        shown = redact_url(url)
        waited = 0.0
        self.requests_made += 1
        try:
            with self.session.get(self.url(url), stream=True, timeout=self.timeout) as response:
                if response.status_code >= 400:
                    raise SourceError(redact(f"{self.name}: {what}: GET {shown} -> {response.status_code} "
                                             f"{response.reason}: {error_detail(response)}"))
                decoder = _decoder(response)
                pending = bytearray()

                def complete_lines(out: bytes) -> Iterator[bytes]:
                    pending.extend(out)
                    start = 0
                    while (end := pending.find(b"\n", start)) >= 0:
                        yield bytes(pending[start:end])
                        start = end + 1
                    del pending[:start]
                    if len(pending) > limit:
                        raise BodyTooLarge(redact(
                            f"{self.name}: {what}: GET {shown}: a line is larger than max_body_bytes "
                            f"({limit:,} bytes after decompression); stopped reading"))

                while True:
                    started = time.monotonic()
                    data = response.raw.read1(CHUNK, decode_content=False)
                    waited += time.monotonic() - started
                    if waited > read_budget:
                        raise SourceError(redact(
                            f"{self.name}: {what}: GET {shown}: the download took more than {read_budget:g} s "
                            "of network time; stopped (the server is sending too slowly)"))
                    if not data:
                        break
                    while data:
                        if decoder is None:
                            out, data = data, b""
                        else:
                            out = decoder.decompress(data, limit + 1)  # a bomb stops at one line's room
                            data = decoder.unconsumed_tail
                        yield from complete_lines(out)
                if decoder is not None:
                    yield from complete_lines(decoder.flush())  # the tail may hold whole lines too
                if pending:
                    yield bytes(pending)
        except zlib.error:
            raise SourceError(redact(f"{self.name}: {what}: GET {shown}: the compressed file is corrupt")) from None
        except (requests.RequestException, urllib3_errors.HTTPError, OSError) as exc:
            problem = (_transport_problem(exc) if isinstance(exc, requests.RequestException)
                       else f"{type(exc).__name__}: {_one_line(str(exc), 200)}")
            raise SourceError(redact(f"{self.name}: {what}: GET {shown} failed: {problem}")) from None

    def _too_large(self, response: requests.Response) -> BodyTooLarge:
        return BodyTooLarge(redact(
            f"{self.name}: {response.request.method} {redact_url(response.url)}: the answer is larger "
            f"than max_body_bytes ({self.max_body_bytes:,} bytes after decompression); stopped reading "
            "(raise max_body_bytes in the source's config if the source really sends that much)"))

    def _attempt(self, method: str, url: str, kwargs: dict[str, Any], expect_json: bool,
                 shown: str = "") -> requests.Response:
        self.requests_made += 1
        try:
            response = self._send(method, url, kwargs)
        except zlib.error:
            raise Retryable("the compressed body is corrupt") from None
        if self.check is not None:
            self.check(response)
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
            raise SourceError(redact(
                f"{self.name}: {method} {redact_url(response.url)} -> {status} {response.reason}: "
                f"{hint} ({error_detail(response)})"
            ))
        if status != 204 and (expect_json or (response.content and _is_json(
                response.headers.get("Content-Type", "application/json")))):
            problem = _json_problem(response)
            if problem:
                raise _GarbageBody(problem)
        return response

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, Retryable) and exc.wait is not None:
            return min(exc.wait, self.max_wait)
        exp = self.backoff * 2 ** (state.attempt_number - 1)
        return min(exp, 30.0) * (0.5 + random.random() / 2)

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        method, shown = state.args[0], state.args[4]
        log.warning("%s", redact(f"{self.name}: retry {state.attempt_number}/{self.max_retries} in "
                                 f"{state.upcoming_sleep:.1f}s after {exc} ({method} {shown})"))

    def close(self) -> None:
        self.session.close()


DEFAULT_MAX_PAGES = 100_000


def paginate(fetch: Callable[[Any], tuple[list[Any], Any]], first: Any = None, *, what: str = "pages",
             max_pages: int = DEFAULT_MAX_PAGES):
    """Follow next-page cursors: ``fetch(cursor) -> (records, next_cursor or None)``.

    Yields each page's records. A cursor seen before means the source is looping:
    the run stops with :class:`PaginationLoop` instead of reading forever; so does a
    pagination past ``max_pages`` (distinct cursors forever), with :class:`TooManyPages`.
    (The engine bounds the pages of a whole run as well: ``max_pages`` in crmhub.yml.)
    """
    seen: set[str] = set()
    cursor = first
    pages = 0
    while True:
        records, next_cursor = fetch(cursor)
        pages += 1
        yield records
        if next_cursor in (None, ""):
            return
        marker = json.dumps(next_cursor, sort_keys=True, default=str)
        if marker in seen or next_cursor == cursor:
            raise PaginationLoop(redact(f"{what}: the source returned next-page cursor "
                                        f"{str(next_cursor)[:80]!r} twice; stopping instead of looping"))
        if pages >= max_pages:
            raise TooManyPages(f"{what}: still more pages after {max_pages:,}; stopping (the source "
                               "may be paginating forever)")
        seen.add(marker)
        cursor = next_cursor
