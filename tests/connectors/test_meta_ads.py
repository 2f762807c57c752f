"""meta_ads: a real HTTP server replays Marketing API pages, paging.next URLs, rate limits and async jobs."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from connectors.meta.ads import INSIGHT_FIELDS, MetaAdsConfig, MetaAdsConnector
from connectors.meta.graph import usage_percent
from crm_model.sync import load_state, sync
from tests.conftest import FIXTURES, rows

TOKEN = "EAAB-meta-SECRET-token"
ACCOUNT = "1234567890"
TODAY = dt.date(2026, 3, 2)
INSIGHTS = f"/v24.0/act_{ACCOUNT}/insights"


@pytest.fixture(autouse=True)
def unexpected_requests_fail_fast(httpserver):
    httpserver.no_handler_status_code = 418


def fixture(server, name: str) -> dict:
    text = (FIXTURES / "meta" / name).read_text().replace("{base}", server.url_for("/").rstrip("/"))
    return json.loads(text)


def connector(server, slept: list, **config) -> MetaAdsConnector:
    cfg = MetaAdsConfig(base_url=server.url_for("/"), access_token=TOKEN, ad_accounts=[f"act_{ACCOUNT}"],
                        max_retries=3, rate_limit_wait=0.01, page_size=1, **config)
    made = MetaAdsConnector(cfg, source="meta", start_date=dt.date(2026, 3, 1), sleep=slept.append)
    made.today = lambda: TODAY
    return made


def time_range(first: str, last: str) -> str:
    return json.dumps({"since": first, "until": last}, separators=(",", ":"))


def window(first: str, last: str) -> dict[str, str]:
    """The whole query string of a first insights request (the server checks every parameter)."""
    return {"level": "ad", "time_increment": "1", "fields": INSIGHT_FIELDS, "limit": "1",
            "time_range": time_range(first, last)}


def test_insights_page_through_paging_next_and_a_rate_limit_into_exact_daily_stats(warehouse, httpserver):
    slept: list[float] = []
    busy = {"X-Business-Use-Case-Usage": json.dumps({ACCOUNT: [{"type": "ads_insights", "call_count": 95,
                                                                 "total_cputime": 10, "total_time": 12,
                                                                 "estimated_time_to_regain_access": 0}]})}
    first = window("2026-03-01", "2026-03-02")
    httpserver.expect_ordered_request(INSIGHTS, query_string=first).respond_with_json(
        fixture(httpserver, "rate_limited.json"), status=400)
    httpserver.expect_ordered_request(INSIGHTS, query_string=first).respond_with_json(
        fixture(httpserver, "insights_page1.json"), headers=busy)
    httpserver.expect_ordered_request(INSIGHTS, query_string={"level": "ad", "time_increment": "1", "limit": "1", "after": "MQZDZD"}).respond_with_json(
        fixture(httpserver, "insights_page2.json"))

    result = sync(warehouse, "meta", connector(httpserver, slept), "meta_ads", streams=["insights"])

    httpserver.check_assertions()
    assert result.status == "success", result.errors
    assert (result.read, result.loaded) == (2, 2)
    assert all(req.headers["Authorization"] == f"Bearer {TOKEN}" for req, _ in httpserver.log)
    assert all(TOKEN not in req.url for req, _ in httpserver.log)  # never in a URL
    assert slept == [pytest.approx(0.01 * 20 / 25)]  # 95% usage: paced (4/5 of rate_limit_wait)
    stats = {s["ad_id"]: s for s in rows(warehouse, "ad_stat_daily")}
    assert {s["ad_id"]: s["ad_group_id"] for s in stats.values()} == {
        "120210000000000011": "120205000000000001", "120210000000000012": "120205000000000002"}  # adset_id
    leads = stats["120210000000000011"]
    assert (leads["date"], leads["cost"], leads["currency"], leads["impressions"], leads["clicks"]) == (
        dt.date(2026, 3, 1), Decimal("41.27"), "EUR", 5230, 87)
    assert (leads["conversions"], leads["conversion_value"]) == (Decimal("4"), Decimal("0"))
    sales = stats["120210000000000012"]
    assert (sales["conversions"], sales["conversion_value"], sales["cost"]) == (
        Decimal("2"), Decimal("159.80"), Decimal("9.99"))
    with warehouse.connect() as conn:
        assert load_state(conn, "meta", "insights") == {"cursor": "2026-03-02"}


def test_configured_action_types_decide_what_counts_as_a_conversion(warehouse, httpserver):
    httpserver.expect_request(INSIGHTS).respond_with_json(
        {**fixture(httpserver, "insights_page1.json"), "paging": {}})
    sync(warehouse, "meta", connector(httpserver, [], conversion_action_types=["link_click"]), "meta_ads",
         streams=["insights"])
    (stat,) = rows(warehouse, "ad_stat_daily")
    assert stat["conversions"] == Decimal("87")


def test_lookback_rereads_restated_days(warehouse, httpserver):
    httpserver.expect_ordered_request(INSIGHTS, query_string=window("2026-03-01", "2026-03-02")
                                      ).respond_with_json({**fixture(httpserver, "insights_page1.json"), "paging": {}})
    restated = fixture(httpserver, "insights_page1.json")
    restated["data"][0]["actions"][1]["value"] = "6"
    httpserver.expect_ordered_request(INSIGHTS, query_string=window("2026-02-28", "2026-03-05")
                                      ).respond_with_json({**restated, "paging": {}})
    sync(warehouse, "meta", connector(httpserver, []), "meta_ads", streams=["insights"])
    later = connector(httpserver, [], lookback_days=2)
    later.today = lambda: dt.date(2026, 3, 5)
    later.start_date = None
    sync(warehouse, "meta", later, "meta_ads", streams=["insights"])
    httpserver.check_assertions()
    (stat,) = rows(warehouse, "ad_stat_daily")
    assert stat["conversions"] == Decimal("6")


def test_a_long_window_runs_as_an_async_report(warehouse, httpserver):
    slept: list[float] = []
    httpserver.expect_ordered_request(INSIGHTS, method="POST").respond_with_json(
        fixture(httpserver, "async_started.json"))
    httpserver.expect_ordered_request("/v24.0/6200000000000001").respond_with_json(
        fixture(httpserver, "async_running.json"))
    httpserver.expect_ordered_request("/v24.0/6200000000000001").respond_with_json(
        fixture(httpserver, "async_done.json"))
    httpserver.expect_ordered_request("/v24.0/6200000000000001/insights").respond_with_json(
        {**fixture(httpserver, "insights_page2.json")})

    result = sync(warehouse, "meta", connector(httpserver, slept, async_after_days=1, poll_interval=5),
                  "meta_ads", streams=["insights"])

    httpserver.check_assertions()
    assert result.status == "success", result.errors
    post = httpserver.log[0][0]
    assert post.form["level"] == "ad" and post.form["time_increment"] == "1"
    assert json.loads(post.form["time_range"]) == {"since": "2026-03-01", "until": "2026-03-02"}
    assert slept == [5]  # one poll found the job running
    assert [s["ad_id"] for s in rows(warehouse, "ad_stat_daily")] == ["120210000000000012"]


def test_campaigns_ad_sets_and_ads_with_names_and_status(warehouse, httpserver):
    httpserver.expect_request(f"/v24.0/act_{ACCOUNT}/campaigns").respond_with_json(fixture(httpserver, "campaigns.json"))
    httpserver.expect_request(f"/v24.0/act_{ACCOUNT}/adsets").respond_with_json(fixture(httpserver, "adsets.json"))
    httpserver.expect_request(f"/v24.0/act_{ACCOUNT}/ads").respond_with_json(fixture(httpserver, "ads.json"))
    result = sync(warehouse, "meta", connector(httpserver, []), "meta_ads", streams=["campaigns", "adsets", "ads"])
    assert result.status == "success", result.errors
    assert [(c["campaign_id"], c["name"], c["status"], c["channel"]) for c in rows(warehouse, "campaign")] == [
        ("120200000000000001", "Spring Leads - Lead Ads", "active", "social"),
        ("120200000000000002", "Retargeting - Sales", "paused", "social")]
    # the ad set is Meta's ad group level
    assert [(g["platform"], g["ad_group_id"], g["campaign_id"], g["name"], g["status"])
            for g in rows(warehouse, "ad_group")] == [
        ("meta_ads", "120205000000000001", "120200000000000001", "DE 25-54 - lead form", "active"),
        ("meta_ads", "120205000000000002", "120200000000000002", "Website visitors 30d", "campaign_paused")]
    assert [(a["ad_id"], a["campaign_id"], a["ad_group_id"], a["status"]) for a in rows(warehouse, "ad")] == [
        ("120210000000000011", "120200000000000001", "120205000000000001", "active"),
        ("120210000000000012", "120200000000000002", "120205000000000002", "campaign_paused")]
    adsets = next(req for req, _ in httpserver.log if req.path.endswith("/adsets"))
    assert adsets.args["fields"].split(",")[:5] == ["id", "name", "status", "effective_status", "campaign_id"]


def test_an_expired_token_fails_at_once_without_the_token(warehouse, httpserver):
    httpserver.expect_request(INSIGHTS).respond_with_json(fixture(httpserver, "bad_token.json"), status=400)
    result = sync(warehouse, "meta", connector(httpserver, []), "meta_ads", streams=["insights"])
    (error,) = result.errors
    assert "Error validating access token" in error and TOKEN not in error
    assert len(httpserver.log) == 1


def test_a_next_url_on_another_host_is_not_followed(warehouse, httpserver):
    page = fixture(httpserver, "insights_page1.json")
    page["paging"]["next"] = "https://evil.example/v24.0/act_1/insights?after=x"
    httpserver.expect_request(INSIGHTS).respond_with_json(page)
    result = sync(warehouse, "meta", connector(httpserver, []), "meta_ads", streams=["insights"])
    assert "another host" in result.errors[0]


def test_usage_headers_are_read_whichever_one_is_sent():
    assert usage_percent({"X-Ad-Account-Usage": '{"acc_id_util_pct": 9.67, "reset_time_duration": 0}'}) == (9.67, 0)
    buc = {ACCOUNT: [{"type": "ads_management", "call_count": 100, "estimated_time_to_regain_access": 3}]}
    assert usage_percent({"X-Business-Use-Case-Usage": json.dumps(buc)}) == (100, 3)
    assert usage_percent({"X-App-Usage": "not json"}) == (0, 0)


def test_an_insights_row_without_its_ad_set_is_quarantined_with_the_reason(warehouse, httpserver):
    page = {**fixture(httpserver, "insights_page1.json"), "paging": {}}
    del page["data"][0]["adset_id"]
    httpserver.expect_request(INSIGHTS).respond_with_json(page)
    result = sync(warehouse, "meta", connector(httpserver, []), "meta_ads", streams=["insights"])
    assert (result.read, result.loaded, result.rejected) == (1, 0, 1)
    (reject,) = rows(warehouse, "rejected_record")
    assert "adset_id is missing" in reject["reason"]
    assert rows(warehouse, "ad_stat_daily") == []
