"""The crmhub connector SDK: what a connector module imports."""

from connectors.sdk.http import Http, PaginationLoop, json_body, paginate, redact_url
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

__all__ = [
    "ConfigError", "Connector", "ConnectorConfig", "Http", "HttpConfig", "Page", "json_body",
    "PaginationLoop", "Record", "SourceError", "StreamSpec", "StreamState", "paginate", "parse_utc",
    "redact_url", "stream",
]
