"""WooCommerce (REST API v3): orders, customers, products and product reviews.

    sources:
      shop:
        connector: woocommerce
        start_date: 2025-01-01
        config:
          base_url: https://shop.example.com      # the shop's URL; the API is under /wp-json/wc/v3
          consumer_key: ${WOO_CONSUMER_KEY}       # WooCommerce > Settings > Advanced > REST API (Read)
          consumer_secret: ${WOO_CONSUMER_SECRET}
          # query_string_auth: true               # for hosts that drop the Authorization header
          # sales_rep_meta_key: _sales_rep        # order meta entry naming the sales rep

| stream    | key | cursor            | incremental read                                       |
|-----------|-----|-------------------|--------------------------------------------------------|
| orders    | id  | date_modified_gmt | modified_after (UTC, dates_are_gmt=true), 5 min overlap |
| customers | id  | none              | every run reads all (the API has no modified filter)    |
| products  | id  | date_modified_gmt | modified_after, as orders                               |
| reviews   | id  | date_created_gmt  | after (site-local time only), one day of overlap        |

Pages are ``page``/``per_page`` (at most 100), sorted by id ascending so that records
created while we read land after us rather than shifting the pages under us. A read
stops at ``X-WP-TotalPages``, or on a short or empty page. Cursors move only once a
stream was read to its end; the overlaps are re-read and upserted by id, harmlessly.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

import requests
from pydantic import Field, SecretStr, field_validator

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
from connectors.sdk.http import NotJson
from connectors.sdk.streams import Record

API = "/wp-json/wc/v3"
# modified_after is exclusive and a slow save can commit after a later one: re-read a margin.
MODIFIED_OVERLAP = dt.timedelta(minutes=5)
# Reviews filter on the site's local time, which is UTC-12..UTC+14: a day covers any zone.
REVIEW_OVERLAP = dt.timedelta(days=1)
WC_DATE = "%Y-%m-%dT%H:%M:%S"


class WooCommerceConfig(HttpConfig):
    base_url: str = Field(description="The shop's URL, e.g. https://shop.example.com.")
    consumer_key: SecretStr
    consumer_secret: SecretStr
    query_string_auth: bool = Field(
        False, description="Send the keys as query parameters (hosts that strip Authorization).")
    page_size: int = Field(100, ge=1, le=100, description="Records per request (per_page, max 100).")
    customer_role: str = Field("customer", description="Customers endpoint role filter ('all' for every role).")
    currency: str | None = Field(
        None, description="Store currency for product prices; read from the shop when not set.")
    sales_rep_meta_key: str | None = Field(
        "_sales_rep", description="Order meta_data key that names the sales rep (no WooCommerce standard).")
    default_region: str | None = Field(
        None, description="Country for phone numbers when the billing address has none, e.g. US.")

    @field_validator("currency")
    @classmethod
    def _currency_code(cls, value: str | None) -> str | None:
        if value is not None and not (len(value) == 3 and value.isalpha()):
            raise ValueError("must be an ISO 4217 code such as USD")
        return value.upper() if value else value


class WooCommerceConnector(Connector):
    Config = WooCommerceConfig
    config: WooCommerceConfig
    mapping_options = ("sales_rep_meta_key", "default_region")

    def __init__(self, config: WooCommerceConfig, **kw: Any):
        super().__init__(config, **kw)
        key = config.consumer_key.get_secret_value()
        secret = config.consumer_secret.get_secret_value()
        if config.query_string_auth:
            self.auth_params = {"consumer_key": key, "consumer_secret": secret}
            _hide_keys_in_urllib3_logs()
            auth = None
        else:
            self.auth_params = {}
            auth = (key, secret)  # HTTP Basic: key as user name, secret as password
        self.http = Http(config.base_url, name="woocommerce", auth=auth, **config.http_options())

    @stream(primary_key="id", cursor="date_modified_gmt")
    def orders(self, state: StreamState) -> Iterator[list[Record]]:
        yield from self._pages("orders", _modified_after(state))

    @stream(primary_key="id")
    def customers(self, state: StreamState) -> Iterator[list[Record]]:
        # No modified filter exists for customers; guests are taken from order billing.
        yield from self._pages("customers", {"role": self.config.customer_role})

    @stream(primary_key="id", cursor="date_modified_gmt")
    def products(self, state: StreamState) -> Iterator[list[Record]]:
        currency = self.config.currency or self._store_currency()
        for page in self._pages("products", _modified_after(state)):
            # products carry no currency of their own: the store's applies to every price
            yield [{**product, "_currency": currency} for product in page]

    @stream(primary_key="id", cursor="date_created_gmt")
    def reviews(self, state: StreamState) -> Iterator[list[Record]]:
        since = state.since()
        after = {"after": (since - REVIEW_OVERLAP).strftime(WC_DATE)} if since else {}
        yield from self._pages("products/reviews", after)

    # ------------------------------------------------------------------ helpers

    def _pages(self, resource: str, filters: dict[str, Any]) -> Iterator[list[Record]]:
        size = self.config.page_size

        def fetch(page: int | None) -> tuple[list[Record], int | None]:
            page = page or 1
            params = {**filters, "orderby": "id", "order": "asc", "per_page": size, "page": page,
                      **self.auth_params}
            try:
                response = self.http.request("GET", f"{API}/{resource}", params=params, expect_json=True)
            except NotJson as exc:  # WordPress with "Plain" permalinks answers with its home page
                raise SourceError(f"{exc} (check base_url, and that WordPress uses pretty permalinks)") from None
            records = _json_list(response, resource)
            total_pages = _int_header(response, "X-WP-TotalPages")
            last = (not records or len(records) < size
                    or (total_pages is not None and page >= total_pages))
            return records, None if last else page + 1

        yield from paginate(fetch, what=f"woocommerce {resource}")

    def _store_currency(self) -> str:
        response = self.http.request("GET", f"{API}/data/currencies/current", params=self.auth_params,
                                     expect_json=True)
        try:
            code = response.json().get("code")
        except (ValueError, AttributeError):
            code = None
        if not code:
            raise SourceError("woocommerce: the shop did not name its currency at "
                              f"{API}/data/currencies/current; set currency: in the source's config")
        return str(code).upper()

    def close(self) -> None:
        self.http.close()


def _modified_after(state: StreamState) -> dict[str, str]:
    since = state.since()
    if since is None:
        return {}
    return {"modified_after": (since - MODIFIED_OVERLAP).strftime(WC_DATE), "dates_are_gmt": "true"}


def _json_list(response: requests.Response, resource: str) -> list[Record]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, list):
        # WordPress with "Plain" permalinks answers /wp-json/... with its home page (HTTP 200)
        raise SourceError(
            f"woocommerce: {redact_url(response.url)} did not return a JSON list of {resource} "
            "(check base_url, and that WordPress uses pretty permalinks)")
    return body


def _int_header(response: requests.Response, name: str) -> int | None:
    try:
        return int(response.headers[name])
    except (KeyError, ValueError):
        return None


class _RedactQueryKeys(logging.Filter):
    """urllib3 logs request URLs at DEBUG: hide the keys when they ride in the query string."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_url(a) if isinstance(a, str) and "consumer_" in a else a
                                for a in record.args)
        return True


def _hide_keys_in_urllib3_logs() -> None:
    logger = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _RedactQueryKeys) for f in logger.filters):
        logger.addFilter(_RedactQueryKeys())
