"""Fuzz every operation in /openapi.json: no input produces a 5xx, every 4xx is problem+json.

Requests are generated with hypothesis from the document itself (so a new route is fuzzed
the day it is added): bodies built from the request schemas, then mutated (wrong types,
unknown fields, huge strings, NUL bytes, arbitrary JSON, bytes that are not JSON), query
parameters valid or garbage, path ids real, random or not ids at all. Derandomized, so a
run is repeatable; each operation gets a fixed example budget.
"""

from __future__ import annotations

import base64
import json
import os
import re
import string
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st

from support import create_property, create_tenant, create_unit, register
from support_leases import active_lease
from support_portfolio import app_client

EXAMPLES_PER_OPERATION = 16  # x ~120 operations x 2 backends (make contract fuzzes too)
STATUSES: dict[tuple[str, str], list[int]] = {}
PORTFOLIO_PREFIXES = ("/api/v1/properties", "/api/v1/units", "/api/v1/tenants")
# Logging out would end the session the fuzzer signs every request with.
SKIP = {("post", "/api/v1/auth/logout")}

Schema = dict[str, Any]


@pytest.fixture(scope="module")
def fuzz_world(database: Any, valkey: Any, secret_key: str) -> Iterator[dict[str, Any]]:
    with app_client(database, valkey, secret_key, "fuzz") as client:
        owner = register(client, organization="Fuzz Homes")
        prop = create_property(client, owner)
        ids = {
            "property_id": prop["id"],
            "unit_id": create_unit(client, owner, prop["id"])["id"],
            "tenant_id": create_tenant(client, owner)["id"],
            "member_id": owner.user_id,
            # A lease in force, so rent changes, recurring charges, renewals and the
            # deposit endpoints see valid ids too.
            "lease_id": active_lease(client, owner, chargeDeposit=True)["id"],
        }
        yield {
            "client": client,
            "owner": owner,
            "ids": ids,
            "doc": client.get("/openapi.json").json(),
        }


TEXT = st.characters(codec="utf-8")  # no lone surrogates: those are a 400 before anything else


def json_values() -> st.SearchStrategy[Any]:
    leaves = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**70), max_value=2**70)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=30)
    )
    return st.recursive(
        leaves,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=10,
    )


class SchemaStrategies:
    """A small JSON Schema -> hypothesis translator for the shapes Litestar emits."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.components: dict[str, Schema] = doc.get("components", {}).get("schemas", {})

    def resolve(self, schema: Schema) -> Schema:
        for _ in range(20):
            ref = schema.get("$ref")
            if not ref:
                return schema
            schema = self.components[ref.rsplit("/", 1)[1]]
        return schema

    def for_schema(self, schema: Schema, depth: int = 0) -> st.SearchStrategy[Any]:
        schema = self.resolve(schema)
        if depth > 6:
            return st.none()
        if "enum" in schema:
            return st.sampled_from(schema["enum"])
        for combinator in ("oneOf", "anyOf"):
            if combinator in schema:
                # Litestar puts string limits next to the oneOf; push them into each branch.
                extra = {k: v for k, v in schema.items() if k != combinator}
                branches = [{**extra, **self.resolve(s)} for s in schema[combinator]]
                return st.one_of([self.for_schema(b, depth + 1) for b in branches])
        kind = schema.get("type")
        if isinstance(kind, list):
            return st.one_of([self.for_schema({**schema, "type": k}, depth + 1) for k in kind])
        if kind == "null":
            return st.none()
        if kind == "boolean":
            return st.booleans()
        if kind == "integer":
            lo, hi = schema.get("minimum"), schema.get("maximum")
            low = int(lo) if lo is not None else -(10**12)
            high = int(hi) if hi is not None else 10**12
            # The edges on purpose: a column narrower than the schema fails only there.
            return st.sampled_from([low, high]) | st.integers(min_value=low, max_value=high)
        if kind == "number":
            lo, hi = schema.get("minimum", -1e6), schema.get("maximum", 1e6)
            if schema.get("multipleOf"):
                step = schema["multipleOf"]
                return st.integers(int(lo / step), int(hi / step)).map(lambda n: n * step)
            return st.floats(min_value=lo, max_value=hi, allow_nan=False)
        if kind == "string":
            return self.string(schema)
        if kind == "array":
            items = self.for_schema(schema.get("items", {}), depth + 1)
            return st.lists(items, max_size=min(schema.get("maxItems", 3), 3))
        if kind == "object" or "properties" in schema:
            return self.obj(schema, depth)
        return json_values()

    def string(self, schema: Schema) -> st.SearchStrategy[str]:
        lo, hi = schema.get("minLength", 0), min(schema.get("maxLength", 40), 60)
        fmt = schema.get("format")
        if fmt == "uuid":
            return st.uuids().map(str)
        if fmt == "date":
            return st.dates().map(lambda d: d.isoformat())
        if fmt == "date-time":
            return st.datetimes().map(lambda d: d.isoformat() + "Z")
        if schema.get("pattern"):
            try:
                pattern = re.compile(schema["pattern"])
            except re.error:
                return st.text(min_size=lo, max_size=hi)
            return st.from_regex(pattern, fullmatch=True, alphabet=TEXT).filter(
                lambda s: lo <= len(s) <= hi
            )
        return st.text(TEXT, min_size=lo, max_size=hi)

    def obj(self, schema: Schema, depth: int) -> st.SearchStrategy[dict[str, Any]]:
        props: dict[str, Schema] = schema.get("properties", {})
        required = set(schema.get("required", []))
        fixed = {k: self.for_schema(v, depth + 1) for k, v in props.items() if k in required}
        optional = {k: self.for_schema(v, depth + 1) for k, v in props.items() if k not in required}
        return st.fixed_dictionaries(fixed, optional=optional)


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[Any]) -> tuple[bytes, str]:
    """(body bytes, how it was made): valid, or valid with one defect, or junk."""
    how = draw(
        st.sampled_from(
            ["valid"] * 6
            + ["wrong-type", "extra-field", "huge", "nul", "any-json", "not-json", "empty"]
        )
    )
    body = draw(valid)
    if how in ("wrong-type", "huge", "nul") and isinstance(body, dict) and body:
        key = draw(st.sampled_from(sorted(body)))
        body[key] = {
            "wrong-type": draw(json_values()),
            "huge": "x" * draw(st.sampled_from([10_001, 200_000])),
            "nul": draw(st.text(max_size=5)) + "\x00" + draw(st.text(max_size=5)),
        }[how]
    elif how == "extra-field" and isinstance(body, dict):
        body[draw(st.text(min_size=1, max_size=12))] = draw(json_values())
    elif how == "any-json":
        body = draw(json_values())
    elif how == "not-json":
        return draw(st.binary(max_size=40)) + b"\xff{", how
    elif how == "empty":
        return b"", how
    return json.dumps(body).encode(), how


GARBAGE_IDS = st.sampled_from(
    ["x", "1", "null", "%00", "..", "a" * 300, "ä", "00000000"]
) | st.text(alphabet=string.printable, min_size=1, max_size=20)


SORT_NAMES = ["name", "label", "lastName", "createdAt", "marketRent", "title", "priority"]
# Cursors shaped like the real ones (base64url JSON [sort, value, id]) with forged contents.
FORGED_CURSORS = st.tuples(
    st.sampled_from(SORT_NAMES),
    json_values() | st.sampled_from([2**64, -(2**70), "a\x00b", "9999-12-31T23:59:59-14:00"]),
    st.uuids().map(str) | json_values(),
).map(lambda t: base64.urlsafe_b64encode(json.dumps(list(t)).encode()).decode().rstrip("="))


def _path(draw: st.DrawFn, template: str, real_ids: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(0)[1:-1]
        # Mostly the id of a row that exists (so valid bodies reach the services).
        real = (
            st.just(real_ids[name])
            if name in real_ids
            else st.sampled_from(list(real_ids.values()))
        )
        kind = draw(st.sampled_from(["real"] * 6 + ["uuid", "garbage"]))
        value = draw({"real": real, "uuid": st.uuids().map(str), "garbage": GARBAGE_IDS}[kind])
        return quote(value, safe="")

    return re.sub(r"\{[^}]+\}", one, template)


def _query(
    draw: st.DrawFn, params: list[dict[str, Any]], strategies: SchemaStrategies
) -> dict[str, str]:
    query: dict[str, str] = {}
    for param in params:
        if param.get("in") != "query" or not draw(st.booleans()):
            continue
        value = draw(
            strategies.for_schema(param.get("schema", {})).map(
                lambda v: v if isinstance(v, str) else json.dumps(v)
            )
            | st.text(max_size=30)
            | st.sampled_from(["0", "-1", "10000", "1e9", "", "true", "\x00", "%", "x" * 2000])
            | (FORGED_CURSORS if param["name"] == "cursor" else st.nothing())
        )
        query[param["name"]] = value
    if draw(st.booleans()):
        query[draw(st.text(min_size=1, max_size=10))] = draw(st.text(max_size=10))
    return query


def _headers(draw: st.DrawFn) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name in ("If-Match", "If-None-Match", "Idempotency-Key", "X-Request-Id"):
        if draw(st.integers(0, 3)) == 0:
            headers[name] = draw(
                st.sampled_from(['"1"', "*", 'W/"2"', "", "x" * 300, '"999"'])
                | st.text(alphabet=string.printable.strip(), max_size=20)
            )
    return headers


def _operations(
    doc: dict[str, Any], only: str | None = None
) -> list[tuple[str, str, dict[str, Any]]]:
    # HAVEN_FUZZ_ONLY=<regex> narrows the fuzz to matching paths, to replay one finding.
    pattern = re.compile(os.environ.get("HAVEN_FUZZ_ONLY", "") if only is None else only)
    ops = []
    for path, item in sorted(doc["paths"].items()):
        if not pattern.search(path):
            continue
        for method, op in sorted(item.items()):
            if method in ("get", "post", "put", "patch", "delete") and (method, path) not in SKIP:
                ops.append((method, path, op))
    # Deletes last: until then the real ids stay alive, so valid bodies reach the services.
    return sorted(ops, key=lambda o: (o[0] == "delete", o[1], o[0]))


def _check(response: Any, method: str, path: str) -> None:
    assert response.status_code < 500, (
        f"{method.upper()} {path}: {response.status_code} {response.text}"
    )
    if 400 <= response.status_code < 500:
        assert response.headers["content-type"].startswith("application/problem+json"), (
            method,
            path,
            response.status_code,
            response.headers.get("content-type"),
        )
        body = response.json()
        assert body["status"] == response.status_code
        assert body["type"].startswith("https://")
        assert "Traceback" not in response.text


def test_openapi_document_lists_every_portfolio_route(fuzz_world: dict[str, Any]) -> None:
    ops = {(m, p) for m, p, _ in _operations(fuzz_world["doc"], only="")}
    for method, path in [
        ("get", "/api/v1/properties"),
        ("post", "/api/v1/properties"),
        ("get", "/api/v1/properties/{property_id}"),
        ("patch", "/api/v1/properties/{property_id}"),
        ("delete", "/api/v1/properties/{property_id}"),
        ("get", "/api/v1/properties/{property_id}/units"),
        ("post", "/api/v1/properties/{property_id}/units"),
        ("get", "/api/v1/units"),
        ("get", "/api/v1/units/{unit_id}"),
        ("patch", "/api/v1/units/{unit_id}"),
        ("delete", "/api/v1/units/{unit_id}"),
        ("get", "/api/v1/tenants"),
        ("post", "/api/v1/tenants"),
        ("get", "/api/v1/tenants/{tenant_id}"),
        ("patch", "/api/v1/tenants/{tenant_id}"),
        ("delete", "/api/v1/tenants/{tenant_id}"),
        ("get", "/api/v1/organization"),
        ("patch", "/api/v1/organization"),
        ("get", "/api/v1/members"),
        ("post", "/api/v1/members"),
        ("patch", "/api/v1/members/{member_id}"),
        ("delete", "/api/v1/members/{member_id}"),
        ("post", "/api/v1/auth/register"),
        ("post", "/api/v1/auth/login"),
        ("get", "/api/v1/auth/me"),
    ]:
        assert (method, path) in ops, (method, path)
    for method, path, op in _operations(fuzz_world["doc"], only=""):
        validated = [p for p in op.get("parameters", []) if p["in"] in ("path", "query")]
        if path.startswith("/api/v1/") and (op.get("requestBody") or validated):
            assert "422" in op["responses"], (method, path)
            problem = op["responses"]["422"]["content"]
            assert "application/problem+json" in problem, (method, path)


def _fuzz_operation(
    world: dict[str, Any], strategies: SchemaStrategies, method: str, template: str, op: Schema
) -> int:
    """Run the operation's example budget; returns how many requests were sent."""
    client, owner, real_ids = world["client"], world["owner"], world["ids"]
    content = op.get("requestBody", {}).get("content", {})
    body_schema = content.get("application/json", {}).get("schema")
    valid_body = strategies.for_schema(body_schema) if body_schema else st.none()
    params = op.get("parameters", [])
    content_types = st.sampled_from(
        ["application/json"] * 6 + ["text/plain", "application/x-www-form-urlencoded"]
    )
    sent = 0

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=(Phase.explicit, Phase.generate),  # no shrinking: a 5xx is reported as found
    )
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        nonlocal sent
        path = _path(data.draw, template, real_ids)
        query = _query(data.draw, params, strategies)
        headers = {**owner.headers, **_headers(data.draw)}
        kwargs: dict[str, Any] = {"params": query, "headers": headers}
        if body_schema is not None or data.draw(st.integers(0, 4)) == 0:
            raw, how = data.draw(mutated(valid_body))
            kwargs["content"] = raw
            headers["Content-Type"] = data.draw(content_types)
            note(f"body ({how}): {raw[:300]!r}")
        note(f"{method.upper()} {path} {query} {headers}")
        response = client.request(method.upper(), path, **kwargs)
        client.cookies.clear()
        sent += 1
        STATUSES.setdefault((method, template), []).append(response.status_code)
        _check(response, method, template)

    run()
    return sent


# The budget is EXAMPLES_PER_OPERATION per operation, so the run grows with the document:
# over 100 operations it outgrew the suite's 300 s default on a loaded 2-core machine.
@pytest.mark.timeout(900)
def test_fuzz_every_operation_never_5xx(fuzz_world: dict[str, Any]) -> None:
    STATUSES.clear()
    strategies = SchemaStrategies(fuzz_world["doc"])
    operations = _operations(fuzz_world["doc"])
    assert len(operations) >= (1 if os.environ.get("HAVEN_FUZZ_ONLY") else 25)
    sent = sum(_fuzz_operation(fuzz_world, strategies, m, p, op) for m, p, op in operations)
    assert sent >= len(operations) * EXAMPLES_PER_OPERATION // 2
    if not os.environ.get("HAVEN_FUZZ_ONLY"):
        # The fuzz reached the services, not only the validators: writes went through.
        writes = [
            status
            for (method, path), statuses in STATUSES.items()
            if method in ("post", "patch") and path.startswith(PORTFOLIO_PREFIXES)
            for status in statuses
        ]
        assert sum(200 <= s < 300 for s in writes) >= 10, sorted(writes)
    # The owner's session survived the fuzzing, and so did the app.
    owner = fuzz_world["owner"]
    assert fuzz_world["client"].get("/api/v1/auth/me", headers=owner.headers).status_code == 200


def test_fuzz_anonymous_requests_never_5xx(fuzz_world: dict[str, Any]) -> None:
    """Without credentials every operation answers a problem (401 where sign-in is needed)."""
    client = fuzz_world["client"]
    for method, template, _op in _operations(fuzz_world["doc"]):
        path = template
        for name in re.findall(r"\{([^}]+)\}", template):
            path = path.replace("{" + name + "}", str(uuid.uuid4()))
        for headers in ({}, {"Authorization": "Bearer junk"}, {"Cookie": "haven_session=junk"}):
            response = client.request(method.upper(), path, headers=headers, json={})
            client.cookies.clear()
            _check(response, method, template)
            guarded = template.startswith("/api/v1/") and "/auth/" not in template
            if guarded and "load-balancer" not in template:
                assert response.status_code in (401, 403, 404, 422), (
                    method,
                    path,
                    response.text,
                )
