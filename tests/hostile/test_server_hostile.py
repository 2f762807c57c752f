"""Hostile clients against a real `crmhub serve` (SQLite and PostgreSQL warehouses).

A header of a megabyte, a client that trickles its headers or never finishes its body,
one that hangs up mid-body, JSON nested 5,000 deep, values no warehouse stores as they
are (NUL, NaN, Infinity, 1e999, a lone surrogate), stale and replayed deliveries.
"""

from __future__ import annotations

import json
import socket
import time

import pytest
import requests

from tests.conftest import rows
from tests.connectors.test_webhook import CONTACT_SECRET, as_json, hex_signature

CONTACT = "/forms/website/contact"


def raw_request(served, data: bytes, *, wait_for_close: bool = True) -> bytes:
    """Send bytes on a fresh connection; return what came back until the server closed it."""
    host, port = served.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=120) as sock:
        sock.sendall(data)
        chunks = []
        while wait_for_close:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def serve_log(served, *expected: str) -> str:
    """The server's log so far; with ``expected``, once those lines have reached it (the log
    is copied from the server's output by a thread, a moment after the server wrote it)."""
    for _ in range(300):
        text = served.log.read_text()
        if all(line in text for line in expected):
            return text
        time.sleep(0.1)
    return served.log.read_text()


def test_a_huge_header_is_refused_and_health_still_answers(served):
    huge = b"POST " + CONTACT.encode() + b" HTTP/1.1\r\nHost: x\r\nX-Junk: " + b"a" * (1024 * 1024) + b"\r\n\r\n"
    try:
        answer = raw_request(served, huge)
    except ConnectionResetError:  # the server may close before reading everything we sent
        answer = b"HTTP/1.1 400"
    assert answer.startswith(b"HTTP/1.1 400")
    assert requests.get(served.url + "/healthz", timeout=30).status_code == 200


def test_a_client_trickling_its_headers_is_disconnected(served):
    host, port = served.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=120) as sock:
        sock.sendall(b"POST /forms/website/contact HTTP/1.1\r\nHost: x\r\n")
        closed = False
        for _ in range(600):  # a byte at a time, until the server hangs up (HEADER_TIMEOUT)
            try:
                sock.sendall(b"X")
                time.sleep(0.1)
                sock.setblocking(False)
                try:
                    if sock.recv(1024) == b"":
                        closed = True
                        break
                except BlockingIOError:
                    pass
                finally:
                    sock.setblocking(True)
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
        assert closed
    assert "request headers not complete within" in serve_log(served, "request headers not complete within")


def test_a_body_never_finished_gets_408_and_a_disconnect_no_traceback(served):
    body = as_json({"submission_id": "slow-1", "email": "slow@example.com"})
    head = (f"POST {CONTACT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body) + 100}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hex_signature(body).items())
            + "\r\n").encode()
    answer = raw_request(served, head + body)  # 100 bytes short: the server stops waiting
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]

    host, port = served.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:  # hang up mid-body
        sock.sendall(head + body[:10])
    for _ in range(600):
        if "went away before sending the whole body" in serve_log(served):
            break
        time.sleep(0.1)
    log = serve_log(served, "went away before sending the whole body")
    assert "went away before sending the whole body" in log
    assert "Traceback" not in log
    assert served.count("raw_record") == 0


def test_deep_json_is_a_400_not_a_500(served):
    deep = b'{"a":' * 5000 + b"1" + b"}" * 5000
    signed_but_too_big = served.post(CONTACT, deep, **hex_signature(deep))
    assert signed_but_too_big.status_code == 413  # over max_body_bytes (4096) before anything else
    deep = b'{"email":"d@example.com","x":' + b"[" * 500 + b"]" * 500 + b"}"
    assert len(deep) < 4096
    answer = served.post(CONTACT, deep, **hex_signature(deep))
    assert answer.status_code == 400 and "nested deeper than 64" in answer.json()["error"]
    assert "Traceback" not in serve_log(served)


@pytest.mark.parametrize("value,reason", [
    ('"nul\\u0000byte"', "NUL character"),
    ("NaN", "not a finite number"),
    ("Infinity", "not a finite number"),
    ("-Infinity", "not a finite number"),
    ("1e999", "not a finite number"),
    ('"\\ud800 lone"', "lone UTF-16 surrogate"),
])
def test_unstorable_values_are_quarantined_and_answered_once(served, value, reason):
    body = ('{"submission_id": "odd-1", "email": "odd@example.com", "note": ' + value + "}").encode()
    first = served.post(CONTACT, body, **hex_signature(body))
    assert first.status_code == 202, first.text
    again = served.post(CONTACT, body, **hex_signature(body))  # the client's retry: no 503 loop
    assert again.status_code == 202
    [rejected] = rows(served.engine, "rejected_record")
    assert reason in rejected["reason"] and "note" in rejected["reason"]
    [raw] = rows(served.engine, "raw_record")
    assert raw["payload"]["body_text"].startswith('{"submission_id": "odd-1"')
    assert served.count("lead") == 0


def test_stale_and_replayed_deliveries_are_refused(served):
    old = as_json({"submission_id": "r-1", "email": "first@example.com", "name": "First Version"})
    stale = served.post(CONTACT, old, **hex_signature(old, at=int(time.time()) - 3600))
    assert stale.status_code == 401  # outside the 300 s tolerance
    sent_at = int(time.time()) - 10
    assert served.post(CONTACT, old, **hex_signature(old, at=sent_at)).status_code == 202
    corrected = as_json({"submission_id": "r-1", "email": "first@example.com", "name": "Corrected Name"})
    assert served.post(CONTACT, corrected, **hex_signature(corrected)).status_code == 202
    replay = served.post(CONTACT, old, **hex_signature(old, at=sent_at))  # the old delivery, captured
    assert replay.status_code == 409
    [person] = rows(served.engine, "source_person")
    assert person["display_name"] == "Corrected Name"

    idless = as_json({"email": "noid@example.com"})
    signature = hex_signature(idless)
    first = served.post(CONTACT, idless, **signature)
    replayed = served.post(CONTACT, idless, **signature)
    assert first.status_code == replayed.status_code == 202
    assert first.json()["submission_id"] == replayed.json()["submission_id"]
    assert len([lead for lead in rows(served.engine, "lead") if lead["external_id"] != "contact:r-1"]) == 1

    body_only = served.post(CONTACT, old, **{"X-Crmhub-Signature": "sha256=" + "0" * 64})
    assert body_only.status_code == 401
    expected = ("refused 401: signed timestamp is", "refused 409: a newer delivery",
                "refused 401: body-only signature")
    log = serve_log(served, *expected)
    for line in expected:
        assert line in log, line
    assert CONTACT_SECRET not in log and json.dumps(CONTACT_SECRET) not in log
