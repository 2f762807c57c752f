"""Google Forms: the real google-api-python-client, offline discovery, against a local HTTP server."""

from __future__ import annotations

import base64
import datetime as dt
import json
from urllib.parse import parse_qs

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pydantic import ValidationError

from connectors.google_forms import (
    SCOPES,
    GoogleFormsConfig,
    GoogleFormsConnector,
    form_summary,
)
from connectors.sdk import ConfigError, SourceError
from crm_model.mapping import MapContext, Reject
from crm_model.mapping.google_forms import map_response
from crm_model.sync import load_state, sync
from tests.conftest import load_json, rows

FORM = "1vQ7xR2mK9pL4nT8sW3yB6cD0fG5hJ1kZ8aE2uI7oPq4"
PAGE_TOKEN = "ANRpCPRrX2tQfExampleOpaquePageToken_p2vL9cK4mQ8sT1wZ"
ACCESS_TOKEN = "ya29.test-access-token"
FIRST_FILTER = "timestamp >= 2026-01-01T00:00:00Z"
MEI_SUBMITTED = "2026-03-06T20:13:38.051Z"


@pytest.fixture(autouse=True)
def unexpected_requests_fail_fast(httpserver):
    httpserver.no_handler_status_code = 418  # a 4xx: no retries, the test fails at once


def connector(server, tmp_path=None, **config) -> GoogleFormsConnector:
    if "credentials_file" not in config:
        config["access_token"] = ACCESS_TOKEN
    cfg = GoogleFormsConfig(base_url=server.url_for("/"), forms=[FORM], page_size=2, max_retries=2,
                            default_region="US", **config)
    return GoogleFormsConnector(cfg, source="demo_requests", start_date=dt.date(2026, 1, 1), base_dir=tmp_path)


def expect_form(server):
    server.expect_ordered_request(f"/v1/forms/{FORM}", method="GET", query_string={"alt": "json"}) \
        .respond_with_json(load_json("google_forms", "form.json"))


def expect_responses(server, fixture=None, *, filter_=FIRST_FILTER, page_token=None):
    query = {"alt": "json", "pageSize": "2", "filter": filter_, **({"pageToken": page_token} if page_token else {})}
    handler = server.expect_ordered_request(f"/v1/forms/{FORM}/responses", method="GET", query_string=query)
    if fixture:
        handler.respond_with_json(load_json("google_forms", fixture))
    return handler


def state(warehouse) -> dict:
    with warehouse.connect() as conn:
        return load_state(conn, "demo_requests", "responses")


def test_pages_with_page_tokens_through_a_503_into_leads(warehouse, httpserver):
    expect_form(httpserver)
    expect_responses(httpserver, "responses_page1.json")
    expect_responses(httpserver, page_token=PAGE_TOKEN).respond_with_data("backend error", status=503)
    expect_responses(httpserver, "responses_page2.json", page_token=PAGE_TOKEN)  # no nextPageToken: done

    result = sync(warehouse, "demo_requests", connector(httpserver), "google_forms")

    httpserver.check_assertions()
    assert result.status == "success", result.errors
    assert (result.read, result.loaded, result.rejected) == (3, 3, 0)
    assert all(req.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}" for req, _ in httpserver.log)
    assert state(warehouse) == {"cursor": MEI_SUBMITTED, "forms": {FORM: MEI_SUBMITTED}}

    people = {p["display_name"]: p for p in rows(warehouse, "source_person")}
    assert {n: (p["email"], p["phone"], p["company"]) for n, p in people.items()} == {
        "Ava Thompson": ("ava.thompson@example.com", "+12125550134", "Brightline Logistics"),
        "Omar Haddad": ("omar.haddad@example.com", None, "Haddad & Sons Roofing"),
        "Mei Lin": ("mei.lin@example.com", "+12125550186", "Crescent Health Partners"),
    }
    leads = {lead["answers"]["Full name"]: lead for lead in rows(warehouse, "lead")}
    omar = leads["Omar Haddad"]
    assert omar["form"] == "Request a demo"
    assert omar["submitted_at"] == dt.datetime(2026, 3, 4, 9, 41, 52, 906000, tzinfo=dt.UTC)
    assert omar["answers"] == {"Full name": "Omar Haddad", "Work email": "omar.haddad@example.com",
                               "Company": "Haddad & Sons Roofing",
                               "How many people are on your sales team?": "1-10"}
    assert omar["external_id"].startswith(f"{FORM}:ACYDBNjQ7pE2")
    assert leads["Mei Lin"]["answers"]["What would you like to see in the demo?"].count("\n") == 1
    assert {t["channel"] for t in rows(warehouse, "touchpoint")} == {"form"}


def test_second_sync_filters_from_the_watermark_and_upserts_the_boundary_response(warehouse, httpserver):
    expect_form(httpserver)
    expect_responses(httpserver, "responses_page1.json")
    expect_responses(httpserver, "responses_page2.json", page_token=PAGE_TOKEN)
    sync(warehouse, "demo_requests", connector(httpserver), "google_forms")
    httpserver.check_assertions()
    before = {lead["external_id"]: lead for lead in rows(warehouse, "lead")}

    expect_form(httpserver)
    expect_responses(httpserver, "responses_since.json", filter_=f"timestamp >= {MEI_SUBMITTED}")
    second = sync(warehouse, "demo_requests", connector(httpserver), "google_forms")

    httpserver.check_assertions()
    assert parse_qs(httpserver.log[-1][0].query_string.decode())["filter"] == [f"timestamp >= {MEI_SUBMITTED}"]
    assert (second.status, second.read, second.loaded) == ("success", 2, 2)  # Mei again (>=) and Jonas
    after = {lead["external_id"]: lead for lead in rows(warehouse, "lead")}
    assert len(after) == 4
    new = [lead for key, lead in after.items() if key not in before]
    assert [lead["answers"]["Full name"] for lead in new] == ["Jonas Weber"]
    assert state(warehouse)["forms"] == {FORM: "2026-03-10T11:27:45.774Z"}


def test_403_is_one_clear_line_without_secrets(warehouse, httpserver):
    httpserver.expect_ordered_request(f"/v1/forms/{FORM}", method="GET").respond_with_json(
        load_json("google_forms", "error_403.json"), status=403)

    result = sync(warehouse, "demo_requests", connector(httpserver), "google_forms")

    assert result.status == "failed"
    [error] = result.errors
    assert f"reading form {FORM} -> 403" in error
    assert "share the form with the service account" in error and "The caller does not have permission" in error
    assert ACCESS_TOKEN not in error and "\n" not in error
    assert rows(warehouse, "lead") == [] and state(warehouse) == {}
    assert len(httpserver.log) == 1  # a permission error is not retried


def test_an_expired_access_token_says_so(httpserver):
    httpserver.expect_request(f"/v1/forms/{FORM}", method="GET").respond_with_json(
        {"error": {"code": 401, "message": "Request had invalid authentication credentials.",
                   "status": "UNAUTHENTICATED"}}, status=401)

    with pytest.raises(SourceError, match="401: the credentials were refused .*renew them") as err:
        connector(httpserver).check()
    assert "invalid authentication credentials" in str(err.value) and ACCESS_TOKEN not in str(err.value)
    assert len(httpserver.log) == 1  # a bare token cannot be refreshed, so nothing is retried


# --------------------------------------------------------------------------- credentials files


def service_account_file(path, token_uri: str) -> rsa.RSAPrivateKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "crmhub-test", "private_key_id": "k1", "private_key": pem,
        "client_email": "forms-reader@crmhub-test.iam.gserviceaccount.com", "client_id": "1",
        "token_uri": token_uri,
    }))
    return key


def b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_a_service_account_file_gets_a_token_from_its_token_uri(httpserver, tmp_path):
    key = service_account_file(tmp_path / "secrets" / "forms-reader.json", httpserver.url_for("/token"))
    httpserver.expect_ordered_request("/token", method="POST").respond_with_json(
        {"access_token": ACCESS_TOKEN, "expires_in": 3600, "token_type": "Bearer"})
    expect_form(httpserver)
    expect_responses(httpserver, "responses_page1.json")

    found = connector(httpserver, tmp_path, credentials_file="secrets/forms-reader.json").check()

    httpserver.check_assertions()
    assert found == "ok: read 2 record(s) from stream 'responses'"
    grant = parse_qs(httpserver.log[0][0].get_data(as_text=True))
    assert grant["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    header, claims, signature = grant["assertion"][0].split(".")
    key.public_key().verify(b64decode(signature), f"{header}.{claims}".encode(),
                            padding.PKCS1v15(), hashes.SHA256())  # signed with the file's key
    claims = json.loads(b64decode(claims))
    assert claims["iss"] == "forms-reader@crmhub-test.iam.gserviceaccount.com"
    assert claims["scope"] == " ".join(SCOPES)
    assert httpserver.log[1][0].headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"


def test_an_authorized_user_file_becomes_refreshable_user_credentials(httpserver, tmp_path):
    (tmp_path / "user.json").write_text(json.dumps({
        "type": "authorized_user", "client_id": "cid.apps.googleusercontent.com", "client_secret": "shh",
        "refresh_token": "1//refresh",
    }))
    creds = connector(httpserver, tmp_path, credentials_file="user.json").credentials()
    # google-auth always refreshes user credentials at Google's token endpoint: no offline exchange here
    assert (type(creds).__module__, creds.client_id, creds.refresh_token) == (
        "google.oauth2.credentials", "cid.apps.googleusercontent.com", "1//refresh")
    assert creds.token is None and not creds.valid  # so AuthorizedHttp refreshes it before the first request


def test_a_refused_token_request_is_a_source_error(httpserver, tmp_path):
    service_account_file(tmp_path / "sa.json", httpserver.url_for("/token"))
    httpserver.expect_request("/token", method="POST").respond_with_json(
        {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}, status=400)

    with pytest.raises(SourceError, match="could not get an access token.*invalid_grant") as err:
        connector(httpserver, tmp_path, credentials_file="sa.json").check()
    assert "PRIVATE KEY" not in str(err.value) and "\n" not in str(err.value)


def test_credentials_config_errors_are_clear(httpserver, tmp_path):
    with pytest.raises(ConfigError, match=r"cannot read credentials_file .*missing\.json"):
        connector(httpserver, tmp_path, credentials_file="missing.json").check()
    (tmp_path / "odd.json").write_text(json.dumps({"type": "external_account"}))
    with pytest.raises(ConfigError, match="has type 'external_account'"):
        connector(httpserver, tmp_path, credentials_file="odd.json").check()
    with pytest.raises(ValidationError, match="exactly one of credentials_file and access_token"):
        GoogleFormsConfig(forms=[FORM])
    with pytest.raises(ValidationError, match="exactly one of credentials_file and access_token"):
        GoogleFormsConfig(forms=[FORM], access_token="t", credentials_file="x.json")
    assert ACCESS_TOKEN not in repr(GoogleFormsConfig(forms=[FORM], access_token=ACCESS_TOKEN))


# --------------------------------------------------------------------------- mapping

CTX = MapContext("demo_requests", "responses", "google_forms", {"default_region": "US"})


def text_answer(qid: str, *values: str) -> dict:
    return {"questionId": qid, "textAnswers": {"answers": [{"value": v} for v in values]}}


def test_checkboxes_grids_tracking_questions_and_collected_email():
    definition = load_json("google_forms", "form.json")
    definition["items"] += [
        {"itemId": "i1", "title": "Which products interest you?", "questionItem": {"question": {
            "questionId": "q1", "choiceQuestion": {"type": "CHECKBOX", "options": [{"value": "CRM"}]}}}},
        {"itemId": "i2", "title": "Rate us", "questionGroupItem": {
            "grid": {"columns": {"type": "RADIO", "options": [{"value": "1"}, {"value": "5"}]}},
            "questions": [{"questionId": "q2", "rowQuestion": {"title": "Support"}}]}},
        {"itemId": "i3", "title": "utm_source", "questionItem": {"question": {"questionId": "q3", "textQuestion": {}}}},
    ]
    raw = load_json("google_forms", "responses_page1.json")["responses"][0]
    raw["answers"].update({"q1": text_answer("q1", "CRM"), "q2": text_answer("q2", "5"),
                           "q3": text_answer("q3", "newsletter")})
    raw["respondentEmail"] = "Ava.T@Example.com"
    mapped = {r.table: r.values for r in map_response({**raw, "form": form_summary(FORM, definition)}, CTX)}

    assert mapped["lead"]["answers"]["Which products interest you?"] == ["CRM"]  # a list, even for one box
    assert mapped["lead"]["answers"]["Rate us [Support]"] == "5"
    assert "utm_source" not in mapped["lead"]["answers"] and mapped["lead"]["utm_source"] == "newsletter"
    assert mapped["source_person"]["email"] == "ava.t@example.com"  # the form's collected email wins


def test_a_bad_phone_answer_rejects_the_response_naming_the_question():
    raw = load_json("google_forms", "responses_page1.json")["responses"][0]
    raw["answers"]["7a3c5e81"] = text_answer("7a3c5e81", "ring the front desk")
    form = form_summary(FORM, load_json("google_forms", "form.json"))
    with pytest.raises(Reject, match="answer to 'Phone number': 'ring the front desk' is not a phone number"):
        map_response({**raw, "form": form}, CTX)
