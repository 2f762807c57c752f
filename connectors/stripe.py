"""Stripe (API v1): customers, charges, invoices (with their lines) and refunds.

    sources:
      payments:
        connector: stripe
        start_date: 2025-01-01
        config:
          secret_key: ${STRIPE_SECRET_KEY}     # sk_live_... or a restricted key rk_... (read access)
          # lookback_days: 7                   # re-read this much before the cursor (status changes)
          # shop_order_metadata_keys: [order_id]   # charges that pay a shop order synced elsewhere

| stream    | key | cursor  | incremental read                                             |
|-----------|-----|---------|--------------------------------------------------------------|
| customers | id  | created | created[gte] = cursor - lookback_days                        |
| charges   | id  | created | as customers; each charge says which invoice it pays         |
| invoices  | id  | created | as customers; ``lines`` completed when Stripe cut them short |
| refunds   | id  | created | as customers; expand[]=data.charge (the charge as it is now) |

Stripe lists newest first and pages with ``starting_after=<last id>`` until
``has_more`` is false, so a cursor is only safe once a stream was read to its end: the
engine stores max(created) then, never per page. ``created`` has one-second
resolution and never changes, hence ``gte`` (re-reading the edge, upserted by id) and
the lookback window, which re-reads recent objects whose status may have moved on
(a pending charge succeeding, an open invoice being paid).

Since API version 2025-03-31.basil a charge no longer names its invoice; the charges
stream then asks ``/v1/invoice_payments`` for the charge's payment intent and records
the answer on the charge as ``_invoice`` (the mapping needs it to count a sale once).
Accounts on older API versions get ``charge.invoice`` and no extra request is made.

Retries: the shared client retries 429 (Retry-After when sent, else backoff) and 5xx;
a 5xx or 429 that carries ``Stripe-Should-Retry: false`` fails at once.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
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

DAY = 86_400


class StripeConfig(HttpConfig):
    base_url: str = "https://api.stripe.com"
    secret_key: SecretStr
    auth: Literal["bearer", "basic"] = Field(
        "bearer", description="Send the key as a Bearer token or as the HTTP Basic user name.")
    stripe_version: str | None = Field(
        None, description="Stripe-Version header (e.g. 2025-08-27.basil); none = the account's default.")
    page_size: int = Field(100, ge=1, le=100, description="Objects per list request (limit, max 100).")
    lookback_days: int = Field(
        7, ge=0, le=400, description="Re-read objects created this many days before the cursor.")
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

    @stream(primary_key="id", cursor="created")
    def customers(self, state: StreamState) -> Iterator[list[Record]]:
        yield from self._list("/v1/customers", self._created_since(state))

    @stream(primary_key="id", cursor="created")
    def charges(self, state: StreamState) -> Iterator[list[Record]]:
        for page in self._list("/v1/charges", self._created_since(state)):
            yield [self._with_invoice(charge) for charge in page]

    @stream(primary_key="id", cursor="created")
    def invoices(self, state: StreamState) -> Iterator[list[Record]]:
        for page in self._list("/v1/invoices", self._created_since(state)):
            yield [self._with_all_lines(invoice) for invoice in page]

    @stream(primary_key="id", cursor="created")
    def refunds(self, state: StreamState) -> Iterator[list[Record]]:
        params = {**self._created_since(state), "expand[]": "data.charge"}
        for page in self._list("/v1/refunds", params):
            yield [self._refund_with_charge_invoice(refund) for refund in page]

    # ------------------------------------------------------------------ helpers

    def _created_since(self, state: StreamState) -> dict[str, int]:
        if isinstance(state.cursor, int) and not isinstance(state.cursor, bool):
            start = state.cursor - self.config.lookback_days * DAY  # overlap: ids are upserted
        else:
            since = state.since()  # the first run starts at the source's start_date
            if since is None:
                return {}
            start = int(since.timestamp())
        return {"created[gte]": max(start, 0)}

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
        charge = refund.get("charge")
        if not isinstance(charge, dict):
            return refund
        return {**refund, "charge": self._with_invoice(charge)}

    def close(self) -> None:
        self.http.close()


def _id_of(value: Any) -> str | None:
    """An object's id, whether Stripe sent the id or (expanded) the object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _refuse_when_stripe_says_no_retry(response: requests.Response) -> None:
    """Stripe-Should-Retry: false on a 429/5xx means retrying will not help (error-low-level)."""
    retryable = response.status_code == 429 or response.status_code >= 500
    if retryable and response.headers.get("Stripe-Should-Retry", "").lower() == "false":
        raise SourceError(redact(
            f"stripe: {response.request.method} {redact_url(response.url)} -> {response.status_code} "
            f"{response.reason}, and Stripe says not to retry it ({error_detail(response)})"))
