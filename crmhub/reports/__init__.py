"""Scheduled reports: ``crmhub report NAME``, the report DAGs and the dashboard call ``run``.

NAME is a ``reports:`` entry of crmhub.yml (its report, period and recipients) or one of
the registered reports (``marketing``, ``sales``, ``service``). Every run is a
``report_run`` row: period, recipients, status, error and the files written or attached.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, insert, update

from crm_model.schema import ReportRun
from crmhub.config import Config
from crmhub.errors import ConfigError, CrmhubError
from crmhub.reports.build import Report, build
from crmhub.reports.definitions import REPORTS, ReportDefinition
from crmhub.reports.delivery import DeliveryError, SmtpTarget, message, send, write_files
from crmhub.reports.period import Period, parse_period

__all__ = ["REPORTS", "Report", "ReportError", "RunResult", "resolve", "run", "smtp_target"]


class ReportError(CrmhubError):
    """A report run failed (the report_run row says why)."""


@dataclass
class RunResult:
    report_run_id: int
    name: str
    period: Period
    status: str
    recipients: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    empty_sections: list[str] = field(default_factory=list)
    report: Report | None = None


def resolve(cfg: Config | None, name: str) -> tuple[ReportDefinition, str, list[str]]:
    """The definition, default period and recipients of a configured or registered report."""
    configured = cfg.settings.reports.get(name) if cfg else None
    if configured is not None:
        if configured.report not in REPORTS:
            raise ConfigError(f"{cfg.where('reports', name, 'report')}: unknown report {configured.report!r} "
                              f"(registered: {', '.join(REPORTS)})")
        return REPORTS[configured.report], configured.period, list(configured.recipients)
    if name in REPORTS:
        return REPORTS[name], "7d", []
    known = sorted({*REPORTS, *(cfg.settings.reports if cfg else ())})
    raise ConfigError(f"unknown report {name!r} (known: {', '.join(known)})")


def smtp_target(cfg: Config, airflow_connection=None) -> SmtpTarget:
    """SMTP settings from crmhub.yml; under Airflow, unset ones come from ``smtp_default``."""
    from crmhub.config import interpolate

    s = cfg.settings.smtp
    given = s.model_fields_set
    password = interpolate(s.password.get_secret_value(), ("smtp", "password"), cfg.where) if s.password else None
    username = interpolate(s.username, ("smtp", "username"), cfg.where) if s.username else None
    host, port = interpolate(s.host, ("smtp", "host"), cfg.where), s.port
    conn = airflow_connection
    if conn is not None:
        host = host if "host" in given else (conn.host or host)
        port = port if "port" in given else (conn.port or port)
        username = username if "username" in given else (conn.login or None)
        password = password if "password" in given else (conn.password or None)
    return SmtpTarget(host=host, port=port, sender=s.sender, starttls=s.starttls, ssl=s.ssl,
                      username=username, password=password, timeout=s.timeout, ca_file=s.ca_file)


def run(cfg: Config, name: str, engine: Engine, *, period: str | None = None, out: Path | None = None,
        send_mail: bool = False, to: Sequence[str] = (), today: dt.date | None = None,
        smtp: SmtpTarget | None = None, retry_wait: float = 2.0) -> RunResult:
    """Build the report, write it to ``out`` and/or mail it; record the run in report_run."""
    definition, default_period, recipients = resolve(cfg, name)
    recipients = list(to) or recipients
    p = parse_period(period or default_period, today)
    if send_mail and not recipients:
        raise ConfigError(f"report {name!r} has no recipients: add them in crmhub.yml or pass --to")
    start, end = p.bounds()
    with engine.begin() as conn:
        run_id = conn.execute(insert(ReportRun).values(
            name=name, report=definition.name, status="running", period_start=start, period_end=end,
            period_label=p.label, started_at=dt.datetime.now(dt.UTC),
            recipients=recipients if send_mail else [], output_path=str(out) if out else None,
        ).returning(ReportRun.report_run_id)).scalar_one()
    result = RunResult(run_id, name, p, "running", recipients if send_mail else [])
    try:
        report = build(engine, definition, p, name)
        result.report = report
        result.empty_sections = [s.key for s in report.sections if s.empty_reason]
        if out is not None:
            result.files = [str(f) for f in write_files(report, out)]
        if send_mail:
            target = smtp or smtp_target(cfg)
            msg = message(report, target.sender, recipients)
            if out is None:
                result.files = [part.get_filename() for part in msg.walk() if part.get_filename()]
            send(target, msg, recipients, wait=retry_wait)
    except (CrmhubError, OSError, ArithmeticError) as exc:
        error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        _finish(engine, run_id, "failed", result.files, error)
        raise ReportError(f"report {name} failed (report_run {run_id}): {error}") from None
    except Exception as exc:
        _finish(engine, run_id, "failed", result.files, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        raise
    _finish(engine, run_id, "success", result.files, None)
    result.status = "success"
    return result


def _finish(engine: Engine, run_id: int, status: str, files: list[str], error: str | None) -> None:
    with engine.begin() as conn:
        conn.execute(update(ReportRun).where(ReportRun.report_run_id == run_id).values(
            status=status, finished_at=dt.datetime.now(dt.UTC), files=files, error=error))


def build_live(engine: Engine, name: str, period: str, cfg: Config | None = None,
               today: dt.date | None = None) -> Report:
    """The report for the dashboard: no report_run row, nothing written."""
    definition, _, _ = resolve(cfg, name)
    return build(engine, definition, parse_period(period, today), name)


__all__ += ["DeliveryError", "build_live"]
