"""Reports by email to a real SMTP server (aiosmtpd on 127.0.0.1), and into a folder.

The received message is parsed like a mail client would: the plain-text and HTML
alternatives, the charts inline by Content-ID, one CSV per table. Names that are HTML or
spreadsheet formulas come out escaped in the HTML and neutralised in the CSV.
"""

from __future__ import annotations

import csv
import datetime as dt
import email
import io
import ipaddress
import logging
import re
import socket
import ssl
from email import policy

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from crm_model.schema import ReportRun
from crmhub.reports import ReportError, run, smtp_target
from crmhub.reports.delivery import SmtpTarget
from crmhub.reports.render import FORMULA_START, neutralise
from tests.reports import fixtures

SECRET = "s3cr3t-smtp-password-never-shown"


class Mailbox:
    """An aiosmtpd handler that keeps what it receives; ``replies`` scripts the first answers."""

    def __init__(self, replies=()):
        self.replies = list(replies)
        self.received: list[email.message.EmailMessage] = []
        self.envelopes = []
        self.attempts = 0

    async def handle_DATA(self, server, session, envelope):
        self.attempts += 1
        if self.replies:
            return self.replies.pop(0)
        self.envelopes.append(envelope)
        self.received.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture
def smtp_server():
    servers = []

    def start(replies=(), **kw):
        box = Mailbox(replies)
        with socket.socket() as probe:  # a free port (aiosmtpd checks readiness on the port it was given)
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        controller = Controller(box, hostname="127.0.0.1", port=port, **kw)
        controller.start()  # returns once the server answers
        servers.append(controller)
        return box, port

    yield start
    for controller in servers:
        controller.stop()


def config(write_config, port, **smtp):
    return write_config({}, reports={"monthly_sales": {
        "report": "sales", "period": fixtures.PERIOD, "recipients": ["boss@example.com", "cfo@example.com"]}},
        smtp={"host": "127.0.0.1", "port": port, "sender": "reports@example.com", **smtp})


def last_run(engine):
    with engine.connect() as conn:
        return conn.execute(select(ReportRun.__table__).order_by(ReportRun.report_run_id.desc())).mappings().first()


def test_the_email_arrives_with_text_html_inline_charts_and_safe_csvs(warehouse, write_config, smtp_server):
    fixtures.load(warehouse)
    box, port = smtp_server()
    cfg = config(write_config, port)
    result = run(cfg, "monthly_sales", warehouse, send_mail=True, retry_wait=0)

    (msg,) = box.received
    assert sorted(box.envelopes[0].rcpt_tos) == ["boss@example.com", "cfo@example.com"]
    assert msg["Subject"] == "Sales report: 01 Mar 2026 - 31 Mar 2026" and msg.get_content_type() == "multipart/mixed"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "Revenue" in text and "170.00" in text and "+466.7 %" in text.replace("−", "-")

    # the HTML escapes what a customer typed; nothing in it runs
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script" not in html
    assert "=HYPERLINK(&#34;http://evil.example/&#34;,&#34;click me&#34;)" in html

    # every chart is an inline PNG found by its Content-ID
    cids = re.findall(r'src="cid:([^"]+)"', html)
    assert len(cids) == 3  # revenue per day, by product, RFM (the forecast needs more history)
    related = {part["Content-ID"].strip("<>"): part for part in msg.walk() if part["Content-ID"]}
    for cid in cids:
        part = related[cid]
        assert part.get_content_type() == "image/png" and part.get_content()[:8] == b"\x89PNG\r\n\x1a\n"
    assert re.search(r'<img src="cid:[^"]+" width="640" height="320" alt="Revenue per day"', html)

    # one CSV per table with rows; formula-looking cells are inert
    csvs = {part.get_filename(): part.get_content() for part in msg.iter_attachments()
            if part.get_content_type() == "text/csv"}
    assert "monthly_sales-top_customers.csv" in csvs and "monthly_sales-by_product.csv" in csvs
    for name, body in csvs.items():
        body = body.decode("utf-8-sig") if isinstance(body, bytes) else body.lstrip("\ufeff")
        table = list(csv.DictReader(io.StringIO(body)))
        for row in table:
            for value in row.values():
                assert not value.startswith(FORMULA_START) or re.fullmatch(r"-[0-9.e-]+", value), (name, value)
        if name == "monthly_sales-top_customers.csv":
            assert list(table[0]) == ["customer", "email", "currency", "orders", "revenue", "revenue_prev",
                                      "new_customer"], list(table[0])
            names = [r["customer"] for r in table]
            assert "'" + fixtures.FORMULA_NAME in names and fixtures.XSS_NAME in names
            assert float(table[0]["revenue"]) == 100.0 and float(table[0]["revenue_prev"]) == 30.0

    row = last_run(warehouse)
    assert row["status"] == "success" and row["error"] is None and row["report"] == "sales"
    assert row["recipients"] == ["boss@example.com", "cfo@example.com"] and row["period_label"] == fixtures.PERIOD
    assert row["period_start"] == dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    assert row["period_end"] == dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
    assert "monthly_sales-top_customers.csv" in row["files"] and result.report_run_id == row["report_run_id"]


def test_a_temporary_refusal_is_retried(warehouse, write_config, smtp_server):
    fixtures.load(warehouse)
    box, port = smtp_server(replies=["451 4.3.0 Try again later", "421 4.7.0 Busy"])
    result = run(config(write_config, port), "monthly_sales", warehouse, send_mail=True, retry_wait=0)
    assert box.attempts == 3 and len(box.received) == 1 and result.status == "success"
    assert last_run(warehouse)["status"] == "success"


def test_a_permanent_refusal_fails_clearly_and_is_recorded(warehouse, write_config, smtp_server):
    fixtures.load(warehouse)
    box, port = smtp_server(replies=["554 5.7.1 Message rejected as spam"])
    with pytest.raises(ReportError, match=r"refused the report \(permanent\): 554 5.7.1 Message rejected as spam"):
        run(config(write_config, port), "monthly_sales", warehouse, send_mail=True, retry_wait=0)
    assert box.attempts == 1
    row = last_run(warehouse)
    assert row["status"] == "failed" and "554 5.7.1" in row["error"] and row["finished_at"] is not None


def test_the_password_never_appears_in_errors_logs_or_mail(warehouse, write_config, smtp_server, caplog,
                                                           monkeypatch):
    fixtures.load(warehouse)
    box, port = smtp_server()  # offers no AUTH (and no TLS): the login cannot happen
    monkeypatch.setenv("SMTP_PASSWORD", SECRET)
    cfg = config(write_config, port, username="reports", password="${SMTP_PASSWORD}")
    assert smtp_target(cfg).password == SECRET and SECRET not in repr(smtp_target(cfg))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ReportError) as failure:
        run(cfg, "monthly_sales", warehouse, send_mail=True, retry_wait=0)
    assert SECRET not in str(failure.value) and SECRET not in caplog.text
    assert SECRET not in (last_run(warehouse)["error"] or "") and box.received == []


def _self_signed(tmp_path, host: str | None = None):
    """A self-signed CA certificate for 127.0.0.1 (or for the DNS name ``host``) and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "crmhub test mail")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName(host) if host else x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "mail.crt", tmp_path / "mail.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_implicit_tls_verifies_the_certificate(warehouse, write_config, smtp_server, tmp_path):
    fixtures.load(warehouse, ("customer_order",))
    cert, key = _self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    box, port = smtp_server(ssl_context=server_tls)
    cfg = config(write_config, port, ssl=True)
    with pytest.raises(ReportError, match="TLS failed .*certificate"):  # unknown issuer: refused
        run(cfg, "monthly_sales", warehouse, send_mail=True, retry_wait=0)
    assert box.received == []
    trusted = SmtpTarget(host="127.0.0.1", port=port, sender="reports@example.com", ssl=True, ca_file=str(cert))
    run(cfg, "monthly_sales", warehouse, send_mail=True, smtp=trusted, retry_wait=0)
    assert len(box.received) == 1


class Logins:
    """An aiosmtpd authenticator that records every login it is offered (and accepts one)."""

    def __init__(self, user: str, password: str):
        self.user, self.password = user, password
        self.offered: list[tuple[str, str, bool]] = []  # (login, password, over TLS?)

    def __call__(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult, LoginPassword

        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.offered.append((login, password, session.ssl is not None))
        return AuthResult(success=(login, password) == (self.user, self.password))


def _starttls_server(smtp_server, tmp_path, host=None):
    """A server that offers STARTTLS with a self-signed certificate and requires it before AUTH."""
    cert, key = _self_signed(tmp_path, host)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    logins = Logins("reports", SECRET)
    box, port = smtp_server(tls_context=server_tls, require_starttls=True, auth_required=True,
                            auth_require_tls=True, authenticator=logins)
    return box, port, logins, cert


def test_starttls_with_a_private_ca_delivers_and_logs_in_over_tls(warehouse, write_config, smtp_server, tmp_path,
                                                                  monkeypatch):
    fixtures.load(warehouse, ("customer_order",))
    box, port, logins, cert = _starttls_server(smtp_server, tmp_path)
    monkeypatch.setenv("SMTP_PASSWORD", SECRET)
    cfg = config(write_config, port, starttls=True, ca_file=str(cert), username="reports",
                 password="${SMTP_PASSWORD}")
    result = run(cfg, "monthly_sales", warehouse, send_mail=True, retry_wait=0)
    assert result.status == "success" and len(box.received) == 1
    assert box.received[0]["Subject"].startswith("Sales report")
    assert logins.offered == [("reports", SECRET, True)]  # the password went over TLS, once


def test_starttls_refuses_a_certificate_that_does_not_verify_before_sending_the_password(
        warehouse, write_config, smtp_server, tmp_path, monkeypatch):
    fixtures.load(warehouse, ("customer_order",))
    box, port, logins, _ = _starttls_server(smtp_server, tmp_path)
    monkeypatch.setenv("SMTP_PASSWORD", SECRET)
    # no ca_file: the self-signed certificate is unknown to the system's CAs
    cfg = config(write_config, port, starttls=True, username="reports", password="${SMTP_PASSWORD}")
    with pytest.raises(ReportError, match=r"TLS failed \(CERTIFICATE_VERIFY_FAILED\); the certificate must verify"):
        run(cfg, "monthly_sales", warehouse, send_mail=True, retry_wait=0)
    assert logins.offered == [] and box.received == [] and box.attempts == 0
    row = last_run(warehouse)
    assert row["status"] == "failed" and "CERTIFICATE_VERIFY_FAILED" in row["error"] and SECRET not in row["error"]

    # a certificate issued for another host name fails the same way, even with its CA trusted
    other = tmp_path / "other"
    other.mkdir()
    box2, port2, logins2, wrong_cert = _starttls_server(smtp_server, other, host="mail.example.net")
    cfg = config(write_config, port2, starttls=True, ca_file=str(wrong_cert), username="reports",
                 password="${SMTP_PASSWORD}")
    with pytest.raises(ReportError, match="certificate must verify"):
        run(cfg, "monthly_sales", warehouse, send_mail=True, retry_wait=0)
    assert logins2.offered == [] and box2.received == []


def test_starttls_asked_for_but_not_offered_is_a_clear_error(warehouse, write_config, smtp_server):
    fixtures.load(warehouse, ("customer_order",))
    box, port = smtp_server()  # plain SMTP, no STARTTLS
    with pytest.raises(ReportError, match="STARTTLS extension not supported by server"):
        run(config(write_config, port, starttls=True), "monthly_sales", warehouse, send_mail=True, retry_wait=0)
    assert box.received == []


def test_out_writes_the_same_files(warehouse, write_config, tmp_path):
    fixtures.load(warehouse)
    out = tmp_path / "reports"
    result = run(config(write_config, 1), "monthly_sales", warehouse, out=out)
    names = sorted(p.name for p in out.iterdir())
    assert "monthly_sales.html" in names and "monthly_sales.txt" in names
    assert "monthly_sales-daily.png" in names and "monthly_sales-top_customers.csv" in names
    html = (out / "monthly_sales.html").read_text()
    assert 'src="monthly_sales-daily.png"' in html and "&lt;script&gt;" in html
    assert sorted(result.files) == sorted(str(out / n) for n in names)
    assert last_run(warehouse)["output_path"] == str(out)


def test_neutralise():
    for cell in ("=1+2", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert neutralise(cell) == "'" + cell
    assert neutralise("Ada") == "Ada" and neutralise(-1) == -1 and neutralise(None) is None
