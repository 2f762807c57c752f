"""Connector types, found through the ``crmhub.connectors`` entry-point group.

crmhub's own connectors are registered in its pyproject.toml; a third-party package
adds one the same way::

    [project.entry-points."crmhub.connectors"]
    hubspot = "crmhub_hubspot:HubspotConnector"
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, PackageNotFoundError, distribution, entry_points

from connectors.sdk.streams import Connector
from crmhub.errors import ConfigError

GROUP = "crmhub.connectors"
# Push connectors (webhooks) are also listed here, so the DAG factory can leave them
# out without importing anything (Airflow re-parses DAG files every few seconds).
PUSH_GROUP = "crmhub.push_connectors"


@cache
def available() -> dict[str, EntryPoint]:
    """Registered connector types by name (nothing is imported yet)."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


@cache
def push_types() -> frozenset[str]:
    return frozenset(ep.name for ep in entry_points(group=PUSH_GROUP))


@cache
def _own() -> dict[str, EntryPoint]:
    """crmhub's own connector types, read from its own metadata alone: finding every
    installed distribution's entry points reads hundreds of folders where Airflow is
    installed (10-20 ms on every command that loads a connector)."""
    try:
        eps = distribution("crmhub").entry_points
    except PackageNotFoundError:  # run from a source tree that is not installed
        return {}
    return {ep.name: ep for ep in eps if ep.group == GROUP}


def load(name: str) -> type[Connector]:
    """The connector class of type ``name``: crmhub's own first, then any package's."""
    ep = _own().get(name) or available().get(name)
    if ep is None:
        known = ", ".join(sorted(available())) or "none"
        raise ConfigError(f"unknown connector type {name!r} (registered: {known})")
    cls = ep.load()
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        raise ConfigError(f"connector {name!r} ({ep.value}) is not a crmhub Connector class")
    return cls
