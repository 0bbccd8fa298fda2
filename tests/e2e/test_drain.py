"""Real `haven serve` processes: graceful drain on SIGTERM, and a kill -9 leaving the registry.

Each test starts its instances as subprocesses (Valkey from the session
fixture, a migrated SQLite file of its own, a key prefix of its own) and
stops every one of them by PID in teardown.
"""

from __future__ import annotations

import json
import secrets
import signal
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from haven.config import load_settings
from haven.db.migrate import upgrade
from haven.store.embedded import EmbeddedValkey
from support_lb import instance_env, instances, poll

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

HEARTBEAT_TTL = 5.0


@pytest.fixture
def env(tmp_path: Path, valkey: EmbeddedValkey) -> dict[str, str]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'haven.db'}"
    upgrade(load_settings({"DATABASE_URL": url}))
    return instance_env(
        HAVEN_ENV="test",
        REDIS_URL=valkey.url,
        REDIS_KEY_PREFIX=f"e2e-{secrets.token_hex(4)}",
        DATABASE_URL=url,
        SECRET_KEY=secrets.token_urlsafe(48),
        OPERATOR_TOKEN=OPERATOR_TOKEN,
        DRAIN_DELAY="1500",
        SHUTDOWN_TIMEOUT="10000",
        LOG_FORMAT="json",
        DB_POOL_MIN="1",
        DB_POOL_MAX="5",
    )


OPERATOR_TOKEN = secrets.token_urlsafe(24)
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


def listed(watcher: Any) -> dict[str, str]:
    body = watcher.get("/api/v1/load-balancer/instances", headers=OPERATOR).json()
    return {i["instanceId"]: i["state"] for i in body["instances"]}


def test_sigterm_drains_finishes_in_flight_work_and_exits_zero(
    env: dict[str, str], tmp_path: Path
) -> None:
    with instances(env, tmp_path, "drain-a", "drain-b") as (victim, watcher):
        assert listed(watcher) == {"drain-a": "ready", "drain-b": "ready"}
        assert (
            victim.get("/api/v1/auth/me", headers={"X-Request-Id": "e2e-req-1"}).status_code == 401
        )
        slow: dict[str, Any] = {}

        def slow_request() -> None:
            try:
                slow["response"] = httpx.get(
                    victim.url + "/api/v1/load-balancer/debug/sleep?ms=3000", timeout=30
                )
            except httpx.HTTPError as exc:
                slow["error"] = exc

        thread = threading.Thread(target=slow_request, daemon=True)
        thread.start()
        try:
            # The slow request is in flight (the metrics request itself is the other one).
            poll(
                lambda: (
                    victim.get("/api/v1/load-balancer/metrics").json()["requests"]["inFlight"] >= 2
                ),
                10,
                "the slow request to be in flight",
            )
            victim.signal(signal.SIGTERM)

            ready = poll(
                lambda: (r := victim.get("/ready")).status_code == 503 and r,
                1.0,
                "/ready to answer 503 right after SIGTERM",
                interval=0.02,
            )
            assert ready.json()["state"] == "draining"
            assert ready.json()["reason"] == "draining"
            assert ready.headers["connection"] == "close"
            # New requests during DRAIN_DELAY are still served, with Connection: close.
            during = victim.get("/health")
            assert during.status_code == 200
            assert during.headers["connection"] == "close"
            assert during.headers["x-load-balancer-ready"] == "false"
            # The other instance sees it draining in the shared registry.
            poll(lambda: listed(watcher).get("drain-a") == "draining", 5, "drain-a draining")

            thread.join(20)
            assert "error" not in slow, slow
            assert slow["response"].status_code == 200
            assert slow["response"].json() == {"slept": 3000}

            assert victim.process.wait(20) == 0, victim.output()
        finally:
            thread.join(20)
        # It deregistered on the way out; the watcher kept serving throughout.
        poll(lambda: "drain-a" not in listed(watcher), 3, "drain-a to leave the registry")
        assert watcher.get("/ready").status_code == 200

        lines = [json.loads(line) for line in victim.output().splitlines() if line.startswith("{")]
        access = [line for line in lines if line.get("event") == "request"]
        # One info line per API request; the probes are logged at debug level only.
        assert [line["path"] for line in access] == ["/api/v1/auth/me"], victim.output()
        assert access[0]["request_id"] == "e2e-req-1"
        assert access[0]["instance_id"] == "drain-a"
        assert access[0]["status"] == 401
        assert access[0]["method"] == "GET"
        assert isinstance(access[0]["duration_ms"], float)
        events = [line.get("event") for line in lines]
        assert (
            events.index("draining")
            < events.index("listener_closing")
            < events.index("instance_stopped")
        )


def test_a_killed_instance_drops_out_of_the_registry_by_itself(
    env: dict[str, str], tmp_path: Path
) -> None:
    with instances(env, tmp_path, "kill-a", "kill-b") as (survivor, victim):
        poll(lambda: set(listed(survivor)) == {"kill-a", "kill-b"}, 5, "both instances listed")
        victim.signal(signal.SIGKILL)
        victim.process.wait(10)
        poll(
            lambda: "kill-b" not in listed(survivor),
            HEARTBEAT_TTL + 5,
            "the killed instance to leave /api/v1/load-balancer/instances",
            interval=0.25,
        )
        assert listed(survivor) == {"kill-a": "ready"}
        cluster = survivor.get(
            "/api/v1/load-balancer/metrics?scope=cluster", headers=OPERATOR
        ).json()
        assert [i["instanceId"] for i in cluster["instances"]] == ["kill-a"]


def test_forwarded_for_from_a_trusted_proxy_names_the_client(
    env: dict[str, str], tmp_path: Path
) -> None:
    env = {**env, "TRUST_PROXY": "true", "RATE_LIMIT_ENABLED": "true", "RATE_LIMIT_GLOBAL": "2"}
    with instances(env, tmp_path, "proxy-a") as (instance,):
        # The peer is 127.0.0.1, a trusted proxy by default: each forwarded client has its
        # own bucket, and a spoofed left-most entry does not change who the client is.
        for client in ("198.51.100.7", "198.51.100.8"):
            headers = {"X-Forwarded-For": f"10.9.9.9, {client}"}
            statuses = [
                instance.get("/api/v1/auth/me", headers=headers).status_code for _ in range(3)
            ]
            assert statuses == [401, 401, 429], (client, statuses)
