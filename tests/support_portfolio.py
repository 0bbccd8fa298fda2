"""Helpers for the portfolio, organization and fuzz tests: module-wide app instances and a world."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from litestar.testing import TestClient

from haven.app import create_app
from haven.config import load_settings
from support import Account, add_member, create_property, create_tenant, create_unit, register


@contextmanager
def app_client(database: Any, valkey: Any, secret_key: str, instance_id: str) -> Iterator[Any]:
    """One Haven instance (own engine and Redis pool) on the shared Valkey and database."""
    env = {
        "HAVEN_ENV": "test",
        "DATABASE_URL": database.url,
        "REDIS_URL": valkey.url,
        "SECRET_KEY": secret_key,
        "RATE_LIMIT_ENABLED": "false",
        "LOG_LEVEL": "warning",
        "DB_POOL_MIN": "1",
        "DB_POOL_MAX": "5",
    }
    settings = load_settings(env, instance_id=f"{instance_id}-{secrets.token_hex(2)}")
    with TestClient(create_app(settings)) as client:
        yield client


@dataclass
class World:
    """An organization with one of everything, plus a second organization to stay out of."""

    client: TestClient[Any]
    owner: Account
    manager: Account
    staff: Account
    viewer: Account
    property: dict[str, Any]
    unit: dict[str, Any]
    tenant: dict[str, Any]
    other: Account
    other_property: dict[str, Any]
    other_unit: dict[str, Any]
    other_tenant: dict[str, Any]

    def get(self, path: str, account: Account | None = None) -> Any:
        response = self.client.get(path, headers=(account or self.owner).headers)
        assert response.status_code == 200, response.text
        return response.json()


def build_world(client: TestClient[Any]) -> World:
    owner = register(client, organization="World Homes")
    prop = create_property(client, owner)
    other = register(client, organization="Elsewhere Estates")
    other_prop = create_property(client, other, name="Foreign Tower")
    return World(
        client=client,
        owner=owner,
        manager=add_member(client, owner, "manager"),
        staff=add_member(client, owner, "staff"),
        viewer=add_member(client, owner, "viewer"),
        property=prop,
        unit=create_unit(client, owner, prop["id"]),
        tenant=create_tenant(client, owner),
        other=other,
        other_property=other_prop,
        other_unit=create_unit(client, other, other_prop["id"]),
        other_tenant=create_tenant(client, other),
    )


def list_all(client: TestClient[Any], account: Account, path: str, **params: Any) -> list[Any]:
    """Every item of a list, following nextCursor (bounded)."""
    items: list[Any] = []
    cursor = None
    for _ in range(1000):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = client.get(path, headers=account.headers, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["items"])
        cursor = body["nextCursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination did not end")
