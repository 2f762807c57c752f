"""The SDK's HTTP client against hostile servers on 127.0.0.1.

Each test is one attack from issue 18: a server trickling bytes, a gzip bomb, an HTML
page served with 200, a redirect or an API-given URL to another host, a 401 echoing the
credential, a token with a trailing newline, an unreachable shop with keys in the query
string, a pagination that never ends.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import socket
import time
from collections.abc import Iterator

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from connectors.google_forms import GoogleFormsConfig, GoogleFormsConnector
from connectors.sdk import Http, SourceError, StreamState, paginate
from connectors.sdk.http import BodyTooLarge, NotJson, TooManyPages
from connectors.shopify.client import ShopifyClient
from connectors.stripe import StripeConfig, StripeConnector
from connectors.typeform import TypeformConfig, TypeformConnector
from connectors.woocommerce import WooCommerceConfig, WooCommerceConnector
from tests.hostile.servers import TricklingServer


@pytest.fixture
def other_host() -> Iterator[HTTPServer]:
    """A second server under another host name (localhost, where the first is 127.0.0.1)."""
    server = HTTPServer(host="localhost", port=0)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


def home_url(server: HTTPServer) -> str:
    return f"http://127.0.0.1:{server.port}/"


def captured(server: HTTPServer) -> str:
    """Everything the server received: request lines, headers and bodies."""
    return "\n".join(f"{req.method} {req.full_path}\n{req.headers}\n{req.get_data(as_text=True)}"
                     for req, _ in server.log)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------ time and size bounds


def test_a_server_trickling_a_byte_at_a_time_is_cut_at_the_total_timeout():
    server = TricklingServer(interval=0.2)
    try:
        http = Http(server.url, name="slow", timeout=1, max_retries=1, backoff=0.01)
        with pytest.raises(SourceError) as err:
            http.get_json("/items")
    finally:
        server.close()
    assert "no complete answer within 1 s" in str(err.value)
    assert "still failing after 1 retries" in str(err.value)
    assert server.connections == 2  # each attempt was cut, then retried once


def test_a_gzip_bomb_stops_at_max_body_bytes(httpserver):
    bomb = gzip.compress(b"[" + b"0," * (25 * 1024 * 1024) + b"0]", 9)  # 50 MB of JSON in ~50 KB
    httpserver.expect_request("/bomb").respond_with_data(
        bomb, content_type="application/json", headers={"Content-Encoding": "gzip"})
    http = Http(home_url(httpserver), name="shop", max_body_bytes=1024 * 1024, max_retries=0)
    with pytest.raises(BodyTooLarge, match=r"larger than max_body_bytes \(1,048,576 bytes after decompression\)"):
        http.get_json("/bomb")
    assert len(bomb) < 200_000


def test_a_plain_body_over_the_cap_is_refused_and_gzip_within_it_reads(httpserver):
    httpserver.expect_request("/big").respond_with_data("[" + "1," * 600_000 + "1]", content_type="application/json")
    small = gzip.compress(json.dumps({"items": list(range(1000))}).encode())
    httpserver.expect_request("/small").respond_with_data(
        small, content_type="application/json", headers={"Content-Encoding": "gzip"})
    http = Http(home_url(httpserver), name="shop", max_body_bytes=1024 * 1024, max_retries=0)
    with pytest.raises(BodyTooLarge):
        http.get_json("/big")
    assert http.get_json("/small") == {"items": list(range(1000))}


# The Google connectors run google-api-python-client over the SDK's Http (HttpBridge):
# httplib2 alone bounds only each socket read and reads any body whole.

def google_forms(url: str, **config) -> GoogleFormsConnector:
    cfg = GoogleFormsConfig(base_url=url, forms=["1FormId"], access_token="ya29.canary-bridge-7f3e", **config)
    return GoogleFormsConnector(cfg, source="forms", start_date=dt.date(2026, 1, 1))


def test_google_forms_is_cut_at_the_total_timeout_and_retried_by_the_api_client():
    server = TricklingServer(interval=0.2)
    started = time.monotonic()
    try:
        with pytest.raises(SourceError) as err:
            list(google_forms(server.url, timeout=1, max_retries=1).responses(StreamState()))
    finally:
        server.close()
    message = str(err.value)
    assert "no complete answer within 1 s" in message and "\n" not in message
    assert "ya29.canary-bridge-7f3e" not in message
    assert server.connections == 2  # the first attempt was cut, the API client retried once
    assert time.monotonic() - started < 15  # with httplib2 alone: 100,000 bytes at 5 a second


def test_a_google_answer_over_max_body_bytes_is_refused(httpserver):
    bomb = gzip.compress(b'{"responses": [' + b'{"x": 1},' * 3_000_000 + b'{}]}', 9)
    httpserver.expect_request("/v1/forms/1FormId").respond_with_data(
        bomb, content_type="application/json", headers={"Content-Encoding": "gzip"})
    with pytest.raises(BodyTooLarge, match=r"larger than max_body_bytes \(1,048,576 bytes after decompression\)"):
        list(google_forms(home_url(httpserver), max_body_bytes=1024 * 1024, max_retries=0).responses(StreamState()))


def test_google_credentials_stay_with_the_api_host(httpserver, other_host):
    other_host.expect_request("/v1/forms/1FormId").respond_with_json({"formId": "1FormId"})
    httpserver.expect_request("/v1/forms/1FormId").respond_with_data(
        "", status=302, headers={"Location": other_host.url_for("/v1/forms/1FormId")})
    httpserver.expect_request("/v1/forms/1FormId/responses").respond_with_json({"responses": []})
    list(google_forms(home_url(httpserver), max_retries=0).responses(StreamState()))
    assert "Bearer ya29.canary-bridge-7f3e" in captured(httpserver)
    assert other_host.log and "ya29.canary-bridge-7f3e" not in captured(other_host)


def test_a_shopify_bulk_file_trickling_in_is_stopped_by_its_network_time_budget():
    server = TricklingServer(interval=0.05, content_type="application/jsonl")
    client = ShopifyClient(server.url, "2026-10", "shpat_canary_bulk", timeout=5, max_retries=0)
    try:
        with pytest.raises(SourceError, match=r"took more than 1 s of network time"):
            list(client.bulk_lines(server.url + "bulk.jsonl?Signature=s3cr3t", what="orders", read_budget=1))
    finally:
        server.close()
        client.close()


def test_a_shopify_bulk_line_is_capped_and_a_large_file_streams(httpserver):
    line = b'{"id": "gid://shopify/Order/1", "note": "' + b"x" * 3_000_000 + b'"}\n'
    httpserver.expect_request("/bomb.jsonl").respond_with_data(
        gzip.compress(line, 9), content_type="application/jsonl", headers={"Content-Encoding": "gzip"})
    many = b"".join(b'{"id": "gid://shopify/Order/%d"}\n' % n for n in range(50_000))  # 1.6 MB, small lines
    httpserver.expect_request("/many.jsonl").respond_with_data(gzip.compress(many), content_type="application/jsonl",
                                                               headers={"Content-Encoding": "gzip"})
    client = ShopifyClient(home_url(httpserver), "2026-10", "shpat_x", timeout=5, max_retries=0,
                           max_body_bytes=1024 * 1024)
    with pytest.raises(BodyTooLarge, match=r"a line is larger than max_body_bytes \(1,048,576 bytes"):
        list(client.bulk_lines(home_url(httpserver) + "bomb.jsonl", what="orders"))
    objects = list(client.bulk_lines(home_url(httpserver) + "many.jsonl", what="orders"))
    assert len(objects) == 50_000 and objects[-1] == {"id": "gid://shopify/Order/49999"}


def test_an_html_page_served_with_200_is_retried_then_named_in_one_line(httpserver):
    page = "<!DOCTYPE html>\n<html><body>Down for maintenance</body></html>"
    httpserver.expect_ordered_request("/orders").respond_with_data(page, content_type="text/html")
    httpserver.expect_ordered_request("/orders").respond_with_json([{"id": 1}])
    http = Http(home_url(httpserver), name="shop", backoff=0.01)
    assert http.get_json("/orders") == [{"id": 1}]  # transient: retried like a 503
    assert http.requests_made == 2

    httpserver.clear()
    httpserver.expect_request("/orders").respond_with_data(page, content_type="text/html")
    with pytest.raises(NotJson) as err:
        http.get_json("/orders", params={"api_token": "tok-123456", "page": 3})
    message = str(err.value)
    assert "\n" not in message and "tok-123456" not in message
    assert "/orders?api_token=***&page=3" in message
    assert "text/html: an HTML page where JSON was expected" in message


def test_endless_pagination_stops_at_max_pages():
    def fetch(cursor):
        n = (cursor or 0) + 1
        return [{"id": n}], n  # a new cursor every time: no loop to detect

    pages = paginate(fetch, what="endless", max_pages=25)
    read = []
    with pytest.raises(TooManyPages, match="still more pages after 25"):
        for page in pages:
            read.extend(page)
    assert len(read) == 25


# ------------------------------------------------------------------ credentials stay home


def test_a_redirect_to_another_host_gets_no_shopify_token(httpserver, other_host):
    token = "shpat_canary_redirect_0123456789"
    other_host.expect_request("/stolen/graphql.json").respond_with_json({"data": {"shop": {"name": "x"}}})
    httpserver.expect_request("/admin/api/2026-10/graphql.json").respond_with_data(
        "", status=307, headers={"Location": other_host.url_for("/stolen/graphql.json")})
    client = ShopifyClient(home_url(httpserver), "2026-10", token, timeout=5, max_retries=0)
    assert client.query("{ shop { name } }", what="shop") == {"shop": {"name": "x"}}
    assert len(other_host.log) == 1
    assert token not in captured(other_host)
    assert "X-Shopify-Access-Token" not in str(other_host.log[0][0].headers)
    assert token in str(httpserver.log[0][0].headers)  # the shop itself did get it


def test_basic_auth_and_query_keys_do_not_follow_a_redirect(httpserver, other_host):
    other_host.expect_request("/elsewhere").respond_with_json([])
    httpserver.expect_request("/wp-json/wc/v3/customers").respond_with_data(
        "", status=302, headers={"Location": other_host.url_for("/elsewhere") + "?consumer_key=ck_canary_qs_1"})
    for query_string_auth in (False, True):
        woo = WooCommerceConnector(WooCommerceConfig(
            base_url=home_url(httpserver), consumer_key="ck_canary_qs_1", consumer_secret="cs_canary_qs_2",
            query_string_auth=query_string_auth, max_retries=0))
        assert list(woo.customers(StreamState())) == [[]]
    seen = captured(other_host)
    assert "ck_canary_qs_1" not in seen and "cs_canary_qs_2" not in seen and "Authorization" not in seen


def test_a_url_taken_from_an_api_response_gets_no_stripe_key(httpserver, other_host):
    key = "sk_test_canary_lines_url_0123456789"
    invoice = {"id": "in_1", "object": "invoice", "created": 1767225600,
               "lines": {"object": "list", "has_more": True, "url": other_host.url_for("/v1/invoices/in_1/lines"),
                         "data": [{"id": "il_1"}]}}
    httpserver.expect_request("/v1/invoices").respond_with_json(
        {"object": "list", "has_more": False, "data": [invoice]})
    other_host.expect_request("/v1/invoices/in_1/lines").respond_with_json(
        {"object": "list", "has_more": False, "data": [{"id": "il_2"}]})
    stripe = StripeConnector(StripeConfig(base_url=home_url(httpserver), secret_key=key, max_retries=0))
    [[got]] = list(stripe.invoices(StreamState()))
    assert [line["id"] for line in got["lines"]["data"]] == ["il_1", "il_2"]
    assert key not in captured(other_host) and "Authorization" not in captured(other_host)
    assert key in str(httpserver.log[0][0].headers)


# ------------------------------------------------------------------ secrets in error texts


def test_a_401_echoing_the_credential_is_redacted(httpserver):
    token = "tfp_canary_echo_0123456789abcdef"

    def echo(request: Request) -> Response:
        body = {"code": "AUTHENTICATION_FAILED",
                "description": f"token {request.headers.get('Authorization')} is not valid"}
        return Response(json.dumps(body), status=401, content_type="application/json")

    httpserver.expect_request("/forms/abc").respond_with_handler(echo)
    typeform = TypeformConnector(TypeformConfig(base_url=home_url(httpserver), token=token, forms=["abc"]))
    with pytest.raises(SourceError) as err:
        list(typeform.responses(StreamState()))
    assert "401" in str(err.value) and "token Bearer *** is not valid" in str(err.value)
    assert token not in str(err.value)


def test_a_token_with_a_trailing_newline_is_not_echoed(httpserver):
    token = "tfp_canary_newline_0123456789"
    typeform = TypeformConnector(TypeformConfig(base_url=home_url(httpserver), token=token + "\n", forms=["abc"]))
    with pytest.raises(SourceError) as err:
        list(typeform.responses(StreamState()))
    message = str(err.value)
    assert "line break or leading/trailing whitespace" in message and "\n" not in message
    assert token not in message and len(httpserver.log) == 0  # nothing was sent


def test_an_unreachable_shop_does_not_leak_query_string_keys():
    woo = WooCommerceConnector(WooCommerceConfig(
        base_url=f"http://127.0.0.1:{closed_port()}", consumer_key="ck_canary_unreachable_1",
        consumer_secret="cs_canary_unreachable_2", query_string_auth=True, max_retries=1))
    woo.http.backoff = 0.01
    with pytest.raises(SourceError) as err:
        list(woo.orders(StreamState()))
    message = str(err.value)
    assert "ConnectionError" in message and "refused" in message.lower()
    assert "canary" not in message and "consumer_key=***" in message
