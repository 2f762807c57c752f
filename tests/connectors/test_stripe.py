"""The Stripe connector against a real HTTP server replaying the documented list payloads.

The stand-in API serves tests/fixtures/stripe/ by path and ``starting_after`` (newest
first, ``has_more`` on all but the last page) and syncs into the warehouse on SQLite
and PostgreSQL.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import itertools
import json
from decimal import Decimal
from typing import Any

from werkzeug import Request, Response

from connectors.sdk import StreamState
from connectors.stripe import StripeConfig, StripeConnector
from crm_model.sync import load_state, sync
from tests.conftest import load_json, rows

UTC = dt.UTC
KEY = "sk_test_51EXAMPLEsecretkeyXy9Q"


def fixture(name: str) -> dict:
    return load_json("stripe", name)


class StripeApi:
    """A Stripe stand-in: list endpoints paged with starting_after, plus invoice payments."""

    def __init__(self, server):
        self.server = server
        charges = [fixture("charges_page1.json"), fixture("charges_page2.json")]
        by_id = {c["id"]: c for page in charges for c in page["data"]}
        refunds = fixture("refunds_page1.json")
        for refund in refunds["data"]:  # what expand[]=data.charge returns
            refund["charge"] = copy.deepcopy(by_id[refund["charge"]])
        self.lists: dict[str, list[dict]] = {
            "/v1/customers": [fixture("customers_page1.json"), fixture("customers_page2.json")],
            "/v1/charges": charges,
            "/v1/invoices": [fixture("invoices_page1.json")],
            "/v1/refunds": [refunds],
        }
        self.since_cursor: dict[str, dict] = {}  # path -> the page served when created[gte] is asked
        for path in self.lists:
            server.expect_request(path).respond_with_handler(lambda request, path=path: self.listing(path, request))
        server.expect_request("/v1/invoice_payments").respond_with_handler(self.invoice_payments)

    def listing(self, path: str, request: Request) -> Response:
        pages = self.lists[path]
        if "created[gte]" in request.args and path in self.since_cursor:
            pages = [self.since_cursor[path]]
        after = request.args.get("starting_after")
        if after is None:
            return _json(pages[0])
        for previous, page in itertools.pairwise(pages):
            if previous["data"][-1]["id"] == after:
                return _json(page)
        return _json({"error": {"type": "invalid_request_error", "message": f"No such object: '{after}'",
                                "param": "starting_after"}}, 400)

    def invoice_payments(self, request: Request) -> Response:
        if request.args.get("payment[payment_intent]") == "pi_3S3hF3EXAMPLE0004":
            return _json(fixture("invoice_payments_pi_0004.json"))
        return _json(fixture("invoice_payments_empty.json"))

    def requests(self, path: str) -> list[dict[str, str]]:
        return [dict(r.args) for r, _ in self.server.log if r.path == path]


def _json(body: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json", headers=headers)


def connector(server, **config: Any) -> StripeConnector:
    config = {"base_url": server.url_for("/"), "secret_key": KEY, "page_size": 2, "max_retries": 2, **config}
    return StripeConnector(StripeConfig(**config), source="payments")


def by_id(table: list[dict]) -> dict[str, dict]:
    return {r["external_id"]: r for r in table}


def test_full_sync_counts_every_sale_once(warehouse, httpserver):
    api = StripeApi(httpserver)
    result = sync(warehouse, "payments", connector(httpserver), "stripe")

    assert result.status == "success", result.errors
    assert (result.read, result.loaded, result.rejected) == (10, 10, 0)
    orders = by_id(rows(warehouse, "customer_order"))
    # the invoice is an order; the charge that paid it (ch_...0004) is not a second one
    assert set(orders) == {"ch_3S5kR2EXAMPLE0001", "ch_3S4xY1EXAMPLE0002", "ch_3S0aZ9EXAMPLE0003",
                           "in_1S3hF2EXAMPLE0004"}
    alice = orders["ch_3S5kR2EXAMPLE0001"]
    assert (alice["total"], alice["refunded"], alice["currency"], alice["status"]) == (
        Decimal("73.60"), Decimal("15.00"), "USD", "partially_refunded")
    assert alice["person_ref"] == "cus_SxK2f9EXAMPLE3c"
    assert alice["ordered_at"] == dt.datetime.fromtimestamp(1757546550, UTC)
    kenji = orders["ch_3S4xY1EXAMPLE0002"]
    assert (kenji["total"], kenji["currency"], kenji["status"]) == (Decimal(3500), "JPY", "paid")  # zero-decimal
    assert (orders["ch_3S0aZ9EXAMPLE0003"]["status"], orders["ch_3S0aZ9EXAMPLE0003"]["refunded"]) == (
        "refunded", Decimal("20.00"))
    invoice = orders["in_1S3hF2EXAMPLE0004"]
    assert (invoice["total"], invoice["subtotal"], invoice["status"], invoice["order_number"]) == (
        Decimal("1050.00"), Decimal("1050.00"), "paid", "C3E5G7J9-0001")
    lines = by_id(rows(warehouse, "order_line"))
    assert {k: (r["order_id"], r["quantity"], r["unit_price"], r["total"]) for k, r in lines.items()} == {
        "il_1S3hF1EXAMPLE0004a": ("in_1S3hF2EXAMPLE0004", Decimal(1), Decimal("900.00"), Decimal("900.00")),
        "il_1S3hF1EXAMPLE0004b": ("in_1S3hF2EXAMPLE0004", Decimal(3), Decimal("50.00"), Decimal("150.00")),
    }

    people = by_id(rows(warehouse, "source_person"))
    assert set(people) == {"cus_SxK2f9EXAMPLE3c", "cus_SvT8q1EXAMPLE2b", "cus_SqB4m7EXAMPLE1a"}
    carol = people["cus_SqB4m7EXAMPLE1a"]
    assert (carol["email"], carol["phone"], carol["city"], carol["shop_customer_id"]) == (
        "carol.okafor@example.com", "+15125550107", "Austin", "cus_SqB4m7EXAMPLE1a")
    assert all(p["lifecycle_stage"] == "customer" for p in people.values())  # each paid something

    # pages: newest first, continued after the last id of the page before
    assert [a.get("starting_after") for a in api.requests("/v1/customers")] == [None, "cus_SvT8q1EXAMPLE2b"]
    assert [a.get("starting_after") for a in api.requests("/v1/charges")] == [None, "ch_3S4xY1EXAMPLE0002"]
    assert all(a["limit"] == "2" and "created[gte]" not in a for a in api.requests("/v1/charges"))
    assert api.requests("/v1/refunds")[0]["expand[]"] == "data.charge"
    # basil-era charges name no invoice: one look-up per payment intent, cached for the refunds
    assert sorted(a["payment[payment_intent]"] for a in api.requests("/v1/invoice_payments")) == [
        "pi_3S0aZ9EXAMPLE0003", "pi_3S3hF3EXAMPLE0004", "pi_3S4xY1EXAMPLE0002", "pi_3S5kR2EXAMPLE0001"]
    assert httpserver.log[0][0].headers["Authorization"] == f"Bearer {KEY}"


def test_a_charge_that_pays_a_shop_order_is_not_counted_again(warehouse, httpserver):
    StripeApi(httpserver)
    sync(warehouse, "payments", connector(httpserver, shop_order_metadata_keys=["woo_order_id"]), "stripe",
         streams=["charges", "refunds"])
    orders = by_id(rows(warehouse, "customer_order"))
    assert "ch_3S5kR2EXAMPLE0001" not in orders  # WooCommerce order #1202 holds this sale
    assert set(orders) == {"ch_3S4xY1EXAMPLE0002", "ch_3S0aZ9EXAMPLE0003"}


def test_a_refund_later_updates_the_order_and_created_gte_overlaps(warehouse, httpserver):
    api = StripeApi(httpserver)
    sync(warehouse, "payments", connector(httpserver, lookback_days=0), "stripe", streams=["charges", "refunds"])
    with warehouse.connect() as conn:
        assert load_state(conn, "payments", "charges") == {"cursor": 1757546550}  # max(created), not the last page's
        assert load_state(conn, "payments", "refunds") == {"cursor": 1757700000}

    # Alice's charge is refunded in full: the new refund carries the charge as it is now
    charge = copy.deepcopy(api.lists["/v1/charges"][0]["data"][0])
    charge.update(amount_refunded=7360, refunded=True)
    refund = copy.deepcopy(api.lists["/v1/refunds"][0]["data"][0])
    refund.update(id="re_3S5kR2EXAMPLE0001r2", amount=5860, created=1757800000, charge=charge)
    api.since_cursor["/v1/refunds"] = {"object": "list", "data": [refund], "has_more": False, "url": "/v1/refunds"}
    api.since_cursor["/v1/charges"] = {"object": "list", "data": [charge], "has_more": False, "url": "/v1/charges"}
    result = sync(warehouse, "payments", connector(httpserver), "stripe", streams=["charges", "refunds"])

    assert result.read == 2
    # the cursor minus the default 7-day lookback: gte, so the edge second is read again
    assert api.requests("/v1/charges")[-1]["created[gte]"] == str(1757546550 - 7 * 86_400)
    assert api.requests("/v1/refunds")[-1]["created[gte]"] == str(1757700000 - 7 * 86_400)
    orders = by_id(rows(warehouse, "customer_order"))
    assert len(orders) == 3
    alice = orders["ch_3S5kR2EXAMPLE0001"]
    assert (alice["status"], alice["refunded"], alice["total"]) == ("refunded", Decimal("73.60"), Decimal("73.60"))
    with warehouse.connect() as conn:
        assert load_state(conn, "payments", "refunds") == {"cursor": 1757800000}


def test_invoice_lines_beyond_the_embedded_ones_are_fetched(warehouse, httpserver):
    api = StripeApi(httpserver)
    invoice = api.lists["/v1/invoices"][0]["data"][0]
    second_line = invoice["lines"]["data"].pop()
    invoice["lines"]["has_more"] = True
    httpserver.expect_request("/v1/invoices/in_1S3hF2EXAMPLE0004/lines").respond_with_json(
        {"object": "list", "data": [second_line], "has_more": False,
         "url": "/v1/invoices/in_1S3hF2EXAMPLE0004/lines"})
    result = sync(warehouse, "payments", connector(httpserver), "stripe", streams=["invoices"])

    assert result.status == "success", result.errors
    asked = [dict(r.args) for r, _ in httpserver.log if r.path.endswith("/lines")]
    assert asked == [{"limit": "2", "starting_after": "il_1S3hF1EXAMPLE0004a"}]
    assert {r["external_id"] for r in rows(warehouse, "order_line")} == {
        "il_1S3hF1EXAMPLE0004a", "il_1S3hF1EXAMPLE0004b"}
    [raw] = rows(warehouse, "raw_record")
    payload = raw["payload"] if isinstance(raw["payload"], dict) else json.loads(raw["payload"])
    assert len(payload["lines"]["data"]) == 2 and payload["lines"]["has_more"] is False


def test_429_with_retry_after_and_500_are_retried(warehouse, httpserver):
    httpserver.expect_oneshot_request("/v1/customers").respond_with_json(
        fixture("error_429.json"), status=429,
        headers={"Retry-After": "1", "Stripe-Should-Retry": "true", "Stripe-Rate-Limited-Reason": "global-rate"})
    httpserver.expect_oneshot_request("/v1/invoices").respond_with_json(
        {"error": {"type": "api_error", "message": "An unknown error occurred"}}, status=500)
    api = StripeApi(httpserver)
    result = sync(warehouse, "payments", connector(httpserver), "stripe", streams=["customers", "invoices"])

    assert result.status == "success", result.errors
    assert len(api.requests("/v1/customers")) == 3  # 429, page 1, page 2
    assert len(api.requests("/v1/invoices")) == 2
    assert len(rows(warehouse, "source_person")) == 3


def test_should_retry_false_on_a_500_fails_at_once(warehouse, httpserver):
    httpserver.expect_request("/v1/customers").respond_with_json(
        {"error": {"type": "api_error", "message": "This request cannot be completed"}}, status=500,
        headers={"Stripe-Should-Retry": "false"})
    result = sync(warehouse, "payments", connector(httpserver), "stripe", streams=["customers"])

    [error] = result.errors
    assert "500" in error and "Stripe says not to retry" in error and "cannot be completed" in error
    assert len(httpserver.log) == 1


def test_401_fails_at_once_with_a_clear_message(warehouse, httpserver):
    httpserver.expect_request("/v1/customers").respond_with_json(fixture("error_401.json"), status=401)
    result = sync(warehouse, "payments", connector(httpserver), "stripe", streams=["customers"])

    assert result.status == "failed"
    [error] = result.errors
    assert "401" in error and "check the credentials" in error and "Invalid API Key provided" in error
    assert KEY not in error
    assert len(httpserver.log) == 1


def test_basic_auth_and_a_pinned_api_version(httpserver):
    StripeApi(httpserver)
    stripe = connector(httpserver, auth="basic", stripe_version="2025-08-27.basil")
    next(stripe.customers(StreamState()))
    headers = httpserver.log[0][0].headers
    assert headers["Authorization"] == "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()
    assert headers["Stripe-Version"] == "2025-08-27.basil"


def test_invalid_values_are_quarantined_with_reasons(warehouse, httpserver):
    api = StripeApi(httpserver)
    customers = api.lists["/v1/customers"][1]["data"]
    customers.append(dict(customers[0], id="cus_BadEmailEXAMPLE", email="carol@@example.com"))
    charges = api.lists["/v1/charges"][1]["data"]
    charges.append(dict(charges[1], id="ch_BadCurrencyEXAMPLE", currency="dollars"))
    result = sync(warehouse, "payments", connector(httpserver), "stripe", streams=["customers", "charges"])

    # a bad email is an optional detail: the customer loads without it, with a field warning;
    # a charge's currency is part of its amount: the charge is rejected, named as Stripe names it
    assert (result.read, result.loaded, result.rejected, result.warnings) == (9, 8, 1, 1)
    reasons = {r["record_key"]: r["reason"] for r in rows(warehouse, "rejected_record")}
    assert reasons == {"ch_BadCurrencyEXAMPLE": "Stripe charge ch_BadCurrencyEXAMPLE: currency: 'dollars' "
                                                "is not an ISO 4217 currency code"}
    (warning,) = rows(warehouse, "field_warning")
    assert (warning["record_key"], warning["field"], warning["raw_value"]) == (
        "cus_BadEmailEXAMPLE", "email", "carol@@example.com")
    assert warning["reason"].startswith("email: 'carol@@example.com' is not a valid email address")
