"""mailchimp: a real HTTP server pages campaigns and email activity by count/offset until total_items."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from pydantic import ValidationError

from connectors.mailchimp import CAMPAIGN_FIELDS, MailchimpConfig, MailchimpConnector
from crm_model import identity
from crm_model.sync import load_state, sync
from tests.conftest import load_json, rows

KEY = "0123456789abcdef0123456789abcdef-us6"
NOW = dt.datetime(2026, 3, 3, 12, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def unexpected_requests_fail_fast(httpserver):
    httpserver.no_handler_status_code = 418


def connector(server, **config) -> MailchimpConnector:
    cfg = MailchimpConfig(base_url=server.url_for("/3.0/"), api_key=KEY, page_size=1, max_retries=1, **config)
    made = MailchimpConnector(cfg, source="newsletter", start_date=dt.date(2026, 3, 1))
    made.now = lambda: NOW
    return made


def expect_recent_campaigns(server):
    server.expect_ordered_request("/3.0/campaigns", query_string={
        "status": "sent", "since_send_time": "2026-03-01T00:00:00+00:00",
        "fields": "campaigns.id,campaigns.send_time,total_items", "count": "1", "offset": "0"},
    ).respond_with_json(load_json("mailchimp", "campaigns.json"))


def test_campaigns_and_opens_and_clicks_become_touchpoints_of_persons(warehouse, httpserver):
    page = load_json("mailchimp", "campaigns.json")
    for n, item in enumerate(page["campaigns"]):
        httpserver.expect_ordered_request("/3.0/campaigns", query_string={
            "status": "sent", "sort_field": "send_time", "sort_dir": "ASC", "fields": CAMPAIGN_FIELDS,
            "since_send_time": "2026-03-01T00:00:00+00:00", "count": "1", "offset": str(n)},
        ).respond_with_json({"campaigns": [item], "total_items": 2})
    expect_recent_campaigns(httpserver)
    activity = "/3.0/reports/42694e9e57/email-activity"
    httpserver.expect_ordered_request(activity, query_string={"count": "1", "offset": "0"}).respond_with_json(
        load_json("mailchimp", "activity_page1.json"))
    httpserver.expect_ordered_request(activity, query_string={"count": "1", "offset": "1"}).respond_with_json(
        load_json("mailchimp", "activity_page2.json"))
    httpserver.expect_ordered_request("/3.0/reports/b03bfc273a/email-activity",
                                      query_string={"count": "1", "offset": "0"}).respond_with_json(
        load_json("mailchimp", "activity_empty.json"))

    result = sync(warehouse, "newsletter", connector(httpserver), "mailchimp")

    httpserver.check_assertions()
    assert result.status == "success", result.errors
    auth = "Basic " + base64.b64encode(f"crmhub:{KEY}".encode()).decode()
    assert all(req.headers["Authorization"] == auth for req, _ in httpserver.log)
    assert [(c["campaign_id"], c["name"], c["channel"]) for c in rows(warehouse, "campaign")] == [
        ("42694e9e57", "March newsletter", "email"), ("b03bfc273a", "Webinar invite", "email")]
    touches = sorted((t["channel"], t["occurred_at"], t["url"]) for t in rows(warehouse, "touchpoint"))
    assert touches == [  # the bounce is not a touch
        ("email_click", dt.datetime(2026, 3, 1, 10, 3, 40, tzinfo=dt.UTC),
         "https://www.example.com/pricing?utm_source=newsletter&utm_campaign=march"),
        ("email_open", dt.datetime(2026, 3, 1, 10, 2, 11, tzinfo=dt.UTC), None),
        ("email_open", dt.datetime(2026, 3, 2, 7, 45, tzinfo=dt.UTC), None),
    ]
    with warehouse.connect() as conn:
        state = load_state(conn, "newsletter", "email_activity")
    assert state["campaigns"] == {"42694e9e57": "2026-03-02T07:45:00+00:00"}
    with warehouse.begin() as conn:
        identity.resolve(conn)
    ada = next(p for p in rows(warehouse, "person") if p["email"] == "ada.lovelace@example.com")
    assert ada["lifecycle_stage"] == "prospect"  # an email click, no purchase
    assert (ada["first_touch_channel"], ada["last_touch_channel"]) == ("email_open", "email_click")


def test_activity_is_read_since_each_campaigns_watermark(warehouse, httpserver):
    expect_recent_campaigns(httpserver)
    httpserver.expect_ordered_request("/3.0/reports/42694e9e57/email-activity", query_string={
        "since": "2026-03-02T07:45:00+00:00", "count": "1", "offset": "0"}).respond_with_json(
        {**load_json("mailchimp", "activity_page2.json"), "total_items": 1})
    httpserver.expect_ordered_request("/3.0/reports/b03bfc273a/email-activity",
                                      query_string={"count": "1", "offset": "0"}).respond_with_json(
        load_json("mailchimp", "activity_empty.json"))
    with warehouse.begin() as conn:
        from crm_model.load import Upserter
        Upserter(conn).upsert("sync_state", [{"source": "newsletter", "stream": "email_activity",
                                              "state": {"campaigns": {"42694e9e57": "2026-03-02T07:45:00+00:00"}}}])
    result = sync(warehouse, "newsletter", connector(httpserver), "mailchimp", streams=["email_activity"])
    httpserver.check_assertions()
    assert result.status == "success", result.errors
    assert len(rows(warehouse, "touchpoint")) == 1  # the open at the watermark, read again, upserted


def test_a_wrong_key_is_one_line_without_the_key(warehouse, httpserver):
    httpserver.expect_request("/3.0/campaigns").respond_with_json(load_json("mailchimp", "error_401.json"), status=401)
    result = sync(warehouse, "newsletter", connector(httpserver), "mailchimp", streams=["campaigns"])
    assert "API Key Invalid" in result.errors[0] or "401" in result.errors[0]
    assert KEY not in result.errors[0]


def test_the_datacenter_comes_from_the_key():
    made = MailchimpConnector(MailchimpConfig(api_key=KEY))
    assert made.http.base_url == "https://us6.api.mailchimp.com/3.0/"
    with pytest.raises(ValidationError, match="datacenter"):
        MailchimpConfig(api_key="0123456789abcdef")
