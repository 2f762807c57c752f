"""A small HTTP server on 127.0.0.1 that answers like the vendors' APIs, from files.

Routes live in ``replay/<system>.json``: a list of
``{"method", "path", "query": {...}, "body_contains", "status", "headers", "file"}``;
the first route whose method and path match, whose ``query`` items are all in the
request's query string and whose ``body_contains`` is in the body, answers with the
file's bytes. The demo points each API source's ``base_url`` here.
"""

from __future__ import annotations

import json
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
