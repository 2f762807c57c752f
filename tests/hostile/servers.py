"""Hostile servers on 127.0.0.1 that pytest-httpserver cannot play: raw sockets, by hand."""

from __future__ import annotations

import socket
import threading
import time


class TricklingServer:
    """Answers every connection with valid headers, then one body byte per ``interval`` s, forever."""

    def __init__(self, interval: float = 0.5, content_type: str = "application/json"):
        self.interval = interval
        self.content_type = content_type
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        try:
            conn.recv(65536)
            conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: {self.content_type}\r\n"
                         "Content-Length: 100000\r\n\r\n[".encode())
            while not self._stop.is_set():
                time.sleep(self.interval)
                conn.sendall(b"1" if self.connections % 2 else b" ")
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
