"""Connectors and their streams.

A connector is a class with a pydantic ``Config`` and one method per stream::

    class Typeform(Connector):
        Config = TypeformConfig

        @stream(primary_key="token", cursor="submitted_at")
        def responses(self, state: StreamState) -> Iterator[list[dict]]:
            for page in ...:
                yield page.items

A stream yields pages: a list of records (dicts), or a :class:`Page` that also carries
the state to store once that page is committed. The engine commits each page, and
the state that covers it, in one transaction. Without explicit page states, a stream
with a ``cursor`` gets ``{"cursor": <highest cursor value seen>}`` stored: after every
page when it reads in ascending cursor order (``ordered=True``), otherwise once the
stream has been read to its end (so a run killed half-way re-reads, never skips).
A stream may also ``return`` a final state dict from its generator.

Connectors never touch SQL; mapping to the warehouse lives in ``crm_model.mapping``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretBytes, SecretStr

from crmhub import redact

Record = dict[str, Any]
# A connector that read something it cannot turn into a record (a CSV row with an
# unclosed quote, bytes that are not text) still yields it, with the reason in this
# field: the engine quarantines it (read = loaded + rejected) and the run goes on.
UNREADABLE = "_unreadable"


class ConnectorConfig(BaseModel):
    """Base of every connector's config: unknown keys are an error, not ignored.

    Every ``SecretStr`` value in it is registered for redaction as it is validated,
    so no error text, log line or stored message can carry it (``connectors.sdk.redact``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    def model_post_init(self, context: Any, /) -> None:
        redact.register(*self.secret_values())

    def secret_values(self) -> list[str]:
        """The values of every secret field, nested ones included."""
        return list(_secrets_in(dict(self)))


def _secrets_in(value: Any) -> Iterator[str]:
    if isinstance(value, SecretStr):
        yield value.get_secret_value()
    elif isinstance(value, SecretBytes):
        yield value.get_secret_value().decode("utf-8", "replace")
    elif isinstance(value, BaseModel):
        yield from _secrets_in(dict(value))
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _secrets_in(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _secrets_in(item)


class HttpConfig(ConnectorConfig):
    """Config every HTTP connector accepts."""

    base_url: str
    timeout: float = Field(30.0, gt=0, description="Seconds one HTTP request may take in total "
                                                   "(connect, headers and the whole body).")
    max_retries: int = Field(5, ge=0, le=20, description="Retries on 429/5xx/timeouts.")
    max_body_bytes: int = Field(64 * 1024 * 1024, ge=1024,
                                description="Largest response body, after decompression.")

    def http_options(self) -> dict[str, Any]:
        """The keyword arguments of :class:`connectors.sdk.Http` this config sets."""
        return {"timeout": self.timeout, "max_retries": self.max_retries,
                "max_body_bytes": self.max_body_bytes, "secrets": self.secret_values()}


@dataclass
class Page:
    records: list[Record]
    state: dict[str, Any] | None = None  # stored in the same transaction as the records


def lookback_window(state: StreamState, today: dt.date, lookback_days: int) -> tuple[dt.date, dt.date]:
    """Days a date-reported stream (ad metrics, analytics) reads: from the last day read
    minus ``lookback_days`` (platforms restate recent days), never before ``start_date``;
    on a first run from ``start_date``, else the last ``lookback_days`` (at least one)."""
    cursor = state.cursor
    if isinstance(cursor, str):
        first = dt.date.fromisoformat(cursor[:10]) - dt.timedelta(days=lookback_days)
        if state.start_date:
            first = max(first, state.start_date)
    elif state.start_date:
        first = state.start_date
    else:
        first = today - dt.timedelta(days=max(lookback_days, 1))
    return min(first, today), today


def parse_utc(text: str) -> dt.datetime:
    """An ISO 8601 time as an aware datetime; text without an offset is UTC. ValueError if not a time."""
    parsed = dt.datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@dataclass
class StreamState:
    """What a stream is handed: its last committed state and the source's start date."""

    saved: dict[str, Any] = field(default_factory=dict)
    start_date: dt.date | None = None

    @property
    def cursor(self) -> Any:
        return self.saved.get("cursor")

    def since(self) -> dt.datetime | None:
        """Where an incremental read starts: the saved cursor, else the start date (UTC)."""
        cursor = self.cursor
        if isinstance(cursor, str):
            try:
                return parse_utc(cursor)
            except ValueError:
                pass  # not a time: the connector reads the cursor itself
        if self.start_date is not None:
            return dt.datetime.combine(self.start_date, dt.time(), dt.UTC)
        return None


@dataclass(frozen=True)
class StreamSpec:
    name: str
    primary_key: tuple[str, ...]
    cursor: str | None
    ordered: bool
    method: Callable[..., Iterator[list[Record] | Page]]

    def key_of(self, record: Mapping[str, Any]) -> str | None:
        """The record's key as text (parts joined by '|'), or None if a part is missing."""
        parts = []
        for name in self.primary_key:
            value = _lookup(record, name)
            if value is None or value == "":
                return None
            parts.append(str(value))
        return "|".join(parts)

    def cursor_of(self, record: Mapping[str, Any]) -> Any:
        return _lookup(record, self.cursor) if self.cursor else None


def _lookup(record: Mapping[str, Any], dotted: str) -> Any:
    value: Any = record
    for part in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def stream(
    *,
    primary_key: str | tuple[str, ...],
    cursor: str | None = None,
    ordered: bool = False,
    name: str | None = None,
) -> Callable[[Callable], Callable]:
    """Declare a connector method as a stream: its key, its cursor, its order.

    ``primary_key`` and ``cursor`` name record fields (dotted for nested ones).
    """
    keys = (primary_key,) if isinstance(primary_key, str) else tuple(primary_key)

    def decorate(method: Callable) -> Callable:
        method.__crmhub_stream__ = StreamSpec(name or method.__name__, keys, cursor, ordered, method)
        return method

    return decorate


class Connector:
    """Base class of every connector. Subclasses set ``Config`` and declare streams."""

    Config: ClassVar[type[ConnectorConfig]] = ConnectorConfig
    #: True for sources that push to crmhub (webhooks): `crmhub sync` has nothing to pull
    push: ClassVar[bool] = False
    #: config keys (besides secrets) that mappings may read, e.g. a default phone region
    mapping_options: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        config: ConnectorConfig,
        *,
        source: str = "",
        start_date: dt.date | None = None,
        base_dir: Path | None = None,
    ):
        self.config = config
        self.source = source  # the source name in crmhub.yml
        self.start_date = start_date  # first sync reads from here
        self.base_dir = base_dir or Path.cwd()  # relative file paths in the config start here

    @classmethod
    def declared_streams(cls) -> dict[str, StreamSpec]:
        """The streams declared with @stream on this class and its bases."""
        specs: dict[str, StreamSpec] = {}
        for klass in reversed(cls.__mro__):
            for attr in vars(klass).values():
                spec = getattr(attr, "__crmhub_stream__", None)
                if spec is not None:
                    specs[spec.name] = spec
        return specs

    def stream_specs(self) -> dict[str, StreamSpec]:
        """The streams this configured connector reads (override when config decides)."""
        return self.declared_streams()

    def read(self, spec: StreamSpec, state: StreamState) -> Iterator[list[Record] | Page]:
        return spec.method(self, state)

    def check(self) -> str:
        """Prove the config works by reading the first page of the first stream."""
        specs = list(self.stream_specs().values())
        if not specs:
            return "no streams"
        pages = self.read(specs[0], StreamState(start_date=self.start_date))
        try:
            first = next(iter(pages), [])
        finally:
            close = getattr(pages, "close", None)
            if close:
                close()
        count = len(first.records if isinstance(first, Page) else first)
        return f"ok: read {count} record(s) from stream {specs[0].name!r}"

    def options(self) -> dict[str, Any]:
        """Config values handed to mapping functions (no secrets)."""
        return {k: getattr(self.config, k) for k in self.mapping_options}

    def close(self) -> None:
        """Release clients and sessions."""
