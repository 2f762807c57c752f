"""`crmhub serve`'s live report pages: refused without the configured token or basic auth."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient

from crmhub.server import Service, create_app
from tests.reports import fixtures

TOKEN = "dash-token-0123456789"


def client(cfg, engine) -> TestClient:
    return TestClient(create_app(Service(engine, {}, cfg)))


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def dashboard(write_config, warehouse, monkeypatch):
    monkeypatch.setenv("DASH_PASSWORD", "correct horse")
    fixtures.load(warehouse)
    cfg = write_config({}, dashboard={"token": TOKEN, "username": "boss", "password": "${DASH_PASSWORD}"},
                       reports={"weekly_sales": {"report": "sales", "period": "7d"}})
    return client(cfg, warehouse)


def test_pages_need_the_token_or_the_password(dashboard):
    url = "/reports/sales?period=2026-03-01..2026-03-31"
    refused = dashboard.get(url)
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Basic")
    assert dashboard.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert dashboard.get(url, headers=basic("boss", "wrong")).status_code == 401
    assert dashboard.get(url, headers={"Authorization": "Basic !!!"}).status_code == 401
    for headers in ({"Authorization": f"Bearer {TOKEN}"}, basic("boss", "correct horse")):
        page = dashboard.get(url, headers=headers)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "Sales report" in page.text and "170.00" in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script" not in page.text
        assert 'src="data:image/png;base64,' in page.text
        assert "script-src" not in page.headers["content-security-policy"]  # default-src 'none': no script


def test_pages_are_read_only_and_know_their_reports(dashboard, warehouse):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert dashboard.post("/reports/sales", headers=auth).status_code == 405
    assert dashboard.get("/reports/nope", headers=auth).status_code == 404
    assert dashboard.get("/reports/sales?period=fortnight", headers=auth).status_code == 400
    assert dashboard.get("/reports/weekly_sales?as_of=2026-03-15", headers=auth).status_code == 200
    index = dashboard.get("/reports", headers=auth)
    assert "weekly_sales" in index.text and "marketing" in index.text
    with warehouse.connect() as conn:  # no report_run rows: a page view is not a run
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM report_run").scalar() == 0


def test_without_configured_credentials_the_dashboard_is_off(write_config, warehouse):
    cfg = write_config({})
    page = client(cfg, warehouse).get("/reports/sales", headers={"Authorization": f"Bearer {TOKEN}"})
    assert page.status_code == 403 and "dashboard is off" in page.text
