"""The dlt peer (benchmark only; runs in the bench's own virtualenv with dlt[postgres]).

    <venv>/bin/python bench/peer_dlt.py --url http://127.0.0.1:PORT/base --dsn postgresql://... \
        --query query.graphql --pipelines-dir DIR

A resource that posts the same GraphQL page query as the shopify connector, keyed by
``id``, merged, incremental on ``updatedAt`` (dlt keeps the cursor in its pipeline
state). dlt's default settings otherwise: its own normaliser, nested lists as child
tables, the postgres destination's default loader.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import dlt
import requests


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--query", type=Path, required=True)
    parser.add_argument("--pipelines-dir", required=True)
    parser.add_argument("--page-size", type=int, default=250)
    args = parser.parse_args()
    text = args.query.read_text()
    endpoint = args.url.rstrip("/") + "/admin/api/2026-10/graphql.json"

    @dlt.resource(name="orders", primary_key="id", write_disposition="merge")
    def orders(updated=dlt.sources.incremental("updatedAt", initial_value="1970-01-01T00:00:00Z")):
        session = requests.Session()
        search = f"updated_at:>='{updated.last_value}'"
        after = None
        while True:
            response = session.post(endpoint, json={"query": text, "variables": {
                "first": args.page_size, "after": after, "query": search}}, timeout=60)
            response.raise_for_status()
            connection = response.json()["data"]["orders"]
            yield [edge["node"] for edge in connection["edges"]]
            if not connection["pageInfo"]["hasNextPage"]:
                return
            after = connection["pageInfo"]["endCursor"]

    pipeline = dlt.pipeline(pipeline_name="shop_bench", pipelines_dir=args.pipelines_dir,
                            destination=dlt.destinations.postgres(credentials=args.dsn), dataset_name="shop")
    info = pipeline.run(orders())
    info.raise_on_failed_jobs()
    print(f"read {pipeline.last_trace.last_normalize_info.row_counts.get('orders', 0)}")


if __name__ == "__main__":
    main()
