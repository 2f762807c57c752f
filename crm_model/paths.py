"""Where crmhub's SQL lives, in a source checkout and in an installed package alike.

The analyst-readable SQL sits at the top of the repository (`sql/`: views, model
steps, reports). A built wheel carries a copy as package data (`crm_model/_sql`,
written by setup.py's build step), because an installed package has no repository
around it; an editable install and a checkout read `sql/` itself.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGED = Path(__file__).resolve().parent / "_sql"
_CHECKOUT = Path(__file__).resolve().parent.parent / "sql"


@cache
def sql_dir() -> Path:
    if _PACKAGED.is_dir():
        return _PACKAGED
    if _CHECKOUT.is_dir():
        return _CHECKOUT
    raise FileNotFoundError(f"crmhub's SQL files are missing: neither {_PACKAGED} nor {_CHECKOUT} exists "
                            "(reinstall the crmhub package)")
