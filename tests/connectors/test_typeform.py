"""Typeform: a real HTTP server replays the recorded API payloads; syncs land in a real warehouse."""

from __future__ import annotations

import copy
import datetime as dt
import re

import pytest
from pydantic import ValidationError

from connectors.sdk import StreamState
from connectors.typeform import TypeformConfig, TypeformConnector, form_summary
from crm_model import identity
from crm_model.mapping import MapContext, Reject
from crm_model.mapping.typeform import map_response, person_questions
from crm_model.sync import load_state, sync
from tests.conftest import load_json, rows

FORM = "Xk9Lm2Qp"
WEBINAR = "Wb4Rt7Yu"
START = "2026-01-01T00:00:00"  # the source's start_date, as `since`
TOKEN = "tfp_test-9f8e7d6c"
PRIYA, MARCUS = "p0o9i8u7y6t5r4e3w2q1a9s8d7f6g5h4", "m6n2b8v4c0x7z3l9k5j1h7g3f9d5s1a8"
DANA, LUIS = "k3j7h1g5f9d2s6a0p4o8i2u6y0t3r7e1", "9z1x5c3v7b2n6m0l4k8j2h6g0f3d7s1a"
HANNAH, SOFIA = "4q8w2e6r0t9y3u7i1o5p8a2s6d0f4g7h", "s5d4f3g2h1j0k9l8z7x6c5v4b3n2m1q0"
GRACE, IVAN = HANNAH, "t6y5u4i3o2p1a0s9d8f7g6h5j4k3l2z1"  # Grace's token is Hannah's, on another form


@pytest.fixture(autouse=True)
def unexpected_requests_fail_fast(httpserver):
    httpserver.no_handler_status_code = 418  # a 4xx: no retries, the test fails at once


def connector(server, forms=(FORM,), **config) -> TypeformConnector:
    cfg = TypeformConfig(token=TOKEN, base_url=server.url_for("/"), forms=list(forms), page_size=2,
                         max_retries=2, **config)
    return TypeformConnector(cfg, source="web_leads", start_date=dt.date(2026, 1, 1))


def expect_form(server, form_id=FORM, fixture="form.json"):
    server.expect_ordered_request(f"/forms/{form_id}", method="GET").respond_with_json(
        load_json("typeform", fixture))


def expect_page(server, fixture=None, *, form_id=FORM, since=START, before=None):
    """The responses request the connector must send next (the server checks every parameter)."""
    query = {"page_size": "2", "since": since, **({"before": before} if before else {})}
    handler = server.expect_ordered_request(f"/forms/{form_id}/responses", method="GET", query_string=query)
    if fixture:
        handler.respond_with_json(load_json("typeform", fixture))
    return handler


def expect_contact_sales_form(server):
    expect_form(server)
    expect_page(server, "responses_page1.json")
    expect_page(server, "responses_page2.json", before=MARCUS)
    expect_page(server, "responses_page3.json", before=LUIS)


def state(warehouse) -> dict:
    with warehouse.connect() as conn:
        return load_state(conn, "web_leads", "responses")


def test_pages_through_a_429_and_a_503_into_leads_persons_and_touchpoints(warehouse, httpserver):
    expect_form(httpserver)
    expect_page(httpserver).respond_with_json({"code": "RATE_LIMITED"}, status=429, headers={"Retry-After": "1"})
    expect_page(httpserver, "responses_page1.json")
    expect_page(httpserver, before=MARCUS).respond_with_data("Service Unavailable", status=503)
    expect_page(httpserver, "responses_page2.json", before=MARCUS)
    expect_page(httpserver, "responses_page3.json", before=LUIS)  # 1 < page_size: the last page

    result = sync(warehouse, "web_leads", connector(httpserver), "typeform")

    httpserver.check_assertions()
    assert result.status == "success", result.errors
    assert (result.read, result.loaded, result.rejected) == (5, 5, 0)
    assert all(req.headers["Authorization"] == f"Bearer {TOKEN}" for req, _ in httpserver.log)
    assert state(warehouse) == {"cursor": "2026-03-09T08:55:36Z", "forms": {FORM: "2026-03-09T08:55:36Z"}}

    leads = {r["external_id"]: r for r in rows(warehouse, "lead")}
    assert set(leads) == {f"{FORM}:{t}" for t in (PRIYA, MARCUS, DANA, LUIS, HANNAH)}
    priya = leads[f"{FORM}:{PRIYA}"]
    assert priya["form"] == "Contact sales"
    assert priya["submitted_at"] == dt.datetime(2026, 3, 9, 8, 55, 36, tzinfo=dt.UTC)
    assert (priya["utm_source"], priya["utm_medium"], priya["utm_campaign"], priya["utm_content"],
            priya["utm_term"]) == ("google", "cpc", "spring_launch", "ad_a", "crm software")
    assert (priya["gclid"], priya["fbclid"]) == ("Cj0KCQiA_ExampleGclid7Hq2", None)
    assert priya["landing_page"].startswith("https://www.example.com/demo?utm_source=google")
    assert priya["answers"]["Company size"] == "51-200"
    assert priya["answers"]["What's your work email, [full_name]?"] == "priya.raman@example.com"
    assert priya["answers"]["Who else should we loop in? (optional) - Email"] == "theo.brandt@example.com"
    marcus = leads[f"{FORM}:{MARCUS}"]
    assert (marcus["utm_source"], marcus["fbclid"], marcus["gclid"]) == ("facebook", "IwAR0xExampleClickId9f3K2mQ", None)
    dana = leads[f"{FORM}:{DANA}"]
    assert dana["utm_source"] is None and dana["landing_page"] == "https://www.example.com/pricing"

    people = {r["external_id"]: r for r in rows(warehouse, "source_person")}
    assert {(p["display_name"], p["email"], p["phone"], p["company"]) for p in people.values()} == {
        ("Priya Raman", "priya.raman@example.com", "+12125550147", None),  # nothing of Theo ("who else")
        ("Marcus Chen", "marcus.chen@example.com", None, None),
        ("Dana Okafor", None, None, None),
        ("Luis Ortega", None, "+12125550163", None),
        ("Hannah Kim", "hannah.kim@example.com", "+12125550118", None),
    }
    assert {p["lifecycle_stage"] for p in people.values()} == {"lead"}

    touches = {r["external_id"]: r for r in rows(warehouse, "touchpoint")}
    assert {t["channel"] for t in touches.values()} == {"form"}
    assert (touches[f"lead:{FORM}:{HANNAH}"]["utm_source"], touches[f"lead:{FORM}:{HANNAH}"]["campaign_id"]) == (
        "linkedin", "q1_enterprise")


def test_second_sync_asks_only_for_responses_since_the_watermark(warehouse, httpserver):
    expect_contact_sales_form(httpserver)
    sync(warehouse, "web_leads", connector(httpserver), "typeform")
    httpserver.check_assertions()

    # the newest response read was submitted 08:55:36; 60 minutes of overlap catch late listings
    expect_form(httpserver)
    expect_page(httpserver, "responses_new.json", since="2026-03-09T07:55:36")
    second = sync(warehouse, "web_leads", connector(httpserver), "typeform")

    httpserver.check_assertions()
    assert httpserver.log[-1][0].args["since"] == "2026-03-09T07:55:36"
    assert (second.status, second.read, second.loaded) == ("success", 1, 1)
    assert len(rows(warehouse, "lead")) == 6
    sofia = next(r for r in rows(warehouse, "lead") if r["external_id"] == f"{FORM}:{SOFIA}")
    assert (sofia["utm_campaign"], sofia["gclid"]) == ("brand", "Cj0KCQiA_ExampleGclid4Rt8")
    assert state(warehouse)["forms"] == {FORM: "2026-03-11T13:20:05Z"}


def test_a_failed_page_keeps_what_was_committed_and_the_old_watermark(warehouse, httpserver):
    expect_form(httpserver)
    expect_page(httpserver, "responses_page1.json")
    expect_page(httpserver, before=MARCUS).respond_with_json(
        {"code": "FORBIDDEN", "description": "Token is missing the responses:read scope"}, status=403)

    result = sync(warehouse, "web_leads", connector(httpserver), "typeform")

    assert result.status == "failed"
    assert "403" in result.errors[0] and "responses:read scope" in result.errors[0]
    assert TOKEN not in result.errors[0]
    assert len(rows(warehouse, "lead")) == 2  # page one is committed ...
    assert state(warehouse) == {}  # ... but the watermark waits for a complete read


def test_two_forms_keep_their_own_keys_hidden_fields_and_quarantine_bad_answers(warehouse, httpserver):
    expect_contact_sales_form(httpserver)
    expect_form(httpserver, WEBINAR, "form_webinar.json")
    expect_page(httpserver, "responses_webinar.json", form_id=WEBINAR)
    expect_page(httpserver, "responses_empty.json", form_id=WEBINAR, before=IVAN)  # a full page: ask again

    result = sync(warehouse, "web_leads", connector(httpserver, forms=(FORM, WEBINAR)), "typeform")

    httpserver.check_assertions()
    assert (result.read, result.loaded, result.rejected) == (7, 6, 1)
    [rejected] = rows(warehouse, "rejected_record")
    assert rejected["record_key"] == f"{WEBINAR}|{IVAN}"
    assert "answer to 'Email address'" in rejected["reason"] and "not a valid email address" in rejected["reason"]

    leads = {r["external_id"]: r for r in rows(warehouse, "lead")}
    assert {f"{FORM}:{HANNAH}", f"{WEBINAR}:{GRACE}"} <= set(leads)  # one token, two forms, two leads
    grace = leads[f"{WEBINAR}:{GRACE}"]
    assert (grace["form"], grace["utm_source"], grace["utm_medium"]) == (
        "Webinar: pipeline reporting in 30 minutes", "crm-reviews", "affiliate")
    assert grace["referrer"] == "https://www.crm-reviews.example.org/best-crm-2026"
    assert grace["answers"] == {
        "Email address": "grace.obi@example.org",
        "First name": "Grace",
        "Last name": "Obi",
        "Which sessions will you join?": ["Live session", "Recording only"],
        "May we email you the recording?": True,
        "hidden.partner_id": "aff-2291",
    }
    touch = next(t for t in rows(warehouse, "touchpoint") if t["external_id"] == f"lead:{WEBINAR}:{GRACE}")
    assert touch["affiliate_site"] == "www.crm-reviews.example.org"
    assert state(warehouse)["forms"] == {FORM: "2026-03-09T08:55:36Z", WEBINAR: "2026-03-10T16:04:40Z"}

    with warehouse.begin() as conn:
        identity.resolve(conn)
    persons = rows(warehouse, "person")
    assert len(persons) == 6
    assert "grace.obi@example.org" in {p["email"] for p in persons}
    assert all(lead["person_id"] is not None for lead in rows(warehouse, "lead"))


# --------------------------------------------------------------------------- mapping and config

CTX = MapContext("web_leads", "responses", "typeform", {"default_region": "US"})


def contact_sales_response(n: int = 0) -> dict:
    form = form_summary(FORM, load_json("typeform", "form.json"))
    return {**load_json("typeform", "responses_page1.json")["items"][n], "form": form}


def person_of(raw: dict) -> dict:
    return next(r.values for r in map_response(raw, CTX) if r.table == "source_person")


def test_person_questions_are_found_by_type_and_title_not_position():
    raw = contact_sales_response()
    shuffled = copy.deepcopy(raw)
    shuffled["answers"].reverse()
    assert person_of(shuffled) == person_of(raw)
    assert person_of(raw)["email"] == "priya.raman@example.com"


def test_a_contact_info_question_is_the_respondent_when_the_form_asks_nothing_else():
    raw = contact_sales_response()
    raw["form"]["fields"] = [f for f in raw["form"]["fields"] if f.get("group_type") == "contact_info"]
    raw["answers"] = [a for a in raw["answers"] if a["field"]["ref"].startswith("contact_")]
    person = person_of(raw)
    assert (person["first_name"], person["last_name"], person["email"], person["phone"], person["company"]) == (
        "Theo", "Brandt", "theo.brandt@example.com", "+12125550175", "Northwind Analytics")


def test_a_never_submitted_response_and_a_bad_phone_are_rejected_with_reasons():
    raw = contact_sales_response()
    with pytest.raises(Reject, match="never submitted"):
        map_response({**raw, "submitted_at": "0001-01-01T00:00:00Z"}, CTX)
    bad_phone = copy.deepcopy(raw)
    next(a for a in bad_phone["answers"] if a["field"]["ref"] == "phone")["phone_number"] = "call me"
    with pytest.raises(Reject, match="answer to \"What's the best number to reach you on\\?\": 'call me'"):
        map_response(bad_phone, CTX)


def test_person_questions_prefer_typed_questions_over_titled_text():
    fields = [{"id": "a", "type": "short_text", "title": "Email (work)"},
              {"id": "b", "type": "email", "title": "Where should we write?"}]
    assert person_questions(fields) == {"email": "b"}


def test_config_is_checked_and_the_token_never_shows():
    with pytest.raises(ValidationError, match="page_size"):
        TypeformConfig(token=TOKEN, forms=[FORM], page_size=1001)
    with pytest.raises(ValidationError, match="forms"):
        TypeformConfig(token=TOKEN, forms=[])
    with pytest.raises(ValidationError, match="not a Typeform form id"):
        TypeformConfig(token=TOKEN, forms=["https://x.typeform.com/to/abc"])
    assert TOKEN not in repr(TypeformConfig(token=TOKEN, forms=[FORM]))


def test_the_data_center_names_the_host_and_a_real_form_has_no_responses_link(monkeypatch):
    for fixture in ("form.json", "form_webinar.json"):  # as GET /forms/{id} answers: display only
        assert set(load_json("typeform", fixture)["_links"]) == {"display"}
    assert TypeformConnector(TypeformConfig(token=TOKEN, forms=[FORM])).http.base_url == "https://api.typeform.com/"
    eu = TypeformConnector(TypeformConfig(token=TOKEN, forms=[FORM], data_center="eu"))
    assert eu.http.base_url == "https://api.eu.typeform.com/"
    with pytest.raises(ValidationError, match="data_center"):
        TypeformConfig(token=TOKEN, forms=[FORM], data_center="asia")


@pytest.fixture
def eu_server():
    """A second Typeform host on 127.0.0.1: the EU data center."""
    from pytest_httpserver import HTTPServer

    server = HTTPServer(host="127.0.0.1", port=0)
    server.no_handler_status_code = 418
    server.start()
    yield server
    server.clear()
    server.stop()


def data_centers(monkeypatch, us, eu):
    import connectors.typeform as typeform

    monkeypatch.setitem(typeform.DATA_CENTERS, "us", us.url_for("/").rstrip("/"))
    monkeypatch.setitem(typeform.DATA_CENTERS, "eu", eu.url_for("/").rstrip("/"))


def test_an_eu_account_on_the_us_host_is_a_clear_error_not_an_empty_success(
        httpserver, eu_server, monkeypatch, warehouse):
    data_centers(monkeypatch, httpserver, eu_server)
    # the US host knows the form (definitions are global) but lists no responses for it ...
    expect_form(httpserver)
    expect_page(httpserver, "responses_empty.json")
    # ... the EU host, asked once with the same token, has them
    eu_server.expect_ordered_request(f"/forms/{FORM}/responses", query_string={"page_size": "1"}).respond_with_json(
        load_json("typeform", "responses_page1.json"))
    cfg = TypeformConfig(token=TOKEN, forms=[FORM], page_size=2, max_retries=0)
    conn = TypeformConnector(cfg, source="web_leads", start_date=dt.date(2026, 1, 1))
    result = sync(warehouse, "web_leads", conn, "typeform")
    assert result.status == "failed"
    [error] = result.errors
    assert re.search(r"form Xk9Lm2Qp has no responses in the US data center .* but 5 in the EU one .*"
                     r"set data_center: eu", error), error
    assert TOKEN not in error
    httpserver.check_assertions()
    eu_server.check_assertions()
    assert load_state(warehouse.connect(), "web_leads", "responses") == {}  # nothing claimed as read


def test_the_eu_data_center_is_read_when_configured(httpserver, eu_server, monkeypatch):
    data_centers(monkeypatch, httpserver, eu_server)
    expect_form(eu_server)
    expect_page(eu_server, "responses_page1.json")
    expect_page(eu_server, "responses_page2.json", before=MARCUS)
    expect_page(eu_server, "responses_page3.json", before=LUIS)
    cfg = TypeformConfig(token=TOKEN, forms=[FORM], page_size=2, max_retries=0, data_center="eu")
    conn = TypeformConnector(cfg, source="web_leads", start_date=dt.date(2026, 1, 1))
    spec = conn.stream_specs()["responses"]
    pages = list(conn.read(spec, StreamState(start_date=dt.date(2026, 1, 1))))
    assert sum(len(p) for p in pages) == 5
    eu_server.check_assertions()
    assert not httpserver.log  # the US host was never asked


def test_an_empty_form_that_is_empty_everywhere_is_an_empty_success(httpserver, eu_server, monkeypatch):
    data_centers(monkeypatch, httpserver, eu_server)
    expect_form(httpserver)
    expect_page(httpserver, "responses_empty.json")
    # the other data center does not know this token: 403, taken as "not there"
    eu_server.expect_request(f"/forms/{FORM}/responses").respond_with_json(
        {"code": "FORBIDDEN", "description": "Forbidden"}, status=403)
    cfg = TypeformConfig(token=TOKEN, forms=[FORM], page_size=2, max_retries=0)
    conn = TypeformConnector(cfg, source="web_leads", start_date=dt.date(2026, 1, 1))
    assert [r for page in conn.read(conn.stream_specs()["responses"], StreamState(
        start_date=dt.date(2026, 1, 1))) for r in page] == []
    assert len(eu_server.log) == 1
