"""Many writers on three instances, readers following the feed on all three meanwhile:
every reader sees every event exactly once, in one gap-free order that respects each
writer's own order of commits."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from litestar.testing import TestClient

from support import register
from support_events import read_all

WRITERS_PER_INSTANCE = 3
WRITES_PER_WRITER = 8


def test_readers_on_every_instance_see_every_event_once_in_commit_order(
    app_factory: Callable[..., TestClient[Any]],
) -> None:
    instances = [app_factory(instance_id=f"feed-{i}") for i in range(3)]
    owner = register(instances[0])
    _, start = read_all(instances[0], owner)
    created: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()
    writing = threading.Event()
    writing.set()

    def writer(client: TestClient[Any], n: int) -> None:
        for i in range(WRITES_PER_WRITER):
            response = client.post(
                "/api/v1/tenants",
                headers=owner.headers,
                json={"firstName": f"W{n}", "lastName": f"T{i}"},
            )
            if response.status_code != 201:
                errors.append(response.text)
                continue
            tenant = response.json()
            patched = client.patch(
                f"/api/v1/tenants/{tenant['id']}",
                headers=owner.headers,
                json={"notes": f"written by {n}"},
            )
            if patched.status_code != 200:
                errors.append(patched.text)
            with lock:
                created.append(tenant["id"])

    seen: dict[int, list[dict[str, Any]]] = {i: [] for i in range(3)}

    def reader(index: int) -> None:
        cursor = start
        for _ in range(2000):  # bounded: each pass is a few requests
            still_writing = writing.is_set()
            items, cursor = read_all(instances[index], owner, cursor)
            seen[index].extend(items)
            if not still_writing:
                return
        errors.append(f"reader {index} did not finish")

    writers = [
        threading.Thread(target=writer, args=(instances[n % 3], n))
        for n in range(3 * WRITERS_PER_INSTANCE)
    ]
    readers = [threading.Thread(target=reader, args=(i,)) for i in range(3)]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join(300)
    writing.clear()
    for thread in readers:
        thread.join(300)
    assert not errors, errors[:3]
    assert len(created) == 3 * WRITERS_PER_INSTANCE * WRITES_PER_WRITER

    first = int(start) + 1
    reference = [e["id"] for e in seen[0]]
    for index, events in seen.items():
        positions = [e["position"] for e in events]
        # Gap-free and strictly increasing: nothing skipped, nothing twice.
        assert positions == list(range(first, first + len(events))), index
        assert [e["id"] for e in events] == reference, index
        created_ids = [e["resourceId"] for e in events if e["type"] == "tenant.created"]
        assert sorted(created_ids) == sorted(created), index
        updated_ids = [e["resourceId"] for e in events if e["type"] == "tenant.updated"]
        assert sorted(updated_ids) == sorted(created), index
        # Each writer created before it updated: commit order shows in the positions.
        where = {(e["type"], e["resourceId"]): e["position"] for e in events}
        for tenant_id in created:
            assert where[("tenant.created", tenant_id)] < where[("tenant.updated", tenant_id)]
