"""WooCommerce mapping: pure functions on the documented payloads in tests/fixtures/woocommerce/."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal

import pytest

from crm_model.mapping import MapContext, Reject, find_mapping
from tests.conftest import load_json

UTC = dt.UTC


def run(stream: str, raw: dict, **options) -> dict[str, list[dict]]:
    mapper = find_mapping("woocommerce", stream)
    ctx = MapContext("shop", stream, "woocommerce", {"sales_rep_meta_key": "_sales_rep", **options})
    out: dict[str, list[dict]] = {}
    for row in mapper.fn(raw, ctx):
        out.setdefault(row.table, []).append(row.values)
    return out


def order(number: int) -> dict:
    orders = load_json("woocommerce", "orders_page1.json") + load_json("woocommerce", "orders_page2.json")
    return copy.deepcopy(next(o for o in orders if o["id"] == number))


def test_attribution_meta_and_sales_rep_land_on_the_order():
    raw = order(1201)
    raw["meta_data"] += [  # as WooCommerce 8.5+ order attribution stores them
        {"id": 9201, "key": "_wc_order_attribution_source_type", "value": "utm"},
        {"id": 9202, "key": "_wc_order_attribution_utm_source", "value": "newsletter"},
        {"id": 9203, "key": "_wc_order_attribution_utm_medium", "value": "email"},
        {"id": 9204, "key": "_wc_order_attribution_utm_campaign", "value": "autumn-mugs"},
        {"id": 9205, "key": "_wc_order_attribution_referrer", "value": "https://mail.example.com/"},
        {"id": 9206, "key": "_wc_order_attribution_session_entry",
         "value": "https://shop.example.com/mugs/?utm_source=newsletter"},
        {"id": 9207, "key": "_sales_rep", "value": "Priya Shah"},
    ]
    [o] = run("orders", raw)["customer_order"]
    assert (o["utm_source"], o["utm_medium"], o["utm_campaign"]) == ("newsletter", "email", "autumn-mugs")
    assert o["referrer"] == "https://mail.example.com/"
    assert o["landing_page"] == "https://shop.example.com/mugs/?utm_source=newsletter"
    assert o["sales_rep"] == "Priya Shah"
    # the key is configurable: another plugin's key, or none at all
    assert run("orders", raw, sales_rep_meta_key="rep")["customer_order"][0]["sales_rep"] is None
    assert run("orders", raw, sales_rep_meta_key=None)["customer_order"][0]["sales_rep"] is None
    assert o["marketing_channel"] == "utm"


def attributed(source_type: str | None, source: str, medium: str, campaign: str = "(none)",
               referrer: str = "(none)") -> dict:
    """Order 1201 with the attribution meta WooCommerce's checkout posts for one kind of visit."""
    raw = order(1201)
    meta = {"utm_source": source, "utm_medium": medium, "utm_campaign": campaign, "utm_content": "(none)",
            "utm_term": "(none)", "referrer": referrer,
            "session_entry": "https://shop.example.com/mugs/"}
    if source_type is not None:
        meta["source_type"] = source_type
    raw["meta_data"] += [{"id": 9300 + n, "key": f"_wc_order_attribution_{k}", "value": value}
                         for n, (k, value) in enumerate(meta.items())]
    return run("orders", raw)["customer_order"][0]


@pytest.mark.parametrize(("source_type", "source", "medium", "referrer", "channel"), [
    ("typein", "(direct)", "(none)", "(none)", "direct"),
    ("organic", "google", "organic", "https://www.google.com/", "organic"),
    ("referral", "blog.example.org", "referral", "https://blog.example.org/mugs", "referral"),
    ("admin", "Web admin", "(none)", "(none)", "admin"),
    (None, "(direct)", "(none)", "(none)", None),  # no source type and nothing but placeholders
    (None, "bing", "organic", "https://www.bing.com/", "organic"),  # attribution without source_type
])
def test_attribution_placeholders_become_a_channel_never_a_utm_source(source_type, source, medium,
                                                                      referrer, channel):
    o = attributed(source_type, source, medium, referrer=referrer)
    assert (o["utm_source"], o["utm_medium"], o["utm_campaign"]) == (None, None, None)
    assert o["marketing_channel"] == channel
    assert o["referrer"] == (None if referrer == "(none)" else referrer)
    assert o["landing_page"] == "https://shop.example.com/mugs/"


def test_a_real_campaign_keeps_its_utm_values_but_not_placeholder_ones():
    o = attributed("utm", "newsletter", "email")  # campaign left "(none)" by the checkout script
    assert (o["utm_source"], o["utm_medium"], o["utm_campaign"]) == ("newsletter", "email", None)
    assert o["marketing_channel"] == "utm"


def test_guest_order_is_keyed_by_the_order_and_described_by_billing():
    out = run("orders", order(1201))
    [o] = out["customer_order"]
    [person] = out["source_person"]
    assert o["person_ref"] == person["external_id"] == "order:1201"
    assert person.get("shop_customer_id") is None
    assert (person["display_name"], person["company"], person["city"], person["region"]) == (
        "Bob Martinez", "Martinez Design LLC", "Brooklyn", "NY")
    assert o["total"] == Decimal("46.00") and o["subtotal"] == Decimal("36.00")  # + shipping + gift fee


def test_refunds_sum_into_refunded_and_leave_total_and_status():
    raw = order(1198)
    raw["refunds"].append({"id": 1210, "reason": "", "total": "-3.50"})
    [o] = run("orders", raw)["customer_order"]
    assert (o["total"], o["refunded"], o["status"]) == (Decimal("79.00"), Decimal("15.50"), "completed")


def test_registered_customer_comes_with_billing_address_and_phone_region():
    [person] = run("customers", load_json("woocommerce", "customers.json")[1])["source_person"]
    assert person["external_id"] == "customer:58" and person["shop_customer_id"] == "58"
    assert (person["email"], person["phone"], person["street"]) == (
        "carol.okafor@example.com", "+15125550107", "8 Rue Lafayette Ln")
    assert person["seen_at"] == dt.datetime(2025, 9, 1, 14, 15, 31, tzinfo=UTC)
    assert person["lifecycle_stage"] == "customer"  # is_paying_customer


def test_phone_without_country_code_and_without_country_is_rejected():
    raw = order(1202)
    raw["billing"]["country"] = ""
    with pytest.raises(Reject, match="billing.phone"):
        run("orders", raw)
    assert run("orders", raw, default_region="US")["source_person"][0]["phone"] == "+14155550142"


def test_products_take_the_list_price_and_all_categories():
    products = {p["id"]: p for p in load_json("woocommerce", "products.json")}
    mug = run("products", {**products[320], "_currency": "USD"})["product"][0]
    assert (mug["price"], mug["currency"], mug["sku"]) == (Decimal("14.00"), "USD", "MUG-CER-12")  # not the sale price
    tee = run("products", {**products[310], "_currency": "USD"})["product"][0]
    assert (tee["price"], tee["category"]) == (Decimal("25.00"), "Clothing, T-shirts")  # variable: from-price


def test_review_html_becomes_text_and_zero_stars_is_no_rating():
    raw = dict(load_json("woocommerce", "reviews.json")[0], rating=0,
               review="<p>Great &amp; sturdy.</p><p>Would buy again</p>\n")
    out = run("reviews", raw)
    [feedback] = out["feedback"]
    assert feedback["comment"] == "Great & sturdy. Would buy again"
    assert feedback["rating"] is None
    assert out["source_person"][0]["email"] == "dana.whitfield@example.com"


def test_a_meta_value_that_is_not_text_rejects_the_order():
    raw = order(1202)
    raw["meta_data"].append({"id": 1, "key": "_sales_rep", "value": {"id": 7, "name": "Priya"}})
    with pytest.raises(Reject, match="meta _sales_rep: expected text"):
        run("orders", raw)


def test_cost_of_goods_sold_becomes_line_cost_and_product_unit_cost():
    """WooCommerce 9.5+ with Cost of Goods Sold on (shapes: NOTES.md, "Cost of Goods Sold")."""
    raw = order(next(o["id"] for o in load_json("woocommerce", "orders_page1.json")))
    first, *others = raw["line_items"]
    first["cost_of_goods_sold"] = {"value": 21.5}  # 2 x 10.75, recorded at the sale
    for line in others:
        line["cost_of_goods_sold"] = {"value": 0}  # a product without a cost: WooCommerce says 0
    lines = run("orders", raw)["order_line"]
    assert lines[0]["cost"] == Decimal("21.5") and first["quantity"] == 2
    assert all(line["cost"] is None for line in lines[1:])
    del first["cost_of_goods_sold"]  # feature off: no field at all
    assert run("orders", raw)["order_line"][0]["cost"] is None

    mug = {p["id"]: p for p in load_json("woocommerce", "products.json")}[320]
    costed = {**mug, "_currency": "USD", "cost_of_goods_sold": {
        "values": [{"defined_value": 4.2, "effective_value": 4.2}], "total_value": 4.2}}
    assert run("products", costed)["product"][0]["unit_cost"] == Decimal("4.2")
    unset = {**costed, "cost_of_goods_sold": {
        "values": [{"defined_value": None, "effective_value": 0}], "total_value": 0}}
    assert run("products", unset)["product"][0]["unit_cost"] is None  # 0 without a defined value: unknown
    assert run("products", {**mug, "_currency": "USD"})["product"][0]["unit_cost"] is None
