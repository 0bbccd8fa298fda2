"""Concurrent writes to one request on two instances: one wins, the other gets a clean 4xx."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from litestar.testing import TestClient

from support import Account, create_property
from support_maintenance import BASE, create_request, transition

ROUNDS = 8


def _race(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls at the same moment on their own threads; bounded by a join timeout."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int, call: Callable[[], Any]) -> None:
        barrier.wait(timeout=30)
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive(), "a racing request did not finish"
    return results


def test_racing_patches_never_lose_an_update_or_fail_with_500(
    client: TestClient[Any], client_b: TestClient[Any], owner: Account
) -> None:
    prop = create_property(client, owner)
    created = create_request(client, owner, prop["id"])
    path = f"{BASE}/{created['id']}"
    wins = 0
    for n in range(ROUNDS):
        version = client.get(path, headers=owner.headers).json()["version"]
        guard = {**owner.headers, "If-Match": f'"{version}"'}
        results = _race(
            partial(client.patch, path, headers=guard, json={"costEstimate": 2 * n}),
            partial(client_b.patch, path, headers=guard, json={"costEstimate": 2 * n + 1}),
        )
        statuses = sorted(r.status_code for r in results)
        # Both carried the same If-Match, so exactly one applies; the other is told to re-read.
        assert statuses == [200, 412], [r.text for r in results]
        wins += 1
        loser = next(r for r in results if r.status_code == 412)
        assert loser.json()["type"].endswith("/version-mismatch")
    final = client_b.get(path, headers=owner.headers).json()
    assert final["version"] == 1 + wins


@pytest.mark.parametrize("to", ["in_progress", "cancelled"])
def test_racing_identical_transitions_let_exactly_one_through(
    client: TestClient[Any], client_b: TestClient[Any], owner: Account, to: str
) -> None:
    prop = create_property(client, owner)
    for _ in range(ROUNDS):
        rid = create_request(client, owner, prop["id"])["id"]
        results = _race(
            partial(transition, client, owner, rid, to),
            partial(transition, client_b, owner, rid, to),
        )
        statuses = sorted(r.status_code for r in results)
        assert statuses[0] == 200, [r.text for r in results]
        assert statuses[1] in (409, 412), [r.text for r in results]
        shown = client.get(f"{BASE}/{rid}", headers=owner.headers).json()
        assert (shown["status"], shown["version"]) == (to, 2)
