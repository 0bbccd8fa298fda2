"""Organization isolation (another org's ids are 404, never listed) and the role matrix."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from support import PROPERTY, Account, assert_problem, create_property, create_tenant, create_unit
from support_portfolio import World, app_client, build_world, list_all


@pytest.fixture(scope="module")
def world(database: Any, valkey: Any, secret_key: str) -> Iterator[World]:
    with app_client(database, valkey, secret_key, "access") as client:
        yield build_world(client)


FOREIGN = [
    ("property", "/api/v1/properties/{}", {"name": "Stolen"}),
    ("unit", "/api/v1/units/{}", {"label": "Stolen"}),
    ("tenant", "/api/v1/tenants/{}", {"lastName": "Stolen"}),
    ("member", "/api/v1/members/{}", {"name": "Stolen"}),
]


def _foreign_id(w: World, kind: str) -> str:
    return {
        "property": w.other_property["id"],
        "unit": w.other_unit["id"],
        "tenant": w.other_tenant["id"],
        "member": w.other.user_id,
    }[kind]


def _as_other(w: World, kind: str, template: str) -> Any:
    """What the other organization's owner sees of its own resource."""
    return w.get(template.format(_foreign_id(w, kind)), w.other)


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
@pytest.mark.parametrize(("kind", "template", "patch"), FOREIGN, ids=[f[0] for f in FOREIGN])
def test_another_organizations_id_is_404_and_untouched(
    world: World, kind: str, template: str, patch: dict[str, Any], method: str
) -> None:
    before = _as_other(world, kind, template)
    path = template.format(_foreign_id(world, kind))
    kwargs: dict[str, Any] = {"json": patch} if method == "PATCH" else {}
    response = world.client.request(method, path, headers=world.owner.headers, **kwargs)
    body = assert_problem(response, 404, "not-found")
    # Indistinguishable from an id that never existed.
    missing = world.client.request(
        method,
        template.format("00000000-0000-4000-8000-000000000000"),
        headers=world.owner.headers,
        **kwargs,
    )
    assert assert_problem(missing, 404, "not-found")["title"] == body["title"]
    assert _as_other(world, kind, template) == before


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_another_organizations_property_units_are_404(world: World, method: str) -> None:
    path = f"/api/v1/properties/{world.other_property['id']}/units"
    kwargs: dict[str, Any] = {"json": {"label": "Sneaky"}} if method == "POST" else {}
    before = world.get(path, world.other)
    assert_problem(world.client.request(method, path, headers=world.owner.headers, **kwargs), 404)
    assert world.get(path, world.other) == before


@pytest.mark.parametrize(
    ("path", "foreign"),
    [
        ("/api/v1/properties", lambda w: w.other_property["id"]),
        ("/api/v1/units", lambda w: w.other_unit["id"]),
        ("/api/v1/tenants", lambda w: w.other_tenant["id"]),
        ("/api/v1/members", lambda w: w.other.user_id),
    ],
)
def test_lists_never_show_another_organizations_rows(
    world: World, path: str, foreign: Callable[[World], str]
) -> None:
    mine = list_all(world.client, world.owner, path)
    assert mine, "the world has rows of its own"
    assert foreign(world) not in {item["id"] for item in mine}
    theirs = list_all(world.client, world.other, path)
    assert foreign(world) in {item["id"] for item in theirs}


def test_search_and_filters_do_not_reach_into_another_organization(world: World) -> None:
    found = list_all(world.client, world.owner, "/api/v1/properties", search="Foreign Tower")
    assert found == []
    units = list_all(
        world.client, world.owner, "/api/v1/units", propertyId=world.other_property["id"]
    )
    assert units == []


# The role matrix. Each write gets fresh targets, so an allowed DELETE harms no other test.


def _targets(w: World) -> dict[str, str]:
    prop = create_property(w.client, w.owner)
    return {
        "property": prop["id"],
        "unit": create_unit(w.client, w.owner, prop["id"])["id"],
        "tenant": create_tenant(w.client, w.owner)["id"],
        "member": w.viewer.user_id,
    }


WRITES: list[tuple[str, str, str, dict[str, Any] | None]] = [
    ("portfolio", "POST", "/api/v1/properties", PROPERTY),
    ("portfolio", "PATCH", "/api/v1/properties/{property}", {"name": "Changed"}),
    ("portfolio", "DELETE", "/api/v1/properties/{property}", None),
    ("portfolio", "POST", "/api/v1/properties/{property}/units", {"label": "New-1"}),
    ("portfolio", "PATCH", "/api/v1/units/{unit}", {"bedrooms": 4}),
    ("portfolio", "DELETE", "/api/v1/units/{unit}", None),
    ("portfolio", "POST", "/api/v1/tenants", {"firstName": "Tim", "lastName": "Berners-Lee"}),
    ("portfolio", "PATCH", "/api/v1/tenants/{tenant}", {"notes": "changed"}),
    ("portfolio", "DELETE", "/api/v1/tenants/{tenant}", None),
    ("owner", "PATCH", "/api/v1/organization", {"timezone": "Europe/Berlin"}),
    ("owner", "PATCH", "/api/v1/members/{member}", {"name": "Renamed Viewer"}),
    ("owner", "DELETE", "/api/v1/members/{member}", None),
    (
        "owner",
        "POST",
        "/api/v1/members",
        {"email": "x-{uniq}@example.com", "name": "X", "role": "viewer", "password": "pw123456"},
    ),
]
ALLOWED = {
    "manager": {"portfolio"},
    "staff": set(),
    "viewer": set(),
}


def _snapshot(w: World) -> Any:
    return (
        list_all(w.client, w.owner, "/api/v1/properties"),
        list_all(w.client, w.owner, "/api/v1/units"),
        list_all(w.client, w.owner, "/api/v1/tenants"),
        w.get("/api/v1/members"),
        w.get("/api/v1/organization"),
    )


@pytest.mark.parametrize("role", ["manager", "staff", "viewer"])
@pytest.mark.parametrize(
    ("area", "method", "template", "body"), WRITES, ids=[f"{w[1]} {w[2]}" for w in WRITES]
)
def test_role_matrix_for_writes(
    world: World,
    role: str,
    area: str,
    method: str,
    template: str,
    body: dict[str, Any] | None,
) -> None:
    account: Account = getattr(world, role)
    path = template.format(**_targets(world))
    if body and "email" in body:
        body = {**body, "email": body["email"].format(uniq=role)}
    before = _snapshot(world)
    kwargs: dict[str, Any] = {"json": body} if body is not None else {}
    response = world.client.request(method, path, headers=account.headers, **kwargs)
    if area in ALLOWED[role]:
        assert response.status_code in (200, 201, 204), response.text
        assert _snapshot(world) != before
    else:
        assert_problem(response, 403, "forbidden")
        assert _snapshot(world) == before


READS = [
    "/api/v1/properties",
    "/api/v1/properties/{property}",
    "/api/v1/properties/{property}/units",
    "/api/v1/units",
    "/api/v1/units/{unit}",
    "/api/v1/tenants",
    "/api/v1/tenants/{tenant}",
    "/api/v1/organization",
    "/api/v1/auth/me",
]


@pytest.mark.parametrize("role", ["owner", "manager", "staff", "viewer"])
@pytest.mark.parametrize("template", READS)
def test_every_role_can_read_the_portfolio(world: World, role: str, template: str) -> None:
    path = template.format(
        property=world.property["id"], unit=world.unit["id"], tenant=world.tenant["id"]
    )
    response = world.client.get(path, headers=getattr(world, role).headers)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("role", ["manager", "staff", "viewer"])
def test_only_owners_see_members(world: World, role: str) -> None:
    account = getattr(world, role)
    assert_problem(world.client.get("/api/v1/members", headers=account.headers), 403, "forbidden")
    member = f"/api/v1/members/{world.owner.user_id}"
    assert_problem(world.client.get(member, headers=account.headers), 403, "forbidden")
