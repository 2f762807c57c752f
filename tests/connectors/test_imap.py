"""The imap connector against a real Dovecot on loopback ports (tests/connectors/dovecot.py).

Each test gets its own Dovecot (a test user, an empty Maildir the test fills, the
self-signed certificate of the module) and a warehouse on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest
from pydantic import ValidationError
from werkzeug import Response

from connectors.imap import ImapConfig, ImapConnector
from crm_model.sync import load_state, sync
from crmhub.errors import SourceError
from tests.conftest import rows
from tests.connectors.dovecot import PASSWORD, USER, Dovecot, make_certificate
from tests.connectors.mailmaker import mail

COMPANY = ["acme.example"]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def dovecot(certificate):
    server = Dovecot(*certificate)
    server.start()
    yield server
    server.stop()


def connector(server: Dovecot, **overrides) -> ImapConnector:
    cfg = {"host": "localhost", "port": server.port, "username": USER, "password": PASSWORD,
           "security": "starttls", "ca_file": str(server.cert), "company_domains": COMPANY, **overrides}
    return ImapConnector(ImapConfig(**cfg), source="mail")


def run(warehouse, server: Dovecot, **overrides):
    conn = connector(server, **overrides)
    try:
        return sync(warehouse, "mail", conn, "imap")
    finally:
        conn.close()


def fill_first_mails(server: Dovecot) -> None:
    server.deliver(mail("ada@example.com", "Ada Lovelace", subject="Quote for 40 seats", msgid="q1@example.com",
                        to="ann@acme.example", date="Mon, 02 Nov 2026 09:00:00 +0100"))
    server.deliver(mail("grace@example.org", '"Hopper, Grace"', subject="Re: demo", msgid="g1@example.org",
                        to="ann@acme.example", cc="linus@example.net", date="Tue, 03 Nov 2026 10:00:00 -0500"))
    server.deliver(mail("news@shop.example", "Shop News", subject="Our offers", msgid="n1@shop.example",
                        to="ann@acme.example", extra="List-Id: <offers.shop.example>\r\n"
                                                     "List-Unsubscribe: <mailto:u@shop.example>\r\n"))
    server.deliver(mail("noreply@github.example", "GitHub", subject="Alert", msgid="a1@github.example",
                        to="ann@acme.example"))
    server.deliver(mail("ann@acme.example", "Ann Rep", subject="Re: Quote for 40 seats", msgid="r1@acme.example",
                        to="ada@example.com", references="<q1@example.com>",
                        date="Mon, 02 Nov 2026 11:00:00 +0100"), folder="Sent Items")


def test_first_sync_then_only_new_mail_and_nothing_marked_read(warehouse, dovecot):
    fill_first_mails(dovecot)
    result = run(warehouse, dovecot)
    assert result.status == "success", result.errors
    # INBOX and the folder flagged \Sent (RFC 6154), found by its flag, not its name
    assert [s.stream for s in result.streams] == ["INBOX", "Sent Items"]
    assert (result.read, result.loaded, result.rejected) == (5, 5, 0)

    messages = {m["message_id"]: m for m in rows(warehouse, "email_message")}
    assert set(messages) == {"<q1@example.com>", "<g1@example.org>", "<n1@shop.example>", "<a1@github.example>",
                             "<r1@acme.example>"}
    reply = messages["<r1@acme.example>"]
    assert reply["direction"] == "outbound" and reply["thread_id"] == "<q1@example.com>"
    assert reply["folder"] == "Sent Items" and reply["person_ref"] == "email:ada@example.com"
    first = messages["<q1@example.com>"]
    assert first["direction"] == "inbound" and first["sent_at"].isoformat() == "2026-11-02T08:00:00+00:00"
    assert messages["<n1@shop.example>"]["bulk"] is True and messages["<n1@shop.example>"]["person_ref"] is None

    people = {p["external_id"]: p for p in rows(warehouse, "source_person")}
    # the company's own address, the newsletter and the no-reply sender are not persons
    assert set(people) == {"email:ada@example.com", "email:grace@example.org", "email:linus@example.net"}
    assert (people["email:grace@example.org"]["first_name"], people["email:grace@example.org"]["last_name"]) == (
        "Grace", "Hopper")
    touch = rows(warehouse, "touchpoint")
    assert {t["channel"] for t in touch} == {"email"} and len(touch) == 3

    # BODY.PEEK and EXAMINE: Dovecot has not set \Seen on any message file
    assert all("S" not in flags for flags in dovecot.flags_of("INBOX"))

    with warehouse.connect() as c:
        state = load_state(c, "mail", "INBOX")
    assert state["uid"] == 4 and state["uidvalidity"] == dovecot.uidvalidity("INBOX")

    dovecot.deliver(mail("bob@example.com", "Bob", subject="Hello", msgid="b1@example.com", to="ann@acme.example"))
    again = run(warehouse, dovecot)
    assert again.read == 1 and again.loaded == 1
    assert len(rows(warehouse, "email_message")) == 6
    assert run(warehouse, dovecot).read == 0


def test_uidvalidity_change_rereads_the_folder_without_duplicates(warehouse, dovecot):
    fill_first_mails(dovecot)
    assert run(warehouse, dovecot).read == 5
    before = rows(warehouse, "email_message")
    old = dovecot.uidvalidity("INBOX")
    dovecot.set_uidvalidity("INBOX", old + 1000)
    result = run(warehouse, dovecot)
    inbox = next(s for s in result.streams if s.stream == "INBOX")
    assert inbox.read == 4 and inbox.loaded == 4  # the whole folder again
    assert rows(warehouse, "email_message") == before  # upserted by Message-ID: nothing doubled
    with warehouse.connect() as c:
        assert load_state(c, "mail", "INBOX")["uidvalidity"] == old + 1000


def test_implicit_tls_and_plain_loopback(warehouse, dovecot):
    fill_first_mails(dovecot)
    assert run(warehouse, dovecot, security="ssl", port=dovecot.tls_port).read == 5
    plain = run(warehouse, dovecot, security="none", ca_file=None)
    assert plain.status == "success" and plain.read == 0  # same cursors: nothing new


def test_self_signed_certificate_refused_unless_ca_file_trusts_it(dovecot):
    for overrides in ({"security": "ssl", "port": dovecot.tls_port}, {"security": "starttls"}):
        conn = connector(dovecot, ca_file=None, **overrides)
        with pytest.raises(SourceError, match="certificate is not trusted.*set ca_file"):
            conn.connect()
        conn.close()
    ok = connector(dovecot, security="ssl", port=dovecot.tls_port)
    assert ok.check().startswith("ok: logged in as crm")
    ok.close()


def test_certificate_for_another_host_name_is_refused(tmp_path_factory, certificate):
    other_cert, other_key = make_certificate(tmp_path_factory.mktemp("other"), "mail.other.example")
    server = Dovecot(other_cert, other_key)
    server.start()
    try:
        # the CA file trusts the certificate, but it names mail.other.example, not localhost
        conn = connector(server, security="ssl", port=server.tls_port, ca_file=str(other_cert))
        with pytest.raises(SourceError, match="not trusted.*Hostname mismatch"):
            conn.connect()
    finally:
        server.stop()


def test_security_none_only_to_loopback():
    with pytest.raises(ValidationError, match="only to a loopback address"):
        ImapConfig(host="imap.example.com", username="u", password="p", security="none")
    ImapConfig(host="127.0.0.1", username="u", password="p", security="none")
    ImapConfig(host="::1", username="u", password="p", security="none")
    with pytest.raises(ValidationError, match="exactly one of password and access_token"):
        ImapConfig(host="imap.example.com", username="u")


def test_wrong_password_is_one_clear_line_without_the_secret(tmp_path, dovecot, warehouse_url):
    wrong = "Wrong-Secret-Password-991"
    config = tmp_path / "crmhub.yml"
    config.write_text(
        f"warehouse: {{url: '{warehouse_url}'}}\n"
        "sources:\n  ann_mail:\n    connector: imap\n    config:\n"
        f"      host: localhost\n      port: {dovecot.port}\n      username: {USER}\n"
        "      password: ${ANN_IMAP_PASSWORD}\n      security: starttls\n"
        f"      ca_file: {dovecot.cert}\n")
    env = {"ANN_IMAP_PASSWORD": wrong, "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "crmhub", "sync", "--config", str(config)],
                          capture_output=True, text=True, env=env)
    output = done.stdout + done.stderr
    assert done.returncode == 1
    assert wrong not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert "login refused" in lines[0] and "AUTHENTICATIONFAILED" in lines[0] and "check the username" in lines[0]


def test_hostile_messages_are_bounded_or_quarantined(warehouse, dovecot, caplog):
    from tests.connectors.mailmaker import hostile_messages

    hostile = hostile_messages()
    for raw in hostile.values():
        dovecot.deliver(raw, folder="Support")
    caplog.set_level(logging.DEBUG)
    result = run(warehouse, dovecot, folders=["INBOX", {"name": "Support", "support": True}])
    assert result.status == "success", result.errors
    assert result.read == len(hostile) == result.loaded + result.rejected
    reasons = sorted(r["reason"] for r in rows(warehouse, "rejected_record"))
    assert any("multipart containers" in r for r in reasons), reasons
    assert any("header block larger" in r for r in reasons), reasons
    messages = {m["message_id"]: m for m in rows(warehouse, "email_message")}
    # a display name carrying CR/LF and a Bcc: header, decoded from an encoded word, is dropped
    injected = messages["<inject@example.com>"]
    people = {p["external_id"]: p for p in rows(warehouse, "source_person")}
    assert injected["from_address"] == "mallory@example.com"
    assert people["email:mallory@example.com"]["display_name"] is None
    assert "\n" not in (messages["<lying@example.com>"]["subject"] or "")
    assert messages["<huge@example.com>"]["subject"] == "Huge attachment"
    # bodies of support mail are capped, never whole
    assert len(messages["<huge@example.com>"]["body_excerpt"] or "") <= 4000
    # no message content in any log line
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret_word in ("Huge attachment", "mallory", "Kaputt", "CONFIDENTIAL"):
        assert secret_word not in logged


def test_xoauth2_login_with_an_access_token(httpserver, certificate):
    """Dovecot checks the token at an RFC 7662 introspection endpoint (pytest-httpserver)."""
    good, bad = "ya29.good-token-for-crm", "ya29.revoked-token"
    seen: list[str] = []

    def introspect(request):
        token = request.form.get("token")
        seen.append(token)
        body = {"active": True, "username": USER} if token == good else {"active": False}
        return Response(json.dumps(body), 200, content_type="application/json")

    httpserver.expect_request("/introspect", method="POST").respond_with_handler(introspect)
    server = Dovecot(*certificate, oauth_introspection_url=httpserver.url_for("/introspect"))
    server.start()
    try:
        ok = connector(server, password=None, access_token=good)
        assert ok.check().startswith("ok: logged in as crm")
        ok.close()
        refused = connector(server, password=None, access_token=bad)
        with pytest.raises(SourceError, match="login refused.*check the username and XOAUTH2 token") as info:
            refused.connect()
        assert bad not in str(info.value)
        assert seen == [good, bad]
    finally:
        server.stop()
