"""What the CLI reports about runs: the sync summary, run history, rejects and warnings.

Plain functions over the warehouse's operations tables (``sync_run``,
``rejected_record``, ``field_warning``); the CLI prints them as text or JSON.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from sqlalchemy import Engine, select

from crm_model.schema import FieldWarning, RejectedRecord, SyncRun
from crm_model.sync import SyncResult


def sync_summary(results: list[SyncResult]) -> list[str]:
    """One line per source, then one line per failing stream (an error repeated by the
    source's other streams, like a refused connection, is written out once)."""
    lines = []
    for r in results:
        if r.sync_run_id is None:  # never started
            lines.append(f"{r.source}: {r.status} - {r.setup_error}")
            continue
        warned = f", {r.warnings:,} with field warnings" if r.warnings else ""
        lines.append(f"{r.source}: {r.status} - read {r.read:,}, loaded {r.loaded:,}, rejected {r.rejected:,}"
                     f"{warned} in {r.seconds:.1f}s (run {r.sync_run_id})")
        said: dict[str, str] = {}
        for s in r.streams:
            if not s.error:
                continue
            cause = _cause(s.error)
            if cause in said:
                lines.append(f"  {s.stream}: failed (the same error as {said[cause]})")
            else:
                said[cause] = s.stream
                lines.append(f"  {s.stream}: failed: {s.error}")
    if any(r.rejected or r.warnings for r in results):
        lines.append("rejected records and field warnings, with their reasons: crmhub rejects")
    return lines


_REQUEST = re.compile(r"\b(?:GET|POST|PUT|PATCH|DELETE|HEAD) \S+")


def _cause(error: str) -> str:
    """An error without the request it happened on: every stream of an unreachable source
    fails on its own URL with the same cause, which is worth saying once."""
    return _REQUEST.sub("<request>", error)


def runs(engine: Engine, source: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """The newest runs first."""
    query = select(SyncRun.__table__).order_by(SyncRun.sync_run_id.desc()).limit(limit)
    if source:
        query = query.where(SyncRun.source == source)
    with engine.connect() as conn:
        found = conn.execute(query).mappings().all()
    out = []
    for run in found:
        seconds = None
        if run["finished_at"] is not None:
            seconds = round((run["finished_at"] - run["started_at"]).total_seconds(), 1)
        out.append({
            "run": run["sync_run_id"], "source": run["source"], "status": run["status"],
            "started_at": run["started_at"], "seconds": seconds, "read": run["records_read"],
            "loaded": run["records_loaded"], "rejected": run["records_rejected"],
            "warned": run["records_warned"], "pages": run["pages"], "full_refresh": run["full_refresh"],
            "error": run["error"],
        })
    return out


def rejects(engine: Engine, source: str | None = None, since: dt.datetime | None = None,
            limit: int = 1000) -> list[dict[str, Any]]:
    """Quarantined records and field warnings, newest first."""
    r, w = RejectedRecord, FieldWarning
    q_rejected = select(r.source, r.stream, r.record_key, r.reason, r.sync_run_id, r.rejected_at)
    q_warned = select(w.source, w.stream, w.record_key, w.field, w.raw_value, w.reason, w.sync_run_id,
                      w.warned_at)
    if source:
        q_rejected, q_warned = q_rejected.where(r.source == source), q_warned.where(w.source == source)
    if since:
        q_rejected, q_warned = q_rejected.where(r.rejected_at >= since), q_warned.where(w.warned_at >= since)
    q_rejected = q_rejected.order_by(r.rejected_at.desc(), r.record_key).limit(limit)
    q_warned = q_warned.order_by(w.warned_at.desc(), w.record_key).limit(limit)
    with engine.connect() as conn:
        found = [{"kind": "rejected", "source": x.source, "stream": x.stream, "record_key": x.record_key,
                  "field": None, "raw_value": None, "reason": x.reason, "run": x.sync_run_id,
                  "at": x.rejected_at} for x in conn.execute(q_rejected)]
        found += [{"kind": "warning", "source": x.source, "stream": x.stream, "record_key": x.record_key,
                   "field": x.field, "raw_value": x.raw_value, "reason": x.reason, "run": x.sync_run_id,
                   "at": x.warned_at} for x in conn.execute(q_warned)]
    found.sort(key=lambda x: (x["at"], x["kind"]), reverse=True)
    return found[:limit]


def to_json(value: Any) -> str:
    def default(obj: Any) -> Any:
        if isinstance(obj, dt.datetime):
            return obj.isoformat()
        if isinstance(obj, dt.timedelta):
            return obj.total_seconds()
        raise TypeError(type(obj).__name__)

    return json.dumps(value, default=default, ensure_ascii=False, indent=2)
