"""Webhooks survive instances dying mid-delivery (three real instances behind nginx).

A real receiver on 127.0.0.1 checks every signature with the `standardwebhooks`
package. Writes flow steadily through the load balancer while instances are killed
with SIGKILL and restarted. Afterwards: every committed change has exactly one
event, every event reached each subscription at least once and in order, and any
duplicate (only possible for the event a killed instance had in flight) carries
the same `webhook-id`.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from haven.devcluster.cluster import Cluster, ClusterSpec
from haven.devcluster.render import find_nginx
from support_cluster import clean_env, consecutive_free_ports, e2e_database
from support_webhooks import Receiver, poll, receiver

pytestmark = pytest.mark.slow

KILLS = 3


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    if find_nginx() is None:
        pytest.skip("nginx not found: apt-get install nginx")
    database_url, drop = e2e_database(tmp_path, "e2e_hooks")
    base = consecutive_free_ports(5)
    spec = ClusterSpec(
        instances=3,
        base_port=base + 2,
        lb="nginx",
        lb_port=base,
        stats_port=base + 1,
        runtime_dir=tmp_path / "run",
        drain_delay_ms=500,
        shutdown_timeout_ms=5000,
        demo_data=False,
        extra_env=clean_env(
            HAVEN_ENV="test",
            DATABASE_URL=database_url,
            LOG_LEVEL="warning",
            RATE_LIMIT_ENABLED="false",
            DB_POOL_MIN="1",
            DB_POOL_MAX="8",
            WEBHOOK_ALLOW_PRIVATE="true",
            WEBHOOK_POLL_INTERVAL="100",
            WEBHOOK_TIMEOUT="1500",
            WEBHOOK_CLAIM_TTL="3000",
            WEBHOOK_RETRY_BASE="200",
            WEBHOOK_RETRY_MAX="1000",
        ),
    )
    c = Cluster(spec, log=lambda _line: None)
    try:
        c.start()
        yield c
    finally:
        c.stop()
        for child in [*c.instances, c.balancer]:
            if child is not None and child.alive():
                child.stop(signal.SIGKILL, 5)
        if c.valkey is not None:
            c.valkey.cleanup()
        drop()


def _post(client: httpx.Client, path: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    """POST with one Idempotency-Key, retried through kills until it answers (bounded)."""
    key = {"Idempotency-Key": uuid.uuid4().hex}
    for _ in range(60):
        try:
            response = client.post(path, json=body, headers={**headers, **key})
        except httpx.HTTPError:
            time.sleep(0.2)
            continue
        if response.status_code in (201, 200):
            return response.json()
        if response.status_code in (409, 502, 503, 504):
            time.sleep(0.2)
            continue
        raise AssertionError(f"{path}: {response.status_code} {response.text}")
    raise AssertionError(f"{path}: no answer after 60 tries")


def _feed(client: httpx.Client, headers: dict[str, str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(1000):
        params = {"limit": "500", **({"after": cursor} if cursor else {})}
        page = client.get("/api/v1/events", headers=headers, params=params).json()
        items.extend(page["items"])
        cursor = page["nextCursor"]
        if not page["hasMore"]:
            return items
    raise AssertionError("feed did not end")


def _check_order(hook: Receiver, expected: list[dict[str, Any]], kills: int) -> int:
    """Every expected event at least once, in order; duplicates share the id. Returns them."""
    got = hook.ok()
    assert all(all(r.verified.values()) and r.verified for r in got), "a signature failed"
    positions = [r.body["position"] for r in got]
    assert positions == sorted(positions), "a subscription received out of order"
    by_position = {r.body["position"]: r.webhook_id for r in got}
    for r in got:
        assert r.webhook_id == r.body["id"] == by_position[r.body["position"]]
    assert [e["position"] for e in expected] == sorted(set(positions))
    assert [e["id"] for e in expected] == [by_position[e["position"]] for e in expected]
    duplicates = len(positions) - len(set(positions))
    # At most the event each killed instance had in flight comes twice.
    assert duplicates <= kills, duplicates
    return duplicates


def test_deliveries_survive_sigkill_of_instances(cluster: Cluster) -> None:
    client = httpx.Client(base_url=cluster.lb_url, timeout=10.0)
    try:
        reg = _post(
            client,
            "/api/v1/auth/register",
            {
                "organizationName": "Hooked Homes",
                "name": "Olive",
                "email": f"o-{uuid.uuid4().hex[:8]}@example.com",
                "password": "correct horse battery",
            },
            {},
        )
        headers = {"Authorization": f"Bearer {reg['accessToken']}"}
        client.cookies.clear()
        with receiver(delay=0.02) as everything, receiver(delay=0.02) as created_only:
            sub_all = _post(client, "/api/v1/webhooks", {"url": everything.url}, headers)
            sub_created = _post(
                client,
                "/api/v1/webhooks",
                {"url": created_only.url, "types": ["tenant.created"]},
                headers,
            )
            everything.secrets["s"] = sub_all["secret"]
            created_only.secrets["s"] = sub_created["secret"]

            created: list[str] = []
            stop = threading.Event()

            def writer() -> None:
                with httpx.Client(base_url=cluster.lb_url, timeout=10.0) as w:
                    for i in range(2000):
                        if stop.is_set():
                            return
                        body = {"firstName": f"W{i}", "lastName": "Steady"}
                        created.append(_post(w, "/api/v1/tenants", body, headers)["id"])
                        time.sleep(0.05)

            thread = threading.Thread(target=writer)
            thread.start()
            try:
                for victim in range(KILLS):
                    time.sleep(3.0)
                    cluster.instances[victim].stop(signal.SIGKILL, 10)
                    time.sleep(1.5)
                    cluster.start_instance(victim)
                time.sleep(2.0)
            finally:
                stop.set()
                thread.join(60)
            assert not thread.is_alive()

            events = _feed(client, headers)
            # Every committed change has exactly one event, gap-free.
            assert [e["position"] for e in events] == list(range(1, len(events) + 1))
            tenant_events = [e for e in events if e["type"] == "tenant.created"]
            assert sorted(e["resourceId"] for e in tenant_events) == sorted(created)
            assert len({e["resourceId"] for e in tenant_events}) == len(tenant_events)
            assert len(created) > 50

            after = sub_all["deliveredPosition"]
            want_all = [e for e in events if e["position"] > after]
            want_created = [e for e in tenant_events if e["position"] > after]
            poll(
                lambda: (
                    {r.body["position"] for r in everything.ok()}
                    >= {e["position"] for e in want_all}
                ),
                60,
                "every event at the all-types receiver",
            )
            poll(
                lambda: (
                    {r.body["position"] for r in created_only.ok()}
                    >= {e["position"] for e in want_created}
                ),
                60,
                "every tenant.created at the filtered receiver",
            )
            _check_order(everything, want_all, KILLS)
            _check_order(created_only, want_created, KILLS)
            for sub in (sub_all, sub_created):
                state = client.get(f"/api/v1/webhooks/{sub['id']}", headers=headers).json()
                assert state["status"] == "active"
    finally:
        client.close()
