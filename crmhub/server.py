"""The HTTP endpoint of push sources: `crmhub serve`, or mounted in Airflow's API server.

    POST /forms/{source}/{form}   a signed form submission (JSON or form-encoded)
    GET  /healthz                 200 when the config loads and the warehouse answers
    GET  /reports/{name}?period=  a live report page (crmhub.reports), read-only, behind the
                                  config's dashboard token (Bearer) or HTTP basic auth
    GET|POST /meta/{source}       Meta's leadgen webhook for a meta_leads source (crmhub/meta_webhook.py)

Answers: 202 received (stored: a lead, or quarantined with its reason, spam and
unstorable values included, so a bot cannot tell), 401 bad, missing or stale signature,
404 unknown source or form, 408 body not sent within ``read_timeout_seconds``,
409 a delivery already received (or older than the one stored: a replay), 413 body
over the source's ``max_body_bytes``, 400/415 unreadable body (JSON nested deeper than
64 levels included), 503 the warehouse is unreachable (nothing stored; the client
should retry). Nothing is written before the signature checks out. Every refused
request is one log line; a client that goes away mid-body is one line, not a traceback.

``crmhub serve`` also bounds what comes before the app: request headers over
``MAX_HEADER_BYTES`` get 400, and a connection that has not sent complete headers
within ``HEADER_TIMEOUT`` seconds (a slow client) is closed.

``create_app()`` does no I/O: the config (``$CRMHUB_CONFIG`` or ./crmhub.yml) is read
and the warehouse opened on the first request, so Airflow can import the plugin
that mounts this app without a config or a database around.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

import h11
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from uvicorn.protocols.http.h11_impl import H11Protocol

from connectors.sdk import registry
from connectors.sdk.streams import Record, StreamSpec
from connectors.webhook import BadSubmission, WebhookConnector
from crm_model.schema import RawRecord
from crm_model.sync import StreamResult, describe_db_error, ingest
from crmhub import config as config_mod
from crmhub.errors import ConfigError, CrmhubError
from crmhub.redact import redact

log = logging.getLogger("crmhub.serve")
UTC = dt.UTC
MAX_HEADER_BYTES = 16 * 1024  # request line + headers
HEADER_TIMEOUT = 10.0  # seconds a connection may take to send a request's headers


class Refused(Exception):
    """A signed delivery that is not landed: ``status`` and the client's message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class ServeError(CrmhubError):
    """The server cannot start (port taken, nothing to serve)."""


@dataclass(frozen=True)
class Endpoint:
    """One webhook source: where its submissions land and how they are checked."""

    source: str
    connector_type: str
    connector: WebhookConnector
    spec: StreamSpec


class Service:
    """The configured webhook sources and the warehouse they write to."""

    def __init__(self, engine: Engine, endpoints: dict[str, Endpoint], cfg: config_mod.Config | None = None,
                 meta: dict | None = None):
        self.engine = engine
        self.endpoints = endpoints
        self.cfg = cfg  # the dashboard's credentials and the configured report names
        self.meta = meta or {}  # source -> meta_webhook.MetaEndpoint

    @classmethod
    def load(cls, cfg: config_mod.Config) -> Service:
        """Every enabled webhook source of ``cfg`` (secrets resolved now) and the warehouse."""
        from connectors.meta.leads import MetaLeadsConnector
        from crmhub.jobs import warehouse
        from crmhub.meta_webhook import MetaEndpoint

        endpoints, meta = {}, {}
        for name, settings in cfg.settings.sources.items():
            kind = registry.load(settings.connector)
            if settings.enabled and issubclass(kind, MetaLeadsConnector):
                lead_source = kind(cfg.source_config(name, kind.Config), source=name,
                                   start_date=settings.start_date, base_dir=cfg.base_dir)
                if lead_source.webhook_enabled:
                    meta[name] = MetaEndpoint(name, settings.connector, lead_source,
                                              lead_source.stream_specs()["leads"])
                continue
            if not settings.enabled or not issubclass(kind, WebhookConnector):
                continue
            connector = kind(cfg.source_config(name, kind.Config), source=name,
                             start_date=settings.start_date, base_dir=cfg.base_dir)
            endpoints[name] = Endpoint(name, settings.connector, connector,
                                       connector.stream_specs()["submissions"])
        return cls(warehouse(cfg), endpoints, cfg, meta)

    def land(self, endpoint: Endpoint, record: Record) -> StreamResult:
        """Raw landing + mapping + quarantine in one transaction (``ingest``).

        A retried submission (same key) keeps the time it was first received, so
        resending an unchanged body changes nothing.
        """
        key = endpoint.spec.key_of(record)
        with self.engine.connect() as conn:
            first = conn.execute(select(RawRecord.payload).where(
                RawRecord.source == endpoint.source, RawRecord.stream == endpoint.spec.name,
                RawRecord.record_key == key)).scalar_one_or_none()
        if isinstance(first, str):
            first = json.loads(first)
        signed_at = record.get("signed_at")
        stored_at = first.get("signed_at") if isinstance(first, dict) else None
        if isinstance(signed_at, int) and isinstance(stored_at, int):
            same = all(first.get(k) == record.get(k) for k in ("body", "unreadable", "body_text"))
            if same:  # a retry or a replay of what is stored: changes nothing, not even signed_at
                record = {**record, "signed_at": stored_at}
            elif signed_at <= stored_at:  # an old body replayed must not revert a correction
                raise Refused(409, "a newer delivery of this submission was received already")
        if isinstance(first, dict) and first.get("received_at"):
            record = {**record, "received_at": first["received_at"]}
        result = ingest(self.engine, endpoint.source, endpoint.connector_type, endpoint.spec, [record],
                        endpoint.connector.options())
        where = f"{endpoint.source}/{record['form']} submission {record['submission_id']}"
        if record.get("honeypot"):
            log.info("%s: honeypot field filled in: spam, kept in rejected_record", where)
        elif result.rejected:
            log.warning("%s: quarantined in rejected_record (see its reason)", where)
        else:
            log.info("%s: received%s", where, " again" if first is not None else "")
        return result

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def close(self) -> None:
        for endpoint in [*self.endpoints.values(), *self.meta.values()]:
            endpoint.connector.close()
        self.engine.dispose()


class _LazyService:
    """The service, built on first use (thread-safe); a failed build is retried next time."""

    def __init__(self, service: Service | None, config_path: str | os.PathLike | None):
        self._service = service
        self._config_path = config_path
        self._lock = threading.Lock()

    def get(self) -> Service:
        if self._service is None:
            with self._lock:
                if self._service is None:
                    self._service = Service.load(config_mod.load(self._config_path))
        return self._service


def _answer(code: int, **body: object) -> JSONResponse:
    return JSONResponse(body, status_code=code)


class BodyRefused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


async def _read_body(request: Request, limit: int, seconds: float) -> bytes:
    """The raw body: BodyRefused once it is over ``limit`` or not complete within ``seconds``;
    ClientDisconnect if the client went away."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyRefused(413, f"body larger than {limit} bytes")
    chunks, size = [], 0

    async def read() -> None:
        nonlocal size
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyRefused(413, f"body larger than {limit} bytes")
            chunks.append(chunk)

    try:
        await asyncio.wait_for(read(), seconds)
    except TimeoutError:
        raise BodyRefused(408, f"body not complete within {seconds:g} s") from None
    return b"".join(chunks)


META_READ_SECONDS = 30.0  # Meta's deliveries: the same bounds as a form's default


async def _read_body_or_none(request: Request, limit: int) -> bytes | None:
    """The body for Meta's webhook: None when it is over ``limit`` or too slow to arrive."""
    try:
        return await _read_body(request, limit, META_READ_SECONDS)
    except BodyRefused:
        return None


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def create_app(service: Service | None = None, *, config_path: str | os.PathLike | None = None) -> FastAPI:
    """The webhook app. Without ``service`` it loads the config on the first request."""
    lazy = _LazyService(service, config_path)
    app = FastAPI(title="crmhub webhooks", docs_url=None, redoc_url=None, openapi_url=None)

    async def current() -> Service | None:
        try:
            return await run_in_threadpool(lazy.get)
        except CrmhubError as exc:  # the operator reads why in the log; the client learns no details
            log.error("crmhub webhooks are not available: %s", exc)
            return None

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        found = await current()
        if found is None:
            return _answer(503, status="unavailable")
        try:
            await run_in_threadpool(found.ping)
        except SQLAlchemyError as exc:
            log.error("warehouse does not answer: %s", exc)
            return _answer(503, status="unavailable")
        return _answer(200, status="ok")

    @app.post("/forms/{source}/{form}")
    async def submit(source: str, form: str, request: Request) -> JSONResponse:
        found = await current()
        if found is None:
            return _answer(503, error="service unavailable, retry later")
        where = f"{source[:64]}/{form[:64]} from {_client(request)}"

        def refuse(status: int, message: str, detail: str | None = None) -> JSONResponse:
            log.warning("%s: refused %d: %s", where, status, detail or message)  # one line per refusal
            return _answer(status, error=message)

        endpoint = found.endpoints.get(source)
        if endpoint is None or endpoint.connector.form(form) is None:
            return refuse(404, "unknown form")
        settings = endpoint.connector.config
        try:
            body = await _read_body(request, settings.max_body_bytes, settings.read_timeout_seconds)
        except BodyRefused as exc:
            return refuse(exc.status, str(exc))
        except ClientDisconnect:
            log.warning("%s: the client went away before sending the whole body", where)
            return _answer(400, error="incomplete body")
        now = dt.datetime.now(UTC)
        verdict = endpoint.connector.verify(form, body, request.headers, now)
        if not verdict:
            return refuse(401, "missing, invalid or stale signature", verdict.problem)
        try:
            record = endpoint.connector.submission(form, body, request.headers.get("content-type", ""),
                                                   request.headers, now, verdict.signed_at)
        except BadSubmission as exc:
            return refuse(exc.status, str(exc))
        try:
            await run_in_threadpool(found.land, endpoint, record)
        except Refused as exc:
            return refuse(exc.status, str(exc), f"{exc} (submission {record['submission_id']})")
        except Exception as exc:  # nothing was committed: the client's retry is the way to not lose it
            log.error("%s: could not store a submission, answered 503: %s", where,
                      describe_db_error(exc) if isinstance(exc, SQLAlchemyError) else redact(repr(exc)))
            return _answer(503, error="could not store the submission, retry later")
        return _answer(202, status="received", submission_id=record["submission_id"])

    from crmhub import meta_webhook
    from crmhub.dashboard import add_report_routes

    add_report_routes(app, current)
    meta_webhook.mount(app, current, _read_body_or_none)
    return app


# ----------------------------------------------------------------------- crmhub serve


def serve(cfg: config_mod.Config, host: str, port: int, announce: Callable[[str], None]) -> None:
    """Run the webhook endpoint until interrupted (Ctrl-C / SIGTERM)."""
    import uvicorn

    service = Service.load(cfg)  # a broken config or warehouse fails here, with one line
    try:
        from crmhub.dashboard import dashboard_enabled

        if not service.endpoints and not service.meta and not dashboard_enabled(cfg):
            raise ConfigError(f"{cfg.path.name} has no enabled source with `connector: webhook` (or meta_leads "
                              "with app_secret and verify_token) and no `dashboard:` credentials: nothing to serve")
        sock = _listen(host, port)
        if "CRMHUB_LOG_LEVEL" not in os.environ:
            log.setLevel(logging.INFO)
        forms = ", ".join(f"/forms/{e.source}/{form}" for e in service.endpoints.values()
                          for form in e.connector.config.forms)
        forms = ", ".join(filter(None, [forms, *(f"/meta/{name}" for name in service.meta)]))
        base = f"http://{host}:{sock.getsockname()[1]}"
        announce(f"crmhub serve: {base} - POST {forms or '(no webhook forms)'}")
        if dashboard_enabled(cfg):
            announce(f"crmhub serve: live reports at {base}/reports/marketing?period=30d (sales, service, ...)")
        server = uvicorn.Server(uvicorn.Config(
            create_app(service), log_level="info", lifespan="off", server_header=False,
            http=BoundedH11Protocol, h11_max_incomplete_event_size=MAX_HEADER_BYTES,
            timeout_keep_alive=5))
        try:
            server.run(sockets=[sock])
        finally:
            sock.close()
    finally:
        service.close()


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for request headers.

    h11 bounds their size (``h11_max_incomplete_event_size``), uvicorn closes idle
    keep-alive connections, but nothing ends a client that trickles its headers a byte
    at a time: this closes a connection whose request headers are not complete within
    ``HEADER_TIMEOUT`` seconds of the connection (or of the previous response).
    """

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def _arm_header_deadline(self) -> None:
        self._header_deadline = self.loop.call_later(HEADER_TIMEOUT, self._headers_too_slow)

    def _disarm_header_deadline(self) -> None:
        deadline = getattr(self, "_header_deadline", None)
        if deadline is not None:
            deadline.cancel()
            self._header_deadline = None

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:  # the request's headers are in
            self._disarm_header_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._disarm_header_deadline()
            self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.conn.trailing_data[0]:  # a partial request, not a quiet keep-alive connection
            client = f"{self.client[0]}:{self.client[1]}" if self.client else "?"
            log.warning("%s: refused: request headers not complete within %g s; connection closed",
                        client, HEADER_TIMEOUT)
        self.transport.close()


def _listen(host: str, port: int) -> socket.socket:
    """A bound socket, so a taken port is one clear error before the server starts."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        # Listening before the start-up line is printed: from that line on, a client's
        # connection waits in the backlog until the app serves it, however slow start-up is.
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock
