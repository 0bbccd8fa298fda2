"""Bytes that do not decode: a 400 problem on every route, signed in or not; nothing changes.

Targeted cases (invalid UTF-8 inside a string, overlong and surrogate encodings, escaped
lone surrogates, a BOM, raw NUL) against every body endpoint of /openapi.json and the
optional body of the ledger reversal, then a byte-level fuzz: valid bodies with bytes
flipped, inserted, deleted or invalid sequences spliced in. With rate limiting on, so the
edge's body reading (the sign-in email) meets the same bytes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from haven.app import create_app
from haven.config import load_settings
from integration.portfolio.test_fuzz import SchemaStrategies
from support import Account, assert_problem, create_property, create_tenant, create_unit, register
from support_leases import active_lease, charge

EXAMPLES_PER_OPERATION = 20  # per body-taking operation and backend
# Logging out would end the session the fuzz signs its requests with.
SKIP = {("post", "/api/v1/auth/logout")}

# Each is spliced into a JSON string value of an otherwise valid body.
INVALID_IN_STRING = {
    "invalid byte": b"\xff",
    "lone continuation": b"\x80",
    "overlong slash": b"\xc0\xaf",
    "overlong NUL": b"\xc0\x80",
    "UTF-8-encoded surrogate": b"\xed\xa0\x80",
    "above U+10FFFF": b"\xf4\x90\x80\x80",
    "truncated sequence": b"\xe2\x82",
    "escaped lone high surrogate": b"\\ud800",
    "escaped lone low surrogate": b"\\udc00",
    "escaped reversed pair": b"\\udc00\\ud800",
    "raw NUL": b"\x00",
}
SPLICES = [*INVALID_IN_STRING.values(), b"\xef\xbb\xbf", b"\\u0000", b"\xfe\xff", b"\x00\x00"]


@pytest.fixture(scope="module")
def world(database: Any, valkey: Any, secret_key: str) -> Iterator[dict[str, Any]]:
    env = {
        "HAVEN_ENV": "test",
        "DATABASE_URL": database.url,
        "REDIS_URL": valkey.url,
        "SECRET_KEY": secret_key,
        "RATE_LIMIT_ENABLED": "true",  # the edge reads sign-in bodies too
        "RATE_LIMIT_GLOBAL": "10000000",
        "RATE_LIMIT_PER_USER": "10000000",
        "RATE_LIMIT_AUTH": "100000",
        "RATE_LIMIT_AUTH_EMAIL": "100000",
        "RATE_LIMIT_REGISTER": "100000",
        "RATE_LIMIT_PASSWORD": "100000",
        "REDIS_KEY_PREFIX": f"bytes-{database.backend}",
        "LOG_LEVEL": "warning",
        "DB_POOL_MIN": "1",
        "DB_POOL_MAX": "5",
    }
    with TestClient(create_app(load_settings(env, instance_id="bytes"))) as client:
        owner = register(client, organization="Byte Homes")
        prop = create_property(client, owner)
        lease = active_lease(client, owner)
        ids = {
            "property_id": prop["id"],
            "unit_id": create_unit(client, owner, prop["id"])["id"],
            "tenant_id": create_tenant(client, owner)["id"],
            "member_id": owner.user_id,
            "lease_id": lease["id"],
            "entry_id": charge(client, owner, lease["id"], 1000, "2026-01-01")["id"],
        }
        doc = client.get("/openapi.json").json()
        yield {"client": client, "owner": owner, "ids": ids, "doc": doc}


def body_operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    ops = []
    for path, item in sorted(doc["paths"].items()):
        for method, op in sorted(item.items()):
            content = op.get("requestBody", {}).get("content", {}) if isinstance(op, dict) else {}
            if "application/json" in content and (method, path) not in SKIP:
                ops.append((method, path, op))
    return ops


def real_path(template: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{([^}]+)\}", lambda m: ids.get(m.group(1), ids["property_id"]), template)


def splice_into_value(raw: bytes, bad: bytes) -> bytes:
    """`raw` (a JSON object) with `bad` inside its first string value."""
    at = raw.index(b': "') + 3
    return raw[:at] + b"a" + bad + b"b" + raw[at:]


def splice_into_key(raw: bytes, bad: bytes) -> bytes:
    """`raw` (a JSON object) with `bad` inside its first key (decoded before it is looked up)."""
    at = raw.find(b'{"') + 2
    if at == 1:  # no key to put it in: a body of that one key
        return b'{"a' + bad + b'b": 1}'
    return raw[:at] + b"a" + bad + b"b" + raw[at:]


# Real bodies (their string values are plain text fields) for the routes the finding named.
NAMED = {
    ("post", "/api/v1/auth/login"): {"email": "someone@example.com", "password": "a password!"},
    ("post", "/api/v1/auth/register"): {
        "organizationName": "B",
        "name": "B",
        "email": "bytes-check@example.com",
        "password": "long enough pass",
    },
    ("post", "/api/v1/tenants"): {"firstName": "Ada", "lastName": "Byte"},
    ("patch", "/api/v1/tenants/{tenant_id}"): {"firstName": "Ada"},
    ("post", "/api/v1/ledger-entries/{entry_id}/reverse"): {"description": "oops"},
}


def state_of(client: TestClient[Any], owner: Account) -> list[Any]:
    """What a bad request must not change: the organization's rows, as a reader sees them."""
    read = [
        "/api/v1/organization",
        "/api/v1/properties?limit=100",
        "/api/v1/units?limit=100",
        "/api/v1/tenants?limit=100",
        "/api/v1/members?limit=100",
        "/api/v1/leases?limit=100",
        "/api/v1/maintenance-requests?limit=100",
    ]
    out = []
    for path in read:
        response = client.get(path, headers=owner.headers)
        out.append((path, response.status_code, response.json()))
    return out


def send(
    client: TestClient[Any], method: str, path: str, body: bytes, headers: dict[str, str]
) -> Any:
    response = client.request(
        method.upper(), path, content=body, headers={**headers, "content-type": "application/json"}
    )
    client.cookies.clear()
    return response


def test_bytes_that_do_not_decode_are_a_400_everywhere_and_change_nothing(
    world: dict[str, Any],
) -> None:
    client, owner, ids = world["client"], world["owner"], world["ids"]
    ops = body_operations(world["doc"])
    names = {(m, p) for m, p, _ in ops}
    for expected in [
        ("post", "/api/v1/auth/login"),
        ("post", "/api/v1/auth/register"),
        ("post", "/api/v1/tenants"),
        ("patch", "/api/v1/tenants/{tenant_id}"),
    ]:
        assert expected in names, expected
    # Every body route with bad bytes in a key (decoded first, whatever the schema); the routes
    # the finding named with them inside a real text field too. The reversal reads its
    # optional body itself (it is not in the document as a body).
    targets = [(m, p, json.dumps(NAMED.get((m, p), {"x": 1})).encode()) for m, p, _ in ops]
    targets += [(m, p, json.dumps(b).encode()) for (m, p), b in NAMED.items() if "reverse" in p]
    before = state_of(client, owner)
    for method, template, valid in targets:
        path = real_path(template, ids)
        cases = {
            f"{n} in a key": splice_into_key(valid, bad) for n, bad in INVALID_IN_STRING.items()
        }
        if (method, template) in NAMED:
            cases.update(
                {
                    f"{n} in a value": splice_into_value(valid, b)
                    for n, b in INVALID_IN_STRING.items()
                }
            )
            cases["UTF-8 BOM"] = b"\xef\xbb\xbf" + valid
            cases["UTF-16 body"] = valid.decode().encode("utf-16")
            cases["NUL after the body"] = valid + b"\x00"
        for name, raw in cases.items():
            for who, headers in (("signed in", owner.headers), ("anonymous", {})):
                response = send(client, method, path, raw, headers)
                where = f"{method.upper()} {template} {who}: {name}"
                if who == "anonymous" and response.status_code == 401:
                    continue  # sign-in comes first on a guarded route: also a clean refusal
                assert response.status_code == 400, (
                    f"{where}: {response.status_code} {response.text}"
                )
                assert_problem(response, 400, "malformed-request")
    assert state_of(client, owner) == before
    # An escaped NUL is valid JSON: the string it makes is refused by the schema (422).
    response = send(
        client, "post", "/api/v1/tenants", b'{"firstName": "a\\u0000", "lastName": "b"}',
        owner.headers,
    )  # fmt: skip
    assert_problem(response, 422, "validation")
    # Bad bytes refused at sign-up created no account; at sign-in they signed nobody in.
    email = "bytes-check@example.com"
    raw = json.dumps(
        {"organizationName": "B", "name": "B", "email": email, "password": "long enough pass"}
    ).encode()
    assert_problem(
        send(client, "post", "/api/v1/auth/register", raw.replace(b'"B"', b'"\xff"', 1), {}), 400
    )
    login = json.dumps({"email": email, "password": "long enough pass"}).encode()
    assert_problem(send(client, "post", "/api/v1/auth/login", login, {}), 401)
    # The owner's session survived, and the app still answers.
    assert client.get("/api/v1/auth/me", headers=owner.headers).status_code == 200


@st.composite
def byte_mutation(draw: st.DrawFn, valid: bytes) -> tuple[bytes, list[str]]:
    """`valid` with one to three byte-level defects."""
    raw = bytearray(valid)
    done: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "splice", "splice-key"]))
        at = draw(st.integers(0, max(len(raw) - 1, 0)))
        if kind == "flip" and raw:
            raw[at] ^= draw(st.integers(1, 255))
        elif kind == "insert":
            raw[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "delete" and raw:
            del raw[at : at + draw(st.integers(1, 3))]
        elif kind == "splice":
            raw[at:at] = draw(st.sampled_from(SPLICES))
        else:
            raw = bytearray(splice_into_key(bytes(raw), draw(st.sampled_from(SPLICES))))
        done.append(kind)
    return bytes(raw), done


def fuzz_operation(
    world: dict[str, Any], method: str, path: str, valid: st.SearchStrategy[bytes]
) -> dict[int, int]:
    """Send EXAMPLES_PER_OPERATION byte-mutated bodies; returns the count of each status."""
    client, owner = world["client"], world["owner"]
    statuses: dict[int, int] = {}

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
        raw, how = data.draw(valid.flatmap(byte_mutation))
        headers = owner.headers if data.draw(st.booleans()) else {}
        note(f"{method.upper()} {path} {how} signed-in={bool(headers)}: {raw[:300]!r}")
        response = send(client, method, path, raw, headers)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500, f"{method.upper()} {path}: {response.text}"
        if response.status_code >= 400:
            assert_problem(response, response.status_code)

    run()
    return statuses


def test_byte_level_fuzz_of_every_body_endpoint_never_5xx(world: dict[str, Any]) -> None:
    strategies = SchemaStrategies(world["doc"])
    ops = body_operations(world["doc"])
    assert len(ops) >= 15
    refused = 0
    for method, template, op in ops:
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        valid = strategies.for_schema(schema).map(lambda b: json.dumps(b).encode())
        statuses = fuzz_operation(world, method, real_path(template, world["ids"]), valid)
        refused += statuses.get(400, 0)
    assert refused >= len(ops)  # the mutations did reach the decoders
    owner = world["owner"]
    assert world["client"].get("/api/v1/auth/me", headers=owner.headers).status_code == 200
