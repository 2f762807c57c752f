"""The gmail connector against a real HTTP server replaying Gmail API v1 payloads (tests/fixtures/gmail)."""

from __future__ import annotations

import json

import pytest
from werkzeug import Request, Response

from connectors.gmail import GmailConfig, GmailConnector
from crm_model import identity
from crm_model.load import Upserter
from crm_model.sync import load_state, sync
from tests.conftest import load_json, rows

API = "/gmail/v1/users/me"


class GmailApi:
    """A Gmail stand-in: labels, paged messages.list per label, messages.get, history.list."""

    def __init__(self, server):
        self.server = server
        self.profile = "profile.json"
        self.history_expired = False
        self.calls: list[str] = []
        server.expect_request(f"{API}/profile").respond_with_handler(lambda r: self.file(r, self.profile))
        server.expect_request(f"{API}/labels").respond_with_handler(lambda r: self.file(r, "labels.json"))
        server.expect_request(f"{API}/messages").respond_with_handler(self.listing)
        server.expect_request(f"{API}/history").respond_with_handler(self.history)
        import re
        server.expect_request(re.compile(f"{API}/messages/[0-9a-f]+")).respond_with_handler(self.message)

    def file(self, request: Request, name: str, status: int = 200) -> Response:
        self.calls.append(f"{request.path}?{request.query_string.decode()}")
        return Response(json.dumps(load_json("gmail", name)), status, content_type="application/json")

    def listing(self, request: Request) -> Response:
        label = request.args["labelIds"]
        page = 2 if request.args.get("pageToken") == "08140235553866338573" else 1
        name = f"list_{label}_{page}.json"
        try:
            load_json("gmail", name)
        except FileNotFoundError:
            name = "list_empty.json"
        return self.file(request, name)

    def message(self, request: Request) -> Response:
        message_id = request.path.rsplit("/", 1)[1]
        suffix = "_full" if request.args.get("format") == "full" else ""
        return self.file(request, f"message_{message_id}{suffix}.json")

    def history(self, request: Request) -> Response:
        if self.history_expired:
            return self.file(request, "error_404.json", 404)
        assert request.args["startHistoryId"] == "1000"
        assert request.args.getlist("historyTypes") == ["messageAdded", "labelAdded"]
        page = 2 if request.args.get("pageToken") == "12918379" else 1
        return self.file(request, f"history_{page}.json")


@pytest.fixture
def api(httpserver):
    return GmailApi(httpserver)


def connector(httpserver, **overrides) -> GmailConnector:
    cfg = GmailConfig(base_url=httpserver.url_for("/"), access_token="ya29.test-token-do-not-print",
                      labels=["INBOX", "SENT", {"name": "Support", "support": True}],
                      company_domains=["acme.example"], max_retries=0, **overrides)
    return GmailConnector(cfg, source="gmail")


def run(warehouse, httpserver, **overrides):
    conn = connector(httpserver, **overrides)
    try:
        return sync(warehouse, "gmail", conn, "gmail")
    finally:
        conn.close()


def test_first_sync_lists_labels_then_history_pages(warehouse, httpserver, api):
    first = run(warehouse, httpserver)
    assert first.status == "success", first.errors
    assert (first.read, first.loaded, first.rejected) == (5, 5, 0)
    messages = {m["message_id"]: m for m in rows(warehouse, "email_message")}
    assert set(messages) == {"<CAF=quote1@mail.example.com>", "<offers-77@shop.example>",
                             "<CAF=quote3@mail.example.com>", "<CAF=reply2@acme.example>", "<kettle-1@example.org>"}
    # Gmail's threadId is the thread; the company's reply is outbound
    quote = messages["<CAF=quote1@mail.example.com>"]
    reply = messages["<CAF=reply2@acme.example>"]
    assert quote["thread_id"] == reply["thread_id"] == "gmail:18f3a1c2d4e5f601"
    assert reply["direction"] == "outbound" and reply["folder"] == "SENT"
    assert messages["<offers-77@shop.example>"]["bulk"] is True
    people = {p["external_id"]: p for p in rows(warehouse, "source_person")}
    assert set(people) == {"email:ada@example.com", "email:grace@example.org"}
    assert (people["email:ada@example.com"]["first_name"], people["email:ada@example.com"]["last_name"]) == (
        "Ada", "Lovelace")
    # only the support message was fetched whole; the rest as metadata
    fulls = [c for c in api.calls if "format=full" in c]
    assert len(fulls) == 1 and "18f3a1c2d4e5f605" in fulls[0]
    assert all("format=metadata" in c for c in api.calls if "/messages/" in c and "format=full" not in c)
    with warehouse.connect() as c:
        assert load_state(c, "gmail", "messages")["history_id"] == "1000"

    # afterwards: history.list from the stored historyId, two pages; only labels we read
    api.calls.clear()
    second = run(warehouse, httpserver)
    assert second.status == "success", second.errors
    assert second.read == 2 and second.loaded == 2
    assert not any(c.startswith(f"{API}/messages?") for c in api.calls)  # no listing
    assert len([c for c in api.calls if c.startswith(f"{API}/history")]) == 2
    with warehouse.connect() as c:
        assert load_state(c, "gmail", "messages")["history_id"] == "1010"
    assert len(rows(warehouse, "email_message")) == 7

    # the support thread becomes one case: answered and closed by the reply, a complaint, the product linked
    with warehouse.begin() as c:
        Upserter(c).upsert("product", [{"source": "shop", "external_id": "p-2", "sku": "KP-2",
                                        "title": "Kettle Pro 2"},
                                       {"source": "shop", "external_id": "p-1", "sku": "KP-1", "title": "Kettle"}])
        identity.resolve(c)
    (case,) = rows(warehouse, "service_case")
    assert case["tracking_number"] == "4711" and case["kind"] == "complaint" and case["status"] == "closed"
    assert (case["product_source"], case["product_id"]) == ("shop", "p-2")
    assert case["person_id"] is not None and case["channel"] == "email"
    assert case["opened_at"].isoformat() == "2026-11-04T08:00:00+00:00"


def test_expired_history_id_falls_back_to_a_full_listing(warehouse, httpserver, api):
    assert run(warehouse, httpserver).read == 5
    before = rows(warehouse, "email_message")
    api.history_expired = True
    api.profile = "profile_later.json"
    again = run(warehouse, httpserver)
    assert again.status == "success", again.errors
    assert again.read == 5  # everything listed again ...
    assert rows(warehouse, "email_message") == before  # ... and upserted: nothing doubled
    with warehouse.connect() as c:
        assert load_state(c, "gmail", "messages")["history_id"] == "2000"


def test_api_errors_are_one_clear_line_without_the_token(warehouse, httpserver):
    httpserver.expect_request(f"{API}/labels").respond_with_json(
        {"error": {"code": 401, "message": "Request had invalid authentication credentials.",
                   "status": "UNAUTHENTICATED"}}, status=401)
    result = run(warehouse, httpserver)
    assert result.status == "failed"
    (error,) = result.errors
    assert "401" in error and "renew them" in error and "ya29" not in error


def test_config_needs_exactly_one_credential():
    with pytest.raises(ValueError, match="exactly one of credentials_file and access_token"):
        GmailConfig()
