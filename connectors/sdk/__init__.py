"""The crmhub connector SDK: what a connector module imports."""

from typing import TYPE_CHECKING

from connectors.sdk.streams import (
    Connector,
    ConnectorConfig,
    HttpConfig,
    Page,
    Record,
    StreamSpec,
    StreamState,
    parse_utc,
    stream,
)
from crmhub.errors import ConfigError, SourceError

if TYPE_CHECKING:
    from connectors.sdk.http import Http, PaginationLoop, json_body, paginate, redact_url

# The HTTP client (requests, urllib3, tenacity: about 0.1 s to import) loads when a
# connector first asks for it, not for every command that only looks a connector up
# (`crmhub model`, `crmhub runs`, a csv or mailbox sync).
_HTTP = frozenset({"Http", "PaginationLoop", "json_body", "paginate", "redact_url"})


def __getattr__(name: str):
    if name in _HTTP:
        from connectors.sdk import http

        return getattr(http, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ConfigError", "Connector", "ConnectorConfig", "Http", "HttpConfig", "Page", "json_body",
    "PaginationLoop", "Record", "SourceError", "StreamSpec", "StreamState", "paginate", "parse_utc",
    "redact_url", "stream",
]
