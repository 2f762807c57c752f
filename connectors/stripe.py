"""Stripe (API v1): customers, charges, invoices (with their lines) and refunds.

    sources:
      payments:
        connector: stripe
        start_date: 2025-01-01
        config:
          secret_key: ${STRIPE_SECRET_KEY}     # sk_live_... or a restricted key rk_... (read access, events too)
          # shop_order_metadata_keys: [order_id]   # charges that pay a shop order synced elsewhere

| stream    | key | first sync (and fallback)                    | later syncs: the Events API     |
|-----------|-----|----------------------------------------------|---------------------------------|
| customers | id  | list, created[gte] = start_date              | customer.created/updated        |
| charges   | id  | list; each charge says which invoice it pays | charge.* (succeeded, refunded)  |
| invoices  | id  | list; ``lines`` completed, refunds attached  | invoice.*, credit_note.*        |
| refunds   | id  | list, expand[]=data.charge                   | refund.*, charge.refund.updated |

Objects carry no "updated" time and list endpoints filter only on ``created``, so a
list read never sees an old invoice being paid, voided or credited, or a customer's
new address. The first sync of a stream therefore lists everything (newest first,
``starting_after=<last id>`` until ``has_more`` is false) and notes when it started;
every later sync asks ``/v1/events`` for the stream's event types since then and
fetches each object named there as it is now (``GET /v1/<objects>/<id>``), so an
object changed at any age is updated on the next sync. State per stream:
``{"cursor": max(created) read, "events": <unix time to read events from>}``, stored
only once the stream was read to its end. Stripe keeps events for 30 days: a stream
whose events time is older than that (a source paused for a month), or whose state
predates events, is listed in full again, and the run's log says so.

Since API version 2025-03-31.basil a charge no longer names its invoice; the charges
stream then asks ``/v1/invoice_payments`` for the charge's payment intent and records
the answer on the charge as ``_invoice`` (the mapping needs it to count a sale once).
Accounts on older API versions get ``charge.invoice`` and no extra request is made.

Refunds: a refund made with the Refunds API against the charge that paid an invoice
leaves the invoice as it was (no credit note, no ``post_payment_credit_notes_amount``).
So a paid invoice carries ``_refunds``: every refund of the payments that paid it
(``/v1/invoice_payments?invoice=``, then ``/v1/refunds?payment_intent=``), each marked
with the credit note that made it, if any (``/v1/credit_notes?invoice=``, asked only
when the invoice has post-payment credit notes). And a refund of such a charge carries
``_paid_invoice``, that invoice as it is now, so the refund updates the invoice's order.
The mapping counts each refund once: credit notes, plus refunds no credit note made.

Retries: the shared client retries 429 (Retry-After when sent, else backoff) and 5xx;
a 5xx or 429 that carries ``Stripe-Should-Retry: false`` fails at once.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import requests
from pydantic import Field, SecretStr

from connectors.sdk import (
    Connector,
    Http,
    HttpConfig,
    SourceError,
    StreamState,
    paginate,
    redact_url,
    stream,
)
from connectors.sdk.http import error_detail
from connectors.sdk.streams import Record
from crmhub.redact import redact

log = logging.getLogger("crmhub.stripe")

DAY = 86_400
EVENTS_KEPT = 30 * DAY  # Stripe lists events of the last 30 days only
EVENTS_MARGIN = 3600  # treat events within an hour of that edge as already gone
EVENTS_OVERLAP = 300  # re-read the last 5 minutes of events: ones written late are not missed


@dataclass(frozen=True)
class Kind:
    """One stream's object: where it is listed and fetched, and which events say it changed."""

    path: str  # /v1/invoices (list) and /v1/invoices/{id} (one)
    object: str  # the object's "object" field: invoice
    events: tuple[str, ...]
    gone: tuple[str, ...] = ()  # events after which the object cannot be fetched any more

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


CUSTOMERS = Kind("/v1/customers", "customer", ("customer.created", "customer.updated"), ("customer.deleted",))
CHARGES = Kind("/v1/charges", "charge", (
    "charge.captured", "charge.expired", "charge.failed", "charge.pending", "charge.refunded",
    "charge.succeeded", "charge.updated"))
INVOICES = Kind("/v1/invoices", "invoice", (
    "invoice.created", "invoice.deleted", "invoice.finalized", "invoice.marked_uncollectible", "invoice.paid",
    "invoice.payment_failed", "invoice.payment_succeeded", "invoice.updated", "invoice.voided",
    "credit_note.created", "credit_note.updated", "credit_note.voided"), ("invoice.deleted",))
REFUNDS = Kind("/v1/refunds", "refund", ("refund.created", "refund.updated", "refund.failed",
                                         "charge.refund.updated"))


class StripeConfig(HttpConfig):
    base_url: str = "https://api.stripe.com"
    secret_key: SecretStr
    auth: Literal["bearer", "basic"] = Field(
        "bearer", description="Send the key as a Bearer token or as the HTTP Basic user name.")
    stripe_version: str | None = Field(
        None, description="Stripe-Version header (e.g. 2025-08-27.basil); none = the account's default.")
    page_size: int = Field(100, ge=1, le=100, description="Objects per list request (limit, max 100).")
    lookback_days: int | None = Field(
        None, ge=0, le=400, description="No longer used: later syncs read changes through the Events API.")
    shop_order_metadata_keys: list[str] = Field(
        default_factory=list,
        description="Charge metadata keys naming a shop order (e.g. order_id from WooCommerce's Stripe "
                    "gateway): such charges pay an order another source records, so they are no order here.")
    default_region: str | None = Field(
        None, description="Country for phone numbers without +code when the address has none, e.g. US.")


class StripeConnector(Connector):
    Config = StripeConfig
    config: StripeConfig
    mapping_options = ("shop_order_metadata_keys", "default_region")

    def __init__(self, config: StripeConfig, **kw: Any):
        super().__init__(config, **kw)
        key = config.secret_key.get_secret_value()
        headers = {"Stripe-Version": config.stripe_version} if config.stripe_version else {}
        auth = None
        if config.auth == "bearer":
            headers["Authorization"] = f"Bearer {key}"
        else:
            auth = (key, "")  # the key is the user name, the password is empty
        self.http = Http(config.base_url, name="stripe", headers=headers, auth=auth,
                         check=_refuse_when_stripe_says_no_retry, **config.http_options())
        self._invoice_of_payment_intent: dict[str, str | None] = {}
        self._paid_invoices: dict[str, Record] = {}  # invoice id -> the invoice with _refunds, this run
        if config.lookback_days is not None:
            log.warning("stripe: lookback_days is no longer used (changes are read through the Events API); "
                        "remove it from the source config")

    @stream(primary_key="id", cursor="created")
    def customers(self, state: StreamState) -> Iterator[list[Record]]:
        return (yield from self._read(CUSTOMERS, state, {}, lambda customer: customer))

    @stream(primary_key="id", cursor="created")
    def charges(self, state: StreamState) -> Iterator[list[Record]]:
        return (yield from self._read(CHARGES, state, {}, self._with_invoice))

    @stream(primary_key="id", cursor="created")
    def invoices(self, state: StreamState) -> Iterator[list[Record]]:
        return (yield from self._read(INVOICES, state, {}, self._complete_invoice))

    @stream(primary_key="id", cursor="created")
    def refunds(self, state: StreamState) -> Iterator[list[Record]]:
        return (yield from self._read(REFUNDS, state, {"expand[]": "data.charge"}, self._refund_with_charge_invoice))

    # ------------------------------------------------------------------ reading

    def _read(self, kind: Kind, state: StreamState, list_params: dict[str, Any],
              complete: Callable[[Record], Record]) -> Iterator[list[Record]]:
        """The first sync lists everything; later ones read what events say changed."""
        now = int(time.time())
        events_from = state.saved.get("events")
        cursor = _max(state.cursor, None)
        if isinstance(events_from, int) and events_from > now - EVENTS_KEPT + EVENTS_MARGIN:
            newest, changed_created = yield from self._changed(kind, events_from, complete)
            return {"cursor": _max(cursor, changed_created), "events": max(events_from, newest - EVENTS_OVERLAP)}
        if isinstance(events_from, int):
            log.warning("stripe %s: the last sync read changes up to %s UTC, more than 30 days ago, and Stripe "
                        "keeps events for 30 days only: reading every %s again", kind.name,
                        time.strftime("%Y-%m-%d %H:%M", time.gmtime(events_from)), kind.object)
        elif cursor is not None:
            log.warning("stripe %s: changes are now read through the Events API; listing every %s once to "
                        "start from a complete copy", kind.name, kind.object)
        started = now - EVENTS_OVERLAP  # what changes while the list is read comes as events next time
        created = None
        for page in self._list(kind.path, {**self._created_since(state), **list_params}):
            for obj in page:
                created = _max(created, obj.get("created"))
            yield [complete(obj) for obj in page]
        return {"cursor": _max(cursor, created), "events": started}

    def _changed(self, kind: Kind, since: int, complete: Callable[[Record], Record]):
        """Objects named by events created since ``since``, each fetched as it is now.

        Yields pages; returns (newest event time, newest ``created`` among the objects).
        """
        changed: dict[str, str] = {}  # object id -> its newest event's type (events come newest first)
        newest = since
        params = {"types[]": list(kind.events), "created[gte]": since}
        for page in self._list("/v1/events", params):
            for event in page:
                newest = max(newest, _max(event.get("created"), None) or 0)
                target = _event_target(kind, event)
                if target:
                    changed.setdefault(target, event.get("type") or "")
        created = None
        batch: list[Record] = []
        for object_id, event_type in changed.items():
            if event_type in kind.gone:
                continue  # deleted: Stripe cannot show it any more (a deleted draft was never a sale)
            obj = self.http.get_json(f"{kind.path}/{object_id}",
                                     params={"expand[]": "charge"} if kind is REFUNDS else None)
            if not isinstance(obj, dict) or obj.get("deleted") is True:
                continue
            created = _max(created, obj.get("created"))
            batch.append(complete(obj))
            if len(batch) >= self.config.page_size:
                yield batch
                batch = []
        if batch:
            yield batch
        return newest, created

    # ------------------------------------------------------------------ helpers

    def _created_since(self, state: StreamState) -> dict[str, int]:
        """A full read starts at the source's start_date, whatever the cursor says."""
        if state.start_date is None:
            return {}
        since = StreamState(start_date=state.start_date).since()
        return {"created[gte]": max(int(since.timestamp()), 0)} if since else {}

    def _list(self, path: str, params: dict[str, Any], starting_after: str | None = None,
              ) -> Iterator[list[Record]]:
        """Every object of a list endpoint, page by page (newest first)."""

        def fetch(after: str | None) -> tuple[list[Record], str | None]:
            body = self.http.get_json(path, params={**params, "limit": self.config.page_size,
                                                    "starting_after": after})
            data = body.get("data") if isinstance(body, dict) else None
            if not isinstance(data, list):
                raise SourceError(f"stripe: {path} did not answer with a list object (check base_url)")
            if not body.get("has_more"):
                return data, None
            if not data or not data[-1].get("id"):
                raise SourceError(f"stripe: {path} says has_more but gave no object id to continue after")
            return data, data[-1]["id"]

        yield from paginate(fetch, starting_after, what=f"stripe {path}")

    def _with_invoice(self, charge: Record) -> Record:
        """The charge, plus ``_invoice``: the invoice it pays, or None (basil and later)."""
        if "invoice" in charge:  # API versions before 2025-03-31.basil name it themselves
            return charge
        return {**charge, "_invoice": self._invoice_paid_by(charge.get("payment_intent"))}

    def _invoice_paid_by(self, payment_intent: Any) -> str | None:
        intent = _id_of(payment_intent)
        if intent is None:
            return None  # invoices are paid through payment intents: a bare charge pays none
        if intent not in self._invoice_of_payment_intent:
            body = self.http.get_json("/v1/invoice_payments", params={
                "payment[type]": "payment_intent", "payment[payment_intent]": intent, "limit": 1})
            found = body.get("data") if isinstance(body, dict) else None
            if not isinstance(found, list):
                raise SourceError("stripe: /v1/invoice_payments did not answer with a list object")
            self._invoice_of_payment_intent[intent] = _id_of(found[0].get("invoice")) if found else None
        return self._invoice_of_payment_intent[intent]

    def _with_all_lines(self, invoice: Record) -> Record:
        """The invoice with every line in ``lines.data`` (Stripe embeds only the first ones)."""
        lines = invoice.get("lines")
        if not isinstance(lines, dict) or not lines.get("has_more"):
            return invoice
        invoice = copy.deepcopy(invoice)
        lines = invoice["lines"]
        path = lines.get("url") or f"/v1/invoices/{invoice['id']}/lines"
        after = lines["data"][-1]["id"] if lines.get("data") else None
        for page in self._list(path, {}, starting_after=after):
            lines["data"].extend(page)
        lines["has_more"] = False
        return invoice

    def _refund_with_charge_invoice(self, refund: Record) -> Record:
        """The refund, its charge as it is now, and the invoice that charge paid (with its refunds)."""
        charge = refund.get("charge")
        if not isinstance(charge, dict):
            return refund
        charge = self._with_invoice(charge)
        refund = {**refund, "charge": charge}
        invoice_id = _id_of(charge.get("invoice") if "invoice" in charge else charge.get("_invoice"))
        if invoice_id:
            refund["_paid_invoice"] = self._paid_invoice(invoice_id)
        return refund

    def _paid_invoice(self, invoice_id: str) -> Record:
        """The invoice a refunded charge paid, as it is now (read once per run)."""
        if invoice_id not in self._paid_invoices:
            invoice = self.http.get_json(f"/v1/invoices/{invoice_id}")
            if not isinstance(invoice, dict) or invoice.get("object") != "invoice":
                raise SourceError(f"stripe: /v1/invoices/{invoice_id} did not answer with an invoice")
            self._complete_invoice(invoice)
        return self._paid_invoices[invoice_id]

    def _complete_invoice(self, invoice: Record) -> Record:
        invoice = self._with_refunds(self._with_all_lines(invoice))
        if isinstance(invoice.get("id"), str):
            self._paid_invoices[invoice["id"]] = invoice  # the refunds stream reuses it this run
        return invoice

    def _with_refunds(self, invoice: Record) -> Record:
        """A paid invoice plus ``_refunds``: every refund of its payments, and the credit note behind each."""
        if invoice.get("status") != "paid" or not invoice.get("amount_paid"):
            return invoice
        by_credit_note: dict[str, str] = {}
        if invoice.get("post_payment_credit_notes_amount"):
            for page in self._list("/v1/credit_notes", {"invoice": invoice["id"]}):
                for note in page:
                    for refund_id in _credit_note_refunds(note):
                        by_credit_note[refund_id] = note.get("id")
        refunds = []
        for kind, payment in self._payments_of(invoice):
            for page in self._list("/v1/refunds", {kind: payment}):
                refunds.extend({"id": r.get("id"), "amount": r.get("amount"), "currency": r.get("currency"),
                                "status": r.get("status"), "created": r.get("created"),
                                "credit_note": by_credit_note.get(r.get("id"))} for r in page)
        return {**invoice, "_refunds": refunds}

    def _payments_of(self, invoice: Record) -> list[tuple[str, str]]:
        """("payment_intent" or "charge", id) of every payment made on the invoice."""
        if "charge" in invoice or "payment_intent" in invoice:  # API versions before basil
            intent, charge = _id_of(invoice.get("payment_intent")), _id_of(invoice.get("charge"))
            return [("payment_intent", intent)] if intent else [("charge", charge)] if charge else []
        payments: list[tuple[str, str]] = []
        for page in self._list("/v1/invoice_payments", {"invoice": invoice["id"]}):
            for entry in page:
                payment = entry.get("payment") or {}
                kind = payment.get("type")
                found = _id_of(payment.get(kind)) if kind in ("payment_intent", "charge") else None
                if found and entry.get("status") != "canceled":
                    payments.append((kind, found))
        return payments

    def close(self) -> None:
        self.http.close()


def _id_of(value: Any) -> str | None:
    """An object's id, whether Stripe sent the id or (expanded) the object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _max(a: Any, b: Any) -> Any:
    """The larger of two unix times; None where neither is one."""
    numbers = [n for n in (a, b) if isinstance(n, int) and not isinstance(n, bool)]
    return max(numbers) if numbers else None


def _event_target(kind: Kind, event: Record) -> str | None:
    """The id of the stream's object an event is about (a credit note is about its invoice)."""
    obj = (event.get("data") or {}).get("object")
    if not isinstance(obj, dict):
        return None
    if obj.get("object") == kind.object:
        return _id_of(obj.get("id"))
    if kind is INVOICES and obj.get("object") == "credit_note":
        return _id_of(obj.get("invoice"))
    return None


def _credit_note_refunds(note: Record) -> list[str]:
    """The refunds a credit note made: ``refunds[].refund`` (2025 and later) or ``refund`` (before)."""
    if note.get("status") == "void":
        return []
    found = [_id_of(entry.get("refund")) for entry in note.get("refunds") or [] if isinstance(entry, dict)]
    found.append(_id_of(note.get("refund")))
    return [r for r in found if r]


def _refuse_when_stripe_says_no_retry(response: requests.Response) -> None:
    """Stripe-Should-Retry: false on a 429/5xx means retrying will not help (error-low-level)."""
    retryable = response.status_code == 429 or response.status_code >= 500
    if retryable and response.headers.get("Stripe-Should-Retry", "").lower() == "false":
        raise SourceError(redact(
            f"stripe: {response.request.method} {redact_url(response.url)} -> {response.status_code} "
            f"{response.reason}, and Stripe says not to retry it ({error_detail(response)})"))
