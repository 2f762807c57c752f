"""Stripe objects -> source_person, customer_order (+ order_line).

Amounts are integers in the currency's minor unit: ``values.minor_units`` turns them
into exact decimals (3500 JPY is 3500, 7360 USD is 73.60).

Every sale is counted once:
- An **invoice** is an order (``in_...``) with a line per invoice line. A draft is not
  a sale yet and maps to nothing until it is finalized.
- A **charge that pays an invoice** is that invoice's payment: no order of its own.
- A **charge that pays a shop order** another source records (its metadata carries
  one of the ``shop_order_metadata_keys``, e.g. WooCommerce's ``order_id``) is no order
  either; only its payer is kept.
- Any **other charge** is a one-off purchase: an order ``ch_...`` without lines,
  including failed ones (status ``failed``) so a report can count attempts.
- A **refund** carries its charge as it is now (the connector expands it), so it maps
  to that charge's order again: ``refunded`` and the status follow. A refund of a
  charge that paid an invoice carries that invoice (``_paid_invoice``, as it is now)
  and maps to the invoice's order.
- An invoice's ``refunded`` is what its post-payment credit notes gave back, plus the
  refunds of its payments that no credit note made (``_refunds``, attached by the
  connector): a refund made through a credit note is in both, and counts once.

People: a Stripe customer (``cus_...``) is a ``source_person`` without a lifecycle
stage (Stripe creates customers before anyone pays). The stage becomes ``customer``
through a paid invoice or a succeeded charge. A charge without a customer describes
its payer from ``billing_details`` as ``charge:<id>``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from crm_model.mapping import MapContext, Reject, Row, mapping
from crm_model.mapping import values as v
from crm_model.mapping.common import person_row


@mapping("stripe", "customers", version=1, label=lambda raw: f"Stripe customer {raw.get('id')}")
def map_customer(raw: dict[str, Any], ctx: MapContext) -> list[Row]:
    customer_id = _required_id(raw)
    address = _address(raw.get("address"), ctx, "address")
    return [person_row(
        customer_id,
        seen_at=v.timestamp(raw.get("created"), "created"),
        shop_customer_id=customer_id,
        display_name=v.text(raw.get("name"), 255),
        email=v.email(raw.get("email")),
        phone=v.phone(raw.get("phone"), address.get("country") or ctx.options.get("default_region")),
        **address,
    )]


@mapping("stripe", "charges", version=1, label=lambda raw: f"Stripe charge {raw.get('id')}")
def map_charge(raw: dict[str, Any], ctx: MapContext) -> list[Row]:
    return charge_rows(raw, ctx)


@mapping("stripe", "refunds", version=2, label=lambda raw: f"Stripe refund {raw.get('id')}")
def map_refund(raw: dict[str, Any], ctx: MapContext) -> list[Row]:
    charge = raw.get("charge")
    if charge is None:
        return []  # a refund of no charge (e.g. of a customer balance): no order to update
    if not isinstance(charge, dict):
        raise Reject("refund.charge is an id, not the charge: refunds are read with expand[]=data.charge "
                     "so that the order's refunded amount and status can follow")
    rows = charge_rows(charge, ctx)
    if _invoice_paid(charge):  # the charge is no order of its own: the invoice it paid is
        invoice = raw.get("_paid_invoice")
        if not isinstance(invoice, dict):
            raise Reject("the refunded charge paid an invoice, but the refund does not carry it (_paid_invoice): "
                         "read refunds through the stripe connector, which attaches it")
        rows.extend(map_invoice(invoice, ctx))
    return rows


@mapping("stripe", "invoices", version=2,
         label=lambda raw: f"Stripe invoice {raw.get('number') or raw.get('id')}")
def map_invoice(raw: dict[str, Any], ctx: MapContext) -> list[Row]:
    invoice_id = _required_id(raw)
    status = v.text(raw.get("status"), 32)
    if status == "draft":
        return []  # editable and unsent: it becomes an order when finalized
    currency = v.currency(raw.get("currency"))
    customer = _id_of(raw.get("customer"))
    paid = status == "paid"
    refunded = (v.minor_units(raw.get("post_payment_credit_notes_amount"), currency,
                              "post_payment_credit_notes_amount") or Decimal(0)) + _refunds_outside_credit_notes(
        raw.get("_refunds"), currency)
    total = v.minor_units(raw.get("total"), currency, "total")
    if total is None:
        raise Reject("total is missing")
    transitions = raw.get("status_transitions") or {}
    ordered_at = v.timestamp(raw.get("effective_at") or transitions.get("finalized_at") or raw.get("created"),
                             "effective_at")
    order = {
        "external_id": invoice_id,
        "person_ref": customer,
        "order_number": v.text(raw.get("number"), 64),
        "ordered_at": ordered_at,
        "status": _refund_status(status, False, refunded, total) if paid else status,
        "currency": currency,
        "subtotal": v.minor_units(raw.get("subtotal"), currency, "subtotal"),
        "discount": _sum_amounts(raw.get("total_discount_amounts"), currency, "total_discount_amounts"),
        "tax": _invoice_tax(raw, currency),
        "total": total,
        "refunded": refunded,
    }
    rows: list[Row] = []
    if customer:
        rows.append(person_row(customer, stage="customer" if paid else None, shop_customer_id=customer))
    rows.append(Row("customer_order", order))
    lines = raw.get("lines") or {}
    if lines.get("has_more"):
        raise Reject("lines.has_more is true: the invoice's lines are incomplete")
    rows.extend(_invoice_line(line, invoice_id, currency) for line in lines.get("data") or [])
    return rows


# --------------------------------------------------------------------------- charges


def charge_rows(charge: dict[str, Any], ctx: MapContext) -> list[Row]:
    """A charge's payer and, when it is a sale of its own, its order."""
    charge_id = _required_id(charge)
    status = v.text(charge.get("status"), 32)
    person_ref, people = _payer(charge, charge_id, status == "succeeded", ctx)
    if _invoice_paid(charge) or _pays_shop_order(charge, ctx.options.get("shop_order_metadata_keys")):
        return people
    currency = v.currency(charge.get("currency"))
    total = v.minor_units(charge.get("amount"), currency, "amount")
    if total is None:
        raise Reject("amount is missing")
    refunded = v.minor_units(charge.get("amount_refunded"), currency, "amount_refunded") or Decimal(0)
    if status == "succeeded":
        status = ("authorized" if charge.get("captured") is False and not refunded
                  else _refund_status("paid", charge.get("refunded") is True, refunded, total))
    return [*people, Row("customer_order", {
        "external_id": charge_id,
        "person_ref": person_ref,
        "order_number": v.text(charge.get("receipt_number"), 64),
        "ordered_at": v.timestamp(charge.get("created"), "created"),
        "status": status,
        "currency": currency,
        "total": total,
        "refunded": refunded,
    })]


def _invoice_paid(charge: dict[str, Any]) -> str | None:
    if "invoice" in charge:  # API versions before 2025-03-31.basil
        return _id_of(charge["invoice"])
    if "_invoice" in charge:  # looked up by the connector in /v1/invoice_payments
        return _id_of(charge["_invoice"])
    if charge.get("payment_intent") is None:
        return None  # invoices are paid through payment intents: a bare charge pays none
    raise Reject("cannot tell whether this charge pays an invoice (no invoice/_invoice field): "
                 "read charges through the stripe connector, which looks it up")


def _pays_shop_order(charge: dict[str, Any], keys: Any) -> bool:
    metadata = charge.get("metadata") or {}
    return any(v.text(metadata.get(key)) for key in keys or ())


def _payer(charge: dict[str, Any], charge_id: str, paid: bool, ctx: MapContext) -> tuple[str | None, list[Row]]:
    stage = "customer" if paid else None
    customer = _id_of(charge.get("customer"))
    if customer:  # described by the customers stream
        return customer, [person_row(customer, stage=stage, shop_customer_id=customer)]
    details = charge.get("billing_details") or {}
    address = _address(details.get("address"), ctx, "billing_details.address")
    person = {
        "display_name": v.text(details.get("name"), 255),
        "email": (v.email(details.get("email"), "billing_details.email")
                  or v.email(charge.get("receipt_email"), "receipt_email")),
        "phone": v.phone(details.get("phone"), address.get("country") or ctx.options.get("default_region"),
                         "billing_details.phone"),
        **address,
    }
    if not any(person.values()):
        return None, []
    ref = f"charge:{charge_id}"
    return ref, [person_row(ref, stage=stage, seen_at=v.timestamp(charge.get("created"), "created"), **person)]


def _refund_status(status: str | None, fully_refunded: bool, refunded: Decimal, total: Decimal) -> str | None:
    if fully_refunded or (total and refunded >= total):
        return "refunded"
    if refunded > 0:
        return "partially_refunded"
    return status


# --------------------------------------------------------------------------- invoices


def _invoice_line(line: dict[str, Any], invoice_id: str, currency: str | None) -> Row:
    line_id = _required_id(line, "lines.data.id")
    quantity = v.decimal(line.get("quantity_decimal"), "quantity_decimal")
    if quantity is None:
        quantity = v.decimal(line.get("quantity"), "quantity")
    amount = v.minor_units(line.get("amount"), currency, "lines.amount")  # before discounts and tax
    discount = _sum_amounts(line.get("discount_amounts"), currency, "lines.discount_amounts")
    pricing = line.get("pricing") or {}  # basil and later
    price = pricing.get("price_details") or line.get("price") or {}  # ...and before
    unit = pricing.get("unit_amount_decimal") if "unit_amount_decimal" in pricing else price.get("unit_amount_decimal")
    return Row("order_line", {
        "external_id": line_id,
        "order_id": invoice_id,
        "product_id": _id_of(price.get("product")),
        "title": v.text(line.get("description"), 512),
        "quantity": quantity,
        "unit_price": v.minor_units(unit, currency, "unit_amount_decimal"),
        "discount": discount,
        "total": amount - discount if amount is not None else None,
        "currency": currency,
    })


def _refunds_outside_credit_notes(refunds: Any, currency: str | None) -> Decimal:
    """What the Refunds API gave back on the invoice's payments, beyond its credit notes."""
    if not refunds:
        return Decimal(0)
    if not isinstance(refunds, list):
        raise Reject("_refunds: expected a list of refunds")
    total = Decimal(0)
    for refund in refunds:
        if not isinstance(refund, dict) or refund.get("credit_note"):
            continue  # a credit note's refund is in post_payment_credit_notes_amount already
        if refund.get("status") not in ("succeeded", "pending", "requires_action"):
            continue  # failed or canceled: nothing went back
        if refund.get("currency") and v.currency(refund.get("currency")) != currency:
            raise Reject(f"_refunds: refund {refund.get('id')} is in {refund.get('currency')}, the invoice in "
                         f"{currency}")
        amount = v.minor_units(refund.get("amount"), currency, "_refunds.amount")
        if amount is None:
            raise Reject(f"_refunds: refund {refund.get('id')} has no amount")
        total += amount
    return total


def _invoice_tax(invoice: dict[str, Any], currency: str | None) -> Decimal | None:
    if invoice.get("total_taxes") is not None:  # basil and later
        return _sum_amounts(invoice["total_taxes"], currency, "total_taxes")
    return v.minor_units(invoice.get("tax"), currency, "tax")


def _sum_amounts(entries: Any, currency: str | None, field: str) -> Decimal:
    if not entries:
        return Decimal(0)
    if not isinstance(entries, list):
        raise Reject(f"{field}: expected a list of amounts")
    total = Decimal(0)
    for entry in entries:
        amount = v.minor_units(entry.get("amount") if isinstance(entry, dict) else None, currency, field)
        if amount is None:
            raise Reject(f"{field}: an entry has no amount")
        total += amount
    return total


# --------------------------------------------------------------------------- helpers


def _required_id(obj: dict[str, Any], field: str = "id") -> str:
    found = _id_of(obj.get("id"))
    if found is None:
        raise Reject(f"{field} is missing")
    return found


def _id_of(value: Any) -> str | None:
    """An object's id, whether Stripe sent the id or the (expanded) object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _address(address: Any, ctx: MapContext, where: str) -> dict[str, Any]:
    if not isinstance(address, dict):
        return {}
    street = ", ".join(p for p in (v.text(address.get("line1")), v.text(address.get("line2"))) if p)
    return {
        "street": v.text(street, 255),
        "postal_code": v.text(address.get("postal_code"), 32),
        "city": v.text(address.get("city"), 255),
        "region": v.text(address.get("state"), 255),
        "country": v.country(address.get("country"), f"{where}.country"),
    }
