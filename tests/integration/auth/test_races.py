"""Check-then-insert races between two instances: the loser hears 409, never 500."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from litestar.testing import TestClient

from support import Account, create_property, unique_email

ATTEMPTS = 6


def _race(
    client: TestClient[Any], client_b: TestClient[Any], send: Callable[[TestClient[Any]], Any]
) -> list[int]:
    """Send the same write ATTEMPTS times at once, alternating instances."""
    with ThreadPoolExecutor(ATTEMPTS) as pool:
        futures = [pool.submit(send, client if i % 2 else client_b) for i in range(ATTEMPTS)]
        return sorted(f.result().status_code for f in futures)


def test_simultaneous_registrations_with_one_email(
    client: TestClient[Any], client_b: TestClient[Any]
) -> None:
    body = {
        "organizationName": "Race Co",
        "name": "Racer",
        "email": unique_email("race"),
        "password": "long enough password",
    }
    statuses = _race(client, client_b, lambda c: c.post("/api/v1/auth/register", json=body))
    client.cookies.clear()
    client_b.cookies.clear()
    assert statuses == [201] + [409] * (ATTEMPTS - 1)
    login = client.post(
        "/api/v1/auth/login", json={"email": body["email"], "password": body["password"]}
    )
    assert login.status_code == 200


def test_simultaneous_member_adds_with_one_email(
    client: TestClient[Any], client_b: TestClient[Any], owner: Account
) -> None:
    body = {"email": unique_email("m"), "name": "M", "role": "viewer", "password": "pw123456"}
    statuses = _race(
        client, client_b, lambda c: c.post("/api/v1/members", headers=owner.headers, json=body)
    )
    assert statuses == [201] + [409] * (ATTEMPTS - 1)
    members = client.get("/api/v1/members", headers=owner.headers).json()["items"]
    assert [m["email"] for m in members].count(body["email"]) == 1


def test_simultaneous_units_with_one_label(
    client: TestClient[Any], client_b: TestClient[Any], owner: Account
) -> None:
    prop = create_property(client, owner)
    path = f"/api/v1/properties/{prop['id']}/units"
    statuses = _race(
        client, client_b, lambda c: c.post(path, headers=owner.headers, json={"label": "7A"})
    )
    assert statuses == [201] + [409] * (ATTEMPTS - 1)
    assert len(client.get(path, headers=owner.headers).json()["items"]) == 1
    got = client_b.get(f"/api/v1/properties/{prop['id']}", headers=owner.headers).json()
    assert got["unitCount"] == 1
