"""Every configured secret, and the one function that takes them out of a text.

A connector config registers its secret values when it is validated (see
``ConnectorConfig``); so do the warehouse password and the SMTP password. Any text
that may end up stored, printed, logged or raised (an error, a retry warning, a
server's answer quoted in a message) goes through :func:`redact` first.

A secret is also recognised in the forms it takes on the way out: stripped of the
trailing newline a mounted Kubernetes secret has, URL-encoded (a key in a query
string), JSON-escaped (a 4xx body echoing it) and as HTTP Basic credentials.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable, Iterable
from urllib.parse import quote, quote_plus

MASK = "***"
# Shorter values (a port, "yes") would mask ordinary words; no real credential is this short.
MIN_CHARS = 4

_lock = threading.Lock()
_values: set[str] = set()
_ordered: tuple[str, ...] = ()
_listeners: list[Callable[[str], None]] = []


def on_register(listener: Callable[[str], None]) -> None:
    """Also hand every secret registered from now on (and those known) to ``listener``
    (under Airflow: its own log masker)."""
    if listener not in _listeners:
        _listeners.append(listener)
        for value in _ordered:
            listener(value)


def _forms(secret: str) -> set[str]:
    forms = {secret, secret.strip(), quote(secret, safe=""), quote_plus(secret),
             json.dumps(secret)[1:-1], repr(secret)[1:-1]}
    stripped = secret.strip()
    forms |= {quote(stripped, safe=""), quote_plus(stripped), json.dumps(stripped)[1:-1]}
    return {f for f in forms if len(f) >= MIN_CHARS}


def register(*secrets: str | None) -> None:
    """Remember secret values (and their encoded forms) for :func:`redact`."""
    global _ordered
    new: set[str] = set()
    for secret in secrets:
        if isinstance(secret, str) and len(secret.strip()) >= MIN_CHARS:
            new |= _forms(secret)
    with _lock:
        added = new - _values
        if added:
            _values.update(added)
            _ordered = tuple(sorted(_values, key=len, reverse=True))  # longest first
    for value in added:
        for listener in _listeners:
            listener(value)


def register_basic_auth(user: str, password: str) -> None:
    """HTTP Basic credentials: the password, and the pair as it travels in an Authorization
    header. The user name alone is no secret (Mailchimp's is any word, e.g. "crmhub"); where
    it is one (WooCommerce's consumer key) the connector's config registers it as a secret."""
    pair = f"{user}:{password}"
    register(password, base64.b64encode(pair.encode("latin-1", "replace")).decode())


def registered() -> tuple[str, ...]:
    return _ordered


def redact(text: object) -> str:
    """``text`` as a string with every registered secret replaced by ``***``."""
    out = text if isinstance(text, str) else str(text)
    for secret in _ordered:
        if secret in out:
            out = out.replace(secret, MASK)
    return out


def redact_all(texts: Iterable[object]) -> list[str]:
    return [redact(t) for t in texts]


class RedactingFilter(logging.Filter):
    """A log filter (for handlers) that redacts the message and any traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _ordered:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler
            return True
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = redact(message), None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        record.exc_info = None if record.exc_text else record.exc_info
        return True


def install_log_filter(logger: logging.Logger | None = None) -> None:
    """Add :class:`RedactingFilter` to every handler of ``logger`` (default: the root)."""
    logger = logger or logging.getLogger()
    for handler in logger.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
