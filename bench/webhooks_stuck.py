"""API latency with and without a stuck webhook receiver (one in-process instance, SQLite).

    .venv/bin/python -m bench.webhooks_stuck [requests]

Writes tenants through the API while a subscription points at a receiver that never
answers within WEBHOOK_TIMEOUT (every delivery times out and is retried), then the same
with no subscription, and prints p50/p99 of each. The tests prove the property by
counting (tests/integration/webhooks/test_delivery.py); this only shows the numbers.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from haven.app import create_app
from haven.config import load_settings
from haven.db.migrate import upgrade
from haven.store.embedded import EmbeddedValkey


class _Stuck(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        time.sleep(30)

    def log_message(self, *_args: Any) -> None:
        return


def _run(client: TestClient[Any], headers: dict[str, str], n: int) -> list[float]:
    took = []
    for i in range(n):
        started = time.perf_counter()
        response = client.post(
            "/api/v1/tenants", headers=headers, json={"firstName": f"B{i}", "lastName": "Bench"}
        )
        took.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 201, response.text
    return took


def _summary(name: str, took: list[float]) -> str:
    ordered = sorted(took)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"| {name} | {len(took)} | {statistics.median(took):.1f} | {p99:.1f} |"


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    valkey = EmbeddedValkey().start()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stuck)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
            env = {"DATABASE_URL": url, "REDIS_URL": valkey.url, "HAVEN_ENV": "test"}
            upgrade(load_settings(env))
            settings = load_settings(
                {**env, "RATE_LIMIT_ENABLED": "false", "LOG_LEVEL": "warning"},
                webhook_allow_private=True,
                webhook_timeout_ms=2000,
                webhook_claim_ttl_ms=10000,
                webhook_retry_base_ms=100,
                webhook_retry_max_ms=200,
                webhook_poll_ms=50,
            )
            with TestClient(create_app(settings)) as client:
                body = client.post(
                    "/api/v1/auth/register",
                    json={
                        "organizationName": "Bench",
                        "name": "B",
                        "email": f"b-{uuid.uuid4().hex[:8]}@example.com",
                        "password": "correct horse battery",
                    },
                ).json()
                headers = {"Authorization": f"Bearer {body['accessToken']}"}
                client.cookies.clear()
                quiet = _run(client, headers, n)
                hook = f"http://127.0.0.1:{server.server_address[1]}/hook"
                made = client.post("/api/v1/webhooks", headers=headers, json={"url": hook})
                assert made.status_code == 201, made.text
                time.sleep(1)
                stuck = _run(client, headers, n)
    finally:
        server.shutdown()
        valkey.cleanup()
    print("| receiver | requests | p50 ms | p99 ms |")
    print("|---|---|---|---|")
    print(_summary("none", quiet))
    print(_summary("stuck (every delivery times out)", stuck))


if __name__ == "__main__":
    main()
