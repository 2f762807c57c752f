"""A small HTTP server on 127.0.0.1 that answers like the vendors' APIs, from files.

Routes live in ``replay/<system>.json``: a list of
``{"method", "path", "query": {...}, "body_contains", "status", "headers", "file"}``;
the first route whose method and path match, whose ``query`` items are all in the
request's query string and whose ``body_contains`` is in the body, answers with the
file's bytes. The demo points each API source's ``base_url`` here.

A route may also honour the vendor's incremental filter, as the real API does, so a
second demo run reads only what the connectors ask for again (their cursor edge):

    "filter": {"param": "modified_after", "items": "", "field": "date_modified_gmt", "op": ">"}

``param`` (a query parameter, after an optional ``prefix``) or ``body_regex`` (its first
group, in the request body) gives the threshold; ``items`` is the dotted path of the
list in the payload ("" for the payload itself); ``field`` the dotted path of each
item's time (ISO 8601 or epoch seconds); ``op`` is ``>`` or ``>=``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

REPLAY_DIR = Path(__file__).parent / "replay"


def load_routes(folder: Path = REPLAY_DIR) -> list[dict]:
    routes: list[dict] = []
    for path in sorted(folder.glob("*.json")):
        routes.extend(json.loads(path.read_text()))
    return routes


class ReplayServer:
    def __init__(self, routes: list[dict], folder: Path = REPLAY_DIR):
        self.routes = routes
        self.folder = folder
        self.hits: list[str] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> ReplayServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def answer(self, method: str, target: str, body: bytes) -> tuple[int, dict, bytes]:
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        text = body.decode("utf-8", "replace")
        for route in self.routes:
            if route.get("method", "GET") != method or route["path"] != parts.path:
                continue
            if any(query.get(k) != str(v) for k, v in route.get("query", {}).items()):
                continue
            if route.get("body_contains") and route["body_contains"] not in text:
                continue
            payload = (self.folder / route["file"]).read_bytes() if route.get("file") else b""
            if route.get("filter") and payload:
                payload = _filtered(payload, route["filter"], query, text)
            headers = {"Content-Type": "application/json", **route.get("headers", {})}
            return route.get("status", 200), headers, payload
        return 404, {"Content-Type": "application/json"}, json.dumps(
            {"message": f"no demo route for {method} {parts.path}"}).encode()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = server.answer(self.command, self.path, body)
                server.hits.append(f"{self.command} {self.path} -> {status}")
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value.replace("{base}", server.url))
                payload = payload.replace(b"{base}", server.url.encode())  # before its length is sent
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _reply

            def log_message(self, *args) -> None:  # quiet: the demo prints its own summary
                pass

        return Handler


def _filtered(payload: bytes, spec: dict, query: dict[str, str], body: str) -> bytes:
    """The payload with only the items the request's incremental filter lets through."""
    threshold = None
    if spec.get("param") and query.get(spec["param"]):
        threshold = query[spec["param"]].removeprefix(spec.get("prefix", "")).strip()
    elif spec.get("body_regex") and (found := re.search(spec["body_regex"], body)):
        threshold = found.group(1)
    if threshold is None:
        return payload
    after = _time(threshold)
    doc = json.loads(payload)
    holder, name = _parent(doc, spec.get("items", ""))
    items = holder[name] if name is not None else doc
    keep = [item for item in items
            if (when := _time(_get(item, spec["field"]))) is not None
            and (when > after if spec.get("op", ">=") == ">" else when >= after)]
    if name is None:
        return json.dumps(keep).encode()
    holder[name] = keep
    return json.dumps(doc).encode()


def _parent(doc, path: str):
    if not path:
        return None, None
    *parents, last = path.split(".")
    for part in parents:
        doc = doc[part]
    return doc, last


def _get(item, path: str):
    for part in path.split("."):
        item = item.get(part) if isinstance(item, dict) else None
    return item


def _time(value) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.isdigit()):
        return dt.datetime.fromtimestamp(int(value), dt.UTC)
    parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
