"""A local Shopify-GraphQL-shaped order server for benchmarks (stdlib only).

    python bench/shop_server.py --records 100000 --dir /tmp/shop --port 0

Writes two data sets of deterministic orders (``base``, and ``changed`` where 1% of the
orders have a later ``updatedAt`` and a new fulfillment status), each as one file of
pre-serialised GraphQL edges sorted by ``updatedAt`` plus an offset index. It then
serves ``POST /<set>/admin/api/<version>/graphql.json`` the way the shopify connector
reads orders: ``first``, ``after`` and ``query: "updated_at:>='...'"`` are honoured,
and a page is one read of the file between two offsets, so the server costs next to
nothing beside the clients it serves. It prints ``READY <port>`` once listening.

The orders carry the fields of the connector's order query (shopMoney only, two line
items each, about 3.5 KB of JSON); the shape follows tests/fixtures/shopify.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import re
import sys
from array import array
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

START = 1_735_689_600  # 2025-01-01T00:00:00Z
CHANGED_EVERY = 100  # 1% of the orders change for the re-sync
FIRST_NAMES = ["Jane", "Omar", "Li", "Ana", "Kofi", "Maria", "Jonas", "Aiko", "Priya", "Lucas"]
LAST_NAMES = ["Doe", "Haddad", "Wei", "Silva", "Mensah", "Rossi", "Berg", "Sato", "Nair", "Martin"]
CITIES = [("San Francisco", "California", "CA", "94110", "United States", "US"),
          ("Berlin", "Berlin", "BE", "10115", "Germany", "DE"),
          ("Lyon", "Auvergne-Rhône-Alpes", "ARA", "69001", "France", "FR"),
          ("Toronto", "Ontario", "ON", "M5V 2T6", "Canada", "CA")]
PRODUCTS = [("Organic Cotton T-Shirt", "M / White", "TSHIRT-ORG-M", "29.90"),
            ("Ceramic Pour-Over Coffee Set", None, "BREW-POUR-SET", "49.90"),
            ("Merino Beanie", "Grey", "BEANIE-MER-G", "24.50"),
            ("Canvas Tote", "Default Title", "TOTE-CNV", "18.00")]
CAMPAIGNS = ["jan_sale", "spring_drop", "newsletter_42", "retarget", "brand"]


def iso(seconds: int) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def money(amount: str) -> dict:
    return {"shopMoney": {"amount": amount, "currencyCode": "USD"}}


def address(i: int) -> dict:
    city, province, code, zip_, country, cc = CITIES[i % len(CITIES)]
    return {"firstName": FIRST_NAMES[i % 10], "lastName": LAST_NAMES[(i // 10) % 10], "company": None,
            "address1": f"{100 + i % 9000} Valencia Street", "address2": f"Apt {i % 50}", "city": city,
            "province": province, "provinceCode": code, "zip": zip_, "country": country,
            "countryCodeV2": cc, "phone": f"+1415555{i % 10000:04d}"}


def order(i: int, updated: int, changed: bool = False) -> dict:
    created = START + i * 30
    lines = []
    for n in range(2):
        title, variant, sku, price = PRODUCTS[(i + n) % len(PRODUCTS)]
        lines.append({
            "id": f"gid://shopify/LineItem/{10 * i + n}", "title": title, "variantTitle": variant, "sku": sku,
            "quantity": 1 + (i + n) % 3, "currentQuantity": 1 + (i + n) % 3, "customAttributes": [],
            "originalUnitPriceSet": money(price),
            "discountAllocations": [{"allocatedAmountSet": money("2.50")}],
            "variant": {"id": f"gid://shopify/ProductVariant/{8100 + (i + n) % 4}"},
            "product": {"id": f"gid://shopify/Product/{8000 + (i + n) % 4}"},
        })
    subtotal = sum(float(p[3]) * (1 + (i + n) % 3) for n, p in enumerate(PRODUCTS[(i + k) % 4] for k in range(2)))
    campaign = CAMPAIGNS[i % len(CAMPAIGNS)]
    visit = {"id": f"gid://shopify/CustomerVisit/{i}", "occurredAt": iso(created - 3600),
             "landingPage": f"https://bench-shop.myshopify.com/products/item-{i % 40}?utm_source=newsletter"
                            f"&utm_medium=email&utm_campaign={campaign}",
             "referrerUrl": "https://mail.example.com/", "source": "email",
             "utmParameters": {"source": "newsletter", "medium": "email", "campaign": campaign,
                               "content": "hero", "term": None}}
    customer_no = 7000 + i % 50_000
    return {
        "id": f"gid://shopify/Order/{1_000_000 + i}", "name": f"#{1_000_000 + i}",
        "createdAt": iso(created), "updatedAt": iso(updated), "processedAt": iso(created),
        "cancelledAt": None, "cancelReason": None, "closedAt": None, "test": False,
        "displayFinancialStatus": "PAID", "displayFulfillmentStatus": "FULFILLED" if changed else "UNFULFILLED",
        "currencyCode": "USD", "presentmentCurrencyCode": "USD", "taxesIncluded": False,
        "subtotalPriceSet": money(f"{subtotal:.2f}"), "totalDiscountsSet": money("5.00"),
        "totalTaxSet": money("8.39"), "totalShippingPriceSet": money("5.00"),
        "totalPriceSet": money(f"{subtotal + 8.39:.2f}"), "totalRefundedSet": money("0.0"),
        "discountCodes": ["WELCOME10"], "note": f"Please leave parcel {i} at the back door." if i % 3 else None,
        "customAttributes": [{"key": "Gift wrap", "value": "yes"}] if i % 7 == 0 else [],
        "tags": ["newsletter", f"batch-{i % 20}"], "email": f"buyer{customer_no}@example.com",
        "phone": f"+1415555{i % 10000:04d}", "sourceName": "web", "customerAcceptsMarketing": i % 2 == 0,
        "customer": {"id": f"gid://shopify/Customer/{customer_no}", "firstName": FIRST_NAMES[i % 10],
                     "lastName": LAST_NAMES[(i // 10) % 10],
                     "displayName": f"{FIRST_NAMES[i % 10]} {LAST_NAMES[(i // 10) % 10]}",
                     "updatedAt": iso(created),
                     "defaultEmailAddress": {"emailAddress": f"buyer{customer_no}@example.com",
                                             "marketingState": "SUBSCRIBED"},
                     "defaultPhoneNumber": {"phoneNumber": f"+1415555{i % 10000:04d}"},
                     "defaultAddress": address(i)},
        "billingAddress": address(i), "shippingAddress": address(i + 1),
        "customerJourneySummary": {"ready": True, "daysToConversion": i % 5, "firstVisit": visit,
                                   "lastVisit": visit},
        "refunds": [], "staffMember": None,
        "lineItems": {"nodes": lines, "pageInfo": {"hasNextPage": False, "endCursor": None}},
    }


def updated_at(i: int) -> int:
    return START + i * 30 + 600


def build(folder: Path, records: int) -> None:
    """Write base.edges/.idx and changed.edges/.idx unless they exist for this size."""
    stamp = folder / "records.txt"
    if stamp.exists() and stamp.read_text() == str(records):
        return
    folder.mkdir(parents=True, exist_ok=True)
    last = updated_at(records - 1)
    changed_ids = [i for i in range(records) if i % CHANGED_EVERY == CHANGED_EVERY // 2]
    plans = {
        "base": [(i, updated_at(i), False) for i in range(records)],
        "changed": [(i, updated_at(i), False) for i in range(records) if i % CHANGED_EVERY != CHANGED_EVERY // 2]
        + [(i, last + 3600 + n, True) for n, i in enumerate(changed_ids)],
    }
    for name, plan in plans.items():
        offsets, keys = array("Q", [0]), []
        with (folder / f"{name}.edges").open("wb") as f:
            for position, (i, updated, changed) in enumerate(plan):
                node = json.dumps(order(i, updated, changed), separators=(",", ":"), ensure_ascii=False)
                f.write(f'{{"cursor":"{position}","node":{node}}},'.encode())
                offsets.append(f.tell())
                keys.append(iso(updated))
        with (folder / f"{name}.idx").open("wb") as f:
            offsets.tofile(f)
        (folder / f"{name}.keys").write_text("\n".join(keys))
    stamp.write_text(str(records))


class DataSet:
    def __init__(self, folder: Path, name: str):
        self.offsets = array("Q")
        with (folder / f"{name}.idx").open("rb") as f:
            self.offsets.frombytes(f.read())
        self.keys = (folder / f"{name}.keys").read_text().split("\n")
        self.path = folder / f"{name}.edges"

    def page(self, first: int, after: str | None, since: str | None) -> bytes:
        start = int(after) + 1 if after else (bisect.bisect_left(self.keys, since) if since else 0)
        end = min(start + first, len(self.keys))
        with self.path.open("rb") as f:
            f.seek(self.offsets[start])
            edges = f.read(self.offsets[end] - self.offsets[start])[:-1] if end > start else b""
        more = "true" if end < len(self.keys) else "false"
        cursor = f'"{end - 1}"' if end > start else "null"
        return (b'{"data":{"orders":{"edges":[' + edges + b'],"pageInfo":{"hasNextPage":' + more.encode()
                + b',"endCursor":' + cursor.encode() + b'}}},"extensions":{"cost":{"requestedQueryCost":572,'
                b'"actualQueryCost":67,"throttleStatus":{"maximumAvailable":2000.0,"currentlyAvailable":1933,'
                b'"restoreRate":100.0}}}}')


ROOT = re.compile(r"^\s*(\w+)\(first:", re.M)
SINCE = re.compile(r"updated_at:>='([^']+)'")


def serve(folder: Path, port: int) -> None:
    sets = {name: DataSet(folder, name) for name in ("base", "changed")}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            name = self.path.strip("/").split("/", 1)[0]
            variables = body.get("variables") or {}
            since = SINCE.search(variables.get("query") or "")
            query = body.get("query") or ""
            if name not in sets:
                self.send_error(404)
                return
            if "orders(" in query:
                data = sets[name].page(int(variables.get("first") or 50), variables.get("after"),
                                       since.group(1) if since else None)
            elif "shop {" in query:
                data = b'{"data":{"shop":{"currencyCode":"USD"}}}'
            else:  # customers and products: this shop has none (the bench is about orders)
                root = ROOT.search(query)
                data = (f'{{"data":{{"{root.group(1) if root else "nodes"}":{{"edges":[],'
                        f'"pageInfo":{{"hasNextPage":false,"endCursor":null}}}}}}}}').encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Shopify-API-Version", self.path.split("/")[4] if self.path.count("/") > 4 else "")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"READY {server.server_address[1]}", flush=True)
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--build-only", action="store_true")
    args = parser.parse_args()
    build(args.dir, args.records)
    if not args.build_only:
        sys.stdout.flush()
        os.nice(0)
        serve(args.dir, args.port)


if __name__ == "__main__":
    main()
