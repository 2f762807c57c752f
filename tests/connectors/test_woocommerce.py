"""The WooCommerce connector against a real HTTP server replaying the documented payloads.

The stand-in shop serves tests/fixtures/woocommerce/ by path and ``page``, with the
X-WP-Total / X-WP-TotalPages headers WooCommerce sends, and syncs into the warehouse
on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from werkzeug import Request, Response

from connectors.sdk import SourceError, StreamState
from connectors.woocommerce import API, WooCommerceConfig, WooCommerceConnector
from crm_model.sync import load_state, sync
from tests.conftest import load_json, rows

UTC = dt.UTC
KEY, SECRET = "ck_live_0123456789abcdef", "cs_live_fedcba9876543210"


class Shop:
    """A WooCommerce stand-in: list endpoints paged like WooCommerce pages them."""

    def __init__(self, server, *, headers: bool = True):
        self.server = server
        self.headers = headers
        self.pages: dict[str, list[list[dict]]] = {
            "orders": [load_json("woocommerce", "orders_page1.json"), load_json("woocommerce", "orders_page2.json")],
            "customers": [load_json("woocommerce", "customers.json")],
            "products": [load_json("woocommerce", "products.json")],
            "products/reviews": [load_json("woocommerce", "reviews.json")],
        }
        self.modified_orders: list[dict] | None = None  # served when modified_after is asked
        for resource in self.pages:
            server.expect_request(f"{API}/{resource}").respond_with_handler(
                lambda request, resource=resource: self.listing(resource, request))
        server.expect_request(f"{API}/data/currencies/current").respond_with_json(
            load_json("woocommerce", "currency_current.json"))

    def listing(self, resource: str, request: Request) -> Response:
        pages = self.pages[resource]
        if resource == "orders" and "modified_after" in request.args and self.modified_orders is not None:
            pages = [self.modified_orders]
        page = int(request.args.get("page", "1"))
        body = pages[page - 1] if page <= len(pages) else []
        headers = {}
        if self.headers:
            headers = {"X-WP-Total": str(sum(len(p) for p in pages)), "X-WP-TotalPages": str(len(pages))}
        return Response(json.dumps(body), content_type="application/json", headers=headers)

    def requests(self, resource: str) -> list[dict[str, str]]:
        return [dict(r.args) for r, _ in self.server.log if r.path == f"{API}/{resource}"]


def connector(server, **config: Any) -> WooCommerceConnector:
    config = {"base_url": server.url_for("/"), "consumer_key": KEY, "consumer_secret": SECRET,
              "page_size": 2, "max_retries": 2, **config}
    return WooCommerceConnector(WooCommerceConfig(**config), source="shop")


def by_id(table: list[dict]) -> dict[str, dict]:
    return {r["external_id"]: r for r in table}


def test_full_sync_lands_orders_people_products_and_reviews(warehouse, httpserver):
    Shop(httpserver)
    result = sync(warehouse, "shop", connector(httpserver), "woocommerce")

    assert result.status == "success", result.errors
    assert (result.read, result.loaded, result.rejected) == (10, 10, 0)
    orders = by_id(rows(warehouse, "customer_order"))
    assert set(orders) == {"1198", "1201", "1202"}
    alice = orders["1202"]
    assert (alice["subtotal"], alice["discount"], alice["tax"], alice["total"], alice["refunded"]) == (
        Decimal("68.00"), Decimal("6.80"), Decimal("4.90"), Decimal("73.60"), Decimal(0))
    assert alice["currency"] == "USD" and alice["status"] == "processing"
    assert alice["ordered_at"] == dt.datetime(2025, 9, 10, 23, 22, 8, tzinfo=UTC)  # the _gmt value, as UTC
    assert alice["special_instructions"].startswith("Please leave the parcel at the back door")
    assert alice["person_ref"] == "customer:57"
    # a partial refund: total stays, refunded is the refunds' sum, the status is WooCommerce's
    assert (orders["1198"]["total"], orders["1198"]["refunded"], orders["1198"]["status"]) == (
        Decimal("79.00"), Decimal("12.00"), "completed")
    assert orders["1201"]["person_ref"] == "order:1201"  # a guest is keyed by the order

    lines = by_id(rows(warehouse, "order_line"))
    assert set(lines) == {"481", "482", "501", "502", "511"}
    assert (lines["501"]["order_id"], lines["501"]["quantity"], lines["501"]["unit_price"],
            lines["501"]["discount"], lines["501"]["total"]) == (
        "1202", Decimal(2), Decimal("25.00"), Decimal("5.00"), Decimal("45.00"))

    people = by_id(rows(warehouse, "source_person"))
    assert set(people) == {"customer:57", "customer:58", "order:1201", "review:88", "review:91"}
    bob = people["order:1201"]
    assert (bob["email"], bob["phone"], bob["company"], bob["street"], bob["postal_code"], bob["country"]) == (
        "bob.martinez@example.com", "+17185550199", "Martinez Design LLC", "55 Water St, Suite 300", "11201", "US")
    assert people["customer:57"]["shop_customer_id"] == "57"
    assert people["customer:57"]["phone"] == "+14155550142"  # (415) 555-0142 read in the billing country
    assert people["customer:57"]["lifecycle_stage"] == "customer"

    products = by_id(rows(warehouse, "product"))
    assert (products["320"]["price"], products["320"]["currency"], products["320"]["category"]) == (
        Decimal("14.00"), "USD", "Kitchen")
    assert products["330"]["category"] == "Kitchen, Accessories"
    feedback = by_id(rows(warehouse, "feedback"))
    assert (feedback["88"]["rating"], feedback["88"]["product_id"], feedback["88"]["person_ref"]) == (
        Decimal(4), "320", "review:88")
    assert people["review:88"]["email"] == "carol.okafor@example.com"


def test_pages_follow_the_headers_and_keys_go_as_basic_auth(warehouse, httpserver):
    shop = Shop(httpserver)
    sync(warehouse, "shop", connector(httpserver), "woocommerce", streams=["orders", "customers"])

    asked = shop.requests("orders")
    assert [a["page"] for a in asked] == ["1", "2"]  # X-WP-TotalPages is 2: no third request
    assert all(a["per_page"] == "2" and a["orderby"] == "id" and a["order"] == "asc" for a in asked)
    assert "modified_after" not in asked[0]  # no start_date, no cursor: everything
    assert shop.requests("customers") == [{"role": "customer", "orderby": "id", "order": "asc",
                                           "per_page": "2", "page": "1"}]  # one full page of one
    request = httpserver.log[0][0]
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
    assert "consumer_key" not in request.args


def test_paging_stops_on_a_short_or_empty_page_without_headers(warehouse, httpserver):
    shop = Shop(httpserver, headers=False)  # a proxy that strips X-WP-* headers
    shop.pages["products/reviews"] = [load_json("woocommerce", "reviews.json"), []]
    result = sync(warehouse, "shop", connector(httpserver), "woocommerce", streams=["products", "reviews"])

    assert result.status == "success", result.errors
    assert [a["page"] for a in shop.requests("products")] == ["1", "2"]  # 2 + 1: the short page ends it
    assert [a["page"] for a in shop.requests("products/reviews")] == ["1", "2"]  # 2 + 0
    assert len(rows(warehouse, "product")) == 3 and len(rows(warehouse, "feedback")) == 2


def test_an_order_edited_after_the_first_sync_is_updated_not_duplicated(warehouse, httpserver):
    shop = Shop(httpserver)
    sync(warehouse, "shop", connector(httpserver), "woocommerce", streams=["orders"])
    with warehouse.connect() as conn:
        assert load_state(conn, "shop", "orders") == {"cursor": "2025-09-10T23:22:31"}
    assert by_id(rows(warehouse, "customer_order"))["1201"]["status"] == "processing"

    shop.modified_orders = load_json("woocommerce", "orders_updated.json")
    result = sync(warehouse, "shop", connector(httpserver), "woocommerce", streams=["orders"])

    assert result.read == 1
    last = shop.requests("orders")[-1]
    # the cursor minus five minutes of overlap, in UTC, compared with the GMT dates
    assert (last["modified_after"], last["dates_are_gmt"]) == ("2025-09-10T23:17:31", "true")
    orders = by_id(rows(warehouse, "customer_order"))
    assert len(orders) == 3
    assert orders["1201"]["status"] == "completed"
    assert orders["1201"]["updated_at"] == dt.datetime(2025, 9, 12, 12, 30, 44, tzinfo=UTC)
    assert orders["1201"]["total"] == Decimal("46.00")
    assert len(rows(warehouse, "order_line")) == 5
    with warehouse.connect() as conn:
        assert load_state(conn, "shop", "orders") == {"cursor": "2025-09-12T12:30:44"}


def test_start_date_starts_the_first_read(httpserver):
    Shop(httpserver)
    woo = WooCommerceConnector(WooCommerceConfig(base_url=httpserver.url_for("/"), consumer_key=KEY,
                                                 consumer_secret=SECRET), start_date=dt.date(2025, 9, 1))
    next(woo.orders(StreamState(start_date=woo.start_date)))
    assert httpserver.log[-1][0].args["modified_after"] == "2025-08-31T23:55:00"


def test_429_and_500_are_retried(warehouse, httpserver):
    httpserver.expect_oneshot_request(f"{API}/orders").respond_with_json(
        {"code": "too_many_requests", "message": "Slow down", "data": {"status": 429}},
        status=429, headers={"Retry-After": "1"})
    httpserver.expect_oneshot_request(f"{API}/customers").respond_with_data(
        "<html>502 Bad Gateway</html>", status=502, content_type="text/html")
    shop = Shop(httpserver)
    result = sync(warehouse, "shop", connector(httpserver), "woocommerce", streams=["orders", "customers"])

    assert result.status == "success", result.errors
    assert [a["page"] for a in shop.requests("orders")] == ["1", "1", "2"]
    assert len(shop.requests("customers")) == 2
    assert len(rows(warehouse, "customer_order")) == 3


def test_401_fails_each_stream_at_once_with_a_clear_message(warehouse, httpserver):
    httpserver.expect_request(f"{API}/orders").respond_with_json(load_json("woocommerce", "error_401.json"), status=401)
    result = sync(warehouse, "shop", connector(httpserver), "woocommerce", streams=["orders"])

    assert result.status == "failed"
    [error] = result.errors
    assert "401" in error and "check the credentials" in error and "Sorry, you cannot list resources." in error
    assert SECRET not in error and KEY not in error
    assert len(httpserver.log) == 1  # not retried


def test_query_string_auth_keeps_the_keys_out_of_messages(warehouse, httpserver):
    httpserver.expect_request(f"{API}/orders").respond_with_json(load_json("woocommerce", "error_401.json"), status=401)
    result = sync(warehouse, "shop", connector(httpserver, query_string_auth=True), "woocommerce", streams=["orders"])

    request = httpserver.log[0][0]
    assert (request.args["consumer_key"], request.args["consumer_secret"]) == (KEY, SECRET)
    assert "Authorization" not in request.headers
    [error] = result.errors
    assert "consumer_key=***" in error and "consumer_secret=***" in error
    assert SECRET not in error and KEY not in error


def test_a_page_that_is_not_a_json_list_stops_the_stream(httpserver):
    # WordPress with "Plain" permalinks answers /wp-json/... with its home page
    httpserver.expect_request(f"{API}/customers").respond_with_data("<html>Welcome</html>", content_type="text/html")
    with pytest.raises(SourceError, match="pretty permalinks"):
        next(connector(httpserver).customers(StreamState()))


def test_invalid_values_are_quarantined_with_reasons(warehouse, httpserver):
    shop = Shop(httpserver)
    broken = copy.deepcopy(shop.pages["orders"][1][0])
    broken.update(id=1199, number="1199", total="N/A")
    bad_email = copy.deepcopy(shop.pages["orders"][1][0])
    bad_email.update(id=1197, number="1197")
    bad_email["billing"]["email"] = "carol at example dot com"
    bad_email["line_items"] = []
    shop.pages["orders"] = [[*shop.pages["orders"][0], *shop.pages["orders"][1]], [broken, bad_email]]
    review = dict(shop.pages["products/reviews"][0][0], id=92, rating=9)
    shop.pages["products/reviews"] = [[*shop.pages["products/reviews"][0], review]]

    result = sync(warehouse, "shop", connector(httpserver, page_size=3), "woocommerce",
                  streams=["orders", "reviews"])

    # a bad billing email is a field warning (the order loads); a bad total or rating rejects,
    # and each reason names the record as the shop does
    assert (result.read, result.loaded, result.rejected, result.warnings) == (8, 6, 2, 1)
    reasons = {r["record_key"]: r["reason"] for r in rows(warehouse, "rejected_record")}
    assert reasons["1199"] == "WooCommerce order #1199: total: 'N/A' is not a number"
    assert reasons["92"] == "WooCommerce product review 92: rating: 9 is not between 0 and 5"
    (warning,) = rows(warehouse, "field_warning")
    assert (warning["record_key"], warning["field"]) == ("1197", "billing.email")
    assert warning["reason"].startswith("billing.email: 'carol at example dot com' is not a valid email address")
    assert set(by_id(rows(warehouse, "customer_order"))) == {"1197", "1198", "1201", "1202"}
