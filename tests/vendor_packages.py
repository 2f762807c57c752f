"""Vendor artefacts that tests check against, taken from the vendors' own published
packages at test time (never committed here): `npm pack` with a pinned version into a
cache folder, then one file read out of the tarball."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("CRMHUB_TEST_CACHE", Path(__file__).resolve().parent.parent / ".cache" / "vendor"))


def npm_file(package: str, version: str, member: str) -> bytes:
    """``member`` of the npm package ``package@version`` (cached after the first download)."""
    folder = CACHE / f"{package.strip('@').replace('/', '-')}-{version}"
    target = folder / Path(member).name
    if not target.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail(f"this test reads {member} from the npm package {package}@{version}: install npm "
                        "(Debian: apt-get install npm; .ci/run does)")
        folder.mkdir(parents=True, exist_ok=True)
        done = subprocess.run([npm, "pack", f"{package}@{version}", "--silent", "--pack-destination", str(folder)],
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            pytest.fail(f"npm pack {package}@{version} failed: {done.stderr.strip()[-500:]}")
        (tarball,) = folder.glob("*.tgz")
        with tarfile.open(tarball) as tar:
            extracted = tar.extractfile(member)
            if extracted is None:
                pytest.fail(f"{package}@{version} has no {member}")
            target.write_bytes(extracted.read())
        tarball.unlink()
    return target.read_bytes()
