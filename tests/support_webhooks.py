"""A real webhook receiver for tests: an HTTP server on 127.0.0.1 that checks every signature
with the `standardwebhooks` package and records what it got, and when."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook


@dataclass
class Received:
    at: float
    webhook_id: str
    signature: str
    body: dict[str, Any]
    verified: dict[str, bool]  # secret label -> did the signature verify with it


@dataclass
class Receiver:
    """Answers `status` (or what `behaviour(request)` returns); `delay` seconds before it."""

    secrets: dict[str, str] = field(default_factory=dict)
    status: int = 204
    delay: float = 0.0
    location: str | None = None
    received: list[Received] = field(default_factory=list)
    attempts: list[float] = field(default_factory=list)  # every request, whatever the answer
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def ok(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def ids(self) -> list[str]:
        return [r.webhook_id for r in self.ok()]

    def bodies(self) -> list[dict[str, Any]]:
        return [r.body for r in self.ok()]

    def handle(self, headers: dict[str, str], raw: bytes) -> int:
        now = time.monotonic()
        with self.lock:
            self.attempts.append(now)
            status, delay = self.status, self.delay
        if delay:
            time.sleep(delay)
        verified = {}
        for label, secret in self.secrets.items():
            try:
                Webhook(secret).verify(raw, headers)
                verified[label] = True
            except Exception:
                verified[label] = False
        if 200 <= status < 300:
            with self.lock:
                self.received.append(
                    Received(
                        now,
                        headers.get("webhook-id", ""),
                        headers.get("webhook-signature", ""),
                        json.loads(raw),
                        verified,
                    )
                )
        return status


@contextmanager
def receiver(**kwargs: Any) -> Iterator[Receiver]:
    state = Receiver(**kwargs)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            status = state.handle(headers, raw)
            self.send_response(status)
            if state.location and 300 <= status < 400:
                self.send_header("Location", state.location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", state.port), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def poll(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
