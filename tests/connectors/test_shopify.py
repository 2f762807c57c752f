"""The shopify connector against a real HTTP server replaying GraphQL Admin API payloads.

The server (pytest-httpserver on 127.0.0.1) answers each GraphQL operation from a
script of recorded responses (tests/fixtures/shopify), and records what was asked;
syncs go into the warehouse on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import re
import time
from collections import defaultdict, deque
from decimal import Decimal
from typing import Any

import pytest
import requests
from werkzeug import Request, Response

from connectors.sdk import SourceError, StreamState
from connectors.shopify import ShopifyConfig, ShopifyConnector
from connectors.shopify.client import QueryTooCostly, ShopifyClient, throttle_seconds
from connectors.shopify.streams import PageSize
from crm_model import identity
from crm_model.sync import load_state, sync
from tests.conftest import FIXTURES, load_json, rows

VERSION = "2026-10"
ENDPOINT = f"/admin/api/{VERSION}/graphql.json"
TOKEN = "shpat_test_5ecret_token"
SHOP = {"data": {"shop": {"currencyCode": "USD"}}}
UTC = dt.UTC
PAGE1_END = load_json("shopify", "orders_page1.json")["data"]["orders"]["pageInfo"]["endCursor"]


class FakeShopify:
    """A GraphQL endpoint that answers each operation (ShopifyOrders, ...) from a script."""

    def __init__(self, server):
        self.script: dict[str, deque] = defaultdict(deque)
        self.calls: list[dict[str, Any]] = []
        server.expect_request(ENDPOINT, method="POST").respond_with_handler(self.answer)

    def add(self, operation: str, body: Any, status: int = 200, headers: dict | None = None) -> FakeShopify:
        self.script[operation].append((status, body, headers or {}))
        return self

    def answer(self, request: Request) -> Response:
        payload = request.get_json()
        operation = re.match(r"\s*(?:query|mutation)\s+(\w+)", payload["query"])[1]
        self.calls.append({"op": operation, "variables": payload.get("variables") or {},
                           "query": payload["query"], "token": request.headers.get("X-Shopify-Access-Token")})
        if not self.script[operation]:
            return Response(json.dumps({"errors": f"no scripted answer for {operation}"}), 400,
                            content_type="application/json")
        status, body, headers = self.script[operation].popleft()
        text = body if isinstance(body, str) else json.dumps(body)
        return Response(text, status, headers={"Content-Type": "application/json",
                                               "X-Shopify-API-Version": VERSION, **headers})

    def ops(self) -> list[str]:
        return [c["op"] for c in self.calls]

    def variables(self, operation: str) -> list[dict]:
        return [c["variables"] for c in self.calls if c["op"] == operation]


def fixture(name: str) -> dict:
    return load_json("shopify", name)


def shopify(server, start_date: dt.date | None = None, **config: Any) -> ShopifyConnector:
    config.setdefault("bulk_poll_seconds", 0.01)
    return ShopifyConnector(ShopifyConfig(base_url=server.url_for("/"), access_token=TOKEN, **config),
                            source="shop", start_date=start_date)


def by_id(engine, table: str) -> dict[str, dict]:
    return {r["external_id"]: r for r in rows(engine, table)}


def state(engine, stream: str) -> dict:
    with engine.connect() as conn:
        return load_state(conn, "shop", stream)


# --------------------------------------------------------------------------- reading


def test_first_sync_reads_every_page_into_the_warehouse(httpserver, warehouse):
    fake = FakeShopify(httpserver)
    fake.add("ShopifyOrders", fixture("orders_page1.json"))
    fake.add("ShopifyOrders", "<html>502 Bad Gateway</html>", status=502)  # retried
    fake.add("ShopifyOrders", fixture("orders_page2.json"))
    fake.add("ShopifyCustomers", fixture("customers_page1.json"))
    fake.add("ShopifyShop", SHOP).add("ShopifyProducts", fixture("products_page1.json"))

    result = sync(warehouse, "shop", shopify(httpserver, start_date=dt.date(2026, 1, 1)), "shopify")

    assert result.status == "success", result.errors
    assert (result.read, result.loaded, result.rejected) == (7, 7, 0)
    since = "updated_at:>='2026-01-01T00:00:00Z'"
    # page 1 (5 orders) was reckoned at 572 points: 7 orders fit in 90% of the 1,000-point limit
    assert fake.variables("ShopifyOrders") == [
        {"first": 5, "after": None, "query": since},
        {"first": 7, "after": PAGE1_END, "query": since},
        {"first": 7, "after": PAGE1_END, "query": since},
    ]
    assert all(call["token"] == TOKEN for call in fake.calls)
    assert "sortKey: UPDATED_AT" in fake.calls[0]["query"] and "staffMember" in fake.calls[0]["query"]

    orders = by_id(warehouse, "customer_order")
    assert sorted(orders) == ["gid://shopify/Order/1001", "gid://shopify/Order/1002", "gid://shopify/Order/1003"]
    first = orders["gid://shopify/Order/1001"]
    assert (first["total"], first["discount"], first["tax"], first["subtotal"], first["currency"]) == (
        Decimal("112.12"), Decimal("10.97"), Decimal("8.39"), Decimal("109.70"), "USD")
    assert (first["utm_campaign"], first["tags"], first["person_ref"]) == (
        "jan_sale", ["first-order", "newsletter"], "customer:7001")
    assert orders["gid://shopify/Order/1002"]["refunded"] == Decimal("30.13")
    assert orders["gid://shopify/Order/1003"]["sales_rep"] == "Alex Morgan"

    lines = by_id(warehouse, "order_line")
    assert len(lines) == 5
    assert lines["gid://shopify/LineItem/100101"]["total"] == Decimal("53.82")
    products = by_id(warehouse, "product")
    assert {line["product_id"] for line in lines.values()} <= set(products)
    assert products["gid://shopify/ProductVariant/8102"]["parent_id"] == "gid://shopify/Product/8001"
    assert len(products) == 5

    people = by_id(warehouse, "source_person")
    assert sorted(people) == ["customer:7001", "customer:7002"]
    jane = people["customer:7001"]
    assert (jane["email"], jane["city"], jane["marketing_consent"], jane["lifecycle_stage"]) == (
        "jane.doe@example.com", "San Francisco", True, "customer")
    assert state(warehouse, "orders") == {"cursor": "2026-01-20T10:05:00Z"}
    assert state(warehouse, "products") == {"cursor": "2026-01-20T10:02:13Z"}

    with warehouse.begin() as conn:
        identity.resolve(conn)
    orders = by_id(warehouse, "customer_order")
    people = by_id(warehouse, "source_person")
    assert orders["gid://shopify/Order/1003"]["person_id"] == people["customer:7001"]["person_id"] is not None


def test_an_edited_order_is_updated_not_duplicated(httpserver, warehouse):
    fake = FakeShopify(httpserver)
    fake.add("ShopifyOrders", fixture("orders_page1.json")).add("ShopifyOrders", fixture("orders_page2.json"))
    sync(warehouse, "shop", shopify(httpserver), "shopify", streams=["orders"])
    assert fake.variables("ShopifyOrders")[0]["query"] is None  # no start date: everything

    fake.add("ShopifyOrders", fixture("orders_updated.json"))
    result = sync(warehouse, "shop", shopify(httpserver), "shopify", streams=["orders"])

    assert result.status == "success" and result.read == 1
    assert fake.variables("ShopifyOrders")[-1] == {
        "first": 5, "after": None, "query": "updated_at:>='2026-01-20T10:05:00Z'"}  # the saved cursor
    orders = by_id(warehouse, "customer_order")
    assert len(orders) == 3 and len(rows(warehouse, "order_line")) == 5
    edited = orders["gid://shopify/Order/1001"]
    assert edited["status"] == "fulfilled" and "delivered" in edited["tags"]
    assert edited["updated_at"] == dt.datetime(2026, 2, 3, 16, 45, 12, tzinfo=UTC)
    assert "neighbour at no. 1452" in edited["special_instructions"]
    assert state(warehouse, "orders") == {"cursor": "2026-02-03T16:45:12Z"}


def test_line_items_beyond_the_first_page_are_fetched(httpserver, warehouse):
    page = fixture("orders_page2.json")
    order = page["data"]["orders"]["edges"][0]["node"]
    order["lineItems"]["pageInfo"] = {"hasNextPage": True, "endCursor": "LI-1"}
    extra = copy.deepcopy(order["lineItems"]["nodes"][0])
    extra.update(id="gid://shopify/LineItem/100302", sku="TSHIRT-ORG-M", quantity=1, discountAllocations=[],
                 variant={"id": "gid://shopify/ProductVariant/8101"})
    fake = FakeShopify(httpserver).add("ShopifyOrders", page).add("ShopifyOrderLineItems", {
        "data": {"node": {"lineItems": {"nodes": [extra], "pageInfo": {"hasNextPage": False, "endCursor": "LI-2"}}}}})

    result = sync(warehouse, "shop", shopify(httpserver), "shopify", streams=["orders"])

    assert result.status == "success", result.errors
    assert fake.variables("ShopifyOrderLineItems") == [{"id": "gid://shopify/Order/1003", "after": "LI-1"}]
    assert sorted(by_id(warehouse, "order_line")) == ["gid://shopify/LineItem/100301", "gid://shopify/LineItem/100302"]
    assert by_id(warehouse, "customer_order")["gid://shopify/Order/1003"]["subtotal"] == Decimal("149.70")


def test_small_pages_are_written_together_up_to_500_records(httpserver, warehouse, monkeypatch):
    fake = FakeShopify(httpserver)
    for _ in range(2):
        fake.add("ShopifyOrders", fixture("orders_page1.json")).add("ShopifyOrders", fixture("orders_page2.json"))
    together = sync(warehouse, "shop", shopify(httpserver), "shopify", streams=["orders"])
    assert together.status == "success", together.errors
    assert (together.streams[0].pages, together.read) == (1, 3)  # two requests, one transaction
    monkeypatch.setattr("connectors.shopify.streams.BULK_PAGE", 2)
    apart = sync(warehouse, "shop", shopify(httpserver, page_size={"orders": 2}), "shopify", streams=["orders"],
                 full_refresh=True)
    assert (apart.streams[0].pages, apart.read) == (2, 3)
    assert len(fake.variables("ShopifyOrders")) == 4


def test_a_repeated_page_cursor_stops_the_stream(httpserver, warehouse):
    again = fixture("orders_page2.json")
    again["data"]["orders"]["pageInfo"] = {"hasNextPage": True, "endCursor": PAGE1_END}
    FakeShopify(httpserver).add("ShopifyOrders", fixture("orders_page1.json")).add("ShopifyOrders", again)
    result = sync(warehouse, "shop", shopify(httpserver), "shopify", streams=["orders"])
    assert result.status == "failed" and "twice" in result.errors[0]
    assert len(rows(warehouse, "customer_order")) == 3  # the pages read are kept


# --------------------------------------------------------------------------- throttling and errors


def test_throttle_wait_is_the_missing_points_over_the_restore_rate():
    assert throttle_seconds(fixture("throttled.json")) == pytest.approx((572 - 386) / 100)
    assert throttle_seconds(fixture("orders_page1.json")) is None  # not throttled
    assert throttle_seconds({"errors": [{"extensions": {"code": "THROTTLED"}}]}) is None  # no cost block


def as_response(body: dict) -> requests.Response:
    response = requests.Response()
    response.status_code, response._content = 200, json.dumps(body).encode()
    return response


def test_throttled_without_a_cost_block_backs_off_doubling():
    client = ShopifyClient("http://127.0.0.1:9", VERSION, TOKEN, timeout=1, max_retries=0)
    throttled = as_response({"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}]})
    assert [client.throttle_wait(throttled) for _ in range(3)] == [1.0, 2.0, 4.0]
    assert client.throttle_wait(as_response(fixture("customers_page1.json"))) is None
    assert client.throttle_wait(throttled) == 1.0  # a success in between starts over
    assert client.throttle_wait(as_response(fixture("throttled.json"))) == pytest.approx(1.86)


def test_a_throttled_query_waits_for_the_bucket_then_succeeds(httpserver, warehouse, caplog):
    throttled = fixture("throttled.json")
    throttled["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] = 522  # (572 - 522) / 100 = 0.5 s
    fake = FakeShopify(httpserver)
    fake.add("ShopifyCustomers", throttled).add("ShopifyCustomers", fixture("customers_page1.json"))

    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="crmhub.http"):
        result = sync(warehouse, "shop", shopify(httpserver), "shopify", streams=["customers"])
    waited = time.monotonic() - started

    assert result.status == "success" and result.loaded == 2
    assert "retry 1/5 in 0.5s after 200: throttled by the source" in caplog.text
    assert waited >= 0.5
    assert fake.ops() == ["ShopifyCustomers", "ShopifyCustomers"]


def test_a_throttled_429_waits_by_the_cost_math_not_retry_after(httpserver, warehouse):
    throttled = fixture("throttled.json")
    throttled["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] = 522  # (572 - 522) / 100 = 0.5 s
    fake = FakeShopify(httpserver)
    fake.add("ShopifyCustomers", throttled, status=429, headers={"Retry-After": "30"})
    fake.add("ShopifyCustomers", fixture("customers_page1.json"))
    started = time.monotonic()
    result = sync(warehouse, "shop", shopify(httpserver), "shopify", streams=["customers"])
    assert time.monotonic() - started < 10  # 0.5 s from the bucket, not the 30 s Retry-After
    assert result.status == "success" and len(rows(warehouse, "source_person")) == 2
    assert fake.ops() == ["ShopifyCustomers", "ShopifyCustomers"]


def test_a_bad_token_fails_at_once_with_a_clear_message(httpserver, warehouse):
    fake = FakeShopify(httpserver).add("ShopifyOrders", {
        "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}, status=401)
    result = sync(warehouse, "shop", shopify(httpserver), "shopify", streams=["orders"])
    assert result.status == "failed" and len(fake.calls) == 1
    message = result.errors[0]
    assert "401" in message and "check the credentials" in message and "Invalid API key" in message
    assert TOKEN not in message
    assert rows(warehouse, "customer_order") == [] and state(warehouse, "orders") == {}


def staff_denied(page: dict) -> dict:
    """A page as Shopify answers it to a shop without read_users: data, plus one error per order."""
    for edge in page["data"]["orders"]["edges"]:
        edge["node"]["staffMember"] = None
    page["errors"] = [{
        "message": "Access denied for staffMember field. Required access: `read_users` access scope. Also: The app "
                   "must be a finance embedded app or installed on a Shopify Plus or Advanced store.",
        "locations": [{"line": 20, "column": 5}], "path": ["orders", "edges", n, "node", "staffMember"],
        "extensions": {"code": "ACCESS_DENIED", "documentation": "https://shopify.dev/api/usage/access-scopes",
                       "requiredAccess": "`read_users` access scope."}}
        for n in range(len(page["data"]["orders"]["edges"]))]
    return page


def test_staff_members_denied_load_the_orders_without_sales_reps_and_say_so_once(httpserver, warehouse, caplog):
    fake = FakeShopify(httpserver)
    fake.add("ShopifyOrders", staff_denied(fixture("orders_page1.json")))
    no_staff = fixture("orders_page2.json")
    del no_staff["data"]["orders"]["edges"][0]["node"]["staffMember"]
    fake.add("ShopifyOrders", no_staff)

    with caplog.at_level(logging.WARNING, logger="crmhub.shopify"):
        result = sync(warehouse, "shop", shopify(httpserver), "shopify", streams=["orders"])

    assert result.status == "success", result.errors
    orders = by_id(warehouse, "customer_order")
    assert len(orders) == 3 and all(o["sales_rep"] is None for o in orders.values())
    assert "staffMember" in fake.calls[0]["query"]
    assert "staffMember" not in fake.calls[1]["query"]  # denied once: not asked again this run
    warnings = [r.getMessage() for r in caplog.records if "staffMember" in r.getMessage()]
    assert len(warnings) == 1 and "read_users" in warnings[0] and "Plus or Advanced" in warnings[0]


def test_an_error_on_a_field_that_is_not_optional_still_fails(httpserver, warehouse):
    page = fixture("orders_page2.json")
    page["errors"] = [{"message": "Access denied for customer field.", "path": ["orders", "edges", 0, "node",
                                                                              "customer"],
                       "extensions": {"code": "ACCESS_DENIED"}}]
    FakeShopify(httpserver).add("ShopifyOrders", page)
    result = sync(warehouse, "shop", shopify(httpserver), "shopify", streams=["orders"])
    assert result.status == "failed" and "ACCESS_DENIED Access denied for customer field" in result.errors[0]
    assert rows(warehouse, "customer_order") == []  # nothing half-read was loaded


TOO_COSTLY = {"errors": [{
    "message": "Query cost is 1208, which exceeds the single query max cost limit (1000).",
    "extensions": {"code": "MAX_COST_EXCEEDED", "cost": 1208, "maxCost": 1000}}]}


def test_a_page_over_the_cost_limit_is_asked_again_smaller(httpserver):
    fake = FakeShopify(httpserver).add("ShopifyShop", SHOP)
    fake.add("ShopifyProducts", TOO_COSTLY).add("ShopifyProducts", fixture("products_page1.json"))
    connector = shopify(httpserver, page_size={"products": 60})
    pages = list(connector.products(StreamState()))
    assert sum(len(p) for p in pages) == 2
    # 25 products were reckoned at 1208 points: 18 fit in 90% of 1000
    assert [v["first"] for v in fake.variables("ShopifyProducts")] == [25, 18]


def test_the_page_size_setting_is_an_upper_bound_never_a_request_shopify_refuses(httpserver):
    fake = FakeShopify(httpserver).add("ShopifyShop", SHOP).add("ShopifyProducts", fixture("products_page1.json"))
    list(shopify(httpserver, page_size={"products": 3}).products(StreamState()))
    assert fake.variables("ShopifyProducts")[0]["first"] == 3
    with pytest.raises(ValueError, match="250"):
        ShopifyConfig(shop="s", access_token="x", page_size={"orders": 251})


def page_sizes(cost, pages: int = 5, most: int = 250) -> list[int]:
    """The sizes PageSize asks for when Shopify reckons ``cost(first)`` for every page."""
    size, asked = PageSize(5, most), []
    for _ in range(pages):
        asked.append(size.first)
        size.observe({"requestedQueryCost": cost(size.first), "throttleStatus": {"maximumAvailable": 2000.0}})
    return asked


def test_page_sizes_follow_the_fixed_and_per_node_cost_once_two_sizes_were_reckoned():
    # about 114 points an order (what the fixture's 5 orders cost): 7 orders fit, page after page
    assert page_sizes(lambda first: 2 + 114 * first) == [5, 7, 7, 7, 7]
    # a large fixed part and cheap nodes: the first guess is small, the second is the fit
    assert page_sizes(lambda first: 300 + 2 * first) == [5, 14, 250, 250, 250]
    assert page_sizes(lambda first: 100 + 4 * first) == [5, 37, 200, 200, 200]
    # a cost that does not grow with the page: as large as the setting allows
    assert page_sizes(lambda first: 572, most=100) == [5, 7, 100, 100, 100]


def test_a_page_reckoned_too_costly_teaches_the_next_size():
    def cost(first: int) -> int:  # what Shopify would reckon: 100 points plus 6 a node
        return 100 + 6 * first

    size = PageSize(200, 250)
    size.too_costly(QueryTooCostly("too costly", cost(200), 1000))  # 1300 points for 200 nodes
    assert size.first == 138  # 200 scaled down to 90% of the limit
    size.observe({"requestedQueryCost": cost(138)})
    assert size.first == 133 and cost(133) <= 900  # the two costs tell the fixed part apart


def test_a_single_node_over_the_cost_limit_is_a_clear_error(httpserver):
    fake = FakeShopify(httpserver).add("ShopifyShop", SHOP)
    for _ in range(10):
        fake.add("ShopifyProducts", TOO_COSTLY)
    with pytest.raises(SourceError, match=r"MAX_COST_EXCEEDED .*even one node per page costs too much"):
        list(shopify(httpserver, page_size={"products": 2}).products(StreamState()))
    assert [v["first"] for v in fake.variables("ShopifyProducts")] == [2, 1]


def test_a_fallen_forward_api_version_is_reported(httpserver, caplog):
    FakeShopify(httpserver).add("ShopifyShop", SHOP, headers={"X-Shopify-API-Version": "2027-01"})
    with caplog.at_level(logging.WARNING, logger="crmhub.shopify"):
        assert shopify(httpserver).shop_currency() == "USD"
    assert "asked for API version 2026-10, the shop answered with 2027-01" in caplog.text


# --------------------------------------------------------------------------- bulk export


def bulk_completed(server, path: str = "/results/bulk-5501.jsonl") -> dict:
    body = fixture("bulk_poll_completed.json")
    body["data"]["node"]["url"] = server.url_for(path) + "?GoogleAccessId=x&Signature=s3cr3t-sig"
    return body


BULK_JSONL = (FIXTURES / "shopify" / "bulk_orders.jsonl").read_text()


def test_the_first_sync_of_a_big_shop_is_a_bulk_export(httpserver, warehouse):
    fake = FakeShopify(httpserver)
    fake.add("ShopifyOrdersCount", {"data": {"ordersCount": {"count": 2, "precision": "EXACT"}}})
    fake.add("ShopifyBulkRun", fixture("bulk_run.json"))
    fake.add("ShopifyBulkPoll", fixture("bulk_poll_running.json")).add("ShopifyBulkPoll", bulk_completed(httpserver))
    httpserver.expect_request("/results/bulk-5501.jsonl").respond_with_data(BULK_JSONL, content_type="application/jsonl")

    result = sync(warehouse, "shop", shopify(httpserver, bulk_threshold=2, start_date=dt.date(2026, 1, 1)),
                  "shopify", streams=["orders"])

    assert result.status == "success", result.errors
    assert fake.ops() == ["ShopifyOrdersCount", "ShopifyBulkRun", "ShopifyBulkPoll", "ShopifyBulkPoll"]
    assert fake.variables("ShopifyOrdersCount") == [{"query": "updated_at:>='2026-01-01T00:00:00Z'", "limit": 2}]
    bulk_query = fake.variables("ShopifyBulkRun")[0]["query"]
    assert bulk_query.startswith("{ orders(query: \"updated_at:>='2026-01-01T00:00:00Z'\", sortKey: UPDATED_AT)")
    assert "lineItems { edges { node {" in bulk_query
    assert fake.variables("ShopifyBulkPoll") == [{"id": "gid://shopify/BulkOperation/5501"}] * 2
    download = next(req for req, _ in httpserver.log if req.path.endswith(".jsonl"))
    assert "X-Shopify-Access-Token" not in download.headers  # the token stays with Shopify

    orders = by_id(warehouse, "customer_order")
    assert sorted(orders) == ["gid://shopify/Order/1001", "gid://shopify/Order/1002"]
    assert orders["gid://shopify/Order/1001"]["status"] == "fulfilled"
    assert sorted(r["order_id"] for r in rows(warehouse, "order_line")) == [
        "gid://shopify/Order/1001"] * 2 + ["gid://shopify/Order/1002"] * 2
    # the next run reads what changed since the export started
    assert state(warehouse, "orders") == {"cursor": "2026-02-05T08:00:01Z"}


def test_a_bulk_export_survives_a_failed_download(httpserver, warehouse):
    fake = FakeShopify(httpserver)
    fake.add("ShopifyBulkRun", fixture("bulk_run.json")).add("ShopifyBulkPoll", bulk_completed(httpserver))
    httpserver.expect_oneshot_request("/results/bulk-5501.jsonl").respond_with_data("gone", status=503)

    first = sync(warehouse, "shop", shopify(httpserver, bulk_backfill=True), "shopify", streams=["orders"])

    assert first.status == "failed" and "503" in first.errors[0]
    assert "s3cr3t-sig" not in first.errors[0]
    assert state(warehouse, "orders") == {"bulk_operation": "gid://shopify/BulkOperation/5501"}

    fake.add("ShopifyBulkPoll", bulk_completed(httpserver)).add("ShopifyBulkPoll", bulk_completed(httpserver))
    httpserver.expect_request("/results/bulk-5501.jsonl").respond_with_data(BULK_JSONL, content_type="application/jsonl")
    second = sync(warehouse, "shop", shopify(httpserver, bulk_backfill=True), "shopify", streams=["orders"])

    assert second.status == "success", second.errors
    assert fake.ops().count("ShopifyBulkRun") == 1  # the same export, not a new one
    assert len(rows(warehouse, "customer_order")) == 2 and len(rows(warehouse, "order_line")) == 4
    assert state(warehouse, "orders") == {"cursor": "2026-02-05T08:00:01Z"}


def test_a_failed_bulk_export_is_a_source_error(httpserver, warehouse):
    failed = fixture("bulk_poll_running.json")
    failed["data"]["node"].update(status="FAILED", errorCode="INTERNAL_SERVER_ERROR")
    fake = FakeShopify(httpserver).add("ShopifyBulkRun", fixture("bulk_run.json")).add("ShopifyBulkPoll", failed)
    result = sync(warehouse, "shop", shopify(httpserver, bulk_backfill=True), "shopify", streams=["orders"])
    assert result.status == "failed" and "ended FAILED (INTERNAL_SERVER_ERROR)" in result.errors[0]
    assert fake.ops() == ["ShopifyBulkRun", "ShopifyBulkPoll"]


def test_a_bulk_export_denied_for_staff_members_runs_again_without_them(httpserver, warehouse, caplog):
    denied = fixture("bulk_poll_running.json")
    denied["data"]["node"].update(status="FAILED", errorCode="ACCESS_DENIED")
    fake = FakeShopify(httpserver).add("ShopifyBulkRun", fixture("bulk_run.json")).add("ShopifyBulkPoll", denied)
    fake.add("ShopifyBulkRun", fixture("bulk_run.json")).add("ShopifyBulkPoll", bulk_completed(httpserver))
    httpserver.expect_request("/results/bulk-5501.jsonl").respond_with_data(BULK_JSONL, content_type="application/jsonl")

    with caplog.at_level(logging.WARNING, logger="crmhub.shopify"):
        result = sync(warehouse, "shop", shopify(httpserver, bulk_backfill=True), "shopify", streams=["orders"])

    assert result.status == "success", result.errors
    first, second = fake.variables("ShopifyBulkRun")
    assert "staffMember" in first["query"] and "staffMember" not in second["query"]
    assert len(rows(warehouse, "customer_order")) == 2
    assert sum("staffMember" in r.getMessage() for r in caplog.records) == 1


# --------------------------------------------------------------------------- config


def test_config_derives_the_url_from_the_shop_and_hides_the_token():
    config = ShopifyConfig(shop="crmhub-demo", access_token=TOKEN)
    assert config.base_url == "https://crmhub-demo.myshopify.com" and config.api_version == VERSION
    assert ShopifyConfig(shop="https://shop.example.com/", access_token="x").base_url == "https://shop.example.com"
    assert TOKEN not in repr(config)
    with pytest.raises(ValueError, match="set shop"):
        ShopifyConfig(access_token="x")
    with pytest.raises(ValueError, match="api_version"):
        ShopifyConfig(shop="s", access_token="x", api_version="2026-02")
