"""Helpers tests share: sign-up, members, factories, and the problem+json assertion."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

from litestar.testing import TestClient


@dataclass
class Account:
    """A registered owner: bearer headers for API calls, plus what login returned."""

    email: str
    password: str
    token: str
    csrf: str
    session_cookie: str
    organization_id: str
    user_id: str
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def cookie_headers(self) -> dict[str, str]:
        """Cookie authentication, as a browser sends it (unsafe methods add X-CSRF-Token)."""
        return {"Cookie": f"haven_session={self.session_cookie}"}


def unique_email(prefix: str = "owner") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


def register(client: TestClient[Any], *, organization: str = "Acme Homes") -> Account:
    email, password = unique_email(), "correct horse battery"
    response = client.post(
        "/api/v1/auth/register",
        json={
            "organizationName": organization,
            "name": "Olive Owner",
            "email": email,
            "password": password,
        },
    )
    assert response.status_code == 201, response.text
    client.cookies.clear()  # tests say explicitly which credential they send
    body = response.json()
    return Account(
        email=email,
        password=password,
        token=body["accessToken"],
        csrf=body["csrfToken"],
        session_cookie=response.cookies["haven_session"],
        organization_id=body["organization"]["id"],
        user_id=body["user"]["id"],
        body=body,
    )


def add_member(client: TestClient[Any], owner: Account, role: str) -> Account:
    email, password = unique_email(role), "member password 1"
    response = client.post(
        "/api/v1/members",
        headers=owner.headers,
        json={"email": email, "name": f"A {role}", "role": role, "password": password},
    )
    assert response.status_code == 201, response.text
    login = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert login.status_code == 200, login.text
    client.cookies.clear()
    body = login.json()
    return Account(
        email=email,
        password=password,
        token=body["accessToken"],
        csrf=body["csrfToken"],
        session_cookie=login.cookies["haven_session"],
        organization_id=body["organization"]["id"],
        user_id=body["user"]["id"],
        body=body,
    )


def assert_problem(response: Any, status: int, slug: str | None = None) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status (and type slug)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://")
    assert body["title"]
    if slug is not None:
        assert body["type"].rsplit("/", 1)[1] == slug, body
    return body


PROPERTY = {
    "name": "Maple Court",
    "type": "residential",
    "address": {"line1": "12 Maple Street", "city": "Springfield", "country": "US"},
    "yearBuilt": 1998,
}


def create_property(client: TestClient[Any], account: Account, **changes: Any) -> dict[str, Any]:
    response = client.post(
        "/api/v1/properties", headers=account.headers, json={**PROPERTY, **changes}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def create_unit(
    client: TestClient[Any], account: Account, property_id: str, **changes: Any
) -> dict[str, Any]:
    body = {"label": f"U-{uuid.uuid4().hex[:6]}", "bedrooms": 2, "marketRent": 125000, **changes}
    response = client.post(
        f"/api/v1/properties/{property_id}/units", headers=account.headers, json=body
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def create_tenant(client: TestClient[Any], account: Account, **changes: Any) -> dict[str, Any]:
    body = {"firstName": "Ada", "lastName": "Lovelace", "email": unique_email("tenant"), **changes}
    response = client.post("/api/v1/tenants", headers=account.headers, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def until_a_statement_waits_for_a_lock(watcher: Any) -> None:
    """Poll (at most 10 s) on `watcher`, a PostgreSQL connection, until a statement of its
    database waits for a lock (the request a concurrency test sent is queued behind it)."""
    from sqlalchemy import text

    for _ in range(200):
        waits = await watcher.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname ="
                " current_database() AND wait_event_type = 'Lock'"
            )
        )
        await watcher.rollback()
        if waits.scalar_one():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("no statement waited for a lock")
