"""The virtualenv a peer runs in (dlt, Splink): made once with pip, never a crmhub dependency."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def peer_python(venv: Path, requirement: str, name: str) -> str:
    """The interpreter of ``venv``, made first (with ``requirement`` installed) if missing."""
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating a virtualenv for {name} at {venv} (not a crmhub dependency)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", requirement], check=True)
    return str(python)
