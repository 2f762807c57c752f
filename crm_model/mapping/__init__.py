"""Raw records -> unified rows: pure functions, one module per source system.

A mapping function takes one raw record (a dict, as the connector yielded it) and
a :class:`MapContext`, and returns the unified rows it implies::

    @mapping("typeform", "responses")
    def map_response(raw: dict, ctx: MapContext) -> list[Row]:
        ...
        return [Row("source_person", {...}), Row("lead", {...})]

It raises :class:`Reject` (directly, or through the parsers in
``crm_model.mapping.values``) when the record cannot be mapped; the record is then
quarantined in ``rejected_record`` with that reason. ``source`` is filled in by the
loader. Functions do no I/O, so they are tested on real payloads without a database.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, NamedTuple

from crm_model.mapping.values import Reject

__all__ = ["MapContext", "Mapper", "Reject", "Row", "find_mapping", "mapping"]


class Row(NamedTuple):
    """One unified row: the table it goes to and its column values."""

    table: str
    values: dict[str, Any]


@dataclass(frozen=True)
class MapContext:
    source: str  # source name from crmhub.yml
    stream: str
    connector: str  # registered connector type
    options: Mapping[str, Any] = field(default_factory=dict)  # mapping-relevant config


MapFunction = Callable[[dict, MapContext], list[Row]]


RecordLabel = Callable[[dict], "str | None"]


@dataclass(frozen=True)
class Mapper:
    fn: MapFunction
    version: int  # bump when the function's output changes: `crmhub model` re-maps
    label: RecordLabel | None = None  # how a person names the record: "Typeform response 8d3f"


_REGISTRY: dict[tuple[str, str], Mapper] = {}


def mapping(connector: str, stream: str, *, version: int = 1,
            label: RecordLabel | None = None) -> Callable[[MapFunction], MapFunction]:
    """Register ``fn`` as the mapping of ``connector``'s ``stream`` (``"*"``: any stream).

    ``label(raw)`` names a record in a reject's reason, the way its source shows it
    ("WooCommerce order #1042", "leads.csv line 7").
    """

    def register(fn: MapFunction) -> MapFunction:
        _REGISTRY[(connector, stream)] = Mapper(fn, version, label)
        return fn

    return register


def find_mapping(connector: str, stream: str) -> Mapper | None:
    """The mapping for a stream, importing ``crm_model.mapping.<connector>`` on first use.

    Third-party packages register theirs in the ``crmhub.mappings`` entry-point group
    (the value is a module to import).
    """
    if not any(c == connector for c, _ in _REGISTRY):
        _import_mappings(connector)
    return _REGISTRY.get((connector, stream)) or _REGISTRY.get((connector, "*"))


@functools.cache
def _third_party() -> dict[str, str]:
    """Mapping modules registered by other packages, by connector type: read once, since
    each look-up reads every installed distribution's metadata (hundreds where Airflow is
    installed: 20-40 ms each time, and a model run asks once per connector type)."""
    return {ep.name: ep.value for ep in entry_points(group="crmhub.mappings")}


def _import_mappings(connector: str) -> None:
    module = _third_party().get(connector)
    if module is not None:
        importlib.import_module(module)
        return
    try:
        importlib.import_module(f"crm_model.mapping.{connector}")
    except ModuleNotFoundError as exc:
        if exc.name != f"crm_model.mapping.{connector}":
            raise
