"""The stripe connector's assumptions, checked against Stripe's official Python client.

stripe-python (test extra only, never a runtime dependency) is generated from Stripe's
OpenAPI spec: its typed resources name every field of every object and its Event type
lists every event type. Field and event names the connector relies on must be there.
"""

from __future__ import annotations

import typing

import pytest

stripe = pytest.importorskip("stripe")

from connectors import stripe as connector  # noqa: E402
from tests.conftest import load_json  # noqa: E402


@pytest.mark.parametrize("kind", [connector.CUSTOMERS, connector.CHARGES, connector.INVOICES, connector.REFUNDS],
                         ids=lambda k: k.name)
def test_every_event_type_asked_for_is_one_stripe_sends(kind):
    known = set(typing.get_args(stripe.Event.__annotations__["type"]))
    assert len(known) > 100  # the Literal of every event type
    assert set(kind.events) - known == set()
    assert set(kind.gone) <= set(kind.events) | {"customer.deleted"}
    assert set(kind.gone) <= known


@pytest.mark.parametrize(("cls", "names"), [
    ("Invoice", {"status", "amount_paid", "post_payment_credit_notes_amount", "total", "lines", "customer"}),
    ("InvoicePayment", {"invoice", "payment", "status"}),
    ("InvoicePayment.Payment", {"type", "payment_intent", "charge"}),
    ("CreditNote", {"invoice", "refunds", "status"}),
    ("CreditNote.Refund", {"refund", "amount_refunded"}),
    ("Refund", {"amount", "charge", "currency", "payment_intent", "status", "created"}),
    ("Charge", {"amount_refunded", "refunded", "payment_intent", "customer", "created"}),
    ("Event", {"created", "data", "type"}),
    ("Event.Data", {"object"}),
])
def test_the_fields_the_connector_reads_exist_in_the_typed_resources(cls, names):
    target = stripe
    for part in cls.split("."):
        target = getattr(target, part)
    assert names - set(target.__annotations__) == set()


def test_the_events_the_stand_in_serves_are_typed_like_stripe_sends_them():
    """An event built from the public OpenAPI fixtures parses to the object class it names."""
    resources = load_json("public", "stripe", "openapi_fixtures3.json")["resources"]
    for name, cls in (("invoice", stripe.Invoice), ("credit_note", stripe.CreditNote), ("refund", stripe.Refund),
                      ("customer", stripe.Customer), ("charge", stripe.Charge)):
        event = {**resources["event"], "type": f"{name}.updated", "data": {"object": resources[name]}}
        parsed = stripe.Event.construct_from(event, "sk_test_x")
        assert isinstance(parsed.data.object, cls)
        assert set(event) <= set(stripe.Event.__annotations__) | {"object", "id"}
