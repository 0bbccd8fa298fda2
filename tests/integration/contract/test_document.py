"""The published document: it validates, it only grew since v1, and it says what the server does."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from litestar.routes import HTTPRoute
from openapi_spec_validator import validate

from haven.apidiff import breaking
from support_examples import served_document, unstarted_app

RELEASED = Path(__file__).parents[3] / "docs" / "openapi" / "v1.json"
# Narrowings of the released v1 document that are not breaking, each with its reason.
ACKNOWLEDGED = {
    # Lists only ever issue unpadded base64url cursors; any other character made decoding
    # fail with 422 before, and now the parameter's pattern says so up front.
    "parameter cursor: pattern 'unset' -> '^[A-Za-z0-9_-]*$'",
}


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return served_document()


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


def test_the_document_validates(doc: dict[str, Any]) -> None:
    validate(doc)
    validate(json.loads(RELEASED.read_text()))


def test_nothing_was_removed_or_narrowed_since_the_released_v1(doc: dict[str, Any]) -> None:
    released = json.loads(RELEASED.read_text())
    found = [
        change
        for change in breaking(released, doc)
        if not any(change.endswith(ok) for ok in ACKNOWLEDGED)
    ]
    assert found == [], "breaking changes against docs/openapi/v1.json:\n" + "\n".join(found)


def test_the_breaking_change_check_catches_removals_and_narrowing() -> None:
    released = json.loads(RELEASED.read_text())
    changed = copy.deepcopy(released)
    del changed["paths"]["/api/v1/tenants"]["get"]
    del changed["paths"]["/api/v1/units/{unit_id}"]["patch"]["responses"]["412"]
    schemas = changed["components"]["schemas"]
    del schemas["PropertyOut"]["properties"]["name"]
    schemas["TenantIn"]["required"].append("email")
    schemas["UnitIn"]["properties"]["label"]["maxLength"] = 10
    found = breaking(released, changed)
    assert "GET /api/v1/tenants: removed" in found
    assert "PATCH /api/v1/units/{unit_id}: response 412 removed" in found
    assert "GET /api/v1/properties/{property_id} 200.name: removed" in found
    assert "POST /api/v1/tenants body.email: newly required" in found
    assert "POST /api/v1/properties/{property_id}/units body.label: maxLength 50 -> 10" in found
    # Additions are not breaking.
    grown = copy.deepcopy(released)
    grown["paths"]["/api/v1/new-thing"] = released["paths"]["/api/v1/tenants"]
    schemas = grown["components"]["schemas"]
    schemas["PropertyOut"]["properties"]["extra"] = {"type": "string"}
    assert breaking(released, grown) == []


def test_request_bodies_are_closed_as_the_server_is(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    for path, method, op in _operations(doc):
        body = op.get("requestBody", {}).get("content", {}).get("application/json")
        if body is None or "$ref" not in body["schema"]:
            continue
        name = body["schema"]["$ref"].rsplit("/", 1)[-1]
        assert schemas[name]["additionalProperties"] is False, (method, path, name)
    # Nested request structs too (the server refuses unknown fields at every depth).
    assert schemas["Address"]["additionalProperties"] is False


def test_every_operation_lists_its_statuses_security_and_problem_types(
    doc: dict[str, Any],
) -> None:
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearer"]["scheme"] == "bearer"
    assert schemes["session"]["in"] == "cookie"
    assert schemes["csrf"] == {**schemes["csrf"], "in": "header", "name": "X-CSRF-Token"}
    for path, method, op in _operations(doc):
        assert "security" in op, (method, path)
        for status, answer in op["responses"].items():
            if status.startswith(("4", "5")):
                media = answer["content"]["application/problem+json"]
                assert media["examples"], (method, path, status)
                assert all(
                    e["value"]["type"].startswith("https://haven.dev/problems/")
                    for e in media["examples"].values()
                )
        if path.startswith("/api/v1/") and not path.startswith("/api/v1/load-balancer/"):
            assert {"414", "429", "503"} <= set(op["responses"]), (method, path)
            assert "Retry-After" in op["responses"]["503"]["headers"]
        unsafe = method != "get" and path.startswith("/api/v1/") and "auth/" not in path
        if unsafe and not path.startswith("/api/v1/load-balancer/"):
            assert {"bearer": []} in op["security"]
            assert {"session": [], "csrf": []} in op["security"]
    login = doc["paths"]["/api/v1/auth/login"]["post"]
    assert "401" in login["responses"]
    assert login["security"] == [{}]
    assert "409" in doc["paths"]["/api/v1/members/{member_id}"]["delete"]["responses"]


def test_cursor_parameters_have_a_format_and_creates_link_to_their_resource(
    doc: dict[str, Any],
) -> None:
    for path, _method, op in _operations(doc):
        for param in op.get("parameters", []):
            if param["name"] == "cursor":
                assert param["schema"]["format"] == "base64url", path
                assert param["schema"]["pattern"]
                assert param["example"]
    links = doc["paths"]["/api/v1/properties"]["post"]["responses"]["201"]["links"]
    targets = {link["operationId"] for link in links.values()}
    show = doc["paths"]["/api/v1/properties/{property_id}"]
    assert {show["get"]["operationId"], show["patch"]["operationId"]} <= targets
    assert show["delete"]["operationId"] in targets
    assert all(link["parameters"]["property_id"] == "$response.body#/id" for link in links.values())


def test_api_keys_are_declared_exactly_where_the_server_accepts_them(doc: dict[str, Any]) -> None:
    scheme = doc["components"]["securitySchemes"]["apiKey"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert "hvn_" in scheme["description"]
    people_only = {
        (method.lower(), route.path.replace(":uuid}", "}").replace(":str}", "}"))
        for route in unstarted_app().routes
        if isinstance(route, HTTPRoute)
        for handler in route.route_handlers
        if handler.opt.get("people_only")
        for method in handler.http_methods
    }
    assert ("delete", "/api/v1/api-keys/{key_id}") in people_only
    for path, method, op in _operations(doc):
        takes_key = {"apiKey": []} in op["security"]
        if (method, path) in people_only:
            assert not takes_key, (method, path)
            assert "API key" in op["responses"]["403"]["description"], (method, path)
        elif "/auth/" in path:
            assert not takes_key, (method, path)  # sign-in and sign-up take no credential
        elif path.startswith("/api/v1/") and not path.startswith("/api/v1/load-balancer/"):
            assert takes_key, (method, path)
            assert {"401", "403", "429"} <= set(op["responses"]), (method, path)
            assert "RateLimit-Limit" in op["responses"]["429"]["headers"]
        else:
            assert not takes_key, (method, path)
    # Creating a key links to reading and revoking it (the stateful run follows them).
    links = doc["paths"]["/api/v1/api-keys"]["post"]["responses"]["201"]["links"]
    item = doc["paths"]["/api/v1/api-keys/{key_id}"]
    assert {link["operationId"] for link in links.values()} == {
        item["get"]["operationId"],
        item["delete"]["operationId"],
    }
    assert all(link["parameters"] == {"key_id": "$response.body#/id"} for link in links.values())
    assert doc["components"]["schemas"]["ApiKeyIn"]["additionalProperties"] is False
