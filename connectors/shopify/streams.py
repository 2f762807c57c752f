"""The shopify streams: orders, customers, products, read incrementally by ``updatedAt``.

Every stream asks for ``updated_at:>='<cursor>'`` sorted by UPDATED_AT and follows
``pageInfo.endCursor``; pages come oldest change first, so the cursor is committed with
every page (``ordered=True``) and a killed run resumes where it stopped. Re-reading the
record at the cursor (``>=``) is harmless: records are upserted by their gid.

The first sync of a large shop can run as a bulk export instead (``bulk_backfill``,
or ``bulk_threshold``): Shopify writes the whole result to a JSONL file, children on
their own lines, which are joined to their parents here. The export's id is stored as
the stream's state at once, so a run killed while waiting resumes the same export.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from pydantic import Field, SecretStr, model_validator

from connectors.sdk import (
    Connector,
    ConnectorConfig,
    HttpConfig,
    Page,
    Record,
    SourceError,
    StreamState,
    paginate,
    stream,
)
from connectors.shopify import queries
from connectors.shopify.client import BULK_DONE, BULK_WAITING, ShopifyClient
from connectors.shopify.queries import Resource

log = logging.getLogger("crmhub.shopify")

BULK_PAGE = 500  # bulk records committed per transaction


class PageSizes(ConnectorConfig):
    """Nodes per page. Shopify refuses a query whose worst-case cost passes 1000 points."""

    orders: int = Field(5, ge=1, le=250, description="About 120 points per order.")
    customers: int = Field(100, ge=1, le=250, description="About 5 points per customer.")
    products: int = Field(25, ge=1, le=250, description="About 23 points per product.")


class ShopifyConfig(HttpConfig):
    base_url: str = Field("", description="https://<shop>.myshopify.com; derived from shop if empty.")
    shop: str | None = Field(None, description="Shop domain: my-shop or my-shop.myshopify.com.")
    access_token: SecretStr = Field(description="Admin API access token (X-Shopify-Access-Token).")
    api_version: str = Field("2026-10", pattern=r"^\d{4}-(01|04|07|10)$",
                             description="Pinned Admin API version; each is supported for 12 months.")
    include_staff: bool = Field(True, description="Read orders' staff member as sales rep "
                                                  "(needs read_users, Shopify Plus/Advanced).")
    page_size: PageSizes = Field(default_factory=PageSizes)
    bulk_backfill: bool = Field(False, description="First sync of a stream as one bulk export.")
    bulk_threshold: int | None = Field(None, ge=1, description="First sync as a bulk export when the "
                                                               "shop has at least this many records.")
    bulk_poll_seconds: float = Field(10.0, gt=0, description="Seconds between bulk status checks.")
    bulk_timeout: float = Field(6 * 3600.0, gt=0, description="Seconds to wait for a bulk export per run.")

    @model_validator(mode="before")
    @classmethod
    def _base_url_from_shop(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("base_url"):
            return data
        shop = str(data.get("shop") or "").strip().removeprefix("https://").removeprefix("http://").strip("/")
        if not shop:
            raise ValueError("set shop (my-shop.myshopify.com) or base_url")
        domain = shop if "." in shop else f"{shop}.myshopify.com"
        return {**data, "base_url": f"https://{domain}"}


class ShopifyConnector(Connector):
    Config = ShopifyConfig
    config: ShopifyConfig

    def __init__(self, config: ShopifyConfig, **kw: Any):
        super().__init__(config, **kw)
        self.client = ShopifyClient(config.base_url, config.api_version,
                                    config.access_token.get_secret_value(),
                                    **config.http_options())
        self._shop_currency: str | None = None

    # ------------------------------------------------------------------ streams

    @stream(primary_key="id", cursor="updatedAt", ordered=True)
    def orders(self, state: StreamState) -> Iterator[list[Record] | Page]:
        resource = queries.ORDERS_WITH_STAFF if self.config.include_staff else queries.ORDERS
        return (yield from self._read(resource, state))

    @stream(primary_key="id", cursor="updatedAt", ordered=True)
    def customers(self, state: StreamState) -> Iterator[list[Record] | Page]:
        return (yield from self._read(queries.CUSTOMERS, state))

    @stream(primary_key="id", cursor="updatedAt", ordered=True)
    def products(self, state: StreamState) -> Iterator[list[Record] | Page]:
        # Variant prices carry no currency: they are in the shop's, asked for once.
        currency = self.shop_currency()

        def tag(record: Record) -> None:
            record["_shop_currency"] = currency

        return (yield from self._read(queries.PRODUCTS, state, prepare=tag))

    # ------------------------------------------------------------------ reading

    def _read(self, resource: Resource, state: StreamState,
              prepare: Callable[[Record], None] | None = None) -> Iterator[list[Record] | Page]:
        search = queries.search_since(shopify_time(state.since()))
        if self._use_bulk(resource, search, state):
            return (yield from self._bulk(resource, search, state, prepare))
        for records in self._pages(resource, search):
            for record in records:
                if prepare:
                    prepare(record)
            yield records
        return None

    def _pages(self, resource: Resource, search: str | None) -> Iterator[list[Record]]:
        text = queries.page_query(resource)
        first = getattr(self.config.page_size, resource.name)

        def fetch(after: str | None) -> tuple[list[Record], str | None]:
            data = self.client.query(text, {"first": first, "after": after, "query": search},
                                     what=resource.name)
            connection = data.get(resource.name)
            if not isinstance(connection, dict):
                raise SourceError(f"shopify {resource.name}: the response has no {resource.name}")
            records = nodes_of(connection)
            for record in records:
                self._complete_children(resource, record)
            return records, next_cursor(connection)

        yield from paginate(fetch, what=f"shopify {resource.name}")

    def _complete_children(self, resource: Resource, record: Record) -> None:
        """Fetch the line items (variants) a page could not carry, so a record is whole."""
        for child in resource.children:
            connection = record.get(child.field)
            if not isinstance(connection, dict) or next_cursor(connection) is None:
                continue
            text = queries.children_query(resource, child)
            what = f"{resource.name} {record.get('id')} {child.field}"

            def fetch(after: str | None, text: str = text, child=child, what: str = what):
                data = self.client.query(text, {"id": record["id"], "after": after}, what=what)
                more = (data.get("node") or {}).get(child.field)
                if not isinstance(more, dict):
                    raise SourceError(f"shopify {what}: {record['id']} is gone; the next run reads it again")
                return nodes_of(more), next_cursor(more)

            nodes = nodes_of(connection)
            for page in paginate(fetch, next_cursor(connection), what=f"shopify {what}"):
                nodes.extend(page)
            record[child.field] = {"nodes": nodes, "pageInfo": {"hasNextPage": False, "endCursor": None}}

    # ------------------------------------------------------------------ bulk export

    def _use_bulk(self, resource: Resource, search: str | None, state: StreamState) -> bool:
        if state.saved.get("bulk_operation"):
            return True  # an export this stream started and has not finished reading
        if state.cursor is not None:
            return False  # bulk is for the first, full read only
        if self.config.bulk_backfill:
            return True
        if self.config.bulk_threshold is None:
            return False
        limit = self.config.bulk_threshold
        data = self.client.query(queries.count_query(resource), {"query": search, "limit": limit},
                                 what=f"{resource.name} count")
        counted = data.get(f"{resource.name}Count") or {}
        count = counted.get("count")
        # AT_LEAST: Shopify stopped counting at its own cap, which only big shops reach
        return counted.get("precision") == "AT_LEAST" or (isinstance(count, int) and count >= limit)

    def _bulk(self, resource: Resource, search: str | None, state: StreamState,
              prepare: Callable[[Record], None] | None) -> Iterator[Page]:
        what = resource.name
        operation_id = state.saved.get("bulk_operation")
        if operation_id:
            status = self.client.bulk_status(operation_id, what=what)["status"]
            if status != BULK_DONE and status not in BULK_WAITING:
                log.warning("shopify %s: the saved bulk export %s is %s; starting a new one",
                            what, operation_id, status)
                operation_id = None
        if not operation_id:
            operation_id = self.client.start_bulk(queries.bulk_query(resource, search), what=what)
            yield Page([], {"bulk_operation": operation_id})  # a killed run resumes this export
        operation = self.client.wait_for_bulk(operation_id, poll_seconds=self.config.bulk_poll_seconds,
                                              timeout=self.config.bulk_timeout, what=what)
        records: list[Record] = []
        if operation.get("url"):  # no url: nothing matched
            records = join_bulk(resource, self.client.bulk_lines(operation["url"], what=what))
        for start in range(0, len(records), BULK_PAGE):
            page = records[start:start + BULK_PAGE]
            for record in page:
                if prepare:
                    prepare(record)
            yield Page(page, {"bulk_operation": operation_id})
        # The export is a snapshot taken when it started: later changes come with the
        # next incremental run, which starts there.
        started = operation.get("createdAt") or max((r.get("updatedAt") or "" for r in records), default=None)
        return {"cursor": started or None}

    # ------------------------------------------------------------------ shop

    def shop_currency(self) -> str | None:
        if self._shop_currency is None:
            data = self.client.query(queries.SHOP_CURRENCY, what="shop")
            self._shop_currency = (data.get("shop") or {}).get("currencyCode")
        return self._shop_currency

    def close(self) -> None:
        self.client.close()


# --------------------------------------------------------------------------- helpers


def nodes_of(connection: dict[str, Any]) -> list[Record]:
    """A connection's nodes, whether it was selected as ``nodes`` or ``edges { node }``."""
    if isinstance(connection.get("nodes"), list):
        return list(connection["nodes"])
    return [edge["node"] for edge in connection.get("edges") or [] if isinstance(edge, dict) and edge.get("node")]


def next_cursor(connection: dict[str, Any]) -> str | None:
    info = connection.get("pageInfo") or {}
    return info.get("endCursor") if info.get("hasNextPage") else None


def shopify_time(moment: dt.datetime | None) -> str | None:
    """UTC to the second: Shopify's search compares seconds, and flooring only re-reads."""
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def gid_type(gid: Any) -> str | None:
    """'gid://shopify/LineItem/100101' -> 'LineItem'."""
    if not isinstance(gid, str) or not gid.startswith("gid://shopify/"):
        return None
    return gid.removeprefix("gid://shopify/").split("/", 1)[0]


def join_bulk(resource: Resource, objects: Iterable[dict[str, Any]]) -> list[Record]:
    """Bulk JSONL objects -> records shaped like a page's: children under their parent.

    Each child line names its parent in ``__parentId``; lines may come in any order
    (Shopify stopped grouping children after their parent in 2026-01).
    """
    roots: dict[str, Record] = {}
    orphans: dict[str, list[tuple[str, Record]]] = defaultdict(list)
    for obj in objects:
        parent = obj.pop("__parentId", None)
        if parent is None:
            obj.update({c.field: {"nodes": []} for c in resource.children})
            roots[obj["id"]] = obj
            continue
        child = resource.child(gid_type(obj.get("id")) or "")
        if child is None:
            raise SourceError(f"shopify {resource.name}: unexpected object {obj.get('id')!r} in the bulk result")
        orphans[parent].append((child.field, obj))
    for parent, children in orphans.items():
        root = roots.get(parent)
        if root is None:
            raise SourceError(f"shopify {resource.name}: the bulk result has children of {parent!r} "
                              "but not the record itself")
        for field, obj in children:
            root[field]["nodes"].append(obj)
    return list(roots.values())
