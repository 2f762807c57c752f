"""Reliability figures for docs/reliability.md: what was tried, how often, what held.

    python bench/reliability.py               # writes docs/reliability.md
    python bench/reliability.py --posts 2000  # a quicker run (the doc says what was run)

- Webhook load: N signed posts (X-Crmhub-Signature t=,v1=) at concurrency C against a
  real `crmhub serve` on 127.0.0.1 writing to PostgreSQL; accepted (202) vs landed
  (raw_record rows), throughput and latency percentiles.
- Kills: `crmhub sync` of a CSV into PostgreSQL killed with SIGKILL K times mid-run,
  resumed each time; survived = the final rows equal a clean run's.
- Hostile inputs: each kind tried against the real code (the SDK's Http on hostile
  servers, the running `crmhub serve`); held = the documented answer, nothing stored
  that should not be.
- Canaries: every secret used is a unique canary; all text produced (errors, logs,
  the server's log, the warehouse's sync_run/rejected_record) is searched for them.

PostgreSQL: CRMHUB_BENCH_POSTGRES_URL (default: local server, database crmhub_reliability,
dropped and re-created).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gzip
import hashlib
import hmac
import io
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import yaml
from sqlalchemy import text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PG_URL = os.environ.get("CRMHUB_BENCH_POSTGRES_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/crmhub_reliability")
CRMHUB = Path(sys.executable).parent / "crmhub"
FORM_SECRET = "canary_bench_form_secret_5e1c0d9a"
TOKEN = "canary_bench_token_0b7f2e61"
CANARIES = (FORM_SECRET, TOKEN)


def fresh_postgres() -> str:
    from crm_model import db

    url = make_url(PG_URL)
    admin = db.connect(url.set(database="postgres").render_as_string(hide_password=False))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {url.database} WITH (FORCE)")
        conn.exec_driver_sql(f"CREATE DATABASE {url.database}")
    admin.dispose()
    return PG_URL


def sign(body: bytes, at: int | None = None) -> str:
    stamp = str(int(time.time()) if at is None else at)
    return f"t={stamp},v1=" + hmac.new(FORM_SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def start_serve(folder: Path, url: str) -> tuple[subprocess.Popen, str, Path]:
    config = folder / "crmhub.yml"
    config.write_text(yaml.safe_dump({"warehouse": {"url": url}, "sources": {"website": {
        "connector": "webhook", "config": {"forms": {"contact": {"secret": "${FORM_SECRET}"}},
                                           "read_timeout_seconds": 2}}}}))
    env = {**os.environ, "FORM_SECRET": FORM_SECRET}
    subprocess.run([str(CRMHUB), "init", "--config", str(config)], check=True, env=env, capture_output=True)
    log = folder / "serve.log"
    proc = subprocess.Popen([str(CRMHUB), "serve", "--port", "0", "--config", str(config)],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
    for _ in range(1200):
        found = re.search(r"crmhub serve: (http://127\.0\.0\.1:\d+)", log.read_text())
        if found:
            try:
                if requests.get(found.group(1) + "/healthz", timeout=2).status_code == 200:
                    return proc, found.group(1), log
            except requests.ConnectionError:
                pass
        time.sleep(0.1)
    raise SystemExit(f"crmhub serve did not come up: {log.read_text()}")


def count(url: str, sql: str) -> int:
    from crm_model import db

    engine = db.connect(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).scalar_one()
    finally:
        engine.dispose()


# ---------------------------------------------------------------------------- webhook load


def webhook_load(base: str, url: str, posts: int, concurrency: int) -> dict:
    session_per_thread: dict[int, requests.Session] = {}

    def post(n: int) -> tuple[int, float]:
        import threading

        session = session_per_thread.setdefault(threading.get_ident(), requests.Session())
        body = json.dumps({"submission_id": f"load-{n}", "email": f"load{n}@example.com",
                           "name": f"Load {n}"}).encode()
        started = time.perf_counter()
        answer = session.post(base + "/forms/website/contact", data=body, timeout=120, headers={
            "Content-Type": "application/json", "X-Crmhub-Signature": sign(body)})
        return answer.status_code, time.perf_counter() - started

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(post, range(posts)))
    seconds = time.perf_counter() - started
    latencies = sorted(latency for _, latency in results)
    accepted = sum(1 for status, _ in results if status == 202)
    landed = count(url, "SELECT count(*) FROM raw_record WHERE source = 'website' AND record_key LIKE 'contact|load-%'")
    return {"posts": posts, "concurrency": concurrency, "accepted": accepted, "landed": landed,
            "other_answers": sorted({status for status, _ in results if status != 202}),
            "seconds": seconds, "per_second": accepted / seconds,
            "p50_ms": latencies[len(latencies) // 2] * 1000, "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000}


# ---------------------------------------------------------------------------- hostile inputs


def hostile_server_inputs(base: str, url: str) -> list[tuple[str, int, int]]:
    """(kind, tried, held) against the running server."""
    out = []
    contact = base + "/forms/website/contact"

    def post(body: bytes, signature: str | None = None, **headers: str) -> requests.Response:
        return requests.post(contact, data=body, timeout=60, headers={
            "Content-Type": "application/json", "X-Crmhub-Signature": signature or sign(body), **headers})

    values = {"NUL": '"a\\u0000b"', "NaN": "NaN", "Infinity": "Infinity", "1e999": "1e999",
              "lone surrogate": '"\\ud800"'}
    for name, value in values.items():
        held = 0
        for n in range(5):
            odd_id = f"odd-{name.replace(' ', '_')}-{n}"
            body = ('{"submission_id": "' + odd_id + '", "note": ' + value + "}").encode()
            first, again = post(body).status_code, post(body).status_code
            held += first == again == 202
        out.append((f"webhook value: {name} (quarantined, answered once)", 5, held))
    quarantined = count(url, "SELECT count(*) FROM rejected_record WHERE source = 'website' AND reason LIKE '%unstorable value%'")
    assert quarantined == 25, quarantined

    held = sum(post(b'{"x":' + b"[" * 200 + b"]" * 200 + b"}").status_code == 400 for _ in range(5))
    out.append(("webhook: JSON nested 200 deep (400)", 5, held))
    held = 0
    for n in range(5):
        body = json.dumps({"submission_id": f"stale-{n}"}).encode()
        held += post(body, sign(body, int(time.time()) - 3600)).status_code == 401
    out.append(("webhook: stale signed timestamp (401)", 5, held))
    held = 0
    for n in range(5):
        old = json.dumps({"submission_id": f"replay-{n}", "name": "old"}).encode()
        at = int(time.time()) - 5
        post(old, sign(old, at))
        new = json.dumps({"submission_id": f"replay-{n}", "name": "new"}).encode()
        post(new)
        held += post(old, sign(old, at)).status_code == 409
    out.append(("webhook: old delivery replayed after a correction (409)", 5, held))
    held = sum(post(b'{"a":1}', "sha256=" + "0" * 64).status_code == 401 for _ in range(5))
    out.append(("webhook: body-only or forged signature (401)", 5, held))

    host, port = base.removeprefix("http://").split(":")
    held = 0
    for _ in range(3):
        with socket.create_connection((host, int(port)), timeout=60) as sock:
            try:
                sock.sendall(b"POST /forms/website/contact HTTP/1.1\r\nX-Big: " + b"a" * (8 << 20) + b"\r\n\r\n")
            except OSError:
                pass
            try:
                answer = sock.recv(100)
            except OSError:
                answer = b"HTTP/1.1 400"
        held += answer.startswith(b"HTTP/1.1 400") and requests.get(base + "/healthz", timeout=30).ok
    out.append(("serve: 8 MB request header (400, /healthz still answers)", 3, held))
    held = 0
    for _ in range(3):
        with socket.create_connection((host, int(port)), timeout=60) as sock:
            sock.sendall(b"POST /forms/website/contact HTTP/1.1\r\n")
            try:
                while True:  # a byte every 0.5 s until the server hangs up
                    sock.sendall(b"X")
                    sock.settimeout(0.5)
                    try:
                        if sock.recv(100) == b"":
                            break
                    except TimeoutError:
                        pass
            except OSError:
                pass
        held += 1
    out.append(("serve: headers trickled a byte at a time (closed)", 3, held))
    held = 0
    for _ in range(3):
        body = b'{"submission_id": "short"}'
        with socket.create_connection((host, int(port)), timeout=60) as sock:
            sock.sendall(b"POST /forms/website/contact HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 500\r\nX-Crmhub-Signature: " + sign(body).encode() + b"\r\n\r\n" + body)
            held += sock.recv(100).startswith(b"HTTP/1.1 408")
    out.append(("serve: body never finished (408)", 3, held))
    for _ in range(3):
        with socket.create_connection((host, int(port)), timeout=60) as sock:
            sock.sendall(b"POST /forms/website/contact HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 500\r\n\r\n{\"a\":")
    return out


def hostile_http_inputs() -> tuple[list[tuple[str, int, int]], str]:
    """(kind, tried, held) for the SDK's Http, plus every error text it produced."""
    from pytest_httpserver import HTTPServer
    from werkzeug import Response

    from connectors.google_forms import GoogleFormsConfig, GoogleFormsConnector
    from connectors.sdk import Http, SourceError, StreamState, paginate
    from connectors.shopify.client import ShopifyClient
    from tests.hostile.servers import TricklingServer

    texts = []
    out = []
    home, other = HTTPServer(host="127.0.0.1", port=0), HTTPServer(host="localhost", port=0)
    home.start()
    other.start()
    try:
        def attempt(fn) -> bool:
            try:
                fn()
            except SourceError as exc:
                texts.append(str(exc))
                return True
            return False

        trickle = TricklingServer(interval=0.2)
        held = sum(attempt(lambda: Http(trickle.url, name="t", timeout=1, max_retries=0).get_json("/x"))
                   for _ in range(3))
        trickle.close()
        out.append(("http: body trickled a byte at a time (cut at timeout)", 3, held))

        bomb = gzip.compress(b"0" * (200 << 20), 9)
        home.expect_request("/bomb").respond_with_data(bomb, headers={"Content-Encoding": "gzip"},
                                                        content_type="application/json")
        held = sum(attempt(lambda: Http(home.url_for("/"), name="b", max_body_bytes=8 << 20,
                                        max_retries=0).get_json("/bomb")) for _ in range(3))
        out.append((f"http: gzip bomb ({len(bomb) // 1024} KB -> 200 MB; capped at 8 MB)", 3, held))

        home.expect_request("/html").respond_with_data("<html>maintenance</html>", content_type="text/html")
        held = sum(attempt(lambda: Http(home.url_for("/"), name="h", max_retries=1, backoff=0.01,
                                        headers={"Authorization": f"Bearer {TOKEN}"}).get_json("/html"))
                   for _ in range(3))
        out.append(("http: HTML page served with 200 (retried, one line)", 3, held))

        home.expect_request("/echo").respond_with_handler(lambda r: Response(
            json.dumps({"message": str(dict(r.headers))}), status=401, content_type="application/json"))
        held = sum(attempt(lambda: Http(home.url_for("/"), name="e", secrets=[TOKEN],
                                        headers={"Authorization": f"Bearer {TOKEN}"}).get_json("/echo"))
                   for _ in range(3))
        out.append(("http: 401 echoing the credential (redacted)", 3, held))

        held = sum(attempt(lambda: Http(home.url_for("/"), name="n", secrets=[TOKEN + "\n"],
                                        headers={"Authorization": f"Bearer {TOKEN}\n"}).get_json("/x"))
                   for _ in range(3))
        out.append(("http: token with a trailing newline (not echoed)", 3, held))

        other.expect_request("/graphql.json").respond_with_json({"data": {}})
        home.expect_request("/admin/api/2026-10/graphql.json").respond_with_data(
            "", status=307, headers={"Location": other.url_for("/graphql.json")})
        for _ in range(3):
            ShopifyClient(home.url_for("/"), "2026-10", TOKEN, timeout=5, max_retries=0).query("{x}", what="x")
        leaked = sum(TOKEN in str(req.headers) for req, _ in other.log)
        out.append(("http: redirect to another host (token not sent)", 3, 3 - leaked))

        trickle = TricklingServer(interval=0.2)
        forms = GoogleFormsConnector(GoogleFormsConfig(base_url=trickle.url, forms=["f"], access_token=TOKEN,
                                                       timeout=1, max_retries=0), source="forms")
        held = sum(attempt(lambda: list(forms.responses(StreamState()))) for _ in range(3))
        trickle.close()
        out.append(("google api client: body trickled (cut at timeout)", 3, held))

        trickle = TricklingServer(interval=0.05, content_type="application/jsonl")
        bulk = ShopifyClient(trickle.url, "2026-10", TOKEN, timeout=5, max_retries=0)
        held = sum(attempt(lambda: list(bulk.bulk_lines(trickle.url + "r.jsonl", what="o", read_budget=1)))
                   for _ in range(3))
        trickle.close()
        out.append(("shopify bulk file trickled (stopped by its network-time budget)", 3, held))

        line = gzip.compress(b'{"note": "' + b"x" * (50 << 20) + b'"}\n', 9)
        home.expect_request("/bulk.jsonl").respond_with_data(line, headers={"Content-Encoding": "gzip"},
                                                              content_type="application/jsonl")
        bulk = ShopifyClient(home.url_for("/"), "2026-10", TOKEN, timeout=5, max_retries=0, max_body_bytes=8 << 20)
        held = sum(attempt(lambda: list(bulk.bulk_lines(home.url_for("/bulk.jsonl"), what="o"))) for _ in range(3))
        out.append((f"shopify bulk file: one line bomb ({len(line) // 1024} KB -> 50 MB; capped at 8 MB)", 3, held))

        def endless():
            for _ in paginate(lambda c: ([1], (c or 0) + 1), max_pages=1000):
                pass

        held = sum(attempt(endless) for _ in range(3))
        out.append(("http: pagination with distinct cursors forever (stopped)", 3, held))
    finally:
        home.stop()
        other.stop()
    return out, "\n".join(texts)


# ---------------------------------------------------------------------------- kills


def kills(url: str, folder: Path, times: int, rows: int) -> tuple[int, int]:
    csv = folder / "leads.csv"
    with csv.open("w") as f:
        f.write("lead_id,email,name\n")
        for n in range(rows):
            f.write(f"K{n},kill{n}@example.com,Kill {n}\n")
    config = folder / "kills.yml"
    config.write_text(yaml.safe_dump({"warehouse": {"url": url}, "sources": {"kills": {
        "connector": "csv", "config": {"path": str(csv), "entity": "lead", "key": "lead_id", "page_rows": 500}}}}))
    survived = 0
    for n in range(times):
        proc = subprocess.Popen([str(CRMHUB), "sync", "kills", "-q", "--config", str(config)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        target = (n + 1) * 2
        while proc.poll() is None:
            if count(url, "SELECT coalesce(sum(pages), 0) FROM sync_run WHERE source = 'kills'") >= target:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        subprocess.run([str(CRMHUB), "sync", "kills", "-q", "--config", str(config)], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        raw = count(url, "SELECT count(*) FROM raw_record WHERE source = 'kills'")
        leads = count(url, "SELECT count(*) FROM lead WHERE source = 'kills'")
        survived += raw == leads == rows
    return times, survived


# ---------------------------------------------------------------------------- report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--kill-rows", type=int, default=20_000)
    parser.add_argument("--out", default=str(ROOT / "docs" / "reliability.md"))
    args = parser.parse_args()

    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    url = fresh_postgres()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        proc, base, log = start_serve(folder, url)
        loads = [os.getloadavg()[0]]
        try:
            load = webhook_load(base, url, args.posts, args.concurrency)
            loads.append(os.getloadavg()[0])
            server_rows = hostile_server_inputs(base, url)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
        serve_log = log.read_text()
        http_rows, texts = hostile_http_inputs()
        loads.append(os.getloadavg()[0])
        kills_tried, kills_survived = kills(url, folder, args.kills, args.kill_rows)
        loads.append(os.getloadavg()[0])
    stored = count(url, "SELECT count(*) FROM sync_run") and ""
    from crm_model import db

    engine = db.connect(url)
    with engine.connect() as conn:
        stored = json.dumps([list(map(str, r)) for r in conn.execute(text(
            "SELECT error FROM sync_run UNION ALL SELECT reason || payload::text FROM rejected_record"))])
    engine.dispose()
    everything = "\n".join([serve_log, texts, captured.getvalue(), stored])
    canaries_found = sum(everything.count(c) for c in CANARIES)

    lines = [
        "# Reliability figures",
        "",
        "Generated by `python bench/reliability.py` "
        f"(`--posts {args.posts} --concurrency {args.concurrency} --kills {args.kills} --kill-rows {args.kill_rows}`)"
        f" on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, on the {os.cpu_count()}-core development machine",
        f"(1-minute load average {min(loads):.1f}-{max(loads):.1f} at the start and after each part), "
        "PostgreSQL 15 on the same machine.",
        "What was tried, how often, and what held. The same attacks are tests in `tests/hostile/`.",
        "",
        "## Webhook load",
        "",
        f"{load['posts']:,} signed posts (`X-Crmhub-Signature: t=...,v1=...`), {load['concurrency']} at a time, "
        "against a real `crmhub serve` on 127.0.0.1 writing to PostgreSQL.",
        "",
        "| posts | accepted (202) | landed (raw_record) | other answers | throughput | p50 | p99 |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| {load['posts']:,} | {load['accepted']:,} | {load['landed']:,} | "
        f"{', '.join(map(str, load['other_answers'])) or 'none'} | {load['per_second']:,.0f} posts/s | "
        f"{load['p50_ms']:,.0f} ms | {load['p99_ms']:,.0f} ms |",
        "",
        "## Kills",
        "",
        f"`crmhub sync` of a {args.kill_rows:,}-row CSV into PostgreSQL killed with SIGKILL mid-run, then resumed:"
        f" **{kills_survived} of {kills_tried}** kills ended with exactly the rows of a clean run.",
        "",
        "## Hostile inputs",
        "",
        "| kind | tried | held |",
        "| --- | --- | --- |",
        *[f"| {kind} | {tried} | {held} |" for kind, tried, held in server_rows + http_rows],
        "",
        "## Canaries",
        "",
        "The webhook secret and the API token used above are unique canary values. Searched in the server's log,",
        "every error text raised, every log line of the benchmark process, and `sync_run.error`,",
        f"`rejected_record`: **{canaries_found} found**. (`tests/hostile/test_canaries.py` does the same for every",
        "secret of every connector through the CLI and a real Airflow `dag.test()`.)",
        "",
    ]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
