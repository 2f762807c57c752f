"""Named checkpoints where tests kill the process to prove crash safety.

``CRMHUB_KILL_AT=load:3`` makes the process SIGKILL itself the 3rd time it passes the
``load`` checkpoint. Unset (always, outside tests), a checkpoint is one dict lookup.
"""

from __future__ import annotations

import os
import signal

_target: tuple[str, int] | None = None
_spec = os.environ.get("CRMHUB_KILL_AT", "")
if _spec:
    _name, _, _nth = _spec.partition(":")
    _target = (_name, int(_nth or 1))
_hits: dict[str, int] = {}


def checkpoint(name: str) -> None:
    if _target is None or _target[0] != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] == _target[1]:
        os.kill(os.getpid(), signal.SIGKILL)
