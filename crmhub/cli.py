"""The `crmhub` command. Every verb calls one function of crmhub.jobs."""

from __future__ import annotations

import gc
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from crmhub.errors import CrmhubError
from crmhub.redact import install_log_filter, redact
from crmhub.usage import plain_metavars

if TYPE_CHECKING:
    from crmhub.config import Config

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
connectors_app = typer.Typer(help="List, scaffold and check connectors.", no_args_is_help=True)
app.add_typer(connectors_app, name="connectors")
lead_app = typer.Typer(help="Enter leads by hand.", no_args_is_help=True)
app.add_typer(lead_app, name="lead")
person_app = typer.Typer(help="The customer 360, and manual merge rules.", no_args_is_help=True)
app.add_typer(person_app, name="person")
touchpoint_app = typer.Typer(help="Log calls, visits and meetings by hand.", no_args_is_help=True)
app.add_typer(touchpoint_app, name="touchpoint")

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Config file (default: $CRMHUB_CONFIG or ./crmhub.yml).",
                 show_default=False),
]


def _load(path: Path | None) -> Config:
    # imported here, as every command's own modules are: `crmhub --help` and a usage
    # error need neither pydantic nor SQLAlchemy (0.3-0.4 s to import)
    from crmhub import config

    return config.load(path)


def _out(line: str = "") -> None:
    typer.echo(redact(line))


def _err(line: str) -> None:
    typer.echo(redact(line), err=True)


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


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        _out(f"crmhub {version('crmhub')}")
        raise typer.Exit(0)


@app.callback()
def _main_options(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """crmhub: CRM data from forms, ads, mailboxes and shops into one warehouse.

    Exit codes: 0 success, 1 a run or data failure, 2 a usage error.
    """


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
    from crmhub.runs import sync_summary

    for r in results:  # a source that could not start: the one-line error, on stderr
        if r.status == "failed" and r.sync_run_id is None:
            _err(f"crmhub: error: {r.setup_error}")
    for line in sync_summary([r for r in results if not (r.status == "failed" and r.sync_run_id is None)]):
        _out(line)
    if any(r.status == "failed" for r in results):
        if alert:
            from crmhub import alerts

            for r in results:
                if r.status == "failed":
                    alerts.send(cfg, alerts.Alert(f"sync {r.source}", "; ".join(r.errors) or r.status,
                                                  detail=f"run {r.sync_run_id}"))
        raise typer.Exit(EXIT_FAILED)


@app.command()
def model(
    remap_all: Annotated[bool, typer.Option("--remap-all", help="Re-map every raw record, not just changed mappings.")] = False,
    full: Annotated[bool, typer.Option("--full", help="Re-resolve every person and retrain the matcher.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Re-map raw records to unified tables and resolve one person per real person."""
    from crmhub import jobs

    s = jobs.model(_load(config), remap_all=remap_all, full=full)
    _out(f"model: {s.persons:,} persons changed ({s.created:,} new, {s.merged:,} merged, {s.attached:,} records "
         f"attached; {s.looked_at:,} records looked at); re-mapped {s.remapped:,} records, {s.rejected:,} rejected")


@person_app.command("show")
def person_show(
    who: Annotated[str, typer.Argument(help="A person id or an email address.")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of text.")] = False,
    config: ConfigOpt = None,
) -> None:
    """The customer 360: identities and why each joined, leads, touchpoints, emails, orders, cases."""
    from crmhub import persons

    data = persons.show(_load(config), who)
    if as_json:
        _out(persons.to_json(data))
    else:
        for line in persons.render(data):
            _out(line)


@person_app.command("link")
def person_link(
    a: Annotated[str, typer.Argument(help="A person id or an email address.")],
    b: Annotated[str, typer.Argument(help="Another person id or email address.")],
    config: ConfigOpt = None,
) -> None:
    """Always treat A and B as one person (applied by every `crmhub model`)."""
    from crmhub import persons

    _out(persons.link(_load(config), a, b, never=False))


@person_app.command("unlink")
def person_unlink(
    a: Annotated[str, typer.Argument(help="A person id or an email address.")],
    b: Annotated[str, typer.Argument(help="Another person id or email address.")],
    config: ConfigOpt = None,
) -> None:
    """Never treat A and B as one person (applied by every `crmhub model`)."""
    from crmhub import persons

    _out(persons.link(_load(config), a, b, never=True))


@app.command()
def forget(
    who: Annotated[str, typer.Argument(help="An email address or a person id.")],
    config: ConfigOpt = None,
) -> None:
    """Erase a person everywhere (records, raw payloads, quarantine, mail, report files)."""
    from crmhub import persons

    done = persons.forget(_load(config), who)
    if not done.removed and not done.files:
        _out(f"nothing found for {who}")
        return
    _out(f"erased person {', '.join(map(str, done.person_ids)) or '(no person id)'}:")
    for table, n in sorted(done.removed.items()):
        _out(f"  {table}: {n:,} rows")
    for path in done.files:
        _out(f"  report file rewritten: {path}")
    _out(f"  {done.tombstones} hashed tombstones keep later syncs from bringing them back")


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (one object per source).")] = False,
    config: ConfigOpt = None,
) -> None:
    """Per source: last run, records read/loaded/rejected, cursors, files read, lag; exit 1 if one is past its freshness."""
    from dataclasses import asdict

    from crmhub import jobs
    from crmhub.runs import to_json

    rows = jobs.status(_load(config))
    if as_json:
        _out(to_json([{**asdict(st), "lag_seconds": st.lag.total_seconds() if st.lag else None,
                       "stale": st.stale} for st in rows]))
        if any(st.stale for st in rows):
            raise typer.Exit(EXIT_FAILED)
        return
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
        if st.last_status is None:
            _out("  never run")
            continue
        warned = f", {st.warned:,} with field warnings" if st.warned else ""
        _out(f"  last run: {st.last_status} at {when}; read {st.read:,}, loaded {st.loaded:,}, "
             f"rejected {st.rejected:,}{warned}")
        _out(f"  since last success: {lag}; raw records {st.raw_records:,}; quarantined {st.rejected_total:,}")
        for stream_name, cursor in sorted(st.cursors.items()):
            if cursor is not None:
                _out(f"  cursor {stream_name}: {cursor}")
        for f in st.files:
            _out(f"  file {f['file']}: {f['rows']:,} rows read{' (done)' if f['done'] else ' so far'}")
        if st.error and st.last_status != "success":
            _out(f"  error: {st.error}")
    stale = [st for st in rows if st.stale]
    for st in stale:
        _err(f"crmhub: {st.source} has not succeeded within its freshness window ({_age(st.freshness)})")
    if stale:
        raise typer.Exit(1)


@app.command()
def runs(
    source: Annotated[str | None, typer.Argument(help="Only this source.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many runs, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Run history: status, records read/loaded/rejected, duration, error."""
    from crmhub import jobs
    from crmhub import runs as runs_mod

    cfg = _load(config)
    if source:
        cfg.source(source)  # an unknown name is an error, not an empty list
    engine = jobs.warehouse(cfg)
    try:
        found = runs_mod.runs(engine, source, limit)
    finally:
        engine.dispose()
    if as_json:
        _out(runs_mod.to_json(found))
        return
    if not found:
        _out("no runs yet" + (f" of {source}" if source else ""))
        return
    for r in found:
        took = f"{r['seconds']:.1f}s" if r["seconds"] is not None else "-"
        warned = f", {r['warned']:,} warned" if r["warned"] else ""
        _out(f"run {r['run']} {r['source']}: {r['status']} at {r['started_at']:%Y-%m-%d %H:%M:%S} UTC, "
             f"{took}; read {r['read']:,}, loaded {r['loaded']:,}, rejected {r['rejected']:,}{warned}")
        if r["error"]:
            _out(f"  error: {r['error']}")


@app.command()
def rejects(
    source: Annotated[str | None, typer.Argument(help="Only this source.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Only since this date or time (ISO 8601) or age (7d, 12h).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many of each kind.")] = 1000,
    config: ConfigOpt = None,
) -> None:
    """Quarantined records and field warnings, with their reasons."""
    from crmhub import jobs
    from crmhub import runs as runs_mod

    after = _since(since) if since else None  # a usage error comes before any config error
    cfg = _load(config)
    if source:
        cfg.source(source)
    engine = jobs.warehouse(cfg)
    try:
        found = runs_mod.rejects(engine, source, after, limit)
    finally:
        engine.dispose()
    if as_json:
        _out(runs_mod.to_json(found))
        return
    if not found:
        _out("nothing rejected" + (f" from {source}" if source else ""))
        return
    for x in found:
        if x["kind"] == "rejected":
            key = "" if x["record_key"].startswith("#") else f" {x['record_key']}"  # '#': it had no usable key
            _out(f"rejected {x['source']}/{x['stream']}{key}: {x['reason']}")
        else:
            _out(f"warning  {x['source']}/{x['stream']} {x['record_key']} field {x['field']} "
                 f"= {x['raw_value']!r}: {x['reason']}")


def _since(text: str):
    import datetime as dt
    import re

    age = re.fullmatch(r"(\d+)([dhm])", text.strip())
    if age:
        unit = {"d": "days", "h": "hours", "m": "minutes"}[age.group(2)]
        return dt.datetime.now(dt.UTC) - dt.timedelta(**{unit: int(age.group(1))})
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date, a time or an age like 7d") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


@app.command()
def report(
    name: Annotated[str, typer.Argument(help="A reports: entry of crmhub.yml, or marketing, sales, service.")],
    period: Annotated[str | None, typer.Option("--period", help="7d, 30d, month, quarter or FROM..TO "
                                                "(default: the report's period in crmhub.yml, else 7d).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write HTML, PNG charts and CSVs into this folder.")] = None,
    send: Annotated[bool, typer.Option("--send", help="Email it to the report's recipients over SMTP.")] = False,
    to: Annotated[list[str] | None, typer.Option("--to", help="Recipient instead of the configured ones (repeatable).")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Pretend today is this date (YYYY-MM-DD).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Build a marketing, sales or service report; write it (--out) and/or mail it (--send)."""
    from crmhub.reports.runner_cli import report_command

    for line in report_command(_load(config), name, period=period, out=out, send=send, to=to or [], as_of=as_of):
        _out(line)


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option("--dir", help="Where the demo config (and SQLite warehouse) go.")] = Path("var/demo"),
    warehouse: Annotated[str | None, typer.Option(
        "--warehouse", help="A database URL to use instead, e.g. postgresql+psycopg://postgres@127.0.0.1/crm.",
        show_default=False)] = None,
) -> None:
    """Run the whole flow on bundled sample data (into a local SQLite warehouse by default)."""
    from crmhub.demo import run_demo

    run_demo(workdir, _out, _err, warehouse=warehouse)


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


# options shared by `lead add` and `touchpoint add`
EmailOpt = Annotated[str | None, typer.Option("--email", help="The person's email address.")]
PhoneOpt = Annotated[str | None, typer.Option("--phone", help="Phone number, best with +country code.")]
NoteOpt = Annotated[str | None, typer.Option("--note", help="Free-text note.")]
IntoOpt = Annotated[str, typer.Option("--into", help="crmhub source to add it to (type manual).")]


@lead_app.command("add")
def lead_add(
    email: EmailOpt = None,
    name: Annotated[str | None, typer.Option("--name", help="Full name.")] = None,
    phone: PhoneOpt = None,
    company: Annotated[str | None, typer.Option("--company", help="Company.")] = None,
    source: Annotated[str, typer.Option("--source", help="Channel: phone_call, walk_in, referral, ...")] = "phone_call",
    note: NoteOpt = None,
    form: Annotated[str | None, typer.Option("--form", help="Form or campaign name to file it under.")] = None,
    into: IntoOpt = "manual",
    config: ConfigOpt = None,
) -> None:
    """Add a lead a rep took (a call, a walk-in, a referral); prints the lead's key."""
    from crmhub import leads

    added = leads.add_lead(_load(config), email=email, name=name, phone=phone, company=company,
                           channel=source, note=note, form=form, into=into)
    _out(f"lead {added.key} added to {added.source}")


@touchpoint_app.command("add")
def touchpoint_add(
    email: EmailOpt = None,
    phone: PhoneOpt = None,
    channel: Annotated[str, typer.Option("--channel", help="phone_call, site_visit or meeting.")] = "phone_call",
    at: Annotated[str | None, typer.Option("--at", help="When (ISO 8601; default: now, UTC).")] = None,
    note: NoteOpt = None,
    into: IntoOpt = "manual",
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


def _safe_url(cfg: Config) -> str:
    from sqlalchemy.engine import make_url

    return make_url(cfg.warehouse_url()).render_as_string(hide_password=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point. Exit codes: 0 success, 1 a run or data failure, 2 a usage error."""
    logging.basicConfig(level=os.environ.get("CRMHUB_LOG_LEVEL", "WARNING"),
                        format="%(levelname)s %(name)s: %(message)s")
    install_log_filter()  # no configured secret reaches a log line
    try:
        # Not standalone: typer then *returns* the code of typer.Exit instead of exiting.
        command = plain_metavars(typer.main.get_command(app))
        code = command.main(args=argv, prog_name="crmhub", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except typer.Exit as exc:
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        _err("crmhub: interrupted")
        return 130
    except typer.TyperException as exc:  # typer's own click: usage errors and the like
        return _usage_error(exc)
    except CrmhubError as exc:
        _err(f"crmhub: error: {exc}")
        return EXIT_FAILED
    except Exception as exc:
        if os.environ.get("CRMHUB_DEBUG"):
            raise
        if _is_warehouse_error(exc):  # the warehouse went away mid-command: one line, no SQL
            from crm_model.sync import describe_db_error

            _err(f"crmhub: error: {describe_db_error(exc)}")
            return EXIT_FAILED
        _err(f"crmhub: internal error: {type(exc).__name__}: {exc} (set CRMHUB_DEBUG=1 for the traceback)")
        return 70


EXIT_FAILED, EXIT_USAGE = 1, 2


def _is_warehouse_error(exc: Exception) -> bool:
    """A SQLAlchemy error (only possible once a command has imported SQLAlchemy)."""
    errors = sys.modules.get("sqlalchemy.exc")
    return errors is not None and isinstance(exc, errors.SQLAlchemyError)


def _usage_error(exc: typer.TyperException) -> int:
    """One line for a usage error, with a "did you mean" where one is close; exit 2."""
    from crmhub.usage import describe_usage_error

    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
        _out(ctx.get_help())  # `crmhub` or `crmhub connectors` alone: the help, on stdout
        return 0
    _err(describe_usage_error(exc))
    code = getattr(exc, "exit_code", EXIT_USAGE)
    return code if code in (EXIT_FAILED, EXIT_USAGE) else EXIT_USAGE


def run() -> None:
    """The console script: main(), then exit without Python's last garbage collections.

    Exiting, Python walks every object still alive for cycles (a sync's imports alone
    leave hundreds of thousands): 0.2 s of a 1.3 s re-sync here. By then the command
    has closed its files and committed its work, so what is alive is frozen (out of the
    collector's reach) and freed by reference counting and the OS as usual.
    """
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":  # python -m crmhub.cli, as the console script
    run()
