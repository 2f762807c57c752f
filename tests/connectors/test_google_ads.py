"""Google Ads: a real HTTP server answers searchStream (batched JSON arrays) and the OAuth token endpoint."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal

import pytest
from pydantic import ValidationError
from sqlalchemy import text
from werkzeug import Request, Response

from connectors.google_ads import GoogleAdsConfig, GoogleAdsConnector, quota_wait
from crm_model.sync import load_state, sync
from crmhub.errors import SourceError
from tests.conftest import FIXTURES, rows

DEV_TOKEN = "devtok-SECRET-123"
REFRESH = "1//refresh-SECRET-456"
CLIENT_SECRET = "GOCSPX-SECRET-789"
MANAGER, DE, UK = "9998887776", "1234567890", "5556667777"
TODAY = dt.date(2026, 3, 2)


class Api:
    """Answers searchStream by the FROM clause and customer; remembers every query."""

    def __init__(self):
        self.queries: list[tuple[str, str]] = []
        self.tokens = 0
        self.stats = {DE: "stats_de.json", UK: "stats_uk.json"}
        self.ads = {DE: "ads_de.json", UK: "ads_uk.json"}
        self.fail: list[tuple[int, str]] = []  # (status, fixture) answers to give first

    def token(self, request: Request) -> Response:
        self.tokens += 1
        form = request.form
        assert form["grant_type"] == "refresh_token" and form["refresh_token"] == REFRESH
        assert form["client_id"] == "cid.apps.googleusercontent.com" and form["client_secret"] == CLIENT_SECRET
        return Response(json.dumps({"access_token": f"ya29.access-{self.tokens}", "expires_in": 3599,
                                    "token_type": "Bearer"}), content_type="application/json")

    def search(self, request: Request) -> Response:
        assert request.headers["Authorization"].startswith("Bearer ya29.access-")
        assert request.headers["developer-token"] == DEV_TOKEN
        assert request.headers["login-customer-id"] == MANAGER
        cid = re.search(r"/customers/(\d+)/googleAds:searchStream$", request.path).group(1)
        query = request.get_json()["query"]
        self.queries.append((cid, query))
        if self.fail:
            status, fixture = self.fail.pop(0)
            return Response((FIXTURES / "google_ads" / fixture).read_bytes(), status=status,
                            content_type="application/json")
        table = re.search(r"\bFROM (\w+)", query).group(1)
        if table == "customer_client":
            name = "clients.json"
        elif table == "campaign":
            name = {DE: "campaigns_de.json", UK: "campaigns_uk.json"}[cid]
        elif table == "ad_group_ad" and "segments.date BETWEEN" in query:
            name = self.stats[cid]
        elif table == "ad_group_ad":
            name = self.ads[cid]
        else:
            day = re.search(r"segments.date = '([\d-]+)'", query).group(1)
            path = FIXTURES / "google_ads" / f"clicks_{'de' if cid == DE else 'uk'}_{day}.json"
            name = path.name if path.exists() else "clicks_empty.json"
        return Response((FIXTURES / "google_ads" / name).read_bytes(), content_type="application/json")


@pytest.fixture
def api(httpserver) -> Api:
    httpserver.no_handler_status_code = 418
    api = Api()
    httpserver.expect_request("/token", method="POST").respond_with_handler(api.token)
    httpserver.expect_request(re.compile(r"^/v26/customers/\d+/googleAds:searchStream$"),
                              method="POST").respond_with_handler(api.search)
    return api


def connector(server, **config) -> GoogleAdsConnector:
    cfg = GoogleAdsConfig(
        base_url=server.url_for("/"), token_uri=server.url_for("/token"), developer_token=DEV_TOKEN,
        client_id="cid.apps.googleusercontent.com", client_secret=CLIENT_SECRET, refresh_token=REFRESH,
        login_customer_id="999-888-7776", max_retries=2, **config)
    made = GoogleAdsConnector(cfg, source="google", start_date=dt.date(2026, 3, 1))
    made.today = lambda: TODAY  # the account's "today", fixed so the day windows are known
    return made


def test_manager_reads_its_clients_into_campaigns_ads_exact_costs_and_clicks(warehouse, httpserver, api):
    result = sync(warehouse, "google", connector(httpserver), "google_ads")

    assert result.status == "success", result.errors
    assert result.rejected == 0
    assert api.tokens == 1  # one access token for the whole run
    assert {q[0] for q in api.queries} == {MANAGER, DE, UK}  # the cancelled client and the manager are skipped
    assert [(c["campaign_id"], c["name"], c["status"], c["channel"]) for c in rows(warehouse, "campaign")] == [
        ("20001", "Brand - Search DE", "enabled", "search"),
        ("20002", "PMax - Spring", "paused", "performance_max"),
        ("30001", "Remarketing UK", "enabled", "display"),
    ]
    ads = {a["ad_id"]: a for a in rows(warehouse, "ad")}
    assert ads["90001"]["name"] == "Brand terms / ad 90001" and ads["90001"]["campaign_id"] == "20001"
    assert ads["95001"]["name"] == "Come back banner"
    stats = {(s["ad_id"], s["date"]): s for s in rows(warehouse, "ad_stat_daily")}
    assert len(stats) == 4
    first = stats[("90001", dt.date(2026, 3, 1))]
    assert (first["cost"], first["currency"], first["impressions"], first["clicks"]) == (
        Decimal("12.345678"), "EUR", 480, 12)
    assert (first["conversions"], first["conversion_value"]) == (Decimal("2"), Decimal("240.5"))
    pmax = stats[("90002", dt.date(2026, 3, 2))]
    assert (pmax["cost"], pmax["conversions"], pmax["conversion_value"]) == (Decimal("0.99"), 0, 0)
    assert stats[("95001", dt.date(2026, 3, 1))]["currency"] == "GBP"
    # click_view: one query per day and client account, 2026-03-01 and 2026-03-02
    click_days = sorted((cid, re.search(r"= '([\d-]+)'", q).group(1)) for cid, q in api.queries if "click_view" in q)
    assert click_days == [(DE, "2026-03-01"), (DE, "2026-03-02"), (UK, "2026-03-01"), (UK, "2026-03-02")]
    (click,) = rows(warehouse, "touchpoint")
    assert (click["external_id"], click["channel"], click["click_id"], click["campaign_id"], click["ad_id"],
            click["ad_platform"], click["occurred_at"]) == (
        "gclid:Cj0KCQiA-demo-gclid-1", "ad_click", "Cj0KCQiA-demo-gclid-1", "20001", "90001", "google_ads",
        dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
    with warehouse.connect() as conn:
        assert load_state(conn, "google", "ad_stats") == {"cursor": "2026-03-02"}
        assert load_state(conn, "google", "clicks") == {"cursor": "2026-03-02"}


def test_lookback_rereads_restated_days_and_updates_them_in_place(warehouse, httpserver, api):
    sync(warehouse, "google", connector(httpserver, customer_ids=[DE]), "google_ads", streams=["ad_stats"])
    api.queries.clear()
    api.stats[DE] = "stats_de_restated.json"
    later = connector(httpserver, customer_ids=[DE], lookback_days=1)
    later.today = lambda: dt.date(2026, 3, 3)

    result = sync(warehouse, "google", later, "google_ads", streams=["ad_stats"])

    assert result.status == "success", result.errors
    ((_, query),) = api.queries
    assert "BETWEEN '2026-03-01' AND '2026-03-03'" in query  # last day read (03-02) minus one day of lookback
    stats = {(s["ad_id"], s["date"]): s for s in rows(warehouse, "ad_stat_daily")}
    assert len(stats) == 4  # 03-02 restated in place, 03-03 new: nothing duplicated
    restated = stats[("90001", dt.date(2026, 3, 2))]
    assert (restated["conversions"], restated["conversion_value"]) == (Decimal("1"), Decimal("99.99"))
    assert stats[("90001", dt.date(2026, 3, 3))]["cost"] == Decimal("3.000001")  # 3000001 micros, exactly


def test_one_ad_in_two_ad_groups_on_one_day_is_two_rows_and_a_restated_day_updates_both(
        warehouse, httpserver, api):
    """ad_group_ad.ad.id 90001 serves in ad groups 70001 and 70003: neither day overwrites the other."""
    api.ads[DE], api.stats[DE] = "ads_de_two_groups.json", "stats_de_two_groups.json"
    result = sync(warehouse, "google", connector(httpserver, customer_ids=[DE]), "google_ads",
                  streams=["ads", "ad_stats", "clicks"])
    assert result.status == "success", result.errors
    assert result.rejected == 0
    assert [(g["ad_group_id"], g["campaign_id"], g["name"], g["status"]) for g in rows(warehouse, "ad_group")] == [
        ("70001", "20001", "Brand terms", "enabled"), ("70002", "20002", "Spring assets", "enabled"),
        ("70003", "20001", "Brand terms - exact", "paused")]
    stats = {(s["ad_group_id"], s["ad_id"], s["date"]): s for s in rows(warehouse, "ad_stat_daily")}
    day = dt.date(2026, 3, 1)
    assert (stats[("70001", "90001", day)]["clicks"], stats[("70001", "90001", day)]["cost"]) == (12, Decimal("12.345678"))
    assert (stats[("70003", "90001", day)]["clicks"], stats[("70003", "90001", day)]["cost"]) == (5, Decimal("4"))
    assert len(stats) == 3
    (click,) = rows(warehouse, "touchpoint")
    assert (click["ad_group_id"], click["ad_id"]) == ("70001", "90001")  # click_view names the ad group

    def mart() -> dict:
        with warehouse.connect() as conn:
            return {(r.ad_group_id, str(r.day)): r for r in conn.execute(text(
                "SELECT * FROM v_ad_performance WHERE ad_id = '90001'"))}

    def ad_day_total(day: str) -> tuple:
        with warehouse.connect() as conn:
            return tuple(conn.execute(text(
                "SELECT SUM(clicks), SUM(impressions), SUM(platform_conversions) FROM v_ad_performance "
                "WHERE ad_id = '90001' AND day = :d"), {"d": day}).one())

    assert mart()[("70003", "2026-03-01")].ad_group_name == "Brand terms - exact"
    assert ad_day_total("2026-03-01") == (17, 580, 3)  # both ad groups' rows summed

    # the platform restates 03-01 in 70003 and reports 70003 on 03-02: updated in place, nothing doubled
    api.stats[DE] = "stats_de_two_groups_restated.json"
    later = connector(httpserver, customer_ids=[DE], lookback_days=1)
    result = sync(warehouse, "google", later, "google_ads", streams=["ad_stats"])
    assert result.status == "success", result.errors
    stats = {(s["ad_group_id"], s["ad_id"], s["date"]): s for s in rows(warehouse, "ad_stat_daily")}
    assert len(stats) == 4
    restated = stats[("70003", "90001", day)]
    assert (restated["clicks"], restated["cost"], restated["conversion_value"]) == (
        6, Decimal("4.500001"), Decimal("75.25"))
    assert ad_day_total("2026-03-01") == (18, 590, 4)
    assert ad_day_total("2026-03-02") == (11, 417, 0)
    assert len(mart()) == 4


def test_a_temporary_quota_error_waits_and_retries(warehouse, httpserver, api):
    api.fail = [(429, "quota_temporary.json")]
    result = sync(warehouse, "google", connector(httpserver, customer_ids=[DE], max_wait=0.01), "google_ads",
                  streams=["campaigns"])
    assert result.status == "success", result.errors
    assert len(api.queries) == 2 and len(rows(warehouse, "campaign")) == 2


def test_the_retry_delay_a_quota_error_carries_is_the_wait():
    response = _response(429, "quota_temporary.json")
    assert quota_wait(response) == 30.0
    assert quota_wait(_response(200, "campaigns_de.json")) is None


def test_the_daily_quota_stops_the_run_with_one_line(warehouse, httpserver, api):
    api.fail = [(429, "quota_daily.json")]
    result = sync(warehouse, "google", connector(httpserver, customer_ids=[DE]), "google_ads",
                  streams=["ad_stats"])
    assert result.status == "failed"
    (error,) = result.errors
    assert "RESOURCE_EXHAUSTED" in error and "Number of operations for basic access" in error
    assert "\n" not in error
    assert len(api.queries) == 1  # not retried
    with warehouse.connect() as conn:
        assert load_state(conn, "google", "ad_stats") == {}


def test_a_refused_refresh_token_is_one_line_without_secrets(httpserver):
    httpserver.expect_request("/token", method="POST").respond_with_json(
        {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}, status=400)
    made = connector(httpserver, customer_ids=[DE])
    with pytest.raises(SourceError) as caught:
        list(made.search(DE, "SELECT campaign.id FROM campaign"))
    message = str(caught.value)
    assert "invalid_grant" in message and "refresh_token" in message
    assert not any(secret in message for secret in (REFRESH, CLIENT_SECRET, DEV_TOKEN))


def test_config_checks_customer_ids_and_version():
    base = dict(developer_token="d", client_id="c", client_secret="s", refresh_token="r")
    with pytest.raises(ValidationError, match="ten digits"):
        GoogleAdsConfig(customer_ids=["12345"], **base)
    with pytest.raises(ValidationError, match="customer_ids, or login_customer_id"):
        GoogleAdsConfig(**base)
    with pytest.raises(ValidationError):
        GoogleAdsConfig(customer_ids=[DE], api_version="26", **base)
    assert GoogleAdsConfig(customer_ids=["123-456-7890"], **base).customer_ids == [DE]


def _response(status: int, fixture: str):
    import requests

    response = requests.Response()
    response.status_code = status
    response._content = (FIXTURES / "google_ads" / fixture).read_bytes()
    response.headers["Content-Type"] = "application/json"
    return response
