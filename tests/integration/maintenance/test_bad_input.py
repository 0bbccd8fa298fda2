"""Bad input on every maintenance and audit endpoint: the documented 4xx problem, nothing changes.

"Nothing changes" includes the audit trail: a refused write records no event.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from litestar.testing import TestClient

from support import Account, add_member, assert_problem, create_property, create_unit, register
from support_maintenance import BASE, create_request
from support_portfolio import app_client

HUGE = "x" * 10_000
NUL = "bad\x00value"
AUDIT = "/api/v1/audit-events"


@dataclass
class World:
    client: TestClient[Any]
    owner: Account
    staff: Account
    property: dict[str, Any]
    unit: dict[str, Any]
    request: dict[str, Any]

    def get(self, path: str) -> Any:
        response = self.client.get(path, headers=self.owner.headers)
        assert response.status_code == 200, response.text
        return response.json()

    def everything(self) -> Any:
        return (
            self.get(f"{BASE}?limit=100"),
            self.get(f"{BASE}/{self.request['id']}"),
            self.get(f"{BASE}/{self.request['id']}/comments?limit=100"),
            self.get(f"{AUDIT}?limit=100"),
        )


@pytest.fixture(scope="module")
def world(database: Any, valkey: Any, secret_key: str) -> Iterator[World]:
    with app_client(database, valkey, secret_key, "maintenance-bad-input") as client:
        owner = register(client, organization="Bad Input Homes")
        prop = create_property(client, owner)
        yield World(
            client=client,
            owner=owner,
            staff=add_member(client, owner, "staff"),
            property=prop,
            unit=create_unit(client, owner, prop["id"]),
            request=create_request(client, owner, prop["id"]),
        )


@dataclass(frozen=True)
class Target:
    """One endpoint that takes a JSON body, with bodies that must be refused."""

    name: str
    method: str
    path: Callable[[World], str]
    valid: Callable[[World], dict[str, Any]]
    wrong_type: dict[str, Any]
    out_of_range: dict[str, Any]
    text_field: str


TARGETS = [
    Target(
        "create-request",
        "POST",
        lambda w: BASE,
        lambda w: {"propertyId": w.property["id"], "title": "Broken window"},
        {"title": "Broken window", "propertyId": 42},
        {"title": "Broken window", "costEstimate": -1},
        "title",
    ),
    Target(
        "patch-request",
        "PATCH",
        lambda w: f"{BASE}/{w.request['id']}",
        lambda w: {"title": "Renamed", "costActual": 1250},
        {"priority": 3},
        {"costActual": 10**15},
        "description",
    ),
    Target(
        "transition",
        "POST",
        lambda w: f"{BASE}/{w.request['id']}/transition",
        lambda w: {"to": "in_progress"},
        {"to": ["in_progress"]},
        {"to": "done"},
        "to",
    ),
    Target(
        "comment",
        "POST",
        lambda w: f"{BASE}/{w.request['id']}/comments",
        lambda w: {"body": "On it"},
        {"body": {"text": "On it"}},
        {"body": ""},
        "body",
    ),
]

CASES = {
    "malformed-json": (400, "malformed-request"),
    "wrong-content-type": (415, "unsupported-media-type"),
    "unknown-field": (422, "validation"),
    "wrong-type": (422, "validation"),
    "out-of-range": (422, "validation"),
    "10k-string": (422, "validation"),
    "nul-byte": (422, "validation"),
    "bad-uuid-field": (422, "validation"),
    "not-an-object": (422, "validation"),
}


def _body(target: Target, w: World, case: str) -> tuple[bytes, str]:
    valid = target.valid(w)
    if case == "malformed-json":
        return json.dumps(valid).encode()[:-1] + b",}", "application/json"
    if case == "wrong-content-type":
        return json.dumps(valid).encode(), "text/plain"
    body: Any = {
        "unknown-field": {**valid, "isAdmin": True},
        "wrong-type": target.wrong_type,
        "out-of-range": target.out_of_range,
        "10k-string": {**valid, target.text_field: HUGE},
        "nul-byte": {**valid, target.text_field: NUL},
        "bad-uuid-field": {**valid, "assigneeId": "not-a-uuid"},
        "not-an-object": [valid],
    }[case]
    if case == "bad-uuid-field" and target.name in ("transition", "comment"):
        body = {**valid, "to" if target.name == "transition" else "body": 12}
    return json.dumps(body).encode(), "application/json"


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name)
def test_bad_body_gets_its_problem_and_changes_nothing(
    world: World, target: Target, case: str
) -> None:
    before = world.everything()
    content, content_type = _body(target, world, case)
    status, slug = CASES[case]
    response = world.client.request(
        target.method,
        target.path(world),
        content=content,
        headers={**world.staff.headers, "Content-Type": content_type},
    )
    body = assert_problem(response, status, slug)
    if status == 422 and case != "not-an-object":
        assert body["errors"], body
        assert all(set(e) == {"field", "message"} for e in body["errors"])
    assert world.everything() == before


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name)
def test_each_rows_valid_body_is_accepted_and_seen(world: World, target: Target) -> None:
    """The control row: the state probe does notice a write that goes through."""
    before = world.everything()
    response = world.client.request(
        target.method, target.path(world), headers=world.staff.headers, json=target.valid(world)
    )
    assert response.status_code < 300, response.text
    assert world.everything() != before


BAD_IDS = ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000g", "%00", "..%2F..%2Fetc"]
ID_PATHS = [
    ("GET", BASE + "/{}", None),
    ("PATCH", BASE + "/{}", {"title": "X"}),
    ("POST", BASE + "/{}/transition", {"to": "cancelled"}),
    ("GET", BASE + "/{}/comments", None),
    ("POST", BASE + "/{}/comments", {"body": "X"}),
    ("DELETE", BASE + "/{}", None),
]


@pytest.mark.parametrize("bad_id", BAD_IDS)
@pytest.mark.parametrize(("method", "template", "body"), ID_PATHS, ids=lambda v: str(v))
def test_invalid_uuid_in_path_is_404_and_changes_nothing(
    world: World, method: str, template: str, body: Any, bad_id: str
) -> None:
    before = world.everything()
    response = world.client.request(
        method, template.format(bad_id), headers=world.staff.headers, json=body
    )
    assert_problem(response, 404, "not-found")
    assert world.everything() == before


def test_description_limit_is_5000_characters(world: World) -> None:
    path = f"{BASE}/{world.request['id']}"
    too_long = world.client.patch(
        path, headers=world.staff.headers, json={"description": "d" * 5001}
    )
    problem = assert_problem(too_long, 422, "validation")
    assert problem["errors"][0]["field"] == "description"
    fits = world.client.patch(path, headers=world.staff.headers, json={"description": "d" * 5000})
    assert fits.status_code == 200, fits.text


COMMON_QUERIES = [
    ({"limit": "0"}, "limit"),
    ({"limit": "10000"}, "limit"),
    ({"limit": "-1"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"cursor": "garbage"}, "cursor"),
    ({"cursor": "W10"}, "cursor"),  # base64 of []: decodes, but is no cursor
    ({"cursor": "eyJhIjoxfQ"}, "cursor"),  # base64 of {"a":1}
    ({"cursor": "WyJjcmVhdGVkQXQiLDEsMl0"}, "cursor"),  # ["createdAt",1,2]: wrong values
    ({"cursor": "x" * 2000}, "cursor"),
    ({"sort": "password"}, "sort"),
    ({"sort": "name;drop"}, "sort"),
]
LIST_QUERIES: dict[str, list[tuple[dict[str, str], str]]] = {
    BASE: [
        *COMMON_QUERIES,
        ({"search": "a\x00b"}, "search"),
        ({"search": "s" * 201}, "search"),
        ({"status": "done"}, "status"),
        ({"priority": "urgent"}, "priority"),
        ({"propertyId": "not-a-uuid"}, "propertyId"),
        ({"unitId": "123"}, "unitId"),
        ({"assigneeId": "x" * 100}, "assigneeId"),
    ],
    BASE + "/{request}/comments": list(COMMON_QUERIES),
    AUDIT: [
        *COMMON_QUERIES,
        ({"entityType": "Property;"}, "entityType"),
        ({"entityType": "p" * 65}, "entityType"),
        ({"entityId": "nope"}, "entityId"),
        ({"actorId": "00000000-0000-0000-0000-00000000000g"}, "actorId"),
        ({"action": "property"}, "action"),
        ({"action": "a\x00.b"}, "action"),
    ],
}
QUERY_ROWS = [(path, q, f) for path, rows in LIST_QUERIES.items() for q, f in rows]


@pytest.mark.parametrize(("template", "query", "field"), QUERY_ROWS, ids=lambda v: str(v)[:40])
def test_bad_list_query_is_422_naming_the_parameter(
    world: World, template: str, query: dict[str, str], field: str
) -> None:
    path = template.format(request=world.request["id"])
    response = world.client.get(path, headers=world.owner.headers, params=query)
    body = assert_problem(response, 422, "validation")
    assert field in {e["field"] for e in body["errors"]}, body
