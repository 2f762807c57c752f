"""ga4: google-api-python-client (bundled discovery) against a real HTTP server replaying runReport pages."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from pydantic import ValidationError
from werkzeug import Request, Response

from connectors.ga4 import Ga4Config, Ga4Connector
from crm_model.sync import load_state, sync
from tests.conftest import FIXTURES, rows

TOKEN = "ya29.ga4-SECRET"
PROPERTY = "345678901"
PATH = f"/v1beta/properties/{PROPERTY}:runReport"


class Api:
    def __init__(self, pages: dict[str, str]):
        self.pages = pages  # offset -> fixture
        self.bodies: list[dict] = []

    def __call__(self, request: Request) -> Response:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        body = request.get_json()
        self.bodies.append(body)
        name = self.pages[str(body.get("offset", "0"))]
        return Response((FIXTURES / "ga4" / name).read_bytes(), content_type="application/json")


def connector(server, **config) -> Ga4Connector:
    cfg = Ga4Config(base_url=server.url_for("/"), access_token=TOKEN, property_id=PROPERTY, page_size=2,
                    max_retries=1, **config)
    made = Ga4Connector(cfg, source="site", start_date=dt.date(2026, 3, 1))
    made.today = lambda: dt.date(2026, 3, 2)
    return made


def test_report_pages_by_offset_into_web_traffic_daily(warehouse, httpserver):
    httpserver.no_handler_status_code = 418
    api = Api({"0": "report_page1.json", "2": "report_page2.json"})
    httpserver.expect_request(PATH, method="POST").respond_with_handler(api)

    result = sync(warehouse, "site", connector(httpserver), "ga4")

    assert result.status == "success", result.errors
    assert [b["offset"] for b in api.bodies] == ["0", "2"]
    first = api.bodies[0]
    assert first["dateRanges"] == [{"startDate": "2026-03-01", "endDate": "2026-03-02"}]
    assert [d["name"] for d in first["dimensions"]] == ["date", "sessionSource", "sessionMedium",
                                                        "sessionCampaignName", "landingPage"]
    assert [m["name"] for m in first["metrics"]] == ["sessions", "engagedSessions", "keyEvents"]
    assert first["returnPropertyQuota"] is True and first["limit"] == "2"
    traffic = {(r["date"], r["source"]): r for r in rows(warehouse, "web_traffic_daily")}
    assert len(traffic) == 3
    paid = traffic[(dt.date(2026, 3, 1), "google")]
    assert (paid["medium"], paid["campaign"], paid["landing_page"], paid["sessions"], paid["engaged_sessions"],
            paid["conversions"]) == ("cpc", "Brand - Search DE", "/pricing", 120, 84, Decimal("6"))
    direct = traffic[(dt.date(2026, 3, 1), "(direct)")]
    assert (direct["campaign"], direct["conversions"]) == ("", Decimal("2.5"))
    with warehouse.connect() as conn:
        assert load_state(conn, "site", "traffic") == {"cursor": "2026-03-02"}


def test_a_low_token_quota_stops_after_the_page_read(warehouse, httpserver):
    api = Api({"0": "report_low_quota.json", "2": "report_page2.json"})
    httpserver.expect_request(PATH, method="POST").respond_with_handler(api)

    result = sync(warehouse, "site", connector(httpserver), "ga4")

    assert result.status == "failed"
    assert "tokensPerHour" in result.errors[0] and "\n" not in result.errors[0]
    assert len(api.bodies) == 1  # page 2 was not asked for
    assert len(rows(warehouse, "web_traffic_daily")) == 2  # page 1 is committed
    with warehouse.connect() as conn:
        assert load_state(conn, "site", "traffic") == {}  # the window is read again next time


def test_a_403_is_one_line_that_says_what_to_grant(warehouse, httpserver):
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        {"error": {"code": 403, "message": "User does not have sufficient permissions for this property.",
                   "status": "PERMISSION_DENIED"}}, status=403)
    result = sync(warehouse, "site", connector(httpserver), "ga4")
    assert "Viewer access" in result.errors[0] and TOKEN not in result.errors[0]


def test_config_needs_exactly_one_credential():
    with pytest.raises(ValidationError, match="exactly one"):
        Ga4Config(property_id=PROPERTY)
    with pytest.raises(ValidationError):
        Ga4Config(property_id="properties/1", access_token="x")
    assert json.loads(Ga4Config(property_id=PROPERTY, access_token="x").model_dump_json())["conversion_metric"] == "keyEvents"
