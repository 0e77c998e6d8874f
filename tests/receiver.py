"""A recording HTTP server on 127.0.0.1: what side-effect actions sent, counted at the far end."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Receiver:
    """Records every request; answers with queued statuses per path (else 200).

    ``GET …/gate`` blocks until :meth:`release` (or 120 s), for actions caught mid-way.
    """

    server: ThreadingHTTPServer
    requests: list[Received] = field(default_factory=list)
    statuses: dict[str, deque[tuple[int, dict[str, str], bytes]]] = field(default_factory=dict)
    gate: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def respond(self, path: str, status: int, body: bytes = b"", **headers: str) -> None:
        """Answer the next request to ``path`` with ``status`` (queue several for several)."""
        with self.lock:
            self.statuses.setdefault(path, deque()).append((status, headers, body))

    def release(self) -> None:
        self.gate.set()

    def received(self, path: str | None = None, method: str = "POST") -> list[Received]:
        with self.lock:
            return [
                r for r in self.requests if r.method == method and (path is None or r.path == path)
            ]

    def wait_for(self, count: int, path: str | None = None, timeout: float = 20.0) -> list[Received]:
        """Wait until ``count`` POSTs (to ``path``) arrived; return what arrived either way."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.received(path)
            if len(got) >= count:
                return got
            time.sleep(0.02)
        return self.received(path)

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


def start_receiver() -> Receiver:
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with receiver.lock:
                receiver.requests.append(
                    Received(method, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                queued = receiver.statuses.get(self.path)
                status, headers, reply = queued.popleft() if queued else (200, {}, b"{}")
            if method == "GET" and self.path.endswith("/gate"):
                receiver.gate.wait(120)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def do_POST(self) -> None:  # noqa: N802
            self._answer("POST")

        def do_GET(self) -> None:  # noqa: N802
            self._answer("GET")

        def do_PUT(self) -> None:  # noqa: N802
            self._answer("PUT")

        def do_DELETE(self) -> None:  # noqa: N802
            self._answer("DELETE")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver = Receiver(server)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True, name="receiver").start()
    return receiver
