"""Benchmarks' child processes: each measured alone (wall time, CPU, peak RSS by wait4),
and the virtualenv a peer runs in (dlt, Splink), made once with pip, never a crmhub
dependency."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Child:
    seconds: float  # wall time
    cpu: float  # user + system
    rss_mb: float  # peak resident set
    stdout: str


def measured(cmd: list[str], cwd: Path, env: dict | None = None) -> Child:
    """Run ``cmd`` as a fresh process and measure it alone; exit with the end of its
    standard error if it fails.

    What earlier steps wrote (a generated warehouse, a snapshot copy of it) is flushed
    to the disk first: a child that makes its writes durable (SQLite's checkpoint fsyncs
    the database file) would otherwise wait for theirs too. At 1,000,000 records, the
    1% new run right after an 800 MB snapshot copy: 5.55 / 6.61 / 6.30 s, and 4.15 /
    5.48 / 5.94 s with the copy flushed first (alternating, a slow day)."""
    os.sync()
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=err, env={**os.environ, **(env or {})})
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        code = os.waitstatus_to_exitcode(status)
        if code:
            err.seek(0)
            sys.exit(f"{' '.join(cmd[:4])} ... failed ({code}):\n{err.read().decode(errors='replace')[-3000:]}")
        out.seek(0)
        return Child(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
                     out.read().decode(errors="replace").strip())


def peer_python(venv: Path, requirement: str, name: str) -> str:
    """The interpreter of ``venv``, made first (with ``requirement`` installed) if missing."""
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating a virtualenv for {name} at {venv} (not a crmhub dependency)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", requirement], check=True)
    return str(python)
