"""The shared HTTP client against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import time

import pytest
from werkzeug import Response

from connectors.sdk import Http, PaginationLoop, SourceError, paginate, redact_url


def client(server, **kw) -> Http:
    kw.setdefault("backoff", 0.01)
    return Http(server.url_for("/"), name="test", **kw)


def test_429_honours_retry_after(httpserver):
    httpserver.expect_ordered_request("/items").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "2"})
    httpserver.expect_ordered_request("/items").respond_with_json({"ok": True})
    started = time.monotonic()
    assert client(httpserver).get_json("/items") == {"ok": True}
    waited = time.monotonic() - started
    assert 1.9 <= waited < 8, waited  # the server asked for 2 s (upper bound generous for loaded CI machines)
    httpserver.check_assertions()


def test_500_then_200_succeeds(httpserver):
    httpserver.expect_ordered_request("/x").respond_with_data("boom", status=500)
    httpserver.expect_ordered_request("/x").respond_with_data("bad gateway", status=502)
    httpserver.expect_ordered_request("/x").respond_with_json([1, 2])
    http = client(httpserver)
    assert http.get_json("/x") == [1, 2]
    assert http.requests_made == 3


def test_401_fails_at_once_with_a_clear_message(httpserver):
    httpserver.expect_request("/me").respond_with_json({"message": "invalid token"}, status=401)
    http = client(httpserver, headers={"Authorization": "Bearer s3cr3t-token"})
    with pytest.raises(SourceError) as err:
        http.get_json("/me")
    assert http.requests_made == 1
    message = str(err.value)
    assert "401" in message and "check the credentials" in message and "invalid token" in message
    assert "s3cr3t" not in message


def test_404_names_the_url_without_secrets(httpserver):
    httpserver.expect_request("/orders").respond_with_data("nope", status=404)
    with pytest.raises(SourceError) as err:
        client(httpserver).get_json("/orders", params={"consumer_secret": "cs_123", "page": 2})
    assert "cs_123" not in str(err.value) and "page=2" in str(err.value) and "404" in str(err.value)


def test_gives_up_after_max_retries(httpserver):
    httpserver.expect_request("/down").respond_with_data("unavailable", status=503)
    http = client(httpserver, max_retries=2)
    with pytest.raises(SourceError, match="still failing after 2 retries"):
        http.get_json("/down")
    assert http.requests_made == 3


def test_broken_json_page_is_retried(httpserver):
    httpserver.expect_ordered_request("/p").respond_with_data(
        '{"items": [1, 2', content_type="application/json")
    httpserver.expect_ordered_request("/p").respond_with_json({"items": [1, 2]})
    assert client(httpserver).get_json("/p") == {"items": [1, 2]}


def test_timeout_is_retried(httpserver):
    calls = []

    def slow_then_fast(request):
        calls.append(1)
        if len(calls) == 1:
            time.sleep(3)  # the server answers one request at a time: under 2 x timeout
        return Response(json.dumps({"ok": 1}), content_type="application/json")

    httpserver.expect_request("/slow").respond_with_handler(slow_then_fast)
    # timeout bounds a request's total time: 2 s leaves a busy machine room for the fast answer
    assert client(httpserver, timeout=2).get_json("/slow") == {"ok": 1}
    assert len(calls) == 2


def test_connection_refused_is_retried_then_reported():
    http = Http("http://127.0.0.1:9/", name="nowhere", max_retries=1, backoff=0.01)
    with pytest.raises(SourceError, match="nowhere: GET http://127.0.0.1:9/x still failing"):
        http.get_json("/x")


def test_throttle_hook_waits_on_a_200(httpserver):
    httpserver.expect_ordered_request("/q").respond_with_json({"errors": [{"code": "THROTTLED"}]})
    httpserver.expect_ordered_request("/q").respond_with_json({"data": 1})
    throttle = lambda r: 0.05 if "errors" in r.json() else None  # noqa: E731
    assert client(httpserver, throttle=throttle).get_json("/q") == {"data": 1}


def test_repeated_cursor_stops_pagination(httpserver):
    httpserver.expect_request("/list", query_string="").respond_with_json({"items": [1], "next": "A"})
    httpserver.expect_request("/list", query_string="cursor=A").respond_with_json({"items": [2], "next": "B"})
    httpserver.expect_request("/list", query_string="cursor=B").respond_with_json({"items": [3], "next": "A"})
    http = client(httpserver)

    def fetch(cursor):
        body = http.get_json("/list", params={"cursor": cursor} if cursor else None)
        return body["items"], body["next"]

    got = []
    with pytest.raises(PaginationLoop, match="twice"):
        for page in paginate(fetch, what="list"):
            got.extend(page)
    assert got == [1, 2, 3]
    assert http.requests_made == 3


def test_redact_url():
    assert redact_url("https://x/y?consumer_key=ck&page=2&api_token=t") == "https://x/y?consumer_key=***&page=2&api_token=***"


def test_throttle_hook_decides_the_wait_on_a_429(httpserver):
    httpserver.expect_ordered_request("/g").respond_with_json({"errors": [{"code": "THROTTLED"}]}, status=429,
                                                              headers={"Retry-After": "30"})
    httpserver.expect_ordered_request("/g").respond_with_json({"data": 2})
    started = time.monotonic()
    throttle = lambda r: 0.1 if r.status_code == 429 else None  # noqa: E731
    assert client(httpserver, throttle=throttle).get_json("/g") == {"data": 2}
    assert time.monotonic() - started < 15  # the hook's 0.1 s, not Retry-After's 30 s


def test_json_lines_bodies_are_not_parsed_as_one_document(httpserver):
    httpserver.expect_request("/export.jsonl").respond_with_data('{"a":1}\n{"a":2}\n',
                                                                 content_type="application/jsonl")
    assert client(httpserver).request("GET", "/export.jsonl").text.splitlines() == ['{"a":1}', '{"a":2}']


def test_watchdog_alarms_fire_in_time_order_on_one_thread_and_a_cancelled_one_never_fires():
    import threading

    from connectors.sdk.http import _Alarms

    alarms, fired, done = _Alarms(), [], threading.Event()
    alarms.add(0.15, lambda: (fired.append("late"), done.set()))
    cancelled = alarms.add(0.05, lambda: fired.append("cancelled"))
    alarms.add(0.01, lambda: fired.append(threading.current_thread().name))
    alarms.add(0.1, lambda: 1 / 0)  # a failing callback does not stop the others
    alarms.cancel(cancelled)
    assert done.wait(5)
    assert fired == ["crmhub-http-watchdog", "late"]


def test_requests_share_one_watchdog_thread(httpserver):
    import threading

    from connectors.sdk.http import _alarms

    httpserver.expect_request("/ok").respond_with_json({"ok": True})
    http = Http(httpserver.url_for("/"), timeout=5)
    http.get_json("ok")
    before = threading.active_count()
    for _ in range(20):
        assert http.get_json("ok") == {"ok": True}
    assert threading.active_count() == before  # no thread per request
    assert _alarms._thread in threading.enumerate()
