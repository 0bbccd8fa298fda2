"""Leases: drafts, activation without overlap (also across instances at once), termination."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from litestar.testing import TestClient

from support import Account, assert_problem, create_tenant, register
from support_leases import active_lease, draft_lease, new_unit


def test_draft_lease_with_several_tenants_then_activate_marks_unit_occupied(
    client: TestClient[Any], owner: Account
) -> None:
    unit = new_unit(client, owner)
    tenants = [create_tenant(client, owner)["id"] for _ in range(2)]
    lease = draft_lease(client, owner, unit_id=unit["id"], tenant_ids=tenants, endDate=None)
    assert lease["status"] == "draft"
    assert lease["tenantIds"] == tenants
    assert lease["endDate"] is None
    assert lease["propertyId"] == unit["propertyId"]
    assert lease["lateFee"] == {"kind": "flat", "amount": 5000}

    response = client.post(f"/api/v1/leases/{lease['id']}/activate", headers=owner.headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "active"
    assert (
        client.get(f"/api/v1/units/{unit['id']}", headers=owner.headers).json()["status"]
        == "occupied"
    )
    # The unit and its property cannot be deleted while the lease is active.
    assert_problem(client.delete(f"/api/v1/units/{unit['id']}", headers=owner.headers), 409)
    assert_problem(
        client.delete(f"/api/v1/properties/{unit['propertyId']}", headers=owner.headers), 409
    )
    listed = client.get(
        "/api/v1/leases", params={"tenantId": tenants[1], "status": "active"}, headers=owner.headers
    ).json()
    assert [x["id"] for x in listed["items"]] == [lease["id"]]


def test_overlapping_activation_is_refused_and_terminate_frees_the_unit(
    client: TestClient[Any], owner: Account
) -> None:
    first = active_lease(client, owner, startDate="2026-01-01", endDate=None)
    unit_id = first["unitId"]
    second = draft_lease(client, owner, unit_id=unit_id, startDate="2026-06-01", endDate=None)
    assert_problem(
        client.post(f"/api/v1/leases/{second['id']}/activate", headers=owner.headers),
        409,
        "lease-overlap",
    )
    ended = client.post(
        f"/api/v1/leases/{first['id']}/terminate",
        headers=owner.headers,
        json={"date": "2026-05-31"},
    )
    assert ended.status_code == 200, ended.text
    assert ended.json()["status"] == "terminated"
    assert ended.json()["endDate"] == "2026-05-31"
    unit = client.get(f"/api/v1/units/{unit_id}", headers=owner.headers).json()
    assert unit["status"] == "vacant"
    again = client.post(f"/api/v1/leases/{second['id']}/activate", headers=owner.headers)
    assert again.status_code == 200, again.text
    # Terminating twice, activating twice: conflicts.
    assert_problem(
        client.post(
            f"/api/v1/leases/{first['id']}/terminate",
            headers=owner.headers,
            json={"date": "2026-06-01"},
        ),
        409,
    )
    assert_problem(
        client.post(f"/api/v1/leases/{second['id']}/activate", headers=owner.headers), 409
    )


def test_patch_draft_and_active_lease_rules(client: TestClient[Any], owner: Account) -> None:
    lease = draft_lease(client, owner)
    url = f"/api/v1/leases/{lease['id']}"
    changed = client.patch(url, headers={**owner.headers, "If-Match": '"1"'}, json={"rent": 99000})
    assert changed.status_code == 200, changed.text
    assert changed.json()["rent"] == 99000
    assert_problem(
        client.patch(url, headers={**owner.headers, "If-Match": '"1"'}, json={"rent": 1}), 412
    )
    assert_problem(client.patch(url, headers=owner.headers, json={"endDate": "2025-01-01"}), 422)
    client.post(f"{url}/activate", headers=owner.headers)
    assert_problem(client.patch(url, headers=owner.headers, json={"rent": 1}), 409)
    ok = client.patch(url, headers=owner.headers, json={"graceDays": 10, "lateFee": None})
    assert ok.status_code == 200, ok.text
    assert ok.json()["lateFee"] is None


def test_another_organization_sees_404_and_viewer_cannot_write(
    client: TestClient[Any], owner: Account
) -> None:
    from support import add_member

    lease = draft_lease(client, owner)
    other = register(client)
    assert_problem(client.get(f"/api/v1/leases/{lease['id']}", headers=other.headers), 404)
    assert_problem(
        client.post(f"/api/v1/leases/{lease['id']}/activate", headers=other.headers), 404
    )
    viewer = add_member(client, owner, "viewer")
    assert client.get(f"/api/v1/leases/{lease['id']}", headers=viewer.headers).status_code == 200
    assert_problem(
        client.post(f"/api/v1/leases/{lease['id']}/activate", headers=viewer.headers), 403
    )


def test_overlapping_activation_on_two_instances_at_once_gives_one_success(
    app_factory: Callable[..., TestClient[Any]],
) -> None:
    a, b = app_factory(instance_id="api-1"), app_factory(instance_id="api-2")
    owner = register(a)
    for _round in range(3):
        unit = new_unit(a, owner)
        one = draft_lease(a, owner, unit_id=unit["id"], endDate=None)
        two = draft_lease(a, owner, unit_id=unit["id"], startDate="2026-03-01", endDate=None)
        barrier = threading.Barrier(2)

        def activate(
            client: TestClient[Any], lease_id: str, barrier: threading.Barrier = barrier
        ) -> Any:
            barrier.wait(timeout=10)
            return client.post(f"/api/v1/leases/{lease_id}/activate", headers=owner.headers)

        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(activate, [a, b], [one["id"], two["id"]]))
        statuses = sorted(r.status_code for r in results)
        assert statuses == [200, 409], [r.text for r in results]
        loser = next(r for r in results if r.status_code == 409)
        assert_problem(loser, 409, "lease-overlap")
        active = a.get(
            "/api/v1/leases",
            params={"unitId": unit["id"], "status": "active"},
            headers=owner.headers,
        ).json()["items"]
        assert len(active) == 1


def test_database_itself_refuses_overlapping_active_leases(
    client: TestClient[Any], owner: Account, database: Any
) -> None:
    """PostgreSQL: the exclusion constraint holds even for a write that skips the service."""
    import asyncio

    import asyncpg
    import pytest

    if database.backend != "postgresql":
        pytest.skip("SQLite relies on BEGIN IMMEDIATE serializing the service's check")
    first = active_lease(client, owner, endDate=None)
    second = draft_lease(
        client, owner, unit_id=first["unitId"], startDate="2027-01-01", endDate=None
    )

    async def force_active() -> None:
        conn = await asyncpg.connect(database.url.replace("postgresql+asyncpg", "postgresql"))
        try:
            await conn.execute(
                "UPDATE leases SET status = 'active' WHERE id = $1", uuid.UUID(second["id"])
            )
        finally:
            await conn.close()

    with pytest.raises(asyncpg.exceptions.ExclusionViolationError):
        asyncio.run(force_active())


def test_billing_ends_leases_whose_end_date_passed(client: TestClient[Any], owner: Account) -> None:
    lease = active_lease(client, owner, startDate="2025-01-01", endDate="2025-06-30")
    response = client.post(
        "/api/v1/billing/run", headers=owner.headers, json={"date": "2025-07-15"}
    )
    assert response.status_code == 200, response.text
    shown = client.get(f"/api/v1/leases/{lease['id']}", headers=owner.headers).json()
    assert shown["status"] == "ended"
    unit = client.get(f"/api/v1/units/{lease['unitId']}", headers=owner.headers).json()
    assert unit["status"] == "vacant"


def test_extending_an_active_lease_into_the_next_one_is_refused(
    client: TestClient[Any], owner: Account
) -> None:
    first = active_lease(client, owner, startDate="2026-01-01", endDate="2026-06-30")
    active_lease(client, owner, unit_id=first["unitId"], startDate="2026-07-01", endDate=None)
    url = f"/api/v1/leases/{first['id']}"
    assert_problem(
        client.patch(url, headers=owner.headers, json={"endDate": "2026-12-31"}),
        409,
        "lease-overlap",
    )
    assert_problem(client.patch(url, headers=owner.headers, json={"endDate": None}), 409)
    shorter = client.patch(url, headers=owner.headers, json={"endDate": "2026-05-31"})
    assert shorter.status_code == 200, shorter.text
    assert shorter.json()["endDate"] == "2026-05-31"
