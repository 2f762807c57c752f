"""Telling operations that a run failed: email through the `smtp:` settings and/or a
webhook (a Slack incoming webhook or anything that takes ``{"text": ...}`` JSON).

An alert is one line (what failed, the error) plus a link to the run. Sending an
alert never raises: a broken alert channel is logged (without the webhook URL, which
is a secret) and the caller's own failure stays what it reports.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage

import requests

from crmhub import config as config_mod
from crmhub.redact import redact

log = logging.getLogger("crmhub.alerts")


@dataclass
class Alert:
    what: str  # "sync web_leads", "report weekly_marketing"
    error: str  # the one-line error
    link: str | None = None  # the Airflow task's log page
    detail: str | None = None  # e.g. "run 42", "try 3 of 3"
    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @property
    def subject(self) -> str:
        return f"[crmhub] {self.what} failed"

    def text(self) -> str:
        first = self.error.splitlines()[0] if self.error else "failed"
        lines = [f"crmhub: {self.what} failed at {self.at:%Y-%m-%d %H:%M UTC}: {first[:500]}"]
        if self.detail:
            lines.append(self.detail)
        if self.link:
            lines.append(f"Run: {self.link}")
        return "\n".join(lines)


def send(cfg: config_mod.Config, alert: Alert) -> list[str]:
    """Deliver ``alert`` to every configured channel; returns the channels that took it."""
    settings = cfg.settings.alerts
    delivered = []
    if settings.email:
        try:
            _email(cfg, settings.email, alert)
            delivered.append("email")
        except Exception as exc:  # an alert must not hide the failure it reports
            log.error("alert email to %s failed: %s", ", ".join(settings.email), type(exc).__name__)
    if settings.webhook_url:
        try:
            url = config_mod.interpolate(settings.webhook_url, ("alerts", "webhook_url"), cfg.where)
            response = requests.post(url, json={"text": alert.text()}, timeout=settings.timeout,
                                     allow_redirects=False)
            response.raise_for_status()
            delivered.append("webhook")
        except Exception as exc:
            status = getattr(getattr(exc, "response", None), "status_code", None)
            log.error("alert webhook failed: %s%s", type(exc).__name__, f" (HTTP {status})" if status else "")
    return delivered


def _email(cfg: config_mod.Config, recipients: list[str], alert: Alert) -> None:
    smtp = cfg.settings.smtp
    msg = EmailMessage()
    msg["Subject"] = alert.subject
    msg["From"] = smtp.sender
    msg["To"] = ", ".join(recipients)
    msg.set_content(alert.text())
    context = ssl.create_default_context()
    cls = smtplib.SMTP_SSL if smtp.ssl else smtplib.SMTP
    kwargs = {"context": context} if smtp.ssl else {}
    with cls(smtp.host, smtp.port, timeout=smtp.timeout, **kwargs) as client:
        if smtp.starttls and not smtp.ssl:
            client.starttls(context=context)
        if smtp.username:
            password = smtp.password.get_secret_value() if smtp.password else ""
            password = config_mod.interpolate(password, ("smtp", "password"), cfg.where)
            client.login(config_mod.interpolate(smtp.username, ("smtp", "username"), cfg.where), password)
        client.send_message(msg)


def airflow_failure_callback(config_path: str):
    """An Airflow ``on_failure_callback`` that alerts with the task's error and log link."""

    def callback(context) -> None:
        cfg = config_mod.load(config_path)
        ti = context.get("ti") or context.get("task_instance")
        error = context.get("exception")
        dag_id = getattr(ti, "dag_id", None) or "crmhub"
        what = dag_id.replace("crmhub_sync_", "sync ").replace("crmhub_report_", "report ").replace("crmhub_", "")
        message = redact(str(error)) if error else "task failed"  # no configured secret in an alert
        send(cfg, Alert(what, message, link=getattr(ti, "log_url", None),
                        detail=f"try {getattr(ti, 'try_number', '?')}, run {getattr(ti, 'run_id', '?')}"))

    return callback
