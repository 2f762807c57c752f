"""The HTTP endpoint of push sources: `crmhub serve`, or mounted in Airflow's API server.

    POST /forms/{source}/{form}   a signed form submission (JSON or form-encoded)
    GET  /healthz                 200 when the config loads and the warehouse answers
    GET|POST /meta/{source}       Meta's leadgen webhook for a meta_leads source (crmhub/meta_webhook.py)

Answers: 202 received (stored: a lead, or quarantined with its reason, spam included,
so a bot cannot tell), 401 bad or missing signature, 404 unknown source or form,
413 body over the source's ``max_body_bytes``, 400/415 unreadable body, 503 the
warehouse is unreachable (nothing stored; the client should retry). Nothing is
written before the signature checks out.

``create_app()`` does no I/O: the config (``$CRMHUB_CONFIG`` or ./crmhub.yml) is read
and the warehouse opened on the first request, so Airflow can import the plugin
that mounts this app without a config or a database around.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from connectors.sdk import registry
from connectors.sdk.streams import Record, StreamSpec
from connectors.webhook import BadSubmission, WebhookConnector
from crm_model.schema import RawRecord
from crm_model.sync import StreamResult, ingest
from crmhub import config as config_mod
from crmhub.errors import ConfigError, CrmhubError

log = logging.getLogger("crmhub.serve")
UTC = dt.UTC


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

    def __init__(self, engine: Engine, endpoints: dict[str, Endpoint], meta: dict | None = None):
        self.engine = engine
        self.endpoints = endpoints
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
        return cls(warehouse(cfg), endpoints, meta)

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


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The raw body, or None once it is larger than ``limit`` (read no further)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


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
        endpoint = found.endpoints.get(source)
        if endpoint is None or endpoint.connector.form(form) is None:
            return _answer(404, error="unknown form")
        limit = endpoint.connector.config.max_body_bytes
        body = await _read_body(request, limit)
        if body is None:
            return _answer(413, error=f"body larger than {limit} bytes")
        if not endpoint.connector.verify(form, body, request.headers):
            log.warning("%s/%s: rejected a post with a missing or invalid signature", source, form)
            return _answer(401, error="missing or invalid signature")
        try:
            record = endpoint.connector.submission(form, body, request.headers.get("content-type", ""),
                                                   request.headers, dt.datetime.now(UTC))
        except BadSubmission as exc:
            return _answer(exc.status, error=str(exc))
        try:
            await run_in_threadpool(found.land, endpoint, record)
        except Exception:  # nothing was committed: the client's retry is the way to not lose it
            log.exception("%s/%s: could not store a submission", source, form)
            return _answer(503, error="could not store the submission, retry later")
        return _answer(202, status="received", submission_id=record["submission_id"])

    from crmhub import meta_webhook

    meta_webhook.mount(app, current, _read_body)
    return app


# ----------------------------------------------------------------------- crmhub serve


def serve(cfg: config_mod.Config, host: str, port: int, announce: Callable[[str], None]) -> None:
    """Run the webhook endpoint until interrupted (Ctrl-C / SIGTERM)."""
    import uvicorn

    service = Service.load(cfg)  # a broken config or warehouse fails here, with one line
    try:
        if not service.endpoints and not service.meta:
            raise ConfigError(f"{cfg.path.name} has no enabled source with `connector: webhook` (or meta_leads "
                              "with app_secret and verify_token): nothing to serve")
        sock = _listen(host, port)
        if "CRMHUB_LOG_LEVEL" not in os.environ:
            log.setLevel(logging.INFO)
        forms = ", ".join(f"/forms/{e.source}/{form}" for e in service.endpoints.values()
                          for form in e.connector.config.forms)
        forms = ", ".join(filter(None, [forms, *(f"/meta/{name}" for name in service.meta)]))
        announce(f"crmhub serve: http://{host}:{sock.getsockname()[1]} - POST {forms}")
        server = uvicorn.Server(uvicorn.Config(create_app(service), log_level="info", lifespan="off",
                                               server_header=False))
        try:
            server.run(sockets=[sock])
        finally:
            sock.close()
    finally:
        service.close()


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
    except OSError as exc:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock
