"""Meta's ``leadgen`` webhook, served by `crmhub serve` beside the form webhooks.

    GET  /meta/{source}   the subscription handshake: answers ``hub.challenge`` when
                          ``hub.mode=subscribe`` and ``hub.verify_token`` is the source's token
    POST /meta/{source}   a change notification, signed ``X-Hub-Signature-256`` with the app secret

Each ``leadgen`` change for one of the source's forms names a lead id; the lead is read
from the Graph API and landed in the source's ``leads`` stream under its id, exactly as
the pull (`crmhub sync`) lands it, so a lead both pulled and pushed is one lead.
Answers: 200 handled (also for changes that are not about our forms), 401 bad signature,
403 wrong verify token, 404 unknown source, 413 body too large, 400 unreadable JSON,
503 the lead could not be read or stored (Meta retries).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from connectors.meta.leads import MetaLeadsConnector
from connectors.sdk.streams import StreamSpec
from crm_model.sync import ingest

log = logging.getLogger("crmhub.serve")


@dataclass(frozen=True)
class MetaEndpoint:
    source: str
    connector_type: str
    connector: MetaLeadsConnector
    spec: StreamSpec


def land_leads(engine, endpoint: MetaEndpoint, leadgen_ids: list[str]) -> int:
    """Read each announced lead and land it like a pulled one; the number landed."""
    records = [endpoint.connector.lead(lead_id) for lead_id in leadgen_ids]
    if not records:
        return 0
    result = ingest(engine, endpoint.source, endpoint.connector_type, endpoint.spec, records,
                    endpoint.connector.options())
    if result.rejected:
        log.warning("%s: %d pushed lead(s) quarantined in rejected_record", endpoint.source, result.rejected)
    return result.loaded


def mount(app: FastAPI, current: Callable[[], Awaitable[object | None]], read_body) -> None:
    """Add the /meta/{source} routes; ``current()`` gives the Service (or None when unavailable)."""

    async def endpoint_of(source: str):
        service = await current()
        if service is None:
            return None, None, JSONResponse({"error": "service unavailable, retry later"}, status_code=503)
        found = getattr(service, "meta", {}).get(source)
        if found is None:
            return service, None, JSONResponse({"error": "unknown source"}, status_code=404)
        return service, found, None

    @app.get("/meta/{source}")
    async def handshake(source: str, request: Request):
        _, found, problem = await endpoint_of(source)
        if problem is not None:
            return problem
        query = request.query_params
        if query.get("hub.mode") == "subscribe" and found.connector.verify_token_matches(query.get("hub.verify_token")):
            return PlainTextResponse(query.get("hub.challenge", ""))
        log.warning("%s: webhook handshake with a wrong verify token", source)
        return JSONResponse({"error": "verify token does not match"}, status_code=403)

    @app.post("/meta/{source}")
    async def notify(source: str, request: Request):
        service, found, problem = await endpoint_of(source)
        if problem is not None:
            return problem
        limit = found.connector.config.max_body_bytes
        body = await read_body(request, limit)
        if body is None:
            return JSONResponse({"error": f"body larger than {limit} bytes"}, status_code=413)
        if not found.connector.signature_valid(body, request.headers.get("x-hub-signature-256")):
            log.warning("%s: rejected a webhook post with a missing or invalid signature", source)
            return JSONResponse({"error": "missing or invalid signature"}, status_code=401)
        try:
            payload = json.loads(body)
        except ValueError:
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        ids = found.connector.leadgen_ids(payload)
        try:
            landed = await run_in_threadpool(land_leads, service.engine, found, ids)
        except Exception as exc:  # nothing committed: Meta retries the delivery
            log.error("%s: could not read or store leads %s: %s", source, ids, exc)
            return JSONResponse({"error": "could not store the leads, retry later"}, status_code=503)
        log.info("%s: %d lead(s) received by webhook", source, landed)
        return JSONResponse({"status": "received", "leads": landed})
