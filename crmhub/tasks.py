"""What Airflow tasks run: the CLI's jobs, with secrets also looked up in Airflow.

A task fails (raises) when its job failed, so Airflow's retries and alerts apply; the
return value is a small summary that lands in XCom and the task log.
"""

from __future__ import annotations

import logging
from typing import Any

from crmhub import config as config_mod
from crmhub import jobs, redact
from crmhub.errors import ConfigError, CrmhubError

log = logging.getLogger("crmhub.tasks")


def airflow_secret(name: str) -> str | None:
    """``${NAME}`` from an Airflow variable NAME, else the password of connection NAME."""
    from airflow.sdk import Connection, Variable

    value = Variable.get(name, default=None)
    if value is not None:
        return value
    try:
        return Connection.get(name.lower()).password
    except Exception:  # no such connection: the caller reports the variable as missing
        return None


airflow_secret.describe = lambda name: f"Airflow variable {name}, password of Airflow connection {name.lower()}"


def _mask_in_airflow_logs(secret: str) -> None:
    from airflow.sdk.log import mask_secret

    mask_secret(secret)


def _config(config_path: str | None) -> config_mod.Config:
    config_mod.add_secret_lookup(airflow_secret)
    # Defence in depth: crmhub redacts its own messages; Airflow's masker covers the rest of the task log.
    redact.on_register(_mask_in_airflow_logs)
    try:
        return config_mod.load(config_path)
    except ConfigError as exc:
        raise _no_retry(exc) from None


def _no_retry(exc: ConfigError) -> Exception:
    """A config error will not fix itself: fail the task without Airflow's retries."""
    from airflow.sdk.exceptions import AirflowFailException

    return AirflowFailException(f"crmhub: {exc}")


def sync_source(source: str, config_path: str | None = None) -> dict[str, Any]:
    cfg = _config(config_path)

    def progress(src, stream, elapsed):
        log.info("%s/%s: %d pages, %d records, %d rejected", src, stream.stream, stream.pages,
                 stream.read, stream.rejected)

    try:
        (result,) = jobs.sync(cfg, [source], progress=progress, raise_setup_errors=True)
    except ConfigError as exc:  # a secret not found, a bad option: retrying will not help
        raise _no_retry(exc) from None
    summary = {"source": source, "status": result.status, "read": result.read,
               "loaded": result.loaded, "rejected": result.rejected, "sync_run_id": result.sync_run_id}
    log.info("crmhub sync %s: %s", source, summary)
    if result.status != "success":
        why = "; ".join(result.errors) or result.setup_error
        raise CrmhubError(f"sync of {source} {result.status}: {why}")
    return summary


def run_model(config_path: str | None = None) -> dict[str, Any]:
    summary = jobs.model(_config(config_path))
    return vars(summary)


def airflow_smtp_connection(conn_id: str = "smtp_default"):
    """Airflow's SMTP connection, if one is defined (host, port, login, password)."""
    from airflow.sdk import Connection

    try:
        return Connection.get(conn_id)
    except Exception:  # not defined: crmhub.yml's smtp settings stand alone
        return None


def send_report(name: str, config_path: str | None = None) -> dict[str, Any]:
    """Build report ``name`` of crmhub.yml for its period and mail it to its recipients."""
    from crmhub import reports

    cfg = _config(config_path)
    engine = jobs.warehouse(cfg)
    try:
        result = reports.run(cfg, name, engine, send_mail=True,
                             smtp=reports.smtp_target(cfg, airflow_smtp_connection()))
    finally:
        engine.dispose()
    summary = {"report": name, "report_run_id": result.report_run_id, "period": result.period.label,
               "recipients": result.recipients, "empty_sections": result.empty_sections}
    log.info("crmhub report %s: %s", name, summary)
    return summary
