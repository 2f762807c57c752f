"""WooCommerce records -> customer_order + order_line, source_person, product, feedback.

- An order is a ``customer_order`` (amounts exact, from WooCommerce's decimal strings)
  with one ``order_line`` per line item. ``refunded`` is the sum of the order's refunds
  (WooCommerce lists them as negative totals and never lowers ``total``). A partial
  refund leaves the status as WooCommerce keeps it (e.g. completed).
- Who ordered: registered customers are ``customer:<id>`` (the same row the customers
  stream fills), guests (customer_id 0) are ``order:<id>``; the billing address
  describes them. Phone numbers without a country code take the billing country.
- Marketing: WooCommerce's order attribution (8.5+) stores the last-click visit in
  order meta ``_wc_order_attribution_*``: utm_source/medium/campaign, ``referrer``,
  and ``session_entry`` (the landing page). Only visits of ``source_type`` utm carry
  real UTM values: for the others WooCommerce writes synthesized ones into the same
  keys (``(direct)``/``(none)`` for typed-in visits, the search engine for organic, the
  referring host for referral). Those become ``marketing_channel`` (direct, organic,
  referral, admin, ...) and leave the utm_* columns empty, so reports never mix
  placeholders with campaigns.
- The sales rep is the order meta entry named by the ``sales_rep_meta_key`` option.
- Cost (WooCommerce 9.5+ with its Cost of Goods Sold feature on): a line's
  ``cost_of_goods_sold.value`` (cost x quantity at the sale) becomes ``order_line.cost``,
  a product's ``cost_of_goods_sold.total_value`` its ``unit_cost``; the sales report's
  gross margin reads both.
- Reviews become ``feedback`` (rating 1-5; 0 means "no rating"); the reviewer, by
  email, becomes a person ``review:<id>`` that identity resolution joins to others.
"""

from __future__ import annotations

from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

from crm_model.mapping import MapContext, Reject, Row, mapping
from crm_model.mapping import values as v
from crm_model.mapping.common import person_row

# processing and completed are WooCommerce's "paid" statuses; refunded orders were paid first.
PAID_STATUSES = frozenset({"processing", "completed", "refunded"})
ATTRIBUTION = "_wc_order_attribution_"
# _wc_order_attribution_source_type -> marketing_channel (WooCommerce's OrderAttributionMeta)
SOURCE_TYPE_CHANNELS = {"utm": "utm", "typein": "direct", "organic": "organic", "referral": "referral",
                        "admin": "admin", "mobile_app": "mobile_app", "pos": "pos"}


@mapping("woocommerce", "orders", version=3,
         label=lambda raw: f"WooCommerce order #{raw.get('number') or raw.get('id')}")
def map_order(raw: dict[str, Any], ctx: MapContext) -> list[Row]:
    order_id = _id(raw.get("id"), "id")
    currency = v.currency(raw.get("currency"))
    status = v.text(raw.get("status"), 32)
    ordered_at = v.timestamp(raw.get("date_created_gmt"), "date_created_gmt")
    customer_id = v.integer(raw.get("customer_id"), "customer_id") or 0
    person_ref = f"customer:{customer_id}" if customer_id else f"order:{order_id}"
    meta = _meta(raw.get("meta_data"))

    lines, subtotals = [], []
    for item in raw.get("line_items") or []:
        line, subtotal = _order_line(item, order_id, currency)
        lines.append(line)
        subtotals.append(subtotal or Decimal(0))
    refunds = [v.decimal(r.get("total"), "refunds.total") for r in raw.get("refunds") or []]
    order = {
        "external_id": order_id,
        "person_ref": person_ref,
        "order_number": v.text(raw.get("number"), 64),
        "ordered_at": ordered_at,
        "updated_at": v.timestamp(raw.get("date_modified_gmt"), "date_modified_gmt"),
        "status": status,
        "currency": currency,
        "subtotal": sum(subtotals, Decimal(0)),
        "discount": v.decimal(raw.get("discount_total"), "discount_total"),
        "tax": v.decimal(raw.get("total_tax"), "total_tax"),
        "total": v.decimal(raw.get("total"), "total"),
        "refunded": sum((abs(r) for r in refunds if r is not None), Decimal(0)),
        "sales_rep": _sales_rep(meta, ctx.options.get("sales_rep_meta_key")),
        "special_instructions": v.text(raw.get("customer_note")),
        "channel": v.text(raw.get("created_via"), 64),
        **_attribution(meta),
    }
    if order["total"] is None:
        raise Reject("total is missing")

    billing = raw.get("billing") or {}
    person = person_row(
        person_ref,
        stage="customer" if status in PAID_STATUSES else None,
        seen_at=ordered_at,
        shop_customer_id=str(customer_id) if customer_id else None,
        **_address_person(billing, ctx, "billing"),
    )
    return [person, Row("customer_order", order), *lines]


@mapping("woocommerce", "customers", version=1,
         label=lambda raw: f"WooCommerce customer {raw.get('id')}")
def map_customer(raw: dict[str, Any], ctx: MapContext) -> list[Row]:
    customer_id = _id(raw.get("id"), "id")
    billing = raw.get("billing") or {}
    person = _address_person(billing, ctx, "billing")
    # the account's own name and email come first; billing fills what the account lacks
    for name in ("first_name", "last_name"):
        person[name] = v.text(raw.get(name), 255) or person.get(name)
    person["email"] = v.email(raw.get("email")) or person.get("email")
    seen_at = (v.timestamp(raw.get("date_modified_gmt"), "date_modified_gmt")
               or v.timestamp(raw.get("date_created_gmt"), "date_created_gmt"))
    paying = raw.get("is_paying_customer") is True
    return [person_row(f"customer:{customer_id}", stage="customer" if paying else None,
                       seen_at=seen_at, shop_customer_id=customer_id, **person)]


@mapping("woocommerce", "products", version=2,
         label=lambda raw: f"WooCommerce product {raw.get('id')}")
def map_product(raw: dict[str, Any], ctx: MapContext) -> list[Row]:
    categories = [v.text(c.get("name")) for c in raw.get("categories") or [] if isinstance(c, dict)]
    # the list price; a variable product has none and shows its cheapest variation's price
    price = v.decimal(raw.get("regular_price"), "regular_price")
    if price is None:
        price = v.decimal(raw.get("price"), "price")
    parent = v.integer(raw.get("parent_id"), "parent_id")
    return [Row("product", {
        "external_id": _id(raw.get("id"), "id"),
        "sku": v.text(raw.get("sku"), 255),
        "title": v.text(raw.get("name"), 512),
        "category": v.text(", ".join(c for c in categories if c), 255),
        "price": price,
        "currency": v.currency(raw.get("_currency"), "store currency"),
        "parent_id": str(parent) if parent else None,
        "unit_cost": _product_cost(raw.get("cost_of_goods_sold")),
    })]


def _product_cost(cogs: Any) -> Decimal | None:
    """A product's cost per unit: ``cost_of_goods_sold.total_value`` (WooCommerce 9.5+, Cost of
    Goods Sold feature on), when a cost was entered (a defined value): WooCommerce reports an
    unset cost as 0 too."""
    if not isinstance(cogs, dict):
        return None
    values = cogs.get("values") if isinstance(cogs.get("values"), list) else []
    if not any(isinstance(x, dict) and x.get("defined_value") is not None for x in values):
        return None
    return v.optional(v.decimal, cogs.get("total_value"), "cost_of_goods_sold.total_value",
                      field="cost_of_goods_sold")


@mapping("woocommerce", "reviews", version=1,
         label=lambda raw: f"WooCommerce product review {raw.get('id')}")
def map_review(raw: dict[str, Any], ctx: MapContext) -> list[Row]:
    review_id = _id(raw.get("id"), "id")
    rating = v.integer(raw.get("rating"), "rating")
    if rating is not None and not 0 <= rating <= 5:
        raise Reject(f"rating: {rating} is not between 0 and 5")
    received_at = v.timestamp(raw.get("date_created_gmt"), "date_created_gmt")
    email = v.email(raw.get("reviewer_email"), "reviewer_email")
    name = v.text(raw.get("reviewer"), 255)
    product = v.integer(raw.get("product_id"), "product_id")
    rows: list[Row] = []
    person_ref = None
    if email or name:
        person_ref = f"review:{review_id}"
        rows.append(person_row(person_ref, seen_at=received_at, email=email, display_name=name))
    rows.append(Row("feedback", {
        "external_id": review_id,
        "person_ref": person_ref,
        "product_id": str(product) if product else None,
        "rating": Decimal(rating) if rating else None,  # 0: the reviewer gave no stars
        "comment": plain_text(raw.get("review")),
        "received_at": received_at,
    }))
    return rows


# --------------------------------------------------------------------------- helpers


def _attribution(meta: dict[str, Any]) -> dict[str, Any]:
    """The order's visit: UTM values only when the visit had them, else its channel."""
    def value(name: str, limit: int | None = 255) -> str | None:
        text = _meta_text(meta, ATTRIBUTION + name, limit)
        return None if _placeholder(text) else text

    source_type = (_meta_text(meta, ATTRIBUTION + "source_type", 32) or "").lower() or None
    utm = {"utm_source": value("utm_source"), "utm_medium": value("utm_medium"),
           "utm_campaign": value("utm_campaign")}
    if source_type is None and any(utm.values()):
        # attribution written before source_type existed: the medium says what the source is
        medium = (utm["utm_medium"] or "").lower()
        source_type = medium if medium in ("organic", "referral") else "utm"
    channel = SOURCE_TYPE_CHANNELS.get(source_type, source_type) if source_type else None
    if channel != "utm":
        utm = dict.fromkeys(utm)  # a search engine or a referring host is no campaign source
    return {**utm, "marketing_channel": channel,
            "landing_page": value("session_entry", None), "referrer": value("referrer", None)}


def _placeholder(text: str | None) -> bool:
    """WooCommerce's (and sourcebuster's) stand-ins for "no value": (direct), (none), (not set)."""
    return text is not None and text.startswith("(") and text.endswith(")")


def _id(value: Any, field: str) -> str:
    number = v.integer(value, field)
    if number is None:
        raise Reject(f"{field} is missing")
    return str(number)


def _order_line(item: dict[str, Any], order_id: str, currency: str | None) -> tuple[Row, Decimal | None]:
    """The line's row, and its subtotal (before discounts) for the order's subtotal."""
    line_id = _id(item.get("id"), "line_items.id")
    quantity = v.decimal(item.get("quantity"), "line_items.quantity")
    subtotal = v.decimal(item.get("subtotal"), "line_items.subtotal")  # before discounts
    total = v.decimal(item.get("total"), "line_items.total")  # after discounts, before tax
    product = v.integer(item.get("product_id"), "line_items.product_id")
    return Row("order_line", {
        "external_id": line_id,
        "order_id": order_id,
        "product_id": str(product) if product else None,  # 0: a line not tied to a product
        "sku": v.text(item.get("sku"), 255),
        "title": v.text(item.get("name"), 512),
        "quantity": quantity,
        "unit_price": _per_unit(subtotal, quantity),
        "discount": subtotal - total if subtotal is not None and total is not None else None,
        "total": total,
        "currency": currency,
        "cost": _line_cost(item.get("cost_of_goods_sold")),
    }), subtotal


def _line_cost(cogs: Any) -> Decimal | None:
    """What the line's units cost, recorded at the sale: ``cost_of_goods_sold.value`` (the
    product's cost x quantity). 0 is what WooCommerce reports for a product without a cost,
    so it counts as unknown (the report then falls back to product.unit_cost)."""
    if not isinstance(cogs, dict):
        return None
    value = v.optional(v.decimal, cogs.get("value"), "line_items.cost_of_goods_sold.value",
                       field="line_items.cost_of_goods_sold")
    return value or None


def _per_unit(amount: Decimal | None, quantity: Decimal | None) -> Decimal | None:
    if amount is None or not quantity:
        return None
    per_unit = amount / quantity
    if per_unit.as_tuple().exponent < -4:  # 10.00 / 3: the warehouse keeps 4 places; totals stay exact
        per_unit = per_unit.quantize(Decimal("0.0001"))
    return per_unit


def _address_person(address: dict[str, Any], ctx: MapContext, where: str) -> dict[str, Any]:
    country = v.country(address.get("country"), f"{where}.country")
    street = ", ".join(p for p in (v.text(address.get("address_1")), v.text(address.get("address_2"))) if p)
    return {
        "first_name": v.text(address.get("first_name"), 255),
        "last_name": v.text(address.get("last_name"), 255),
        "email": v.email(address.get("email"), f"{where}.email"),
        "phone": v.phone(address.get("phone"), country or ctx.options.get("default_region"), f"{where}.phone"),
        "company": v.text(address.get("company"), 255),
        "street": v.text(street, 255),
        "postal_code": v.text(address.get("postcode"), 32),
        "city": v.text(address.get("city"), 255),
        "region": v.text(address.get("state"), 255),
        "country": country,
    }


def _meta(entries: Any) -> dict[str, Any]:
    """meta_data as {key: value}; a key given twice keeps its last value, as WooCommerce reads it."""
    if not isinstance(entries, list):
        return {}
    return {e["key"]: e.get("value") for e in entries if isinstance(e, dict) and isinstance(e.get("key"), str)}


def _meta_text(meta: dict[str, Any], key: str, max_len: int | None = 255) -> str | None:
    value = meta.get(key)
    if isinstance(value, (dict, list)):
        raise Reject(f"meta {key}: expected text, got a JSON {type(value).__name__}")
    return v.text(value, max_len)


def _sales_rep(meta: dict[str, Any], key: str | None) -> str | None:
    return _meta_text(meta, key) if key else None


class _TextOnly(HTMLParser):
    BREAKS = frozenset({"p", "br", "div", "li", "ul", "ol", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in self.BREAKS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.BREAKS:
            self.parts.append(" ")


def plain_text(html: Any) -> str | None:
    """A review's HTML as plain text (tags dropped, entities decoded, spaces collapsed)."""
    if html is None:
        return None
    parser = _TextOnly()
    parser.feed(str(html))
    parser.close()
    return v.text(" ".join("".join(parser.parts).split()))
