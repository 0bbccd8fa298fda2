"""Bad input on every portfolio endpoint: the documented 4xx problem, and nothing changes."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from support import assert_problem
from support_portfolio import World, app_client, build_world

REGISTER_EMAIL = "never-registered@example.com"
HUGE = "x" * 10_000
NUL = "bad\x00value"


@pytest.fixture(scope="module")
def world(database: Any, valkey: Any, secret_key: str) -> Iterator[World]:
    with app_client(database, valkey, secret_key, "bad-input") as client:
        yield build_world(client)


@dataclass(frozen=True)
class Target:
    """One endpoint that takes a JSON body, with bodies that must be refused."""

    name: str
    method: str
    path: Callable[[World], str]
    state: Callable[[World], Any]
    valid: dict[str, Any]
    wrong_type: dict[str, Any]
    out_of_range: dict[str, Any]
    text_field: str
    auth: bool = True


def _sessions(w: World) -> Any:
    return sorted(s["id"] for s in w.get("/api/v1/auth/sessions")["items"])


def _can_login(w: World) -> int:
    body = {"email": REGISTER_EMAIL, "password": "long enough password"}
    response = w.client.post("/api/v1/auth/login", json=body)
    w.client.cookies.clear()
    return int(response.status_code)


ADDRESS = {"line1": "1 Main St", "city": "Springfield", "country": "US"}

TARGETS = [
    Target(
        "create-property",
        "POST",
        lambda w: "/api/v1/properties",
        lambda w: w.get("/api/v1/properties?limit=100"),
        {"name": "Oak", "type": "residential", "address": ADDRESS},
        {"name": "Oak", "type": "residential", "address": ADDRESS, "yearBuilt": "1990"},
        {"name": "Oak", "type": "residential", "address": ADDRESS, "yearBuilt": 99999},
        "name",
    ),
    Target(
        "patch-property",
        "PATCH",
        lambda w: f"/api/v1/properties/{w.property['id']}",
        lambda w: w.get(f"/api/v1/properties/{w.property['id']}"),
        {"name": "Renamed"},
        {"name": ["Renamed"]},
        {"yearBuilt": -4},
        "name",
    ),
    Target(
        "create-unit",
        "POST",
        lambda w: f"/api/v1/properties/{w.property['id']}/units",
        lambda w: (
            w.get(f"/api/v1/properties/{w.property['id']}/units?limit=100"),
            w.get(f"/api/v1/properties/{w.property['id']}")["unitCount"],
        ),
        {"label": "Z-1"},
        {"label": "Z-1", "bedrooms": "two"},
        {"label": "Z-1", "marketRent": -1},
        "label",
    ),
    Target(
        "patch-unit",
        "PATCH",
        lambda w: f"/api/v1/units/{w.unit['id']}",
        lambda w: w.get(f"/api/v1/units/{w.unit['id']}"),
        {"bedrooms": 3},
        {"bedrooms": True},
        {"bathrooms": 1000.5},
        "label",
    ),
    Target(
        "create-tenant",
        "POST",
        lambda w: "/api/v1/tenants",
        lambda w: w.get("/api/v1/tenants?limit=100"),
        {"firstName": "Grace", "lastName": "Hopper"},
        {"firstName": 7, "lastName": "Hopper"},
        {"firstName": "Grace", "lastName": ""},
        "lastName",
    ),
    Target(
        "patch-tenant",
        "PATCH",
        lambda w: f"/api/v1/tenants/{w.tenant['id']}",
        lambda w: w.get(f"/api/v1/tenants/{w.tenant['id']}"),
        {"notes": "likes cats"},
        {"notes": {"text": "likes cats"}},
        {"phone": "1" * 41},
        "firstName",
    ),
    Target(
        "patch-organization",
        "PATCH",
        lambda w: "/api/v1/organization",
        lambda w: w.get("/api/v1/organization"),
        {"name": "Renamed Homes"},
        {"currency": 978},
        {"currency": "EURO"},
        "name",
    ),
    Target(
        "add-member",
        "POST",
        lambda w: "/api/v1/members",
        lambda w: w.get("/api/v1/members"),
        {"email": "new.member@example.com", "name": "New", "role": "staff", "password": "pw123456"},
        {"email": "n@example.com", "name": "New", "role": 1, "password": "pw123456"},
        {"email": "n@example.com", "name": "New", "role": "staff", "password": "short"},
        "name",
    ),
    Target(
        "patch-member",
        "PATCH",
        lambda w: f"/api/v1/members/{w.viewer.user_id}",
        lambda w: w.get(f"/api/v1/members/{w.viewer.user_id}"),
        {"name": "Vera Viewer"},
        {"role": ["owner"]},
        {"role": "emperor"},
        "name",
    ),
    Target(
        "register",
        "POST",
        lambda w: "/api/v1/auth/register",
        _can_login,
        {
            "organizationName": "New Org",
            "name": "New Owner",
            "email": REGISTER_EMAIL,
            "password": "long enough password",
        },
        {
            "organizationName": "New Org",
            "name": "New Owner",
            "email": REGISTER_EMAIL,
            "password": 12345678,
        },
        {
            "organizationName": "New Org",
            "name": "New Owner",
            "email": REGISTER_EMAIL,
            "password": "short",
        },
        "organizationName",
        auth=False,
    ),
    Target(
        "login",
        "POST",
        lambda w: "/api/v1/auth/login",
        _sessions,
        {},  # filled from the world: the owner's real credentials
        {"email": ["x@example.com"], "password": "whatever"},
        {"email": "x@example.com", "password": ""},
        "email",
        auth=False,
    ),
]


def _valid(target: Target, w: World) -> dict[str, Any]:
    if target.name == "login":
        return {"email": w.owner.email, "password": w.owner.password}
    return dict(target.valid)


def _send(w: World, target: Target, content: bytes, content_type: str | None) -> Any:
    headers = dict(w.owner.headers) if target.auth else {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = w.client.request(target.method, target.path(w), content=content, headers=headers)
    w.client.cookies.clear()
    return response


def _case(target: Target, w: World, case: str) -> tuple[bytes, str | None, int, str]:
    """(body bytes, content type, expected status, expected slug) for one kind of bad input."""
    valid = _valid(target, w)
    as_json = "application/json"
    if case == "malformed-json":
        return json.dumps(valid).encode()[:-1] + b",}", as_json, 400, "malformed-request"
    if case == "wrong-content-type":
        return json.dumps(valid).encode(), "text/plain", 415, "unsupported-media-type"
    if case == "form-content-type":
        return b"name=x", "application/x-www-form-urlencoded", 415, "unsupported-media-type"
    if case == "oversize":
        body = {**valid, target.text_field: "x" * (1024 * 1024 + 16)}
        return json.dumps(body).encode(), as_json, 413, "payload-too-large"
    if case == "unknown-field":
        return json.dumps({**valid, "isAdmin": True}).encode(), as_json, 422, "validation"
    if case == "wrong-type":
        return json.dumps(target.wrong_type).encode(), as_json, 422, "validation"
    if case == "out-of-range":
        return json.dumps(target.out_of_range).encode(), as_json, 422, "validation"
    if case == "10k-string":
        body = {**valid, target.text_field: HUGE}
        return json.dumps(body).encode(), as_json, 422, "validation"
    if case == "nul-byte":
        body = {**valid, target.text_field: NUL}
        return json.dumps(body).encode(), as_json, 422, "validation"
    if case == "not-an-object":
        return json.dumps([valid]).encode(), as_json, 422, "validation"
    raise AssertionError(case)


CASES = [
    "malformed-json",
    "wrong-content-type",
    "form-content-type",
    "oversize",
    "unknown-field",
    "wrong-type",
    "out-of-range",
    "10k-string",
    "nul-byte",
    "not-an-object",
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name)
def test_bad_body_gets_its_problem_and_changes_nothing(
    world: World, target: Target, case: str
) -> None:
    before = target.state(world)
    content, content_type, status, slug = _case(target, world, case)

    body = assert_problem(_send(world, target, content, content_type), status, slug)

    assert target.state(world) == before
    if status == 422 and case != "not-an-object":
        assert body["errors"], body
        assert all(set(e) == {"field", "message"} for e in body["errors"])


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name)
def test_each_rows_valid_body_is_accepted_and_its_change_is_seen(
    world: World, target: Target
) -> None:
    """The control row: the table's state probe does notice a write that goes through."""
    before = target.state(world)
    content = json.dumps(_valid(target, world)).encode()
    response = _send(world, target, content, "application/json")
    assert response.status_code < 300, response.text
    assert target.state(world) != before


def test_the_unknown_field_error_names_the_field(world: World) -> None:
    nested = {
        "name": "Oak",
        "type": "residential",
        "address": {**ADDRESS, "planet": "Mars"},
    }
    before = world.get("/api/v1/properties?limit=100")
    response = world.client.post("/api/v1/properties", headers=world.owner.headers, json=nested)
    body = assert_problem(response, 422, "validation")
    assert "planet" in json.dumps(body["errors"])
    assert world.get("/api/v1/properties?limit=100") == before


BAD_IDS = ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000g", "%00", "..%2F..%2Fetc"]
ID_PATHS = [
    ("GET", "/api/v1/properties/{}"),
    ("PATCH", "/api/v1/properties/{}"),
    ("DELETE", "/api/v1/properties/{}"),
    ("GET", "/api/v1/properties/{}/units"),
    ("POST", "/api/v1/properties/{}/units"),
    ("GET", "/api/v1/units/{}"),
    ("PATCH", "/api/v1/units/{}"),
    ("DELETE", "/api/v1/units/{}"),
    ("GET", "/api/v1/tenants/{}"),
    ("PATCH", "/api/v1/tenants/{}"),
    ("DELETE", "/api/v1/tenants/{}"),
    ("GET", "/api/v1/members/{}"),
    ("PATCH", "/api/v1/members/{}"),
    ("DELETE", "/api/v1/members/{}"),
]


def _everything(w: World) -> Any:
    return (
        w.get("/api/v1/properties?limit=100"),
        w.get("/api/v1/units?limit=100"),
        w.get("/api/v1/tenants?limit=100"),
        w.get("/api/v1/members"),
    )


@pytest.mark.parametrize("bad_id", BAD_IDS)
@pytest.mark.parametrize(("method", "template"), ID_PATHS)
def test_invalid_uuid_in_path_is_404_and_changes_nothing(
    world: World, method: str, template: str, bad_id: str
) -> None:
    before = _everything(world)
    kwargs: dict[str, Any] = {"headers": world.owner.headers}
    if method in ("POST", "PATCH"):
        kwargs["json"] = {"label": "X"} if "units" in template else {"name": "X"}
    response = world.client.request(method, template.format(bad_id), **kwargs)
    assert_problem(response, 404)
    assert _everything(world) == before


def _cursor(sort: str, value: Any) -> str:
    raw = json.dumps([sort, value, "6f1c2c1e-2a5b-4a4e-9a43-0c5e0f3d1a2b"]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


DEFAULT_SORT = {
    "/api/v1/properties": "name",
    "/api/v1/properties/{property}/units": "label",
    "/api/v1/units": "label",
    "/api/v1/tenants": "lastName",
}
LISTS = [
    "/api/v1/properties",
    "/api/v1/properties/{property}/units",
    "/api/v1/units",
    "/api/v1/tenants",
]
BAD_QUERIES = [
    ({"limit": "0"}, "limit"),
    ({"limit": "10000"}, "limit"),
    ({"limit": "-1"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"cursor": "garbage"}, "cursor"),
    ({"cursor": "W10"}, "cursor"),  # base64 of [] : decodes, but is no cursor
    ({"cursor": "eyJhIjoxfQ"}, "cursor"),  # base64 of {"a":1}
    ({"cursor": "WyJuYW1lIiwxLDJd"}, "cursor"),  # ["name",1,2]: right shape, wrong values
    ({"cursor": "x" * 2000}, "cursor"),
    # Well-formed cursors with forged values no database can compare.
    ({"cursor": _cursor("{sort}", 10**30)}, "cursor"),
    ({"cursor": _cursor("{sort}", "a\x00b")}, "cursor"),
    ({"cursor": _cursor("{sort}", None)}, "cursor"),
    ({"cursor": _cursor("{sort}", True)}, "cursor"),
    ({"cursor": _cursor("createdAt", "0001-01-01T00:00:00+14:00"), "sort": "createdAt"}, "cursor"),
    ({"cursor": _cursor("createdAt", 1e300), "sort": "createdAt"}, "cursor"),
    ({"sort": "password"}, "sort"),
    ({"sort": "name;drop"}, "sort"),
    ({"search": "a\x00b"}, "search"),
    ({"search": "s" * 201}, "search"),
]


@pytest.mark.parametrize(("query", "field"), BAD_QUERIES, ids=lambda v: str(v)[:30])
@pytest.mark.parametrize("template", LISTS)
def test_bad_list_query_is_422_naming_the_parameter(
    world: World, template: str, query: dict[str, str], field: str
) -> None:
    path = template.format(property=world.property["id"])
    if "cursor" in query and "sort" not in query:
        # A forged cursor for the list's own default sort, so only its value is wrong.
        sort_name = DEFAULT_SORT[template]
        try:
            raw = base64.urlsafe_b64decode(query["cursor"] + "=" * (-len(query["cursor"]) % 4))
        except binascii.Error:
            raw = b""
        if raw.startswith(b'["{sort}"'):
            fixed = raw.replace(b"{sort}", sort_name.encode(), 1)
            query = {"cursor": base64.urlsafe_b64encode(fixed).decode().rstrip("=")}
    response = world.client.get(path, headers=world.owner.headers, params=query)
    body = assert_problem(response, 422, "validation")
    assert field in {e["field"] for e in body["errors"]}, body
