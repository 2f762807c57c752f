"""Shopify (GraphQL Admin API records) -> orders, order lines, products and people.

Keys. Orders, lines and products keep Shopify's gid as their ``external_id``
(``gid://shopify/Order/1001``): the one id both the paged and the bulk reads return.
People are ``customer:<numeric id>`` (``shop_customer_id`` holds the number, the id
Shopify's admin, REST API and email tools show); a guest checkout's buyer is
``order:<numeric order id>``.

Products. Every variant is a ``product`` row (``external_id`` = the variant's gid,
``parent_id`` = its product's gid) and every product is one too (the parent, without a
price: only variants have one). A variant's ``unit_cost`` is its inventory item's
``unitCost`` (shop currency), which the sales report's gross margin uses. An order line's ``product_id`` is its variant's gid,
or the product's gid for a line without a variant, so it always names a product row.

Money. Every amount is the shop-currency side (``shopMoney``) of Shopify's MoneyBag,
an exact decimal string; ``currency`` is the order's ``currencyCode`` (the shop's). An
amount in any other currency rejects the record rather than mixing currencies.

Orders.
- ``subtotal`` = the lines at their original price times quantity (before discounts;
  when ``taxesIncluded`` these prices include tax, as Shopify shows them),
  ``discount`` = totalDiscountsSet, ``tax`` = totalTaxSet, ``total`` = totalPriceSet
  (what was charged, before refunds), ``refunded`` = totalRefundedSet.
- ``status``: test, cancelled, refunded, partially_refunded, voided, expired; else
  fulfilled once paid and fulfilled; else the financial status (paid, pending,
  authorized, partially_paid), lower-cased.
- Lines are as sold: ``quantity`` includes units refunded later (the refund is on the
  order); ``discount`` is every discount allocated to the line, order-level codes
  included, and ``total`` = unit price x quantity - discount.
- ``special_instructions``: the note, then custom attributes of the order and its
  lines ("Gift wrap: yes", "Engraving: Happy Birthday"), one per line.
- Attribution: the order's last visit, unless it was direct (no UTM, no referrer)
  and the first visit was not; UTM values from Shopify's ``utmParameters``, else from
  the landing page's query string.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from crm_model.mapping import MapContext, Reject, Row, mapping
from crm_model.mapping import values as v
from crm_model.mapping.common import person_row

GID = re.compile(r"^gid://shopify/(?P<type>[A-Za-z]+)/(?P<number>\d+)(\?.*)?$")
DEFAULT_VARIANT_TITLE = "Default Title"  # what Shopify calls the one variant of a product without options

CONSENT = {  # email marketingState -> opted in?
    "SUBSCRIBED": True,
    "NOT_SUBSCRIBED": False,
    "UNSUBSCRIBED": False,
    "PENDING": False,  # double opt-in not confirmed yet
    "INVALID": False,
    "REDACTED": None,  # erased on request: unknown
}
ENDED_FINANCIAL = ("REFUNDED", "PARTIALLY_REFUNDED", "VOIDED", "EXPIRED")


# --------------------------------------------------------------------------- orders


@mapping("shopify", "orders", version=1,
         label=lambda raw: f"Shopify order {raw.get('name') or raw.get('id')}")
def map_order(raw: dict[str, Any], ctx: MapContext) -> list[Row]:
    order_id = _required(raw, "id")
    currency = v.currency(raw.get("currencyCode"), "currencyCode")
    ordered_at = v.timestamp(raw.get("processedAt") or raw.get("createdAt"), "processedAt")
    status = order_status(raw)
    rows: list[Row] = []

    person = _buyer(raw, ordered_at, status)
    if person is not None:
        rows.append(person)

    nodes = _nodes(raw.get("lineItems"))
    lines = [_line(line, order_id, currency) for line in nodes]
    subtotal = None
    if raw.get("lineItems") is not None and all(line["unit_price"] is not None for line in lines):
        subtotal = sum((line["unit_price"] * line["quantity"] for line in lines), Decimal(0))

    visit = attributed_visit(raw.get("customerJourneySummary"))
    landing_page = v.text((visit or {}).get("landingPage"))
    utm = {**_prefixed(v.url_params(landing_page)), **_utm((visit or {}).get("utmParameters"))}
    staff = raw.get("staffMember") or {}

    rows.append(Row("customer_order", {
        "external_id": order_id,
        "person_ref": person.values["external_id"] if person else None,
        "order_number": v.text(raw.get("name"), 64),
        "ordered_at": ordered_at,
        "updated_at": v.timestamp(raw.get("updatedAt"), "updatedAt"),
        "status": status,
        "currency": currency,
        "subtotal": subtotal,
        "discount": _money(raw.get("totalDiscountsSet"), currency, "totalDiscountsSet"),
        "tax": _money(raw.get("totalTaxSet"), currency, "totalTaxSet"),
        "total": _money(raw.get("totalPriceSet"), currency, "totalPriceSet"),
        "refunded": _money(raw.get("totalRefundedSet"), currency, "totalRefundedSet"),
        "sales_rep": v.text(staff.get("name"), 255),
        "special_instructions": special_instructions(raw, nodes),
        "channel": v.text(raw.get("sourceName"), 64),
        "utm_source": v.text(utm.get("utm_source"), 255),
        "utm_medium": v.text(utm.get("utm_medium"), 255),
        "utm_campaign": v.text(utm.get("utm_campaign"), 255),
        "landing_page": landing_page,
        "referrer": v.text((visit or {}).get("referrerUrl")),
        "tags": _tags(raw.get("tags")),
    }))
    rows.extend(Row("order_line", line) for line in lines)
    return rows


def order_status(raw: dict[str, Any]) -> str | None:
    """One status from Shopify's financial and fulfillment statuses (see the module doc)."""
    if raw.get("test"):
        return "test"
    if raw.get("cancelledAt"):
        return "cancelled"
    financial = v.text(raw.get("displayFinancialStatus"))
    fulfillment = v.text(raw.get("displayFulfillmentStatus"))
    if financial in ENDED_FINANCIAL:
        return financial.lower()
    if financial == "PAID" and fulfillment == "FULFILLED":
        return "fulfilled"
    status = financial or fulfillment
    return status.lower()[:32] if status else None


def special_instructions(raw: dict[str, Any], nodes: list[dict[str, Any]]) -> str | None:
    """The buyer's note, then the order's and each line's (``nodes``) custom attributes (engravings, ...)."""
    parts = [v.text(raw.get("note"))]
    parts += [_attribute(a) for a in raw.get("customAttributes") or []]
    for line in nodes:
        attributes = line.get("customAttributes")
        if attributes:  # most lines have none: no title to build
            title = _title(line.get("title"), line.get("variantTitle"))
            parts += [f"{title}: {text}" for text in map(_attribute, attributes) if text]
    return "\n".join(p for p in parts if p) or None


def _attribute(attribute: dict[str, Any]) -> str | None:
    key, value = v.text(attribute.get("key")), v.text(attribute.get("value"))
    return f"{key}: {value}" if key and value else (key or value)


def attributed_visit(summary: dict[str, Any] | None) -> dict[str, Any] | None:
    """The visit an order is credited to: the last one, unless it came in direct."""
    if not summary:
        return None
    last, first = summary.get("lastVisit"), summary.get("firstVisit")
    for visit in (last, first):
        if visit and (visit.get("utmParameters") or visit.get("referrerUrl")):
            return visit
    return last or first


def _line(line: dict[str, Any], order_id: str, currency: str | None) -> dict[str, Any]:
    line_id = _required(line, "id", "line item")
    quantity = v.decimal(line.get("quantity"), "lineItem.quantity")
    if quantity is None:
        raise Reject(f"line item {line_id}: no quantity")
    unit_price = _money(line.get("originalUnitPriceSet"), currency, "lineItem.originalUnitPriceSet")
    discount = total = None
    if "discountAllocations" in line:
        discount = sum((_money(a.get("allocatedAmountSet"), currency, "lineItem.discountAllocations") or Decimal(0)
                        for a in line.get("discountAllocations") or []), Decimal(0))
        if unit_price is not None:
            total = unit_price * quantity - discount
    variant, product = line.get("variant") or {}, line.get("product") or {}
    return {
        "external_id": line_id,
        "order_id": order_id,
        "product_id": v.text(variant.get("id") or product.get("id"), 255),
        "sku": v.text(line.get("sku"), 255),
        "title": _title(line.get("title"), line.get("variantTitle")),
        "quantity": quantity,
        "unit_price": unit_price,
        "discount": discount,
        "total": total,
        "currency": currency,
    }


NOT_A_PURCHASE = frozenset({"cancelled", "test", "voided", "expired"})


def _buyer(raw: dict[str, Any], ordered_at: dt.datetime | None, status: str | None) -> Row | None:
    """Who bought: the customer account, or for a guest checkout a person keyed by the order.

    A cancelled or test order (``status``) makes nobody a customer."""
    stage = None if status in NOT_A_PURCHASE else "customer"
    customer = raw.get("customer")
    if customer:
        return customer_person(customer, stage=stage)
    billing = raw.get("billingAddress") or {}
    if not (raw.get("email") or raw.get("phone") or billing):
        return None  # a walk-in sale: nobody to attach it to
    region = _country(billing)
    return person_row(
        f"order:{_number(_required(raw, 'id'), 'Order')}", stage=stage, seen_at=ordered_at,
        email=v.email(raw.get("email")),
        phone=v.phone(raw.get("phone") or billing.get("phone"), region),
        first_name=v.text(billing.get("firstName"), 255), last_name=v.text(billing.get("lastName"), 255),
        marketing_consent=v.boolean(raw.get("customerAcceptsMarketing"), "customerAcceptsMarketing"),
        **_address(billing, region),
    )


# --------------------------------------------------------------------------- customers


@mapping("shopify", "customers", version=1,
         label=lambda raw: f"Shopify customer {raw.get('id')}")
def map_customer(raw: dict[str, Any], ctx: MapContext) -> list[Row]:
    orders = v.integer(raw.get("numberOfOrders"), "numberOfOrders")
    return [customer_person(raw, stage="customer" if orders else None)]


def customer_person(customer: dict[str, Any], *, stage: str | None) -> Row:
    """A customer account as a source_person, the same from the customers stream and an order."""
    number = _number(_required(customer, "id", "customer"), "Customer")
    email_info = customer.get("defaultEmailAddress") or {}
    phone_info = customer.get("defaultPhoneNumber") or {}
    address = customer.get("defaultAddress") or {}
    # Shopify deprecated email/phone/emailMarketingConsent for the default* objects;
    # the old fields are read when an older API version answers.
    state = email_info.get("marketingState") or (customer.get("emailMarketingConsent") or {}).get("marketingState")
    if state is not None and state not in CONSENT:
        raise Reject(f"customer {number}: unknown email marketing state {state!r}")
    country = _country(address)
    return person_row(
        f"customer:{number}", stage=stage, seen_at=v.timestamp(customer.get("updatedAt"), "updatedAt"),
        shop_customer_id=number,
        email=v.email(email_info.get("emailAddress") or customer.get("email")),
        phone=v.phone(phone_info.get("phoneNumber") or customer.get("phone") or address.get("phone"), country),
        first_name=v.text(customer.get("firstName"), 255), last_name=v.text(customer.get("lastName"), 255),
        display_name=v.text(customer.get("displayName"), 255),
        marketing_consent=CONSENT.get(state) if state else None,
        **_address(address, country),
    )


# --------------------------------------------------------------------------- products


@mapping("shopify", "products", version=1,
         label=lambda raw: f"Shopify product {raw.get('id')}")
def map_product(raw: dict[str, Any], ctx: MapContext) -> list[Row]:
    product_id = _required(raw, "id", "product")
    title = v.text(raw.get("title"))
    category = v.text(raw.get("productType"), 255)
    currency = v.currency(raw.get("_shop_currency"), "shop currency")
    rows = [Row("product", {"external_id": product_id, "title": title and title[:512], "category": category})]
    for variant in _nodes(raw.get("variants")):
        price = v.decimal(variant.get("price"), "variant.price")
        if price is not None and currency is None:
            raise Reject(f"product {product_id}: a price without the shop's currency")
        rows.append(Row("product", {
            "external_id": _required(variant, "id", "variant"),
            "parent_id": product_id,
            "sku": v.text(variant.get("sku"), 255),
            "title": _title(title, variant.get("title")),
            "category": category,
            "price": price,
            "currency": currency if price is not None else None,
            "unit_cost": unit_cost(variant, currency),
        }))
    return rows


def unit_cost(variant: dict[str, Any], currency: str | None) -> Decimal | None:
    """What one unit costs the shop: the variant's ``inventoryItem.unitCost`` (MoneyV2).

    Shopify keeps it in the shop's currency; a cost in another one (or without the shop's
    currency to check it against) is left out with a field warning, never mixed in."""
    cost = (variant.get("inventoryItem") or {}).get("unitCost")
    if not isinstance(cost, dict):
        return None  # no cost entered in Shopify (or a staff member without "View product costs")
    amount = v.optional(v.decimal, cost.get("amount"), "inventoryItem.unitCost.amount",
                        field="inventoryItem.unitCost")
    code = v.optional(v.currency, cost.get("currencyCode"), "inventoryItem.unitCost.currencyCode",
                      field="inventoryItem.unitCost")
    if amount is None:
        return None
    if code != currency:
        v.warn("inventoryItem.unitCost", f"{amount} {code}",
               f"inventoryItem.unitCost: a {code} cost for a {currency} shop (left out)")
        return None
    return amount


# --------------------------------------------------------------------------- values


def _money(bag: Any, currency: str | None, field: str) -> Decimal | None:
    """The shop-currency amount of a MoneyBag, checked against the order's currency."""
    if bag is None:
        return None
    money = bag.get("shopMoney") if isinstance(bag, dict) else None
    if type(money) is dict and currency is not None and money.get("currencyCode") == currency:
        # the usual bag: the order's own (already normalised) currency, an amount as text
        amount = money.get("amount")
        if type(amount) is str:
            found = v.decimal_text(amount)
            if found is not None:
                return found
    if not isinstance(money, dict):
        raise Reject(f"{field}: no shopMoney in {bag!r}")
    amount = v.decimal(money.get("amount"), field)
    code = v.currency(money.get("currencyCode"), field)
    if amount is not None and currency is None:
        raise Reject(f"{field}: an amount without the order's currencyCode")
    if code is not None and code != currency:
        raise Reject(f"{field}: {code} amount in a {currency} order")
    return amount


def _address(address: dict[str, Any], country: str | None) -> dict[str, Any]:
    """The address's fields; ``country`` is its :func:`_country`, which the caller has read already."""
    street = ", ".join(p for p in (v.text(address.get("address1")), v.text(address.get("address2"))) if p)
    return {
        "company": v.text(address.get("company"), 255),
        "street": v.text(street, 255),
        "postal_code": v.text(address.get("zip"), 32),
        "city": v.text(address.get("city"), 255),
        "region": v.text(address.get("province"), 255),
        "country": country,
    }


def _country(address: dict[str, Any]) -> str | None:
    return v.country(address.get("countryCodeV2") or address.get("countryCode") or address.get("country"),
                     "country")


def _utm(params: dict[str, Any] | None) -> dict[str, Any]:
    return {f"utm_{k}": val for k, val in (params or {}).items() if v.text(val)}


def _prefixed(params: dict[str, str]) -> dict[str, str]:
    return {k: val for k, val in params.items() if k.startswith("utm_")}


def _title(title: Any, variant_title: Any) -> str | None:
    """'Organic Cotton T-Shirt - M / White'; a product's only variant adds nothing."""
    base, variant = v.text(title), v.text(variant_title)
    if variant and variant != DEFAULT_VARIANT_TITLE:
        base = f"{base} - {variant}" if base else variant
    return base[:512] if base else None


def _tags(tags: Any) -> list[str] | None:
    if isinstance(tags, str):  # older payloads: one comma-separated string
        tags = tags.split(",")
    found = [t for t in (v.text(tag) for tag in tags or []) if t]
    return found or None


def _nodes(connection: Any) -> list[dict[str, Any]]:
    if not isinstance(connection, dict):
        return []
    if isinstance(connection.get("nodes"), list):
        return connection["nodes"]
    return [e["node"] for e in connection.get("edges") or [] if isinstance(e, dict) and e.get("node")]


def _required(record: dict[str, Any], field: str, what: str = "order") -> str:
    value = v.text(record.get(field))
    if value is None:
        raise Reject(f"{what} without {field}")
    if len(value) > 255:
        raise Reject(f"{what} {field} longer than 255 characters")
    return value


def _number(gid: str, kind: str) -> str:
    """The numeric id in 'gid://shopify/Customer/7001' (Shopify's documented gid form)."""
    match = GID.match(gid)
    if not match or match["type"] != kind:
        raise Reject(f"{gid!r} is not a Shopify {kind} id")
    return match["number"]
