"""Shopify mapping: the recorded GraphQL payloads, and Shopify's own REST payloads.

The GraphQL records (tests/fixtures/shopify) are what the connector reads. The REST
payloads (tests/fixtures/public/shopify-rest, from Shopify's Python library) are real
orders, customers and products: every field they carry is listed below with where it
lands in the warehouse or why it does not need to, and they go through the same
mapping via a field-by-field adapter to the GraphQL shape.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from decimal import Decimal
from typing import Any

import pytest

from connectors.shopify import queries
from connectors.shopify.streams import join_bulk
from crm_model.load import TABLES
from crm_model.mapping import MapContext, Reject, find_mapping
from crm_model.mapping.shopify import map_customer, map_order, map_product, order_status
from crm_model.validate import row_problem
from tests.conftest import FIXTURES, SHARED_FIXTURES, load_json

UTC = dt.UTC
CTX = MapContext("shop", "orders", "shopify")
REST = SHARED_FIXTURES / "shopify-rest"


def nodes(name: str, resource: str) -> list[dict]:
    return [edge["node"] for edge in load_json("shopify", name)["data"][resource]["edges"]]


def orders() -> dict[str, dict]:
    found = {o["id"]: o for o in nodes("orders_page1.json", "orders") + nodes("orders_page2.json", "orders")}
    return copy.deepcopy(found)


def products() -> list[dict]:
    records = nodes("products_page1.json", "products")
    for record in records:
        record["_shop_currency"] = "USD"  # what the connector adds from shop { currencyCode }
    return records


def by_table(rows) -> dict[str, list[dict]]:
    tables: dict[str, list[dict]] = {}
    for row in rows:
        assert row_problem(row.table, {**row.values, "source": "shop"}) is None, row
        tables.setdefault(row.table, []).append(row.values)
    return tables


# --------------------------------------------------------------------------- orders


def test_order_with_a_discount_code_and_utm_journey():
    out = by_table(map_order(orders()["gid://shopify/Order/1001"], CTX))
    order = out["customer_order"][0]
    assert order == {
        "external_id": "gid://shopify/Order/1001", "person_ref": "customer:7001", "order_number": "#1001",
        "ordered_at": dt.datetime(2026, 1, 5, 14, 22, 8, tzinfo=UTC),
        "updated_at": dt.datetime(2026, 1, 8, 9, 15, tzinfo=UTC),
        "status": "paid", "currency": "USD",
        "subtotal": Decimal("109.70"), "discount": Decimal("10.97"), "tax": Decimal("8.39"),
        "total": Decimal("112.12"), "refunded": Decimal("0.0"),
        "sales_rep": None,
        "special_instructions": "Please leave the parcel at the back door — ring twice.",
        "channel": "web",
        # the last visit came in direct: the order is credited to the first (the newsletter)
        "utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "jan_sale",
        "landing_page": "https://crmhub-demo.myshopify.com/products/organic-cotton-t-shirt?utm_source=newsletter"
                        "&utm_medium=email&utm_campaign=jan_sale&utm_content=hero_banner&utm_term=organic+tshirt",
        "referrer": "https://mail.example.com/",
        "tags": ["first-order", "newsletter"],
    }
    shirt, coffee = out["order_line"]
    # WELCOME10 is an order-level code: its share shows only in discountAllocations
    assert shirt == {"external_id": "gid://shopify/LineItem/100101", "order_id": "gid://shopify/Order/1001",
                     "product_id": "gid://shopify/ProductVariant/8101", "sku": "TSHIRT-ORG-M",
                     "title": "Organic Cotton T-Shirt - M / White", "quantity": Decimal(2),
                     "unit_price": Decimal("29.90"), "discount": Decimal("5.98"), "total": Decimal("53.82"),
                     "currency": "USD"}
    assert (coffee["title"], coffee["discount"], coffee["total"]) == (
        "Ceramic Pour-Over Coffee Set", Decimal("4.99"), Decimal("44.91"))
    assert sum(line["discount"] for line in out["order_line"]) == order["discount"]
    assert order["subtotal"] - order["discount"] + order["tax"] + Decimal("5.00") == order["total"]  # + shipping
    person = out["source_person"][0]
    assert person["external_id"] == "customer:7001" and person["lifecycle_stage"] == "customer"
    assert (person["email"], person["phone"], person["display_name"]) == (
        "jane.doe@example.com", "+14155550123", "Jane Doe")


def test_partially_refunded_order_in_another_presentment_currency():
    out = by_table(map_order(orders()["gid://shopify/Order/1002"], CTX))
    order = out["customer_order"][0]
    # the buyer paid in EUR; the warehouse keeps the shop's currency so amounts add up
    assert (order["currency"], order["total"], order["refunded"], order["tax"]) == (
        "USD", Decimal("109.83"), Decimal("30.13"), Decimal("17.54"))
    assert order["status"] == "partially_refunded"
    assert order["subtotal"] == Decimal("109.83")  # taxesIncluded: line prices include the VAT
    assert (order["utm_source"], order["referrer"], order["landing_page"]) == (
        None, "https://www.google.com/", "https://crmhub-demo.myshopify.com/collections/kitchen")
    shirt = out["order_line"][0]
    # lines are as sold; the returned shirt is in the order's refunded amount
    assert (shirt["quantity"], shirt["total"], shirt["discount"]) == (Decimal(2), Decimal("60.26"), Decimal(0))


def test_staff_order_has_a_sales_rep_and_a_line_discount():
    out = by_table(map_order(orders()["gid://shopify/Order/1003"], CTX))
    order = out["customer_order"][0]
    assert (order["sales_rep"], order["channel"]) == ("Alex Morgan", "shopify_draft_order")
    assert order["special_instructions"].startswith("Phone order: gift for a colleague.")
    assert (order["landing_page"], order["utm_source"]) == (None, None)  # no journey for draft orders
    line = out["order_line"][0]
    assert (line["unit_price"], line["quantity"], line["discount"], line["total"]) == (
        Decimal("49.90"), Decimal(2), Decimal("15.00"), Decimal("84.80"))


def test_edited_order_maps_to_the_same_keys_with_the_new_state():
    before = by_table(map_order(orders()["gid://shopify/Order/1001"], CTX))
    after = by_table(map_order(nodes("orders_updated.json", "orders")[0], CTX))
    assert [r["external_id"] for r in after["order_line"]] == [r["external_id"] for r in before["order_line"]]
    order = after["customer_order"][0]
    assert order["external_id"] == "gid://shopify/Order/1001"
    assert order["status"] == "fulfilled" and order["tags"] == ["delivered", "first-order", "newsletter"]
    assert "neighbour at no. 1452" in order["special_instructions"]


@pytest.mark.parametrize(("fields", "status"), [
    ({"cancelledAt": "2026-01-09T10:00:00Z", "displayFinancialStatus": "REFUNDED"}, "cancelled"),
    ({"displayFinancialStatus": "REFUNDED"}, "refunded"),
    ({"displayFinancialStatus": "VOIDED"}, "voided"),
    ({"displayFinancialStatus": "PAID", "displayFulfillmentStatus": "FULFILLED"}, "fulfilled"),
    ({"displayFinancialStatus": "PAID", "displayFulfillmentStatus": "PARTIALLY_FULFILLED"}, "paid"),
    ({"displayFinancialStatus": "PENDING", "displayFulfillmentStatus": "UNFULFILLED"}, "pending"),
    ({"displayFinancialStatus": None, "displayFulfillmentStatus": "UNFULFILLED"}, "unfulfilled"),
    ({"test": True, "displayFinancialStatus": "PAID"}, "test"),
])
def test_order_status(fields, status):
    assert order_status(fields) == status


def test_guest_checkout_is_a_person_keyed_by_the_order():
    order = orders()["gid://shopify/Order/1002"]
    order.update(customer=None, email="Guest.Buyer@Example.com", phone=None, customerAcceptsMarketing=True)
    out = by_table(map_order(order, CTX))
    person = out["source_person"][0]
    assert person["external_id"] == "order:1002" and out["customer_order"][0]["person_ref"] == "order:1002"
    assert (person["email"], person["phone"], person["marketing_consent"]) == (
        "guest.buyer@example.com", "+4930901820", True)  # phone from the billing address
    assert (person["first_name"], person["street"], person["city"], person["country"]) == (
        "Lukas", "Torstraße 101", "Berlin", "DE")
    assert person["seen_at"] == dt.datetime(2026, 1, 10, 18, 3, 41, tzinfo=UTC)


def test_a_walk_in_sale_has_no_person():
    order = orders()["gid://shopify/Order/1003"]
    order.update(customer=None, email=None, phone=None, billingAddress=None)
    out = by_table(map_order(order, CTX))
    assert "source_person" not in out and out["customer_order"][0]["person_ref"] is None


def test_custom_attributes_join_the_special_instructions():
    order = orders()["gid://shopify/Order/1001"]
    order["customAttributes"] = [{"key": "Gift wrap", "value": "yes"}]
    order["lineItems"]["nodes"][0]["customAttributes"] = [{"key": "Engraving", "value": "Ada"}]
    text = by_table(map_order(order, CTX))["customer_order"][0]["special_instructions"]
    assert text.splitlines() == ["Please leave the parcel at the back door — ring twice.", "Gift wrap: yes",
                                 "Organic Cotton T-Shirt - M / White: Engraving: Ada"]


@pytest.mark.parametrize(("change", "reason"), [
    (lambda o: o["totalTaxSet"]["shopMoney"].update(currencyCode="EUR"), "totalTaxSet: EUR amount in a USD order"),
    (lambda o: o["totalPriceSet"]["shopMoney"].update(amount="12,3.4.5"), "not a number"),
    (lambda o: o["customer"].update(id="gid://shopify/Order/7001"), "is not a Shopify Customer id"),
    (lambda o: o["customer"]["defaultEmailAddress"].update(emailAddress="jane at example"), "not a valid email"),
    (lambda o: o.update(currencyCode=None), "without the order's currencyCode"),
    (lambda o: o["lineItems"]["nodes"][0].update(quantity=None), "no quantity"),
])
def test_bad_values_reject_the_order(change, reason):
    order = orders()["gid://shopify/Order/1001"]
    change(order)
    with pytest.raises(Reject, match=reason):
        map_order(order, CTX)


def test_bulk_records_map_like_paged_ones():
    lines = (FIXTURES / "shopify" / "bulk_orders.jsonl").read_text().splitlines()
    records = list(join_bulk(queries.ORDERS, (json.loads(line) for line in lines)))
    assert [r["id"] for r in records] == ["gid://shopify/Order/1001", "gid://shopify/Order/1002"]
    out = by_table(row for record in records for row in map_order(record, CTX))
    assert [r["external_id"] for r in out["order_line"]] == [
        "gid://shopify/LineItem/100101", "gid://shopify/LineItem/100102",
        "gid://shopify/LineItem/100201", "gid://shopify/LineItem/100202"]
    assert out["customer_order"][0]["status"] == "fulfilled"
    assert out["customer_order"][1]["person_ref"] == "customer:7002"
    assert out["customer_order"][0]["subtotal"] == Decimal("109.70")


def test_line_product_ids_name_product_rows():
    product_ids = {r.values["external_id"] for p in products() for r in map_product(p, CTX)}
    line_ids = {r.values["product_id"] for o in orders().values() for r in map_order(o, CTX) if r.table == "order_line"}
    assert line_ids and line_ids <= product_ids


# --------------------------------------------------------------------------- customers and products


def test_customers_with_address_and_marketing_consent():
    lukas, jane = (by_table(map_customer(c, CTX))["source_person"][0] for c in nodes("customers_page1.json", "customers"))
    assert jane == {
        "external_id": "customer:7001", "lifecycle_stage": "customer",
        "seen_at": dt.datetime(2026, 1, 20, 10, 5, 30, tzinfo=UTC), "shop_customer_id": "7001",
        "email": "jane.doe@example.com", "phone": "+14155550123",
        "first_name": "Jane", "last_name": "Doe", "display_name": "Jane Doe", "marketing_consent": True,
        "street": "1450 Valencia Street, Apt 3B", "postal_code": "94110", "city": "San Francisco",
        "region": "California", "country": "US",
    }
    # SMS subscribed, email unsubscribed: marketing_consent is about email
    assert (lukas["marketing_consent"], lukas["country"], lukas.get("region")) == (False, "DE", None)


def test_customer_from_an_older_api_version_uses_the_deprecated_fields():
    customer = copy.deepcopy(nodes("customers_page1.json", "customers")[1])
    for field in ("defaultEmailAddress", "defaultPhoneNumber"):
        del customer[field]
    person = map_customer(customer, CTX)[0].values
    assert (person["email"], person["phone"], person["marketing_consent"]) == (
        "jane.doe@example.com", "+14155550123", True)


def test_customer_without_orders_is_no_customer_yet():
    customer = copy.deepcopy(nodes("customers_page1.json", "customers")[0])
    customer["numberOfOrders"] = "0"
    assert map_customer(customer, CTX)[0].values["lifecycle_stage"] is None


def test_unknown_marketing_state_rejects():
    customer = copy.deepcopy(nodes("customers_page1.json", "customers")[0])
    customer["defaultEmailAddress"]["marketingState"] = "MAYBE"
    with pytest.raises(Reject, match="unknown email marketing state 'MAYBE'"):
        map_customer(customer, CTX)


def test_products_become_a_parent_row_and_one_row_per_variant():
    shirt, coffee = (by_table(map_product(p, CTX))["product"] for p in products())
    assert shirt == [
        {"external_id": "gid://shopify/Product/8001", "title": "Organic Cotton T-Shirt", "category": "Apparel"},
        {"external_id": "gid://shopify/ProductVariant/8101", "parent_id": "gid://shopify/Product/8001",
         "sku": "TSHIRT-ORG-M", "title": "Organic Cotton T-Shirt - M / White", "category": "Apparel",
         "price": Decimal("29.90"), "currency": "USD", "unit_cost": Decimal("11.2")},
        {"external_id": "gid://shopify/ProductVariant/8102", "parent_id": "gid://shopify/Product/8001",
         "sku": "TSHIRT-ORG-L", "title": "Organic Cotton T-Shirt - L / White", "category": "Apparel",
         "price": Decimal("29.90"), "currency": "USD", "unit_cost": Decimal("11.2")},
    ]
    assert coffee[1]["title"] == "Ceramic Pour-Over Coffee Set"  # "Default Title" adds nothing
    assert coffee[1]["unit_cost"] is None  # unitCost: null, no cost entered


def test_a_unit_cost_in_another_currency_is_left_out_with_a_warning():
    from crm_model.mapping import values as v

    product = products()[0]
    product["variants"]["nodes"][0]["inventoryItem"]["unitCost"] = {"amount": "9.50", "currencyCode": "EUR"}
    with v.collecting_warnings() as warnings:
        rows = by_table(map_product(product, CTX))["product"]
    assert rows[1]["unit_cost"] is None and rows[1]["price"] == Decimal("29.90")  # the product still loads
    assert [(w.field, w.raw_value) for w in warnings] == [("inventoryItem.unitCost", "9.50 EUR")]
    assert "EUR cost for a USD shop" in warnings[0].reason
    with pytest.raises(Reject, match="EUR cost for a USD shop"):  # outside a sync: a reject, never silent
        map_product(product, CTX)


def test_a_price_without_the_shop_currency_rejects():
    product = products()[0]
    del product["_shop_currency"]
    with pytest.raises(Reject, match="without the shop's currency"):
        map_product(product, CTX)


def test_mappings_are_registered():
    assert {s: find_mapping("shopify", s).fn for s in ("orders", "customers", "products")} == {
        "orders": map_order, "customers": map_customer, "products": map_product}


# --------------------------------------------------------------------------- REST payloads
#
# Where every field of Shopify's REST order, customer and product lands. "table.column"
# homes are checked against the schema; "-" homes say why the warehouse needs no place.

ADDRESS_HOMES = {
    "address1": "source_person.street", "address2": "source_person.street",
    "city": "source_person.city", "zip": "source_person.postal_code",
    "province": "source_person.region", "province_code": "- province holds the region's name",
    "country": "- country_code holds it as ISO 3166 alpha-2",
    "country_code": "source_person.country", "country_name": "- country_code holds it",
    "company": "source_person.company", "first_name": "source_person.first_name",
    "last_name": "source_person.last_name", "name": "source_person.display_name",
    "phone": "source_person.phone",
    "latitude": "- geocoding of the address: no reporting need",
    "longitude": "- geocoding of the address: no reporting need",
    "id": "- the address's own id: a person has one address in the warehouse",
    "customer_id": "- the customer the address belongs to is the parent record",
    "default": "- only the default address is mapped",
}
LINE_HOMES = {
    "id": "order_line.external_id", "product_id": "order_line.product_id",
    "variant_id": "order_line.product_id", "sku": "order_line.sku", "title": "order_line.title",
    "variant_title": "order_line.title", "name": "- title and variant_title, joined",
    "quantity": "order_line.quantity", "price": "order_line.unit_price",
    "vendor": "- the supplier: no column; product reports group by category",
    "grams": "- shipping weight", "requires_shipping": "- fulfilment detail",
    "fulfillment_service": "- fulfilment detail", "fulfillment_status": "- customer_order.status covers it",
    "variant_inventory_management": "- inventory setting", "product_exists": "- product_id is null when not",
    "properties": "customer_order.special_instructions",
    "properties[].name": "customer_order.special_instructions",
    "properties[].value": "customer_order.special_instructions",
}
CUSTOMER_HOMES = {
    "id": "source_person.shop_customer_id", "admin_graphql_api_id": "source_person.external_id",
    "email": "source_person.email", "phone": "source_person.phone",
    "first_name": "source_person.first_name", "last_name": "source_person.last_name",
    "accepts_marketing": "source_person.marketing_consent",
    "accepts_marketing_updated_at": "- when consent last changed: the current state is what matters",
    "marketing_opt_in_level": "- single or confirmed opt-in: consent itself is kept",
    "orders_count": "source_person.lifecycle_stage", "updated_at": "source_person.seen_at",
    "created_at": "- the account's age: first_seen_at comes from orders and visits",
    "last_order_id": "- customer_order rows carry the person", "last_order_name": "- as last_order_id",
    "total_spent": "- the sum of customer_order.total", "currency": "- customer_order.currency",
    "note": "- the merchant's free-text note about the customer: kept in raw_record",
    "tags": "- the merchant's customer tags: kept in raw_record",
    "state": "- account state (invited, enabled, disabled)", "verified_email": "- email verification flag",
    "multipass_identifier": "- single sign-on id", "tax_exempt": "- tax setting",
    "tax_exemptions": "- tax setting",
}
ORDER_HOMES = {
    "id": "customer_order.external_id", "admin_graphql_api_id": "customer_order.external_id",
    "name": "customer_order.order_number", "order_number": "customer_order.order_number",
    "number": "- order_number without the shop's offset",
    "created_at": "customer_order.ordered_at", "processed_at": "customer_order.ordered_at",
    "updated_at": "customer_order.updated_at",
    "cancelled_at": "customer_order.status", "cancel_reason": "- why it was cancelled: status says it was",
    "closed_at": "- archived in the admin", "confirmed": "- inventory reserved",
    "financial_status": "customer_order.status", "fulfillment_status": "customer_order.status",
    "test": "customer_order.status", "currency": "customer_order.currency",
    "presentment_currency": "- the buyer's currency: amounts are kept in the shop's",
    "subtotal_price": "- after discounts: subtotal is kept before discounts (total_line_items_price)",
    "total_line_items_price": "customer_order.subtotal", "total_discounts": "customer_order.discount",
    "total_tax": "customer_order.tax", "total_price": "customer_order.total",
    "total_price_usd": "- the total converted to USD", "taxes_included": "- see subtotal in the mapping",
    "tax_lines[].price": "customer_order.tax", "tax_lines[].rate": "- rate of a tax line",
    "tax_lines[].title": "- name of a tax line",
    "shipping_lines[].price": "customer_order.total", "shipping_lines[].code": "- shipping method",
    "shipping_lines[].title": "- shipping method", "shipping_lines[].source": "- shipping method",
    "discount_codes[].code": "- no discount-code column; its amount is in customer_order.discount",
    "discount_codes[].amount": "customer_order.discount",
    "note": "customer_order.special_instructions",
    "note_attributes[].name": "customer_order.special_instructions",
    "note_attributes[].value": "customer_order.special_instructions",
    "tags": "customer_order.tags", "source_name": "customer_order.channel",
    "landing_site": "customer_order.landing_page", "referring_site": "customer_order.referrer",
    "landing_site_ref": "- the ref parameter of landing_site, which is kept whole",
    "email": "source_person.email", "contact_email": "source_person.email", "phone": "source_person.phone",
    "buyer_accepts_marketing": "source_person.marketing_consent",
    "customer_locale": "- the buyer's language", "user_id": "customer_order.sales_rep",
    "location_id": "- the POS location", "device_id": "- the POS device", "app_id": "customer_order.channel",
    "source": "customer_order.channel", "source_identifier": "- the channel's own reference",
    "source_url": "- the channel's own link", "reference": "- the channel's own reference",
    "gateway": "- payment provider", "payment_gateway_names": "- payment providers",
    "processing_method": "- payment method", "payment_details.avs_result_code": "- card check",
    "payment_details.credit_card_bin": "- card data: not stored", "payment_details.credit_card_company": "- card brand",
    "payment_details.credit_card_number": "- card data: not stored", "payment_details.cvv_result_code": "- card check",
    "token": "- checkout secret", "cart_token": "- checkout secret", "checkout_token": "- checkout secret",
    "checkout_id": "- the checkout that became the order", "order_status_url": "- link with a secret key",
    "browser_ip": "- the buyer's IP address: personal data with no reporting need",
    "client_details.browser_ip": "- as browser_ip", "client_details.accept_language": "- browser detail",
    "client_details.browser_height": "- browser detail", "client_details.browser_width": "- browser detail",
    "client_details.session_hash": "- browser detail", "client_details.user_agent": "- browser detail",
    "total_weight": "- shipping weight",
    "fulfillments[].id": "- shipments: customer_order.status says whether it shipped",
    "fulfillments[].order_id": "- as fulfillments[].id", "fulfillments[].status": "customer_order.status",
    "fulfillments[].created_at": "- as fulfillments[].id", "fulfillments[].updated_at": "- as fulfillments[].id",
    "fulfillments[].service": "- as fulfillments[].id", "fulfillments[].tracking_company": "- carrier",
    "fulfillments[].tracking_number": "- the parcel's tracking number (not a service case)",
    "fulfillments[].tracking_numbers": "- as tracking_number", "fulfillments[].tracking_url": "- as tracking_number",
    "fulfillments[].tracking_urls": "- as tracking_number", "fulfillments[].receipt.authorization": "- as fulfillments[].id",
    "fulfillments[].receipt.testcase": "- as fulfillments[].id",
}
PRODUCT_HOMES = {
    "id": "product.external_id", "title": "product.title", "product_type": "product.category",
    "variants[].id": "product.external_id", "variants[].product_id": "product.parent_id",
    "variants[].sku": "product.sku", "variants[].title": "product.title", "variants[].price": "product.price",
    "variants[].option1": "- variants[].title joins the options",
    "variants[].option2": "- as option1", "variants[].option3": "- as option1",
    "options[].name": "- option names (Size, Color): the values are in the variant title",
    "variants[].compare_at_price": "- the struck-through 'was' price", "handle": "- the URL slug",
    "vendor": "- the supplier", "tags": "- merchandising tags", "body_html": "- the description",
    "template_suffix": "- theme template", "published_at": "- storefront publishing",
    "created_at": "- catalogue history", "updated_at": "- change tracking (the stream's cursor)",
    "images[].id": "- product pictures", "images[].src": "- product pictures",
    "images[].position": "- product pictures", "images[].product_id": "- product pictures",
    "images[].created_at": "- product pictures", "images[].updated_at": "- product pictures",
    "variants[].position": "- display order", "variants[].created_at": "- catalogue history",
    "variants[].updated_at": "- change tracking", "variants[].inventory_quantity": "- stock level",
    "variants[].inventory_policy": "- stock setting", "variants[].inventory_management": "- stock setting",
    "variants[].requires_shipping": "- fulfilment detail", "variants[].taxable": "- tax setting",
    "variants[].grams": "- shipping weight", "variants[].fulfillment_service": "- fulfilment detail",
}
NESTED = {  # where a nested object's fields are looked up
    "billing_address": ADDRESS_HOMES, "shipping_address": ADDRESS_HOMES,
    "default_address": ADDRESS_HOMES, "addresses[]": ADDRESS_HOMES,
    "customer.default_address": ADDRESS_HOMES, "customer": CUSTOMER_HOMES,
    "line_items[]": LINE_HOMES, "fulfillments[].line_items[]": {f: "- as line_items" for f in LINE_HOMES},
}
MONEY_SET = re.compile(r"^(?P<field>\w+)_set\.(shop_money|presentment_money)\.(amount|currency_code)$")


def leaf_paths(value: Any, path: str = "") -> set[str]:
    """Every field of a payload, lists of objects as 'field[]'."""
    if isinstance(value, dict):
        return set().union(*(leaf_paths(v, f"{path}.{k}" if path else k) for k, v in value.items()))
    if isinstance(value, list) and any(isinstance(x, dict) for x in value):
        return set().union(*(leaf_paths(x, f"{path}[]") for x in value))
    return {path}


def home_of(path: str, homes: dict[str, str]) -> str | None:
    if path in homes:
        return homes[path]
    money = MONEY_SET.match(path)
    if money:  # the *_set twins: shop money is the amount kept, presentment money is not
        twin = homes.get(money["field"])
        return twin if "shop_money" in path and twin else "- the same amount (shop or buyer currency)"
    for prefix in sorted(NESTED, key=len, reverse=True):
        if path.startswith(prefix + "."):
            return NESTED[prefix].get(path[len(prefix) + 1:])
    return None


REST_PAYLOADS = [
    ("order.json", "order", ORDER_HOMES), ("orders.json", "orders", ORDER_HOMES),
    ("customer.json", "customer", CUSTOMER_HOMES), ("customers_search.json", "customers", CUSTOMER_HOMES),
    ("products.json", None, PRODUCT_HOMES),
]


@pytest.mark.parametrize(("name", "key", "homes"), REST_PAYLOADS, ids=[p[0] for p in REST_PAYLOADS])
def test_every_rest_field_has_a_home(name, key, homes):
    payload = json.loads((REST / name).read_text())
    records = payload[key] if key else payload
    records = records if isinstance(records, list) else [records]
    missing, wrong = [], []
    for path in sorted(set().union(*(leaf_paths(r) for r in records))):
        home = home_of(path, homes)
        if home is None:
            missing.append(path)
            continue
        if not home.startswith("- "):
            for target in home.split(", "):
                table, _, column = target.partition(".")
                if table not in TABLES or column not in TABLES[table].c:
                    wrong.append(f"{path} -> {target}")
    assert (missing, wrong) == ([], [])


def gid(kind: str, number: Any) -> str | None:
    return f"gid://shopify/{kind}/{number}" if number is not None else None


def money(amount: Any, currency: str) -> dict | None:
    return {"shopMoney": {"amount": amount, "currencyCode": currency}} if amount is not None else None


def address(rest: dict | None) -> dict | None:
    if rest is None:
        return None
    return {"firstName": rest.get("first_name"), "lastName": rest.get("last_name"), "company": rest.get("company"),
            "address1": rest.get("address1"), "address2": rest.get("address2"), "city": rest.get("city"),
            "province": rest.get("province"), "zip": rest.get("zip"), "countryCodeV2": rest.get("country_code"),
            "phone": rest.get("phone")}


def rest_customer(rest: dict) -> dict:
    return {"id": gid("Customer", rest["id"]), "firstName": rest.get("first_name"), "lastName": rest.get("last_name"),
            "updatedAt": rest.get("updated_at"), "numberOfOrders": str(rest.get("orders_count", 0)),
            "defaultEmailAddress": {"emailAddress": rest.get("email"),
                                    "marketingState": "SUBSCRIBED" if rest.get("accepts_marketing") else "NOT_SUBSCRIBED"},
            "defaultPhoneNumber": {"phoneNumber": rest.get("phone")} if rest.get("phone") else None,
            "defaultAddress": address(rest.get("default_address"))}


def rest_order(rest: dict) -> dict:
    """A REST order in the shape of the connector's GraphQL order (field by field)."""
    currency = rest["currency"]
    lines = [{"id": gid("LineItem", li["id"]), "title": li["title"], "variantTitle": li.get("variant_title"),
              "sku": li.get("sku"), "quantity": li["quantity"], "originalUnitPriceSet": money(li["price"], currency),
              "discountAllocations": [{"allocatedAmountSet": money(a["amount"], currency)}
                                      for a in li.get("discount_allocations", [])],
              "customAttributes": [{"key": p["name"], "value": p["value"]} for p in li.get("properties") or []],
              "variant": {"id": gid("ProductVariant", li["variant_id"])} if li.get("variant_id") else None,
              "product": {"id": gid("Product", li["product_id"])} if li.get("product_id") else None}
             for li in rest.get("line_items", [])]
    return {
        "id": rest.get("admin_graphql_api_id") or gid("Order", rest["id"]), "name": rest["name"],
        "createdAt": rest["created_at"], "processedAt": rest.get("processed_at"), "updatedAt": rest["updated_at"],
        "cancelledAt": rest.get("cancelled_at"), "test": rest.get("test"),
        "displayFinancialStatus": (rest.get("financial_status") or "").upper() or None,
        "displayFulfillmentStatus": (rest.get("fulfillment_status") or "unfulfilled").upper(),
        "currencyCode": currency, "totalDiscountsSet": money(rest.get("total_discounts"), currency),
        "totalTaxSet": money(rest.get("total_tax"), currency), "totalPriceSet": money(rest.get("total_price"), currency),
        "note": rest.get("note"), "tags": rest.get("tags"), "email": rest.get("email"), "phone": rest.get("phone"),
        "sourceName": rest.get("source_name"), "customerAcceptsMarketing": rest.get("buyer_accepts_marketing"),
        "customAttributes": [{"key": a["name"], "value": a["value"]} for a in rest.get("note_attributes", [])],
        "customer": rest_customer(rest["customer"]) if rest.get("customer") else None,
        "billingAddress": address(rest.get("billing_address")),
        "lineItems": {"nodes": lines} if "line_items" in rest else None,
        "customerJourneySummary": {"lastVisit": {"landingPage": rest.get("landing_site"),
                                                 "referrerUrl": rest.get("referring_site")}},
    }


def test_rest_order_lands_in_the_warehouse():
    rest = json.loads((REST / "order.json").read_text())["order"]
    out = by_table(map_order(rest_order(rest), CTX))
    order = out["customer_order"][0]
    assert (order["external_id"], order["order_number"], order["status"]) == (
        "gid://shopify/Order/450789469", "#1001", "authorized")
    assert order["ordered_at"] == dt.datetime(2008, 1, 10, 16, 0, tzinfo=UTC)  # -05:00 -> UTC
    assert (order["subtotal"], order["discount"], order["tax"], order["total"]) == (
        Decimal("597.00"), Decimal("0.00"), Decimal("11.94"), Decimal("409.94"))
    assert order["subtotal"] != Decimal(rest["total_line_items_price"])  # the payload's own lines disagree
    assert (order["landing_page"], order["referrer"], order["channel"]) == (
        "http://www.example.com?source=abc", "http://www.otherexample.com", "web")
    assert order["special_instructions"].splitlines() == [
        "custom engraving: Happy Birthday", "colour: green", "IPod Nano - 8gb - green: Custom Engraving: Happy Birthday"]
    assert next((r["sku"], r["product_id"], r["unit_price"]) for r in out["order_line"]) == (
        "IPOD2008GREEN", "gid://shopify/ProductVariant/39072856", Decimal("199.00"))
    person = out["source_person"][0]
    assert (person["external_id"], person["email"], person["city"], person["region"], person["country"]) == (
        "customer:207119551", "bob.norman@hostmail.com", "Louisville", "Kentucky", "US")
    assert person["marketing_consent"] is False


def test_rest_orders_list_totals_and_guest_phone():
    rest = json.loads((REST / "orders.json").read_text())["orders"][0]
    shaped = rest_order(rest)
    shaped["customer"] = None  # as a guest checkout: the buyer comes from the order itself
    out = by_table(map_order(shaped, CTX))
    order = out["customer_order"][0]
    assert (order["status"], order["discount"], order["total"], order["subtotal"]) == (
        "partially_refunded", Decimal("10.00"), Decimal("598.94"), None)  # this list payload has no line items
    assert out["source_person"][0]["phone"] == "+557734881234"


@pytest.mark.parametrize("name", ["customer.json", "customers_search.json"])
def test_rest_customers_land_as_people(name):
    payload = json.loads((REST / name).read_text())
    customer = payload.get("customer") or payload["customers"][0]
    person = by_table(map_customer(rest_customer(customer), CTX))["source_person"][0]
    assert (person["external_id"], person["shop_customer_id"], person["email"]) == (
        "customer:207119551", "207119551", "bob.norman@hostmail.com")
    assert (person["street"], person["postal_code"], person["phone"]) == (
        "Chestnut Street 92", "40202", "+15556251199")  # the address's phone, read in the address's country
    assert person["lifecycle_stage"] == ("customer" if customer["orders_count"] else None)


def test_rest_products_land_as_products():
    rest = json.loads((REST / "products.json").read_text())
    rows = []
    for product in rest:
        shaped = {"id": gid("Product", product["id"]), "title": product["title"],
                  "productType": product["product_type"], "_shop_currency": "USD",
                  "variants": {"nodes": [{"id": gid("ProductVariant", x["id"]), "title": x["title"], "sku": x["sku"],
                                          "price": x["price"]} for x in product["variants"]]}}
        rows += by_table(map_product(shaped, CTX))["product"]
    variants = [r for r in rows if r.get("parent_id")]
    assert len(variants) == sum(len(p["variants"]) for p in rest)
    assert variants[0] == {"external_id": "gid://shopify/ProductVariant/808950810", "parent_id": "gid://shopify/Product/1",
                           "sku": "IPOD2008PINK", "title": "IPod Nano - 8GB - Pink", "category": "Cult Products",
                           "price": Decimal("199.00"), "currency": "USD", "unit_cost": None}  # REST: no cost
