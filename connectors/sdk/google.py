"""Google API plumbing for connectors: credentials, and the SDK's bounded HTTP under the
Google API client (google-api-python-client speaks httplib2's interface)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import google.oauth2.credentials
import google_auth_httplib2
import httplib2
from google.auth.exceptions import GoogleAuthError, RefreshError, TransportError
from google.auth.transport import DEFAULT_REFRESH_STATUS_CODES
from google.oauth2 import service_account
from googleapiclient.errors import HttpError
from pydantic import SecretStr

from connectors.sdk.http import Http
from crmhub import redact
from crmhub.errors import ConfigError, SourceError

# Headers that describe the body as sent; the bridge hands the client the decoded body.
_ENCODING_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class HttpBridge:
    """httplib2's ``request()`` over the SDK's :class:`Http`, for the Google API client.

    httplib2 bounds only each socket read and reads any body whole; through this bridge a
    Google connector gets what every other connector has: the request's total time
    bounded (``timeout``), the decoded body capped (``max_body_bytes``, gzip included),
    credentials sent only to the configured API host, errors redacted. Retries stay with
    the API client (``execute(num_retries=...)``): a cut or failed connection raises
    ``TimeoutError`` / ``ConnectionError``, which it retries.
    """

    def __init__(self, http: Http):
        self.http = http
        self.timeout = http.timeout

    def request(self, uri: str, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None,
                redirections: int = 5, connection_type: Any = None, **_: Any) -> tuple[httplib2.Response, bytes]:
        response = self.http.send(method, uri, data=body, headers=dict(headers or {}))
        info: dict[str, Any] = {k.lower(): v for k, v in response.headers.items() if k.lower() not in _ENCODING_HEADERS}
        info["status"] = str(response.status_code)
        answer = httplib2.Response(info)
        answer.reason = response.reason or ""
        return answer, response.content

    def close(self) -> None:
        self.http.close()


def google_http(credentials: Any, *, name: str, base_url: str, refreshable: bool,
                **http_options: Any) -> google_auth_httplib2.AuthorizedHttp:
    """An authorized httplib2-style client for ``googleapiclient.discovery.build(http=...)``.

    ``refreshable``: False for a bare access token, which cannot be refreshed, so that a 401
    surfaces as such and not as a refresh failure. ``http_options`` are the source's
    ``HttpConfig.http_options()`` (timeout, max_body_bytes, secrets; retries are the API
    client's)."""
    http_options.pop("max_retries", None)
    bridge = HttpBridge(Http(base_url, name=name, max_retries=0, **http_options))
    return google_auth_httplib2.AuthorizedHttp(
        credentials, http=bridge, refresh_status_codes=DEFAULT_REFRESH_STATUS_CODES if refreshable else ())


def google_service(api: str, version: str, credentials: Any, *, who: str, config: Any) -> Any:
    """A discovery-based API client (its bundled discovery document: no network to build it)
    over :func:`google_http`. ``config`` is the source's config: ``base_url``,
    ``access_token`` and ``http_options()``."""
    from googleapiclient.discovery import build

    http = google_http(credentials, name=who, base_url=config.base_url, refreshable=config.access_token is None,
                       **config.http_options())
    return build(api, version, http=http, static_discovery=True, cache_discovery=False,
                 client_options={"api_endpoint": config.base_url})


def google_credentials(who: str, *, access_token: SecretStr | None, credentials_file: str | None,
                       subject: str | None, scopes: Sequence[str], base_dir: Path) -> Any:
    """Credentials from a bare access token (never refreshed) or a service-account /
    authorized-user JSON file (relative to crmhub.yml's folder). Errors name the file and
    the missing field, never the key material."""
    if access_token is not None:
        return google.oauth2.credentials.Credentials(token=access_token.get_secret_value())
    path = Path(credentials_file or "").expanduser()
    if not path.is_absolute():
        path = base_dir / path
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{who}: cannot read credentials_file {path}: {exc.strerror}") from None
    except ValueError:
        raise ConfigError(f"{who}: credentials_file {path} is not a JSON key file") from None
    if isinstance(info, dict):  # the key file's secrets are secrets like any configured one
        redact.register(*(str(info[k]) for k in ("private_key", "client_secret", "refresh_token") if info.get(k)))
    kind = info.get("type") if isinstance(info, dict) else None
    try:
        if kind == "service_account":
            return service_account.Credentials.from_service_account_info(info, scopes=list(scopes), subject=subject)
        if kind == "authorized_user":
            if subject:
                raise ConfigError(f"{who}: subject works with a service-account key only")
            return google.oauth2.credentials.Credentials.from_authorized_user_info(info)
    except (ValueError, GoogleAuthError) as exc:
        reason = str(exc).splitlines()[0][:200] if "PRIVATE KEY" not in str(exc) else "malformed key"
        raise ConfigError(f"{who}: credentials_file {path} is incomplete: {reason}") from None
    raise ConfigError(f"{who}: credentials_file {path} has type {kind!r}; "
                      "expected a service_account or authorized_user JSON file")


def execute(request: Any, *, who: str, what: str, retries: int, hints: dict[int, str],
            credentials: str | None = None, passthrough: Sequence[int] = ()) -> dict[str, Any]:
    """Run one Google API request and turn every failure into one clear line.

    The API client retries a 429, a 5xx or a cut connection ``retries`` times. ``who`` names
    the source, ``what`` the request; ``hints`` says what a status means for this API; the
    statuses in ``passthrough`` (a 404 the caller expects) are raised as the client's
    ``HttpError`` for the caller to handle."""
    try:
        body = request.execute(num_retries=retries)
    except HttpError as exc:
        status = exc.status_code
        if status in passthrough:
            raise
        detail = f" ({exc.reason[:300]})" if exc.reason else ""
        retried = f" after {retries} retries" if status == 429 or status >= 500 else ""
        raise SourceError(f"{who}: {what} -> {status}{retried}: "
                          f"{hints.get(status, 'the request failed')}{detail}") from None
    except RefreshError as exc:
        source = f" with credentials_file {credentials}" if credentials else ""
        raise SourceError(f"{who}: could not get an access token{source}: {first_line(exc)}") from None
    except (TransportError, httplib2.HttpLib2Error, OSError) as exc:
        raise SourceError(f"{who}: {what}: {type(exc).__name__}: {first_line(exc)} "
                          f"(after {retries} retries)") from None
    if not isinstance(body, dict):
        raise SourceError(f"{who}: {what}: the answer is not a JSON object")
    return body


def first_line(exc: Exception) -> str:
    """An exception's first line, short: enough to act on, never a dump."""
    text = str(exc.args[0]) if exc.args else str(exc)
    return text.splitlines()[0][:200] if text else type(exc).__name__
