"""The body of ``crmhub report``: run one report and say what happened, in a few lines."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import typer

from crmhub import jobs
from crmhub.config import Config
from crmhub.reports import run


def report_command(cfg: Config, name: str, *, period: str | None, out: Path | None, send: bool,
                   to: list[str], as_of: str | None) -> Iterator[str]:
    if out is None and not send:
        raise typer.BadParameter("say where the report goes: --out DIR and/or --send", param_hint="--out/--send")
    today = None
    if as_of:
        try:
            today = dt.date.fromisoformat(as_of)
        except ValueError:
            raise typer.BadParameter(f"{as_of!r} is not a date (YYYY-MM-DD)", param_hint="--as-of") from None
    engine = jobs.warehouse(cfg)
    try:
        result = run(cfg, name, engine, period=period, out=out, send_mail=send, to=to, today=today)
    finally:
        engine.dispose()
    yield f"report {result.name}: {result.period.describe()} ({result.period.label}), run {result.report_run_id}"
    if result.empty_sections:
        yield f"  empty sections (data not synced or nothing in the period): {', '.join(result.empty_sections)}"
    if out is not None:
        yield f"  written to {out.resolve()}/{result.name}.html (+ {len(result.files) - 1} files)"
    if send:
        yield f"  sent to {', '.join(result.recipients)}"
