"""Shopify's GraphQL Admin API over the SDK's Http: cost throttling, errors, bulk exports.

- Every request is a POST to ``/admin/api/<version>/graphql.json``; the version is pinned
  in the URL, and a response served by another version (Shopify "falls forward" from an
  expired one) is logged as a warning.
- Throttling answers HTTP 200 with a ``THROTTLED`` error and the bucket's state in
  ``extensions.cost``; :meth:`ShopifyClient.throttle_wait` turns that into the wait the
  SDK sleeps before retrying: the points missing divided by the restore rate.
- A query over Shopify's single-query cost limit is a :class:`QueryTooCostly` (with the
  cost Shopify computed), so the caller can ask for fewer nodes; ``last_cost`` keeps
  the ``extensions.cost`` of the latest answer for sizing the next page.
- ``ACCESS_DENIED`` on a field the caller named as optional (``optional=``) still
  returns the data; the field is recorded in ``denied``. Any other ``errors`` entry is
  a :class:`SourceError` with Shopify's message.
- Bulk operations: start, poll ``node(id:)``, then read the JSONL result, a plain GET
  to another host (a signed storage URL) that must not carry the access token.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import orjson
import requests

from connectors.sdk import Http, SourceError, json_body
from connectors.shopify import queries

log = logging.getLogger("crmhub.shopify")

BULK_DONE = "COMPLETED"
MAX_QUERY_COST = 1000  # Shopify refuses any single query whose requested cost passes this
BULK_WAITING = ("CREATED", "RUNNING")


def throttle_seconds(body: Any) -> float | None:
    """How long to wait before a throttled query is worth sending again, else None.

    ``(requestedQueryCost - currentlyAvailable) / restoreRate`` from the response's
    cost block: the time the bucket needs to refill enough for this query.
    """
    if not _is_throttled(body):
        return None
    cost = body.get("extensions", {}).get("cost") or {}
    status = cost.get("throttleStatus") or {}
    requested, available, rate = (cost.get("requestedQueryCost"), status.get("currentlyAvailable"),
                                  status.get("restoreRate"))
    if not all(isinstance(n, (int, float)) for n in (requested, available, rate)) or rate <= 0:
        return None  # no cost block: the caller backs off instead
    return max(0.0, requested - available) / rate


def _is_throttled(body: Any) -> bool:
    errors = body.get("errors") if isinstance(body, dict) else None
    return isinstance(errors, list) and any(
        isinstance(e, dict) and (e.get("extensions") or {}).get("code") == "THROTTLED" for e in errors
    )


class QueryTooCostly(SourceError):
    """MAX_COST_EXCEEDED: the query asked for more than one request may cost."""

    def __init__(self, message: str, cost: float | None, max_cost: float | None):
        super().__init__(message)
        self.cost = cost
        self.max_cost = max_cost


def _code(error: Any) -> str | None:
    return (error.get("extensions") or {}).get("code") if isinstance(error, dict) else None


def _denied_field(error: Any, optional: tuple[str, ...]) -> str | None:
    """The optional field an ACCESS_DENIED error is about (the last name in its path), else None."""
    if _code(error) != "ACCESS_DENIED":
        return None
    path = [p for p in error.get("path") or [] if isinstance(p, str)]
    return path[-1] if path and path[-1] in optional else None


class BulkFailed(SourceError):
    """A bulk export refused at start (userErrors) or ended other than COMPLETED."""

    def __init__(self, message: str, code: str | None):
        super().__init__(message)
        self.code = code


class ShopifyClient:
    """One shop, one pinned API version."""

    def __init__(self, base_url: str, api_version: str, access_token: str, *, timeout: float,
                 max_retries: int, **http_options: Any):
        self.api_version = api_version
        self.endpoint = f"/admin/api/{api_version}/graphql.json"
        self.http = Http(base_url, name="shopify", timeout=timeout, max_retries=max_retries,
                         headers={"X-Shopify-Access-Token": access_token}, throttle=self.throttle_wait,
                         **http_options)
        # Bulk results live on a storage host: a client without the access token reads them.
        self.files = Http(base_url, name="shopify bulk result", timeout=timeout, max_retries=max_retries,
                          **http_options)
        self.timeout = timeout
        self._throttled_in_a_row = 0
        self._version_warned = False
        self.last_cost: dict[str, Any] = {}
        self.denied: set[str] = set()  # optional fields Shopify refused this token

    # ------------------------------------------------------------------ queries

    def throttle_wait(self, response: requests.Response) -> float | None:
        """The SDK's throttle hook: seconds to wait when Shopify answered THROTTLED."""
        try:
            body = json_body(response)
        except ValueError:
            return None  # the SDK retries bodies that are not JSON on its own
        if not _is_throttled(body):
            self._throttled_in_a_row = 0
            return None
        self._throttled_in_a_row += 1
        wait = throttle_seconds(body)
        if wait is None:  # THROTTLED without a cost block: back off 1, 2, 4, ... s
            wait = float(2 ** (self._throttled_in_a_row - 1))
        return wait

    def query(self, text: str, variables: dict[str, Any] | None = None, *, what: str,
              optional: tuple[str, ...] = ()) -> dict[str, Any]:
        """``data`` of one GraphQL request; errors in the body raise SourceError.

        ``optional``: fields whose ACCESS_DENIED leaves them null instead of failing.
        """
        response = self.http.request("POST", self.endpoint, json={"query": text, "variables": variables or {}},
                                     expect_json=True)
        self._check_version(response)
        try:
            body = json_body(response)
        except ValueError:  # e.g. a maintenance page served with 200
            raise SourceError(f"shopify {what}: the answer is not JSON: {response.text[:120]!r}") from None
        cost = (body.get("extensions") or {}).get("cost") if isinstance(body, dict) else None
        self.last_cost = cost if isinstance(cost, dict) else {}
        errors = body.get("errors") if isinstance(body, dict) else None
        data = body.get("data") if isinstance(body, dict) else None
        if errors:
            too_costly = next((e for e in errors if _code(e) == "MAX_COST_EXCEEDED"), None) \
                if isinstance(errors, list) else None
            if too_costly is not None:
                ext = too_costly.get("extensions") or {}
                raise QueryTooCostly(f"shopify {what}: {describe_errors(errors)}", _number(ext.get("cost")),
                                     _number(ext.get("maxCost")))
            denied = [_denied_field(e, optional) for e in errors] if isinstance(errors, list) else [None]
            if not isinstance(data, dict) or None in denied:
                raise SourceError(f"shopify {what}: {describe_errors(errors)}")
            self.denied.update(denied)  # type: ignore[arg-type]  # None was ruled out above
        if not isinstance(data, dict):
            raise SourceError(f"shopify {what}: the response has no data ({json.dumps(body)[:200]})")
        return data

    def _check_version(self, response: requests.Response) -> None:
        served = response.headers.get("X-Shopify-API-Version")
        if served and served != self.api_version and not self._version_warned:
            self._version_warned = True
            log.warning("shopify: asked for API version %s, the shop answered with %s (the pinned "
                        "version is no longer supported: pin a current one in api_version)",
                        self.api_version, served)

    # ------------------------------------------------------------------ bulk operations

    def start_bulk(self, bulk_query: str, *, what: str) -> str:
        data = self.query(queries.BULK_RUN, {"query": bulk_query}, what=f"{what} bulk export")
        payload = data.get("bulkOperationRunQuery") or {}
        problems = payload.get("userErrors") or []
        if problems:
            text = "; ".join(f"{p.get('code') or ''} {p.get('message')}".strip() for p in problems)
            denied = any("denied" in str(p.get("message")).lower() or p.get("code") == "ACCESS_DENIED"
                         for p in problems)
            raise BulkFailed(f"shopify {what}: Shopify refused the bulk export: {text}",
                             "ACCESS_DENIED" if denied else problems[0].get("code"))
        operation = payload.get("bulkOperation") or {}
        if not operation.get("id"):
            raise SourceError(f"shopify {what}: the bulk export started without an id")
        return operation["id"]

    def bulk_status(self, operation_id: str, *, what: str) -> dict[str, Any]:
        data = self.query(queries.BULK_POLL, {"id": operation_id}, what=f"{what} bulk export")
        node = data.get("node")
        if not isinstance(node, dict) or not node.get("status"):
            raise SourceError(f"shopify {what}: bulk operation {operation_id} not found")
        return node

    def wait_for_bulk(self, operation_id: str, *, poll_seconds: float, timeout: float, what: str) -> dict[str, Any]:
        """Poll until the operation completed; any other end is a SourceError."""
        deadline = time.monotonic() + timeout
        while True:
            operation = self.bulk_status(operation_id, what=what)
            status = operation["status"]
            if status == BULK_DONE:
                return operation
            if status not in BULK_WAITING:
                raise BulkFailed(f"shopify {what}: bulk export {operation_id} ended {status}"
                                 f"{' (' + operation['errorCode'] + ')' if operation.get('errorCode') else ''}",
                                 operation.get("errorCode"))
            if time.monotonic() >= deadline:
                raise SourceError(f"shopify {what}: bulk export {operation_id} still {status} after "
                                  f"{timeout:.0f} s; the next run goes on waiting for it")
            time.sleep(poll_seconds)

    def bulk_lines(self, url: str, *, what: str, read_budget: float = 3600.0) -> Iterator[dict[str, Any]]:
        """The objects of a bulk result, one per JSONL line, read as a stream.

        Read by the token-less client (the file lives on a storage host) in flat memory:
        each line at most ``max_body_bytes``, the download within ``read_budget`` seconds
        of network time. A failed download is not retried here: the operation's id stays
        in the stream state, so the next run fetches a fresh URL and reads the file again.
        """
        lines = self.files.lines(url, what=f"{what}: downloading the bulk result", read_budget=read_budget)
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                yield orjson.loads(line)
            except orjson.JSONDecodeError:
                raise SourceError(f"shopify {what}: line {number} of the bulk result is not JSON") from None

    def close(self) -> None:
        self.http.close()
        self.files.close()


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def describe_errors(errors: Any) -> str:
    """Shopify's ``errors`` as one line, with a hint where one helps."""
    if not isinstance(errors, list):
        return str(errors)[:300]
    parts, hints = [], []
    for error in errors:
        if not isinstance(error, dict):
            parts.append(str(error))
            continue
        code = (error.get("extensions") or {}).get("code")
        path = ".".join(str(p) for p in error.get("path") or [])
        parts.append(" ".join(p for p in (code, error.get("message"), f"at {path}" if path else "") if p))
        if code == "MAX_COST_EXCEEDED":
            hints.append("even one node per page costs too much: report this query")
        if code == "ACCESS_DENIED" and "staffMember" in path + str(error.get("message")):
            hints.append("staff members need the read_users scope (Shopify Plus/Advanced): "
                         "set include_staff: false to sync orders without sales reps")
    return "; ".join(parts)[:500] + (f" ({'; '.join(dict.fromkeys(hints))})" if hints else "")
