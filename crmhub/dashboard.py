"""Live report pages for `crmhub serve`: GET /reports/<name>?period=30d.

The same reports as the emails (charts inline as data: URIs), built from the warehouse
on each request; nothing is written (no report_run row). Access needs the ``dashboard:``
credentials of crmhub.yml: ``Authorization: Bearer <token>`` or HTTP basic auth. Without
credentials configured every page is refused, so a warehouse is never exposed by default.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import logging

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from crmhub import config as config_mod
from crmhub.errors import CrmhubError

log = logging.getLogger("crmhub.serve")
PERIODS = ("7d", "30d", "month", "quarter")
_SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # the page has inline styles and data: images only; no script runs
    "Content-Security-Policy": "default-src 'none'; img-src data:; style-src 'unsafe-inline'; form-action 'none'",
}


def dashboard_enabled(cfg: config_mod.Config) -> bool:
    d = cfg.settings.dashboard
    return d.token is not None or (d.username is not None and d.password is not None)


def _secret(cfg: config_mod.Config, value, *loc: str) -> str:
    return config_mod.interpolate(value.get_secret_value(), loc, cfg.where)


def authorised(cfg: config_mod.Config, header: str | None) -> bool:
    """Whether the Authorization header matches the configured token or user and password."""
    d = cfg.settings.dashboard
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and d.token is not None:
        return hmac.compare_digest(value.encode(), _secret(cfg, d.token, "dashboard", "token").encode())
    if scheme.lower() == "basic" and d.username is not None and d.password is not None:
        try:
            user, _, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user_ok = hmac.compare_digest(user.encode(), d.username.encode())
        password_ok = hmac.compare_digest(password.encode(),
                                          _secret(cfg, d.password, "dashboard", "password").encode())
        return user_ok and password_ok
    return False


def add_report_routes(app: FastAPI, current) -> None:
    """Mount GET /reports and /reports/{name} on the serve app (``current`` gives the Service)."""
    from crmhub.reports import REPORTS, build_live
    from crmhub.reports.delivery import data_uri
    from crmhub.reports.render import html

    async def guard(request: Request):
        service = await current()
        if service is None or service.cfg is None:
            return None, PlainTextResponse("service unavailable, retry later", status_code=503)
        if not dashboard_enabled(service.cfg):
            return None, PlainTextResponse("the dashboard is off: set dashboard.token or dashboard.username "
                                           "and dashboard.password in crmhub.yml", status_code=403)
        if not authorised(service.cfg, request.headers.get("authorization")):
            return None, PlainTextResponse("authentication required", status_code=401,
                                           headers={"WWW-Authenticate": 'Basic realm="crmhub reports"'})
        return service, None

    def names(service) -> list[str]:
        return [*REPORTS, *(n for n in service.cfg.settings.reports if n not in REPORTS)]

    @app.get("/reports")
    async def index(request: Request) -> Response:
        service, refused = await guard(request)
        if refused:
            return refused
        links = "".join(f'<li><a href="reports/{n}?period=30d">{n}</a></li>' for n in names(service))
        return HTMLResponse(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>crmhub reports</title></head>"
                            f"<body style='font-family:Arial,sans-serif'><h1>crmhub reports</h1><ul>{links}</ul>"
                            f"</body></html>", headers=_SECURITY_HEADERS)

    @app.get("/reports/{name}")
    async def page(name: str, request: Request, period: str = "30d", as_of: str | None = None) -> Response:
        service, refused = await guard(request)
        if refused:
            return refused
        if name not in names(service):
            return PlainTextResponse("unknown report", status_code=404)
        try:
            today = dt.date.fromisoformat(as_of) if as_of else None
        except ValueError:
            return PlainTextResponse("as_of must be a date (YYYY-MM-DD)", status_code=400)

        def render() -> str:
            report = build_live(service.engine, name, period, service.cfg, today)
            return html(report, data_uri, dashboard={"base": str(request.scope.get("root_path", "")),
                                                     "reports": names(service), "periods": PERIODS})

        try:
            body = await run_in_threadpool(render)
        except CrmhubError as exc:
            return PlainTextResponse(str(exc), status_code=400)
        return HTMLResponse(body, headers=_SECURITY_HEADERS)
