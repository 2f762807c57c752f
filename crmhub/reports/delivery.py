"""Where a report goes: files in a folder (``--out``) or an email over SMTP (``--send``).

The email is multipart/mixed: a multipart/alternative of the plain text and a
multipart/related HTML part whose charts are inline PNGs referenced by Content-ID, then
one CSV attachment per table. SMTP: STARTTLS or implicit TLS with the certificate and
host name verified; temporary failures (4xx replies, dropped connections) are retried with
backoff, permanent ones (5xx) fail at once with the server's reply. Passwords never reach
a message, a log line or the warehouse.
"""

from __future__ import annotations

import base64
import logging
import smtplib
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from crmhub.errors import CrmhubError
from crmhub.reports import render
from crmhub.reports.build import Report

log = logging.getLogger("crmhub.reports")
ATTEMPTS = 4


class DeliveryError(CrmhubError):
    """The report could not be written or mailed."""


def write_files(report: Report, out: Path) -> list[Path]:
    """The HTML (charts as PNG files beside it), the plain text and one CSV per table."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        written = []
        page = out / f"{report.name}.html"
        page.write_text(render.html(report, lambda s: s.png_name), encoding="utf-8")
        written.append(page)
        text = out / f"{report.name}.txt"
        text.write_text(render.plain_text(report), encoding="utf-8")
        written.append(text)
        for s in report.sections:
            if s.chart_png:
                (out / s.png_name).write_bytes(s.chart_png)
                written.append(out / s.png_name)
            if s.rows:
                (out / s.csv_name).write_bytes(render.csv_bytes(s))
                written.append(out / s.csv_name)
        return written
    except OSError as exc:
        raise DeliveryError(f"cannot write the report to {out}: {exc.strerror or exc}") from None


def data_uri(section) -> str:
    return "data:image/png;base64," + base64.b64encode(section.chart_png).decode("ascii")


def message(report: Report, sender: str, recipients: Sequence[str]) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = report.subject
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "crmhub")
    msg.set_content(render.plain_text(report))
    msg.add_alternative(render.html(report, lambda s: f"cid:{s.cid}"), subtype="html")
    html_part = msg.get_payload()[1]
    for s in report.sections:
        if s.chart_png:
            html_part.add_related(s.chart_png, maintype="image", subtype="png", cid=f"<{s.cid}>",
                                  filename=s.png_name)
    for s in report.sections:
        if s.rows:
            msg.add_attachment(render.csv_bytes(s), maintype="text", subtype="csv", filename=s.csv_name,
                               params={"charset": "utf-8"})
    return msg


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    sender: str
    starttls: bool = False
    ssl: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0
    ca_file: str | None = None

    def __repr__(self) -> str:  # never the password
        return f"SmtpTarget({self.host}:{self.port}, starttls={self.starttls}, ssl={self.ssl}, user={self.username})"


def _tls(target: SmtpTarget) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=target.ca_file)  # verifies the chain and the host name


def _attempt(target: SmtpTarget, msg: EmailMessage, recipients: Sequence[str]) -> dict:
    cls = smtplib.SMTP_SSL if target.ssl else smtplib.SMTP
    kwargs = {"context": _tls(target)} if target.ssl else {}
    with cls(target.host, target.port, timeout=target.timeout, **kwargs) as smtp:
        smtp.ehlo()
        if target.starttls:
            smtp.starttls(context=_tls(target))
            smtp.ehlo()
        if target.username:
            smtp.login(target.username, target.password or "")
        return smtp.send_message(msg, from_addr=target.sender, to_addrs=list(recipients))


def _reply(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
    return f"{exc.smtp_code} {' '.join(text.split())}"


def send(target: SmtpTarget, msg: EmailMessage, recipients: Sequence[str], *, wait: float = 2.0,
         attempts: int = ATTEMPTS) -> None:
    """Deliver ``msg``; retry 4xx and dropped connections, fail clearly on 5xx."""
    where = f"SMTP server {target.host}:{target.port}"
    for attempt in range(1, attempts + 1):
        try:
            refused = _attempt(target, msg, recipients)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = {r: c for r, (c, _) in exc.recipients.items()}
            if all(400 <= c < 500 for c in codes.values()) and attempt < attempts:
                problem = f"recipients temporarily refused: {codes}"
            else:
                detail = "; ".join(f"{r}: {c} {m.decode('utf-8', 'replace') if isinstance(m, bytes) else m}"
                                   for r, (c, m) in exc.recipients.items())
                raise DeliveryError(f"{where} refused every recipient: {detail}") from None
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"{where} rejected the login of user {target.username!r}: {_reply(exc)}") from None
        except smtplib.SMTPResponseException as exc:
            if 400 <= exc.smtp_code < 500 and attempt < attempts:
                problem = f"temporary failure {_reply(exc)}"
            elif 400 <= exc.smtp_code < 500:
                raise DeliveryError(f"{where} still failing after {attempts} attempts: {_reply(exc)}") from None
            else:
                raise DeliveryError(f"{where} refused the report (permanent): {_reply(exc)}") from None
        except ssl.SSLError as exc:
            raise DeliveryError(f"{where}: TLS failed ({exc.reason or exc}); the certificate must verify") from None
        except (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, OSError) as exc:
            if attempt == attempts:
                raise DeliveryError(f"{where} unreachable after {attempts} attempts: {exc}") from None
            problem = f"connection failed: {exc}"
        except smtplib.SMTPException as exc:  # e.g. AUTH or STARTTLS not offered: a setup problem
            raise DeliveryError(f"{where}: {exc}") from None
        else:
            if refused:
                detail = "; ".join(f"{r}: {c}" for r, (c, _) in refused.items())
                raise DeliveryError(f"{where} delivered to some recipients but refused {detail}")
            return
        delay = wait * 2 ** (attempt - 1)
        log.warning("%s: %s; retry %d of %d in %.0fs", where, problem, attempt, attempts - 1, delay)
        time.sleep(delay)
