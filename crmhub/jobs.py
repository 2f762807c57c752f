"""The steps crmhub runs, as plain functions: the CLI and the Airflow DAGs call these.

Each takes a loaded :class:`crmhub.config.Config` and returns a result object; none
prints, none knows whether Airflow is around.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func, select

from connectors import manual
from connectors.sdk import registry
from connectors.sdk.streams import Connector
from crm_model import db
from crm_model.identity_settings import ModelResult
from crm_model.locks import SourceBusy
from crm_model.schema import RawRecord, RejectedRecord, SyncRun, SyncState
from crm_model.sync import Progress, SyncResult, landed_streams, remap
from crm_model.sync import sync as run_sync
from crmhub import config as config_mod
from crmhub.config import Config
from crmhub.errors import ConfigError, CrmhubError


def warehouse(cfg: Config, *, require_schema: bool = True) -> Engine:
    engine = db.connect(cfg.warehouse_url())
    if require_schema:
        db.require_current(engine)
    return engine


OWN_IMPORT_NAMES = ("connectors", "crm_model")  # generic top-level names this distribution installs


def check_import_names() -> None:
    """Fail if another installed distribution ships a top-level package crmhub ships too
    (pip would have let one overwrite the other's files in a shared Airflow environment)."""
    from importlib.metadata import packages_distributions

    owners = packages_distributions()
    for name in OWN_IMPORT_NAMES:
        others = sorted({d for d in owners.get(name, []) if d.lower() != "crmhub"})
        if others:
            raise ConfigError(f"the installed distribution(s) {', '.join(others)} also provide the top-level "
                              f"package {name!r} that crmhub needs; install crmhub in its own environment")


def init(cfg: Config) -> str:
    """Create or upgrade the warehouse; returns the schema revision."""
    check_import_names()
    engine = warehouse(cfg, require_schema=False)
    try:
        db.migrate(engine)
        return db.current_revision(engine) or "?"
    finally:
        engine.dispose()


def connector_for(cfg: Config, name: str) -> tuple[Connector, str]:
    """The configured connector of source ``name`` (secrets resolved now), and its type."""
    settings = cfg.source(name)
    cls = registry.load(settings.connector)
    config = cfg.source_config(name, cls.Config)
    return cls(config, source=name, start_date=settings.start_date, base_dir=cfg.base_dir), settings.connector


def sync(cfg: Config, names: list[str] | None = None, *, full_refresh: bool = False,
         streams: list[str] | None = None, progress: Progress | None = None,
         engine: Engine | None = None, since: dt.date | None = None,
         raise_setup_errors: bool = False) -> list[SyncResult]:
    """Sync the named sources (default: every enabled source), one after another.

    Sources are independent: one that is busy (synced elsewhere right now) is reported
    as skipped, one that cannot start (a secret not set) as failed, and the others run.
    ``raise_setup_errors`` raises the latter instead (Airflow: one task, one source).
    """
    if names:
        for name in names:  # unknown or push-only names fail before anything runs
            if registry.load(cfg.source(name).connector).push:
                raise ConfigError(f"source {name!r} receives pushes (`crmhub serve`); there is nothing to sync")
    else:
        names = [n for n, s in cfg.settings.sources.items()
                 if s.enabled and not registry.load(s.connector).push]
    own = engine is None
    engine = engine or warehouse(cfg)
    results = []
    try:
        for name in names:
            try:
                connector, kind = connector_for(cfg, name)
            except CrmhubError as exc:
                if raise_setup_errors:
                    raise
                results.append(SyncResult(name, None, status="failed", setup_error=str(exc)))
                continue
            try:
                results.append(run_sync(engine, name, connector, kind, full_refresh=full_refresh,
                                        streams=streams, progress=progress, since=since,
                                        max_pages=cfg.source(name).max_pages))
            except SourceBusy as exc:
                results.append(SyncResult(name, None, status="skipped", setup_error=str(exc)))
            finally:
                connector.close()
    finally:
        if own:
            engine.dispose()
    return results


@dataclass
class ModelSummary(ModelResult):
    remapped: int = 0  # raw records mapped again because their mapping changed
    rejected: int = 0  # ... of which the new mapping rejected


def model(cfg: Config, *, remap_all: bool = False, full: bool = False,
          engine: Engine | None = None) -> ModelSummary:
    """Re-map raw records whose mapping changed, resolve identities, rebuild persons."""
    from crm_model import affiliates, derive

    own = engine is None
    engine = engine or warehouse(cfg)
    summary = ModelSummary()
    try:
        with engine.connect() as conn:
            landed = landed_streams(conn)
        for name, stream in landed:
            settings = cfg.settings.sources.get(name)
            if settings is not None:
                kind = settings.connector
            elif name == manual.DEFAULT_SOURCE:  # `crmhub lead add` works without declaring it
                kind = "manual"
            else:  # a source removed from crmhub.yml keeps its data as it is
                continue
            options = functools.partial(_mapping_options, cfg, name, kind)  # imports the connector: only if needed
            mapped, rejected = remap(engine, name, kind, stream, options, everything=remap_all)
            summary.remapped += mapped
            summary.rejected += rejected
        with db.snapshot_transaction(engine) as conn:
            affiliates.store_rules(conn, cfg.settings.affiliates)
            if not full and derive.nothing_to_resolve(conn, cfg.settings.identity):
                derive.link_without_resolving(conn)
                result = ModelResult()
            else:  # numpy and rapidfuzz: only for records to resolve
                from crm_model import identity

                result = identity.resolve(conn, cfg.settings.identity, full=full)
            churned = conn.info.pop(derive.CHURNED, ())
        db.tidy_after(engine, churned)
        summary = ModelSummary(**vars(result), remapped=summary.remapped, rejected=summary.rejected)
    finally:
        if own:
            engine.dispose()
    return summary


def _mapping_options(cfg: Config, name: str, kind: str) -> dict[str, Any]:
    """Mapping options straight from the config, so re-mapping needs no secrets (the
    connector class of type ``kind`` is imported for its option names and defaults)."""
    cls = registry.load(kind)
    settings = cfg.settings.sources.get(name)
    raw = settings.config if settings else {}
    options = {}
    for key in cls.mapping_options:
        if key in raw:
            options[key] = raw[key]
        else:
            f = cls.Config.model_fields.get(key)
            options[key] = f.get_default(call_default_factory=True) if f else None
    return options


@dataclass
class SourceStatus:
    source: str
    connector: str
    schedule: str | None
    last_status: str | None = None
    last_started: dt.datetime | None = None
    last_finished: dt.datetime | None = None
    read: int = 0
    loaded: int = 0
    rejected: int = 0
    error: str | None = None
    last_success: dt.datetime | None = None
    cursors: dict[str, str | None] = field(default_factory=dict)
    raw_records: int = 0
    rejected_total: int = 0
    push: bool = False
    last_received: dt.datetime | None = None  # push sources: newest record landed
    freshness: dt.timedelta | None = None  # from crmhub.yml: the longest acceptable time since a success
    warned: int = 0  # last run: records loaded with field warnings
    files: list[dict[str, Any]] = field(default_factory=list)  # file sources: what was read of each

    @property
    def lag(self) -> dt.timedelta | None:
        if self.last_success is None:
            return None
        return dt.datetime.now(dt.UTC) - self.last_success

    @property
    def stale(self) -> bool:
        """Past its freshness window (never succeeded counts as past it)."""
        if self.freshness is None:
            return False
        newest = self.last_received if self.push else self.last_success
        return newest is None or dt.datetime.now(dt.UTC) - newest > self.freshness


def status(cfg: Config, engine: Engine | None = None) -> list[SourceStatus]:
    own = engine is None
    engine = engine or warehouse(cfg)
    out = []
    try:
        with engine.connect() as conn:
            for name, settings in cfg.settings.sources.items():
                st = SourceStatus(name, settings.connector, settings.schedule)
                if settings.freshness:
                    st.freshness = config_mod.duration(settings.freshness)
                run = conn.execute(select(SyncRun.__table__).where(SyncRun.source == name)
                                   .order_by(SyncRun.sync_run_id.desc()).limit(1)).first()
                if run:
                    st.last_status, st.last_started, st.last_finished = run.status, run.started_at, run.finished_at
                    st.read, st.loaded, st.rejected = run.records_read, run.records_loaded, run.records_rejected
                    st.error = run.error
                    st.warned = run.records_warned
                st.last_success = conn.execute(
                    select(func.max(SyncRun.finished_at)).where(SyncRun.source == name, SyncRun.status == "success")
                ).scalar()
                states = conn.execute(select(SyncState.stream, SyncState.cursor, SyncState.state)
                                      .where(SyncState.source == name)).all()
                st.cursors = {stream: cursor for stream, cursor, _ in states}
                for _, _, state in states:
                    marks = (state or {}).get("files") if isinstance(state, dict) else None
                    for path, mark in sorted((marks or {}).items()):
                        st.files.append({"file": path, "rows": mark.get("rows", 0), "done": bool(mark.get("done"))})
                st.raw_records = conn.execute(select(func.count()).select_from(RawRecord)
                                              .where(RawRecord.source == name)).scalar_one()
                st.rejected_total = conn.execute(select(func.count()).select_from(RejectedRecord)
                                                 .where(RejectedRecord.source == name)).scalar_one()
                st.push = settings.connector in registry.push_types()
                if st.push:
                    st.last_received = conn.execute(select(func.max(RawRecord.extracted_at))
                                                    .where(RawRecord.source == name)).scalar()
                out.append(st)
    finally:
        if own:
            engine.dispose()
    return out


def check(cfg: Config, name: str) -> str:
    """Connect to the source and read one page, writing nothing."""
    connector, _ = connector_for(cfg, name)
    try:
        return connector.check()
    finally:
        connector.close()


def table_counts(engine: Engine, tables: tuple[str, ...]) -> dict[str, int]:
    from crm_model.load import TABLES

    with engine.connect() as conn:
        return {t: conn.execute(select(func.count()).select_from(TABLES[t])).scalar_one() for t in tables}


__all__ = ["ConfigError", "check", "connector_for", "init", "model", "status", "sync", "table_counts", "warehouse"]
