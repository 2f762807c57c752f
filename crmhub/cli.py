"""The `crmhub` command. Every verb calls one function of crmhub.jobs."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Annotated

import click
import typer

from crmhub import config as config_mod
from crmhub.errors import CrmhubError

app = typer.Typer(
    help="crmhub: CRM data from forms, ads, mailboxes and shops into one warehouse.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
connectors_app = typer.Typer(help="List, scaffold and check connectors.", no_args_is_help=True)
app.add_typer(connectors_app, name="connectors")
lead_app = typer.Typer(help="Enter leads by hand.", no_args_is_help=True)
app.add_typer(lead_app, name="lead")
touchpoint_app = typer.Typer(help="Log calls, visits and meetings by hand.", no_args_is_help=True)
app.add_typer(touchpoint_app, name="touchpoint")

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Config file (default: $CRMHUB_CONFIG or ./crmhub.yml).",
                 show_default=False),
]


def _load(path: Path | None) -> config_mod.Config:
    return config_mod.load(path)


def _out(line: str = "") -> None:
    typer.echo(line)


def _err(line: str) -> None:
    typer.echo(line, err=True)


class _ProgressPrinter:
    """One line per stream every couple of seconds on stderr: pages, records, rate."""

    def __init__(self, every: float = 2.0):
        self.every = every
        self.last = 0.0

    def __call__(self, source: str, stream, elapsed: float) -> None:
        now = time.monotonic()
        if now - self.last < self.every:
            return
        self.last = now
        rate = stream.read / elapsed if elapsed > 0 else 0.0
        _err(f"  {source}/{stream.stream}: {stream.pages:,} pages, {stream.read:,} records "
             f"({rate:,.0f} records/s), {stream.rejected:,} rejected")


# ------------------------------------------------------------------------ verbs


@app.command()
def init(config: ConfigOpt = None) -> None:
    """Create the warehouse, or upgrade it to this version's schema."""
    from crmhub import jobs

    cfg = _load(config)
    revision = jobs.init(cfg)
    _out(f"warehouse ready at schema {revision}: {_safe_url(cfg)}")


@app.command()
def sync(
    sources: Annotated[list[str] | None, typer.Argument(help="Sources to sync (default: all enabled).")] = None,
    full_refresh: Annotated[bool, typer.Option("--full-refresh", help="Ignore stored cursors; re-read everything.")] = False,
    stream: Annotated[list[str] | None, typer.Option("--stream", help="Only this stream (repeatable).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines.")] = False,
    since: Annotated[str | None, typer.Option("--since", metavar="DATE", help="Backfill: re-read from DATE (YYYY-MM-DD); stored cursors are kept as they are.")] = None,
    alert: Annotated[bool, typer.Option("--alert", help="On failure, alert operations as configured under alerts: (for cron).")] = False,
    config: ConfigOpt = None,
) -> None:
    """Pull new and changed records from sources into the warehouse."""
    from crmhub import jobs

    cfg = _load(config)
    backfill = _date_option("--since", since) if since else None
    if backfill and full_refresh:
        raise typer.BadParameter("--since and --full-refresh exclude each other", param_hint="--since")
    results = jobs.sync(cfg, sources or None, full_refresh=full_refresh, streams=stream or None,
                        progress=None if quiet else _ProgressPrinter(), since=backfill)
    failed = False
    for r in results:
        _out(f"{r.source}: {r.status} - read {r.read:,}, loaded {r.loaded:,}, rejected {r.rejected:,} "
             f"in {r.seconds:.1f}s (run {r.sync_run_id})")
        for error in r.errors:
            _out(f"  error: {error}")
        failed = failed or r.status != "success"
    if any(r.rejected for r in results):
        _out("rejected records and their reasons: SELECT * FROM rejected_record")
    if failed:
        if alert:
            from crmhub import alerts

            for r in results:
                if r.status != "success":
                    alerts.send(cfg, alerts.Alert(f"sync {r.source}", "; ".join(r.errors) or r.status,
                                                  detail=f"run {r.sync_run_id}"))
        raise typer.Exit(1)


@app.command()
def model(
    remap_all: Annotated[bool, typer.Option("--remap-all", help="Re-map every raw record, not just changed mappings.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Re-map raw records to unified tables and resolve one person per real person."""
    from crmhub import jobs

    s = jobs.model(_load(config), remap_all=remap_all)
    _out(f"model: {s.persons:,} persons ({s.created:,} new, {s.merged:,} merged, {s.attached:,} records "
         f"attached); re-mapped {s.remapped:,} records, {s.rejected:,} rejected")


@app.command()
def status(config: ConfigOpt = None) -> None:
    """Per source: last run, records read/loaded/rejected, cursors, lag; exit 1 if one is past its freshness."""
    from crmhub import jobs

    rows = jobs.status(_load(config))
    if not rows:
        _out("no sources configured")
        return
    for st in rows:
        when = st.last_started.strftime("%Y-%m-%d %H:%M:%S UTC") if st.last_started else "never"
        lag = _age(st.lag) if st.lag is not None else "-"
        if st.push:
            received = st.last_received.strftime("%Y-%m-%d %H:%M:%S UTC") if st.last_received else "nothing yet"
            _out(f"{st.source} ({st.connector}, pushed)")
            _out(f"  last received: {received}; raw records {st.raw_records:,}; quarantined {st.rejected_total:,}")
            continue
        _out(f"{st.source} ({st.connector}, schedule {st.schedule or 'manual'})")
        _out(f"  last run: {st.last_status or '-'} at {when}; read {st.read:,}, loaded {st.loaded:,}, "
             f"rejected {st.rejected:,}")
        _out(f"  since last success: {lag}; raw records {st.raw_records:,}; quarantined {st.rejected_total:,}")
        for stream_name, cursor in sorted(st.cursors.items()):
            _out(f"  cursor {stream_name}: {cursor if cursor is not None else '(file marks)'}")
        if st.error and st.last_status != "success":
            _out(f"  error: {st.error}")
    stale = [st for st in rows if st.stale]
    for st in stale:
        _err(f"crmhub: {st.source} has not succeeded within its freshness window ({_age(st.freshness)})")
    if stale:
        raise typer.Exit(1)


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option("--dir", help="Where the demo warehouse goes.")] = Path("var/demo"),
) -> None:
    """Run the whole flow on bundled sample data into a local SQLite warehouse."""
    from crmhub.demo import run_demo

    run_demo(workdir, _out, _err)


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8080,
    config: ConfigOpt = None,
) -> None:
    """Receive form submissions of webhook sources: POST /forms/SOURCE/FORM."""
    from crmhub import server

    server.serve(_load(config), host, port, announce=_err)


@app.command("grant-analyst")
def grant_analyst(
    role: Annotated[str, typer.Argument(help="PostgreSQL role to create (if missing) and grant read-only access.")],
    with_raw: Annotated[bool, typer.Option("--with-raw", help="Also let it read raw_record and rejected_record payloads.")] = False,
    nologin: Annotated[bool, typer.Option("--nologin", help="Create a group role without LOGIN (grant it to users).")] = False,
    config: ConfigOpt = None,
) -> None:
    """Give analysts a read-only PostgreSQL role on the warehouse tables and views."""
    from crm_model import roles
    from crmhub import jobs

    engine = jobs.warehouse(_load(config))
    try:
        g = roles.grant_analyst(engine, role, with_raw=with_raw, login=not nologin)
    finally:
        engine.dispose()
    _out(f"role {g.role} {'created' if g.created else 'updated'}: read-only on {len(g.tables)} tables and views "
         f"in schema {g.schema} (and on those created later)")
    if g.withheld:
        _out(f"  withheld (raw payloads; --with-raw grants them): {', '.join(g.withheld)}")


# ------------------------------------------------------------------------ leads


@lead_app.command("add")
def lead_add(
    email: Annotated[str | None, typer.Option("--email", help="The lead's email address.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Full name.")] = None,
    phone: Annotated[str | None, typer.Option("--phone", help="Phone number, best with +country code.")] = None,
    company: Annotated[str | None, typer.Option("--company", help="Company.")] = None,
    source: Annotated[str, typer.Option("--source", help="Channel: phone_call, walk_in, referral, ...")] = "phone_call",
    note: Annotated[str | None, typer.Option("--note", help="Free-text note.")] = None,
    form: Annotated[str | None, typer.Option("--form", help="Form or campaign name to file it under.")] = None,
    into: Annotated[str, typer.Option("--into", help="crmhub source to add it to (type manual).")] = "manual",
    config: ConfigOpt = None,
) -> None:
    """Add a lead a rep took (a call, a walk-in, a referral); prints the lead's key."""
    from crmhub import leads

    added = leads.add_lead(_load(config), email=email, name=name, phone=phone, company=company,
                           channel=source, note=note, form=form, into=into)
    _out(f"lead {added.key} added to {added.source}")


@touchpoint_app.command("add")
def touchpoint_add(
    email: Annotated[str | None, typer.Option("--email", help="The person's email address.")] = None,
    phone: Annotated[str | None, typer.Option("--phone", help="The person's phone, best with +country code.")] = None,
    channel: Annotated[str, typer.Option("--channel", help="phone_call, site_visit or meeting.")] = "phone_call",
    at: Annotated[str | None, typer.Option("--at", help="When (ISO 8601; default: now, UTC).")] = None,
    note: Annotated[str | None, typer.Option("--note", help="Free-text note.")] = None,
    into: Annotated[str, typer.Option("--into", help="crmhub source to add it to (type manual).")] = "manual",
    config: ConfigOpt = None,
) -> None:
    """Log a call, a site visit or a meeting with a person; prints the touchpoint's key."""
    from crmhub import touchpoints

    added = touchpoints.add_touchpoint(_load(config), email=email, phone=phone, channel=channel, at=at,
                                       note=note, into=into)
    _out(f"touchpoint {added.key} added to {added.source}")


# ------------------------------------------------------------------ connectors


@connectors_app.command("list")
def connectors_list() -> None:
    """Registered connector types and their streams."""
    from connectors.sdk import registry

    for name, ep in sorted(registry.available().items()):
        try:
            cls = registry.load(name)
            streams = ", ".join(cls.declared_streams()) or "-"
            _out(f"{name:14} {streams:40} ({ep.value})")
        except Exception as exc:  # a broken third-party package must not hide the others
            _out(f"{name:14} cannot load: {type(exc).__name__}: {exc} ({ep.value})")


@connectors_app.command("new")
def connectors_new(
    name: Annotated[str, typer.Argument(help="Connector type name, e.g. hubspot.")],
    root: Annotated[Path, typer.Option("--root", help="Project folder.")] = Path("."),
) -> None:
    """Scaffold a connector module, its mapping and its test."""
    from connectors.sdk.scaffold import scaffold

    for path in scaffold(name, root):
        _out(f"created {path}")
    _out(f'register it in pyproject.toml under [project.entry-points."crmhub.connectors"]:\n'
         f'  {name} = "connectors.{name}:{_camel(name)}Connector"')


@connectors_app.command("check")
def connectors_check(
    source: Annotated[str, typer.Argument(help="A source name from crmhub.yml.")],
    config: ConfigOpt = None,
) -> None:
    """Connect to a configured source and read one page (writes nothing)."""
    from crmhub import jobs

    _out(f"{source}: {jobs.check(_load(config), source)}")


# ------------------------------------------------------------------------ helpers


def _date_option(name: str, value: str):
    import datetime as dt

    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint=name) from None


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _age(delta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def _safe_url(cfg: config_mod.Config) -> str:
    from sqlalchemy.engine import make_url

    return make_url(cfg.warehouse_url()).render_as_string(hide_password=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point: one clear line on error, exit code 0 only on success."""
    logging.basicConfig(level=os.environ.get("CRMHUB_LOG_LEVEL", "WARNING"),
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        rc = app(args=argv, prog_name="crmhub", standalone_mode=False)
        return rc if isinstance(rc, int) else 0  # non-standalone click returns typer.Exit's code
    except typer.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        _err("crmhub: aborted")
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except CrmhubError as exc:
        _err(f"crmhub: error: {exc}")
        return 1
    except KeyboardInterrupt:
        _err("crmhub: interrupted")
        return 130
    except Exception as exc:
        if os.environ.get("CRMHUB_DEBUG"):
            raise
        _err(f"crmhub: internal error: {type(exc).__name__}: {exc} (set CRMHUB_DEBUG=1 for the traceback)")
        return 70


if __name__ == "__main__":
    sys.exit(main())


def run() -> None:  # console-script entry point
    sys.exit(main())
