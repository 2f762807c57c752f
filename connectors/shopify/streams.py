"""The shopify streams: orders, customers, products, read incrementally by ``updatedAt``.

Every stream asks for ``updated_at:>='<cursor>'`` sorted by UPDATED_AT and follows
``pageInfo.endCursor``; pages come oldest change first, so the cursor is committed with
every page (``ordered=True``) and a killed run resumes where it stopped. Re-reading the
record at the cursor (``>=``) is harmless: records are upserted by their gid.

Page sizes follow Shopify's cost rules: every answer says what the query was reckoned
to cost (``extensions.cost.requestedQueryCost``, the worst case for ``first`` nodes),
and the next page asks for as many nodes as fit in 90% of the 1,000-point single-query
limit (never more than ``page_size`` says); once two page sizes were reckoned, the
query's fixed cost is told apart from the cost per node, so pages grow to what fits at once. A MAX_COST_EXCEEDED answer shrinks the
page by the cost Shopify computed and asks again, so no setting makes a stream fail.

Orders' staff member (the sales rep) needs the read_users scope, which Shopify grants
only to Plus/Advanced shops. Elsewhere Shopify answers with the data plus an
ACCESS_DENIED error for ``staffMember``: the orders load with no sales rep, the rest
of the run stops asking, and the run's log says once what would fill it.

The first sync of a large shop can run as a bulk export instead (``bulk_backfill``,
or ``bulk_threshold``): Shopify writes the whole result to a JSONL file, children on
their own lines, which are joined to their parents here. The file is streamed into
a temporary on-disk SQLite file and read back record by record, so memory stays
flat whatever the export's size. The export's id is stored as the stream's state at
once, so a run killed while waiting resumes the same export.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
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
from connectors.shopify.client import (
    BULK_DONE,
    BULK_WAITING,
    MAX_QUERY_COST,
    BulkFailed,
    QueryTooCostly,
    ShopifyClient,
)
from connectors.shopify.queries import Resource

log = logging.getLogger("crmhub.shopify")

BULK_PAGE = 500  # records committed per transaction (bulk exports, and pages read together)


COST_TARGET = 0.9  # of the single-query limit: a page is sized to cost at most this share
FIRST_PAGE = {"orders": 5, "customers": 100, "products": 25}  # before Shopify said what a node costs
STAFF_FIELD = "staffMember"


class PageSizes(ConnectorConfig):
    """At most this many nodes per page; fewer when Shopify's cost rules allow fewer."""

    orders: int = Field(250, ge=1, le=250, description="Upper bound (about 120 points per order).")
    customers: int = Field(250, ge=1, le=250, description="Upper bound (about 5 points per customer).")
    products: int = Field(250, ge=1, le=250, description="Upper bound (about 23 points per product).")


class PageSize:
    """Nodes per page for one stream, from the cost Shopify reckoned for the last pages.

    Shopify reckons a page's cost as a fixed part plus ``first`` times the cost of a
    node. After one page the whole cost is taken as per-node (which errs on the small
    side); once two pages of different sizes were reckoned, the two parts are told apart
    and the next page is as large as fits. A wrong guess costs one MAX_COST_EXCEEDED
    answer, after which :meth:`too_costly` shrinks the page.
    """

    def __init__(self, first: int, most: int):
        self.most = most
        self.first = max(1, min(first, most))
        self._seen: tuple[int, float] | None = None  # (first, requested cost) of an earlier page

    def observe(self, cost: dict[str, Any]) -> None:
        requested = cost.get("requestedQueryCost")
        if not isinstance(requested, (int, float)) or requested <= 0:
            return  # no cost block: keep the size that worked
        available = (cost.get("throttleStatus") or {}).get("maximumAvailable")
        limit = min(MAX_QUERY_COST, available) if isinstance(available, (int, float)) and available > 0 \
            else MAX_QUERY_COST
        budget = limit * COST_TARGET
        seen, self._seen = self._seen, (self.first, requested)
        if seen is not None and seen[0] != self.first:
            per_node = (requested - seen[1]) / (self.first - seen[0])
            fixed = requested - per_node * self.first
            if per_node <= 0:  # the cost does not grow with the page: as large as allowed
                self.first = self.most if requested <= budget else max(1, self.first // 2)
                return
            if fixed >= 0:
                self.first = max(1, min(self.most, int((budget - fixed) // per_node)))
                return
        elif seen is not None and requested <= budget:
            return  # the same size reckoned again, within the budget: keep it
        per_node = requested / self.first  # includes the query's fixed part: errs on the small side
        self.first = max(1, min(self.most, int(budget // per_node)))

    def query_changed(self) -> None:
        """Another query from now on (fewer fields): earlier costs say nothing about it."""
        self._seen = None

    def too_costly(self, error: QueryTooCostly) -> None:
        """Shrink after MAX_COST_EXCEEDED; a single node over the limit is an error."""
        if self.first == 1:
            raise error
        cost, limit = error.cost, error.max_cost or MAX_QUERY_COST
        scaled = int(self.first * limit * COST_TARGET // cost) if cost else self.first // 2
        if cost:  # what this size was reckoned at: the next page's cost fits on it
            self._seen = (self.first, cost)
        self.first = max(1, min(self.first - 1, scaled))


class ShopifyConfig(HttpConfig):
    base_url: str = Field("", description="https://<shop>.myshopify.com; derived from shop if empty.")
    shop: str | None = Field(None, description="Shop domain: my-shop or my-shop.myshopify.com.")
    access_token: SecretStr = Field(description="Admin API access token (X-Shopify-Access-Token).")
    api_version: str = Field("2026-10", pattern=r"^\d{4}-(01|04|07|10)$",
                             description="Pinned Admin API version; each is supported for 12 months.")
    include_staff: bool = Field(True, description="Read orders' staff member as sales rep (needs read_users, "
                                                  "Shopify Plus/Advanced; elsewhere left empty, said once per run).")
    page_size: PageSizes = Field(default_factory=PageSizes)
    bulk_backfill: bool = Field(False, description="First sync of a stream as one bulk export.")
    bulk_threshold: int | None = Field(None, ge=1, description="First sync as a bulk export when the "
                                                               "shop has at least this many records.")
    bulk_poll_seconds: float = Field(10.0, gt=0, description="Seconds between bulk status checks.")
    bulk_timeout: float = Field(6 * 3600.0, gt=0, description="Seconds to wait for a bulk export per run.")
    bulk_download_seconds: float = Field(3600.0, gt=0, description="Network time one bulk result file may "
                                                                   "take to download (each line is capped "
                                                                   "at max_body_bytes).")

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
        self._staff_warned = False

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
        # Pages are handed on together, up to BULK_PAGE records: one warehouse transaction
        # for several requests (Shopify's cost rules keep a page of orders near 7 of them),
        # as a bulk export's records are. What was read before a failure is still handed
        # on (and kept).
        group = max(BULK_PAGE, getattr(self.config.page_size, resource.name))
        batch: list[Record] = []
        handed = False
        try:
            for records in self._pages(resource, search):
                for record in records:
                    if prepare:
                        prepare(record)
                batch.extend(records)
                if len(batch) >= group:
                    handed = True
                    yield batch
                    batch = []
        except Exception:
            if batch:
                yield batch
            raise
        if batch or not handed:
            yield batch
        return None

    def _pages(self, resource: Resource, search: str | None) -> Iterator[list[Record]]:
        size = PageSize(FIRST_PAGE[resource.name], getattr(self.config.page_size, resource.name))

        def fetch(after: str | None) -> tuple[list[Record], str | None]:
            nonlocal resource
            while True:
                try:
                    data = self.client.query(queries.page_query(resource),
                                             {"first": size.first, "after": after, "query": search},
                                             what=resource.name, optional=(STAFF_FIELD,))
                except QueryTooCostly as exc:
                    size.too_costly(exc)
                    log.info("shopify %s: a page of that size costs %s points; asking for %d nodes",
                             resource.name, exc.cost, size.first)
                    continue
                break
            size.observe(self.client.last_cost)
            if STAFF_FIELD in self.client.denied and resource is queries.ORDERS_WITH_STAFF:
                self._say_staff_denied()
                resource = queries.ORDERS  # no use asking again this run
                size.query_changed()
            connection = data.get(resource.name)
            if not isinstance(connection, dict):
                raise SourceError(f"shopify {resource.name}: the response has no {resource.name}")
            records = nodes_of(connection)
            for record in records:
                self._complete_children(resource, record)
            return records, next_cursor(connection)

        yield from paginate(fetch, what=f"shopify {resource.name}")

    def _say_staff_denied(self) -> None:
        if not self._staff_warned:
            self._staff_warned = True
            log.warning("shopify orders: loaded without sales reps: Shopify denied staffMember, which needs "
                        "the read_users access scope, granted only to Shopify Plus or Advanced shops (or finance "
                        "embedded apps); set include_staff: false to stop asking")

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
        while True:
            try:
                if not operation_id:
                    operation_id = self.client.start_bulk(queries.bulk_query(resource, search), what=what)
                    yield Page([], {"bulk_operation": operation_id})  # a killed run resumes this export
                operation = self.client.wait_for_bulk(operation_id, poll_seconds=self.config.bulk_poll_seconds,
                                                      timeout=self.config.bulk_timeout, what=what)
                break
            except BulkFailed as exc:
                if exc.code != "ACCESS_DENIED" or resource is not queries.ORDERS_WITH_STAFF:
                    raise
                self._say_staff_denied()  # most likely staffMember: export the orders without it
                resource, operation_id = queries.ORDERS, None
        newest: str | None = None
        if operation.get("url"):  # no url: nothing matched
            page: list[Record] = []
            for record in join_bulk(resource, self.client.bulk_lines(
                    operation["url"], what=what, read_budget=self.config.bulk_download_seconds)):
                if prepare:
                    prepare(record)
                updated = record.get("updatedAt")
                if isinstance(updated, str) and (newest is None or updated > newest):
                    newest = updated
                page.append(record)
                if len(page) == BULK_PAGE:
                    yield Page(page, {"bulk_operation": operation_id})
                    page = []
            if page:
                yield Page(page, {"bulk_operation": operation_id})
        # The export is a snapshot taken when it started: later changes come with the
        # next incremental run, which starts there.
        return {"cursor": operation.get("createdAt") or newest}

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


def join_bulk(resource: Resource, objects: Iterable[dict[str, Any]]) -> Iterator[Record]:
    """Bulk JSONL objects -> records shaped like a page's: children under their parent.

    Each child line names its parent in ``__parentId``; lines may come in any order
    (Shopify stopped grouping children after their parent in 2026-01), so no record is
    known to be whole before the file's end. The lines are spooled into a temporary
    SQLite file and the records read back one at a time, in the file's order: memory
    holds one record and SQLite's bounded page cache, whatever the export's size.
    """
    with tempfile.TemporaryDirectory(prefix="crmhub-shopify-bulk-") as folder:
        db = sqlite3.connect(Path(folder) / "bulk.db")
        try:
            _spool(db, resource, objects)
            orphan = db.execute("SELECT parent FROM child WHERE parent NOT IN (SELECT id FROM root) LIMIT 1").fetchone()
            if orphan:
                raise SourceError(f"shopify {resource.name}: the bulk result has children of {orphan[0]!r} "
                                  "but not the record itself")
            roots = db.execute("SELECT id, body FROM root ORDER BY seq")
            for root_id, body in roots:
                record = json.loads(body)
                record.update({c.field: {"nodes": []} for c in resource.children})
                for field, child in db.execute("SELECT field, body FROM child WHERE parent = ? ORDER BY seq",
                                               (root_id,)):
                    record[field]["nodes"].append(json.loads(child))
                yield record
        finally:
            db.close()


def _spool(db: sqlite3.Connection, resource: Resource, objects: Iterable[dict[str, Any]]) -> None:
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")  # a scratch file: nothing to recover after a crash
    db.execute("CREATE TABLE root (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, body TEXT NOT NULL)")
    db.execute("CREATE TABLE child (seq INTEGER PRIMARY KEY, parent TEXT NOT NULL, field TEXT NOT NULL, "
               "body TEXT NOT NULL)")
    roots: list[tuple[str, str]] = []
    children: list[tuple[str, str, str]] = []

    def flush() -> None:
        db.executemany("INSERT OR REPLACE INTO root (id, body) VALUES (?, ?)", roots)
        db.executemany("INSERT INTO child (parent, field, body) VALUES (?, ?, ?)", children)
        roots.clear()
        children.clear()

    for obj in objects:
        parent = obj.pop("__parentId", None)
        if parent is None:
            if not isinstance(obj.get("id"), str):
                raise SourceError(f"shopify {resource.name}: a bulk result line has no id")
            roots.append((obj["id"], json.dumps(obj)))
        else:
            child = resource.child(gid_type(obj.get("id")) or "")
            if child is None:
                raise SourceError(f"shopify {resource.name}: unexpected object {obj.get('id')!r} in the bulk result")
            children.append((str(parent), child.field, json.dumps(obj)))
        if len(roots) + len(children) >= 1000:
            flush()
    flush()
    db.execute("CREATE INDEX child_parent ON child (parent, seq)")
    db.commit()
