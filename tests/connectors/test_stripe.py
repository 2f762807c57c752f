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
import logging
import re
import time
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
    """A Stripe stand-in: list endpoints paged with starting_after, single objects, events.

    ``lists`` are what the list endpoints serve (newest first); ``objects`` what
    ``GET /v1/<objects>/<id>`` serves (the objects as they are now); ``events`` what
    ``/v1/events`` serves (newest first), filtered by ``types[]`` and ``created[gte]``.
    """

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
        self.objects: dict[str, dict] = {}
        for pages in self.lists.values():
            for page in pages:
                for obj in page["data"]:
                    self.objects[obj["id"]] = obj
        self.events: list[dict] = []
        self.credit_notes: list[dict] = []
        for path in self.lists:
            server.expect_request(path).respond_with_handler(lambda request, path=path: self.listing(path, request))
        server.expect_request("/v1/invoice_payments").respond_with_handler(self.invoice_payments)
        server.expect_request("/v1/events").respond_with_handler(self.listing_events)
        server.expect_request("/v1/credit_notes").respond_with_handler(self.listing_credit_notes)
        server.expect_request(re.compile(r"^/v1/(customers|charges|invoices|refunds)/[^/]+$")).respond_with_handler(
            self.one)

    def listing(self, path: str, request: Request) -> Response:
        pages = self.lists[path]
        for name in ("payment_intent", "charge"):  # /v1/refunds?payment_intent=...: one payment's refunds
            if name in request.args:
                wanted = request.args[name]
                data = [r for page in pages for r in page["data"]
                        if _id(r.get(name)) == wanted or _id(r.get("charge", {}).get(name)
                                                             if isinstance(r.get("charge"), dict) else None) == wanted]
                return _json({"object": "list", "data": data, "has_more": False, "url": path})
        after = request.args.get("starting_after")
        if after is None:
            return _json(pages[0])
        for previous, page in itertools.pairwise(pages):
            if previous["data"][-1]["id"] == after:
                return _json(page)
        return _json({"error": {"type": "invalid_request_error", "message": f"No such object: '{after}'",
                                "param": "starting_after"}}, 400)

    def listing_events(self, request: Request) -> Response:
        types = request.args.getlist("types[]")
        since = int(request.args.get("created[gte]", 0))
        data = [e for e in self.events if e["type"] in types and e["created"] >= since]
        return _json({"object": "list", "data": data, "has_more": False, "url": "/v1/events"})

    def listing_credit_notes(self, request: Request) -> Response:
        data = [n for n in self.credit_notes if n["invoice"] == request.args.get("invoice")]
        return _json({"object": "list", "data": data, "has_more": False, "url": "/v1/credit_notes"})

    def one(self, request: Request) -> Response:
        found = self.objects.get(request.path.rsplit("/", 1)[-1])
        if found is None:
            return _json({"error": {"type": "invalid_request_error", "message": "No such object"}}, 404)
        if found["object"] == "refund" and request.args.get("expand[]") == "charge":
            found = {**found, "charge": self.objects[_id(found["charge"])]}
        elif found["object"] == "refund":
            found = {**found, "charge": _id(found["charge"])}
        return _json(found)

    def invoice_payments(self, request: Request) -> Response:
        if request.args.get("payment[payment_intent]") == "pi_3S3hF3EXAMPLE0004" or \
                request.args.get("invoice") == "in_1S3hF2EXAMPLE0004":
            return _json(fixture("invoice_payments_pi_0004.json"))
        return _json(fixture("invoice_payments_empty.json"))

    def event(self, type_: str, obj: dict, created: int) -> None:
        """Record a change: the object as it is now, and the event that says so (newest first)."""
        if obj["object"] != "credit_note":
            self.objects[obj["id"]] = obj
        self.events.insert(0, {"id": f"evt_{len(self.events):04d}EXAMPLE", "object": "event",
                               "api_version": "2025-08-27.basil", "created": created, "livemode": False,
                               "pending_webhooks": 0, "request": {"id": None, "idempotency_key": None},
                               "type": type_, "data": {"object": copy.deepcopy(obj)}})

    def requests(self, path: str) -> list[dict[str, str]]:
        return [dict(r.args) for r, _ in self.server.log if r.path == path]


def _id(value: Any) -> str | None:
    return value.get("id") if isinstance(value, dict) else value


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
    listed, looked_up = (api.requests("/v1/refunds")[-1:], api.requests("/v1/refunds")[:-1])
    assert listed[0]["expand[]"] == "data.charge"
    # the paid invoice's refunds: its payments, then each payment's refunds (none here)
    assert {"invoice": "in_1S3hF2EXAMPLE0004", "limit": "2"} in api.requests("/v1/invoice_payments")
    assert looked_up == [{"payment_intent": "pi_3S3hF3EXAMPLE0004", "limit": "2"}]
    assert api.requests("/v1/credit_notes") == []  # no post-payment credit notes: not asked
    # basil-era charges name no invoice: one look-up per payment intent, cached for the refunds
    assert sorted(a["payment[payment_intent]"] for a in api.requests("/v1/invoice_payments") if "invoice" not in a) == [
        "pi_3S0aZ9EXAMPLE0003", "pi_3S3hF3EXAMPLE0004", "pi_3S4xY1EXAMPLE0002", "pi_3S5kR2EXAMPLE0001"]
    assert httpserver.log[0][0].headers["Authorization"] == f"Bearer {KEY}"


def test_a_charge_that_pays_a_shop_order_is_not_counted_again(warehouse, httpserver):
    StripeApi(httpserver)
    sync(warehouse, "payments", connector(httpserver, shop_order_metadata_keys=["woo_order_id"]), "stripe",
         streams=["charges", "refunds"])
    orders = by_id(rows(warehouse, "customer_order"))
    assert "ch_3S5kR2EXAMPLE0001" not in orders  # WooCommerce order #1202 holds this sale
    assert set(orders) == {"ch_3S4xY1EXAMPLE0002", "ch_3S0aZ9EXAMPLE0003"}


def state_of(warehouse, stream: str) -> dict:
    with warehouse.connect() as conn:
        return load_state(conn, "payments", stream)


def test_late_changes_to_old_objects_come_through_the_events_api(warehouse, httpserver):
    api = StripeApi(httpserver)
    invoice = api.lists["/v1/invoices"][0]["data"][0]
    invoice.update(status="open", amount_paid=0, amount_remaining=invoice["total"])  # created in Sept 2025
    before = int(time.time())
    first = sync(warehouse, "payments", connector(httpserver), "stripe")
    assert first.status == "success", first.errors
    assert by_id(rows(warehouse, "customer_order"))["in_1S3hF2EXAMPLE0004"]["status"] == "open"
    for stream, cursor in (("customers", 1757545328), ("charges", 1757546550), ("refunds", 1757700000)):
        saved = state_of(warehouse, stream)
        assert saved["cursor"] == cursor and before - 300 <= saved["events"] <= int(time.time())
    listed = len(httpserver.log)
    events_from = {stream: state_of(warehouse, stream)["events"] for stream in ("invoices", "refunds")}

    # Months later: the invoice is paid, Carol moves and changes her email, Alice's charge is
    # refunded in full. None of them is new, so no list filtered on created would see it.
    now = int(time.time())
    api.event("invoice.paid", {**invoice, "status": "paid", "amount_paid": invoice["total"],
                               "amount_remaining": 0}, now - 5)
    carol = copy.deepcopy(api.objects["cus_SqB4m7EXAMPLE1a"])
    carol["email"] = "carol@okafor.example.com"
    carol["address"] = {**carol["address"], "city": "Dallas"}
    api.event("customer.updated", carol, now - 4)
    alice = copy.deepcopy(api.objects["ch_3S5kR2EXAMPLE0001"])
    alice.update(amount_refunded=7360, refunded=True)
    api.event("charge.refunded", alice, now - 3)
    refund = copy.deepcopy(api.objects["re_3S5kR2EXAMPLE0001r1"])
    refund.update(id="re_3S5kR2EXAMPLE0001r2", amount=5860, created=now - 3, charge="ch_3S5kR2EXAMPLE0001")
    api.event("refund.created", refund, now - 3)
    api.event("charge.updated", alice, now - 2)  # a second event for the same charge: fetched once

    second = sync(warehouse, "payments", connector(httpserver), "stripe")

    assert second.status == "success", second.errors
    asked = [r for r, _ in httpserver.log[listed:]]
    # no list was read again (the paid invoice's own refunds are looked up by payment intent)
    assert not [r.path for r in asked if r.path in api.lists and not {"payment_intent", "charge"} & set(r.args)]
    events = [r for r in asked if r.path == "/v1/events"]
    assert sorted(r.args.getlist("types[]")[0] for r in events) == [
        "charge.captured", "customer.created", "invoice.created", "refund.created"]
    assert all(int(r.args["created[gte]"]) >= before - 300 for r in events)
    fetched = [r.path for r in asked if r.path.count("/") == 3 and not r.path.startswith("/v1/events")]
    assert sorted(fetched) == ["/v1/charges/ch_3S5kR2EXAMPLE0001", "/v1/customers/cus_SqB4m7EXAMPLE1a",
                               "/v1/invoices/in_1S3hF2EXAMPLE0004", "/v1/refunds/re_3S5kR2EXAMPLE0001r2"]
    assert (second.read, second.rejected) == (4, 0)

    orders = by_id(rows(warehouse, "customer_order"))
    assert len(orders) == 4
    assert orders["in_1S3hF2EXAMPLE0004"]["status"] == "paid"
    assert (orders["ch_3S5kR2EXAMPLE0001"]["status"], orders["ch_3S5kR2EXAMPLE0001"]["refunded"]) == (
        "refunded", Decimal("73.60"))
    people = by_id(rows(warehouse, "source_person"))
    assert (people["cus_SqB4m7EXAMPLE1a"]["email"], people["cus_SqB4m7EXAMPLE1a"]["city"]) == (
        "carol@okafor.example.com", "Dallas")
    # the next sync reads events from 5 minutes before the newest one seen (never earlier than before)
    assert state_of(warehouse, "refunds") == {"cursor": now - 3,
                                              "events": max(events_from["refunds"], now - 3 - 300)}
    assert state_of(warehouse, "invoices")["events"] == max(events_from["invoices"], now - 5 - 300)


def test_an_events_time_older_than_30_days_reads_everything_again_and_says_so(httpserver, caplog):
    api = StripeApi(httpserver)
    stripe = connector(httpserver)
    month_ago = int(time.time()) - 31 * 86_400
    with caplog.at_level(logging.WARNING, logger="crmhub.stripe"):
        pages = stripe.customers(StreamState(saved={"cursor": 1757545328, "events": month_ago}))
        records = []
        try:
            while True:
                records.extend(next(pages))
        except StopIteration as done:
            final = done.value
    assert len(records) == 3 and api.requests("/v1/events") == []
    assert [a.get("starting_after") for a in api.requests("/v1/customers")] == [None, "cus_SvT8q1EXAMPLE2b"]
    assert "more than 30 days ago" in caplog.text and "reading every customer again" in caplog.text
    assert final["cursor"] == 1757545328 and final["events"] > month_ago + 30 * 86_400

    caplog.clear()  # a state from before events (a cursor only): one full read, said once
    with caplog.at_level(logging.WARNING, logger="crmhub.stripe"):
        assert sum(len(p) for p in stripe.customers(StreamState(saved={"cursor": 1757545328}))) == 3
    assert "listing every customer once" in caplog.text


def test_a_refund_of_an_invoice_payment_reduces_the_invoice_exactly_once(warehouse, httpserver):
    api = StripeApi(httpserver)
    invoice = api.lists["/v1/invoices"][0]["data"][0]
    # after payment: credit note A refunded 100.00 (its refund re_CN), credit note B credited
    # 50.00 to the customer's balance; then 300.00 refunded with the Refunds API, no credit note
    invoice["post_payment_credit_notes_amount"] = 15000
    credit_note = _public("credit_note")
    api.credit_notes = [
        {**credit_note, "id": "cn_AEXAMPLE", "invoice": invoice["id"], "type": "post_payment", "status": "issued",
         "total": 10000, "refunds": [{"amount_refunded": 10000, "refund": "re_CNEXAMPLE", "type": "refund",
                                      "payment_record_refund": None}]},
        {**credit_note, "id": "cn_BEXAMPLE", "invoice": invoice["id"], "type": "post_payment", "status": "issued",
         "total": 5000, "refunds": []},
    ]
    paying = copy.deepcopy(api.objects["ch_3S3hF3EXAMPLE0004"])
    paying.update(amount_refunded=40000, refunded=False)
    api.objects[paying["id"]] = paying
    template = api.lists["/v1/refunds"][0]["data"][0]
    for refund_id, amount, created in (("re_APIEXAMPLE", 30000, 1757800000), ("re_CNEXAMPLE", 10000, 1757750000)):
        refund = {**copy.deepcopy(template), "id": refund_id, "amount": amount, "created": created,
                  "payment_intent": "pi_3S3hF3EXAMPLE0004", "charge": copy.deepcopy(paying)}
        api.lists["/v1/refunds"][0]["data"].insert(0, refund)
        api.objects[refund_id] = refund

    first = sync(warehouse, "payments", connector(httpserver), "stripe")

    assert first.status == "success", first.errors
    orders = by_id(rows(warehouse, "customer_order"))
    assert "ch_3S3hF3EXAMPLE0004" not in orders  # the paying charge is still no order of its own
    paid = orders["in_1S3hF2EXAMPLE0004"]
    # 150.00 of credit notes + 300.00 refunded outside them; re_CN (in credit note A) counts once
    assert (paid["total"], paid["refunded"], paid["status"]) == (
        Decimal("1050.00"), Decimal("450.00"), "partially_refunded")
    assert api.requests("/v1/credit_notes") == [{"invoice": "in_1S3hF2EXAMPLE0004", "limit": "2"}]
    raw = {r["record_key"]: r["payload"] for r in rows(warehouse, "raw_record") if r["stream"] == "refunds"}
    payload = raw["re_APIEXAMPLE"] if isinstance(raw["re_APIEXAMPLE"], dict) else json.loads(raw["re_APIEXAMPLE"])
    assert payload["_paid_invoice"]["id"] == "in_1S3hF2EXAMPLE0004"

    # later, 200.00 more through the Refunds API: the refund event alone updates the invoice's order
    now = int(time.time())
    paying = {**paying, "amount_refunded": 60000}
    api.objects[paying["id"]] = paying
    later = {**copy.deepcopy(template), "id": "re_API2EXAMPLE", "amount": 20000, "created": now - 2,
             "payment_intent": "pi_3S3hF3EXAMPLE0004", "charge": paying["id"]}
    api.lists["/v1/refunds"][0]["data"].insert(0, {**later, "charge": paying})
    api.event("refund.created", later, now - 2)
    second = sync(warehouse, "payments", connector(httpserver), "stripe")
    third = sync(warehouse, "payments", connector(httpserver), "stripe")  # the same events again: no change

    assert second.status == third.status == "success", (second.errors, third.errors)
    paid = by_id(rows(warehouse, "customer_order"))["in_1S3hF2EXAMPLE0004"]
    assert (paid["refunded"], paid["status"]) == (Decimal("650.00"), "partially_refunded")
    assert sum(1 for r in rows(warehouse, "customer_order") if r["external_id"] == "in_1S3hF2EXAMPLE0004") == 1


def _public(resource: str) -> dict:
    """An example object from Stripe's OpenAPI fixtures (tests/fixtures/public/stripe)."""
    return copy.deepcopy(load_json("public", "stripe", "openapi_fixtures3.json")["resources"][resource])


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
