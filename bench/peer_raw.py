"""The raw peers: HTTP + parse + COPY, written the way one would by hand (benchmark only).

    python bench/peer_raw.py --url http://127.0.0.1:PORT/base --dsn postgresql://... --mode copy
    python bench/peer_raw.py ... --mode upsert          # staging COPY + INSERT ... ON CONFLICT

Reads the same pages as the shopify connector (same query, 250 orders a page), parses
each with orjson, flattens orders and their line items to tuples and COPYs them:
``copy`` into plain tables without keys (the floor), ``upsert`` into keyed tables via a
staging table, reading only what changed since the newest ``updated_at`` it holds.
One transaction per page in both modes, like crmhub.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import orjson
import psycopg
import requests

ORDER_COLUMNS = ("id", "name", "created_at", "processed_at", "updated_at", "financial_status",
                 "fulfillment_status", "currency", "subtotal", "discount", "tax", "total", "email",
                 "customer_id", "landing_page", "utm_source", "utm_medium", "utm_campaign", "note")
LINE_COLUMNS = ("id", "order_id", "product_id", "sku", "title", "quantity", "unit_price", "discount")
TYPES = {"created_at": "timestamptz", "processed_at": "timestamptz", "updated_at": "timestamptz",
         "subtotal": "numeric(18,4)", "discount": "numeric(18,4)", "tax": "numeric(18,4)",
         "total": "numeric(18,4)", "quantity": "numeric(18,4)", "unit_price": "numeric(18,4)"}


def ddl(table: str, columns: tuple[str, ...], keyed: bool) -> str:
    cols = ", ".join(f"{c} {TYPES.get(c, 'text')}" for c in columns)
    return f"CREATE TABLE IF NOT EXISTS {table} ({cols}{', PRIMARY KEY (id)' if keyed else ''})"


def amount(bag: dict | None) -> str | None:
    return bag["shopMoney"]["amount"] if bag else None


def flatten(order: dict) -> tuple[tuple, list[tuple]]:
    visit = ((order.get("customerJourneySummary") or {}).get("lastVisit")) or {}
    utm = visit.get("utmParameters") or {}
    row = (order["id"], order["name"], order["createdAt"], order["processedAt"], order["updatedAt"],
           order["displayFinancialStatus"], order["displayFulfillmentStatus"], order["currencyCode"],
           amount(order["subtotalPriceSet"]), amount(order["totalDiscountsSet"]), amount(order["totalTaxSet"]),
           amount(order["totalPriceSet"]), order["email"], (order.get("customer") or {}).get("id"),
           visit.get("landingPage"), utm.get("source"), utm.get("medium"), utm.get("campaign"), order["note"])
    lines = []
    for line in order["lineItems"]["nodes"]:
        discount = sum(float(a["allocatedAmountSet"]["shopMoney"]["amount"]) for a in line["discountAllocations"])
        lines.append((line["id"], order["id"], (line.get("variant") or line.get("product") or {}).get("id"),
                      line["sku"], line["title"], line["quantity"], amount(line["originalUnitPriceSet"]),
                      f"{discount:.2f}"))
    return row, lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--query", type=Path, required=True, help="file with the GraphQL page query")
    parser.add_argument("--mode", choices=["copy", "upsert"], required=True)
    parser.add_argument("--page-size", type=int, default=250)
    args = parser.parse_args()
    text = args.query.read_text()
    keyed = args.mode == "upsert"
    session = requests.Session()
    endpoint = args.url.rstrip("/") + "/admin/api/2026-10/graphql.json"
    with psycopg.connect(args.dsn) as conn:
        for table, columns in (("orders", ORDER_COLUMNS), ("order_lines", LINE_COLUMNS)):
            conn.execute(ddl(table, columns, keyed))
            if keyed:
                conn.execute(f"CREATE TEMP TABLE stage_{table} (LIKE {table}) ON COMMIT DELETE ROWS")
        conn.commit()
        since = conn.execute("SELECT max(updated_at) FROM orders").fetchone()[0] if keyed else None
        search = f"updated_at:>='{since:%Y-%m-%dT%H:%M:%SZ}'" if since else None
        after, read = None, 0
        while True:
            response = session.post(endpoint, json={"query": text, "variables": {
                "first": args.page_size, "after": after, "query": search}}, timeout=60)
            response.raise_for_status()
            connection = orjson.loads(response.content)["data"]["orders"]
            orders, lines = [], []
            for edge in connection["edges"]:
                row, its_lines = flatten(edge["node"])
                orders.append(row)
                lines.extend(its_lines)
            read += len(orders)
            with conn.cursor() as cur:
                for table, columns, rows in (("orders", ORDER_COLUMNS, orders), ("order_lines", LINE_COLUMNS, lines)):
                    target = f"stage_{table}" if keyed else table
                    with cur.copy(f"COPY {target} ({', '.join(columns)}) FROM STDIN") as copy:
                        for r in rows:
                            copy.write_row(r)
                    if keyed:
                        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c != "id")
                        cur.execute(f"INSERT INTO {table} SELECT * FROM stage_{table} "
                                    f"ON CONFLICT (id) DO UPDATE SET {sets}")
            conn.commit()
            info = connection["pageInfo"]
            if not info["hasNextPage"]:
                break
            after = info["endCursor"]
    print(f"read {read}")


if __name__ == "__main__":
    main()
