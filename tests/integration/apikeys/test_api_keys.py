"""API keys (issue 18): created and shown once, stored as a hash, used on any instance,
scoped by role, revoked everywhere at once, limited per key, named in the audit trail,
never accepted from a cookie nor logged; and how a person's Bearer token is renewed.

Two app instances (`client`, `client_b`) share Valkey and the database.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import signal
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from conftest import Database
from haven.store.embedded import EmbeddedValkey
from support import PROPERTY, Account, add_member, assert_problem, register
from support_cluster import clean_env, free_ports, haven_cmd, spawn, wait_for
from support_maintenance import audit_events

KEY_FORMAT = re.compile(r"^hvn_test_[0-9A-Za-z]{46}$")


def _create(client: TestClient[Any], account: Account, role: str = "viewer", **extra: Any) -> Any:
    return client.post(
        "/api/v1/api-keys",
        headers=account.headers,
        json={"name": f"{role} integration", "role": role, **extra},
    )


def _key(
    client: TestClient[Any], account: Account, role: str = "viewer", **extra: Any
) -> dict[str, Any]:
    response = _create(client, account, role, **extra)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _db_rows(database: Database, sql: str, **params: Any) -> list[Any]:
    async def run() -> list[Any]:
        engine = create_async_engine(database.url)
        try:
            async with engine.connect() as conn:
                return list((await conn.execute(text(sql), params)).all())
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _key_count(database: Database, organization_id: str) -> int:
    rows = _db_rows(
        database,
        "SELECT count(*) FROM api_keys WHERE organization_id = :org",
        org=uuid.UUID(organization_id).hex if database.backend == "sqlite" else organization_id,
    )
    return int(rows[0][0])


def test_a_key_is_shown_once_stored_as_a_hash_used_anywhere_and_revoked_everywhere(
    client: TestClient[Any], client_b: TestClient[Any], database: Database
) -> None:
    owner = register(client)
    created = _create(client, owner, "manager", expiresAt="2099-01-01T00:00:00Z")
    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "private, no-store"
    body = created.json()
    key = body["key"]
    assert KEY_FORMAT.match(key), key
    assert body["prefix"] == key[:17]
    assert body["role"] == "manager"
    assert body["createdBy"] == owner.user_id
    assert body["lastUsedAt"] is None
    assert body["expiresAt"].startswith("2099-01-01T00:00:00")

    # Only sha256(key) and the display prefix are stored; no column holds the key.
    stored = _db_rows(database, "SELECT * FROM api_keys")
    mine = [r for r in stored if r._mapping["key_hash"] == hashlib.sha256(key.encode()).hexdigest()]
    assert len(mine) == 1
    assert mine[0]._mapping["prefix"] == key[:17]
    assert all(key not in str(value) for row in stored for value in row)

    # Never returned again: not in the list, not in the key's own page.
    listed = client.get("/api/v1/api-keys", headers=owner.headers)
    shown = client_b.get(f"/api/v1/api-keys/{body['id']}", headers=owner.headers)
    assert listed.status_code == 200
    assert shown.status_code == 200
    assert [k["id"] for k in listed.json()["items"]] == [body["id"]]
    assert key not in listed.text
    assert key not in shown.text
    assert "key" not in listed.json()["items"][0]
    assert "key" not in shown.json()
    assert shown.json()["prefix"] == key[:17]

    # Used on both instances, as a manager of the owner's organization.
    made = client.post("/api/v1/properties", headers=_bearer(key), json=PROPERTY)
    assert made.status_code == 201, made.text
    assert (
        client_b.get(f"/api/v1/properties/{made.json()['id']}", headers=_bearer(key)).status_code
        == 200
    )

    # lastUsedAt shows the use (written off the request path, at most once a minute).
    for _ in range(50):
        used = client.get(f"/api/v1/api-keys/{body['id']}", headers=owner.headers).json()
        if used["lastUsedAt"] is not None:
            break
        time.sleep(0.1)
    assert used["lastUsedAt"] is not None

    revoked = client_b.delete(f"/api/v1/api-keys/{body['id']}", headers=owner.headers)
    assert revoked.status_code == 204, revoked.text
    # By the time the revocation has answered, every instance refuses the key.
    for instance in (client, client_b):
        assert_problem(instance.get("/api/v1/properties", headers=_bearer(key)), 401)
        assert_problem(
            instance.post("/api/v1/properties", headers=_bearer(key), json=PROPERTY), 401
        )
    again = client.get(f"/api/v1/api-keys/{body['id']}", headers=owner.headers).json()
    assert again["revokedAt"] is not None
    # Revoking twice changes nothing.
    assert client.delete(f"/api/v1/api-keys/{body['id']}", headers=owner.headers).status_code == 204


def test_a_key_acts_within_its_role_and_its_creators(client: TestClient[Any]) -> None:
    owner = register(client)
    viewer_key = _key(client, owner, "viewer")["key"]
    assert client.get("/api/v1/properties", headers=_bearer(viewer_key)).status_code == 200
    assert client.get("/api/v1/dashboard", headers=_bearer(viewer_key)).status_code == 200
    assert_problem(
        client.post("/api/v1/properties", headers=_bearer(viewer_key), json=PROPERTY),
        403,
        "forbidden",
    )

    manager = add_member(client, owner, "manager")
    assert_problem(_create(client, manager, "owner"), 403, "forbidden")  # above its creator
    manager_key = _key(client, manager, "manager")
    staff = add_member(client, owner, "staff")
    assert_problem(_create(client, staff, "staff"), 403, "forbidden")  # staff make no keys
    # Managers revoke only their own keys.
    other = _key(client, owner, "viewer")
    assert_problem(client.delete(f"/api/v1/api-keys/{other['id']}", headers=manager.headers), 403)

    # Keys never manage credentials: not keys, members, sessions or tokens, even as owner.
    owner_key = _bearer(_key(client, owner, "owner")["key"])
    anonymous = client.post("/api/v1/api-keys", json={"name": "x", "role": "viewer"})
    assert_problem(anonymous, 401)
    for method, path in (
        ("POST", "/api/v1/api-keys"),
        ("GET", "/api/v1/members"),
        ("GET", "/api/v1/auth/sessions"),
        ("POST", "/api/v1/auth/token"),
    ):
        response = client.request(
            method,
            path,
            headers=owner_key,
            json={"name": "x", "role": "viewer"} if method == "POST" else None,
        )
        assert_problem(response, 403, "forbidden")

    # Demoting the creator caps their keys; removing them ends their keys.
    key = _bearer(manager_key["key"])
    assert client.post("/api/v1/properties", headers=key, json=PROPERTY).status_code == 201
    demoted = client.patch(
        f"/api/v1/members/{manager.user_id}", headers=owner.headers, json={"role": "viewer"}
    )
    assert demoted.status_code == 200, demoted.text
    assert_problem(client.post("/api/v1/properties", headers=key, json=PROPERTY), 403)
    assert client.get("/api/v1/properties", headers=key).status_code == 200
    removed = client.delete(f"/api/v1/members/{manager.user_id}", headers=owner.headers)
    assert removed.status_code == 204, removed.text
    assert_problem(client.get("/api/v1/properties", headers=key), 401)


def test_expired_malformed_and_cookie_keys_are_refused(client: TestClient[Any]) -> None:
    owner = register(client)
    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    key = _key(client, owner, "viewer", expiresAt=soon)["key"]
    assert client.get("/api/v1/properties", headers=_bearer(key)).status_code == 200
    # Never from a cookie, even while valid.
    cookie = {"Cookie": f"haven_session={key}"}
    assert_problem(client.get("/api/v1/properties", headers=cookie), 401, "not-signed-in")
    # A mistyped key (checksum wrong) and a made-up one are refused alike.
    broken = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert_problem(client.get("/api/v1/properties", headers=_bearer(broken)), 401)
    assert_problem(client.get("/api/v1/properties", headers=_bearer("hvn_test_nope")), 401)
    status = 200
    for _ in range(60):  # past expiresAt the key is refused
        status = client.get("/api/v1/properties", headers=_bearer(key)).status_code
        if status != 200:
            break
        time.sleep(0.1)
    assert status == 401


def test_each_key_has_its_own_rate_limit(app_factory: Callable[..., TestClient[Any]]) -> None:
    client = app_factory(rate_limit_enabled=True, rate_limit_per_key=3)
    owner = register(client)
    first, second = (_bearer(_key(client, owner, "manager")["key"]) for _ in range(2))
    # Each request counts once, a write with an Idempotency-Key included.
    retried = {**first, "Idempotency-Key": "rate-1"}
    assert client.post("/api/v1/properties", headers=retried, json=PROPERTY).status_code == 201
    for _ in range(2):
        assert client.get("/api/v1/properties", headers=first).status_code == 200
    refused = client.get("/api/v1/properties", headers=first)
    assert_problem(refused, 429, "rate-limited")
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["ratelimit-limit"] == "3"
    assert client.get("/api/v1/properties", headers=second).status_code == 200


def test_the_audit_trail_names_the_key_behind_a_write(client: TestClient[Any]) -> None:
    owner = register(client)
    key = _key(client, owner, "manager")
    retried = {**_bearer(key["key"]), "Idempotency-Key": "import-42"}
    made = client.post("/api/v1/properties", headers=retried, json=PROPERTY)
    assert made.status_code == 201, made.text
    # A retry through the same key is the same write (Idempotency-Key is scoped to the key).
    again = client.post("/api/v1/properties", headers=retried, json=PROPERTY)
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json()["id"] == made.json()["id"]
    # The creator's own session using the same Idempotency-Key is another caller.
    own = client.post(
        "/api/v1/properties",
        headers={**owner.headers, "Idempotency-Key": "import-42"},
        json=PROPERTY,
    )
    assert own.status_code == 201
    assert own.json()["id"] != made.json()["id"]
    events = audit_events(client, owner, entityId=made.json()["id"])
    assert [(e["action"], e["apiKeyId"], e["actorId"]) for e in events] == [
        ("property.created", key["id"], owner.user_id)
    ]
    created = audit_events(client, owner, entityId=key["id"])
    assert [e["action"] for e in created] == ["api_key.created"]
    assert created[0]["apiKeyId"] is None  # a person made it


BAD_BODIES: list[Any] = [
    {"name": "x", "role": "admin"},
    {"name": 5, "role": "viewer"},
    {"name": "x", "role": ["viewer"]},
    {"name": "x", "role": "viewer", "expiresAt": "tomorrow"},
    {"name": "x", "role": "viewer", "expiresAt": 1893456000},
    {"name": "x", "role": "viewer", "expiresAt": "2099-01-01T00:00:00"},  # no time zone
    {"name": "x", "role": "viewer", "expiresAt": "2001-01-01T00:00:00Z"},  # past
    {"name": "", "role": "viewer"},
    {"name": "   ", "role": "viewer"},
    {"name": "x" * 101, "role": "viewer"},
    {"name": "x", "role": "viewer", "scopes": ["all"]},
    {"role": "viewer"},
    [],
]


def test_bad_input_is_refused_and_changes_nothing(
    client: TestClient[Any], owner: Account, database: Database
) -> None:
    for body in BAD_BODIES:
        response = client.post("/api/v1/api-keys", headers=owner.headers, json=body)
        assert response.status_code == 422, (body, response.text)
        assert_problem(response, 422, "validation")
    malformed = client.post(
        "/api/v1/api-keys",
        headers={**owner.headers, "Content-Type": "application/json"},
        content=b'{"name": "x", ',
    )
    assert_problem(malformed, 400)
    assert _key_count(database, owner.organization_id) == 0
    assert client.get("/api/v1/api-keys", headers=owner.headers).json()["items"] == []


def test_keys_never_reach_the_logs(
    database: Database, valkey: EmbeddedValkey, secret_key: str, tmp_path: Path
) -> None:
    """A real instance logging at debug level: the key shows up nowhere in its output."""
    if database.backend != "sqlite":
        pytest.skip("logging does not depend on the database: checked once, on SQLite")
    port = free_ports(1)[0]
    env = clean_env(
        HAVEN_ENV="test",
        DATABASE_URL=database.url,
        REDIS_URL=valkey.url,
        SECRET_KEY=secret_key,
        LOG_LEVEL="debug",
        RATE_LIMIT_ENABLED="false",
        DRAIN_DELAY="0",
        SHUTDOWN_TIMEOUT="5000",
        DB_POOL_MIN="1",
        DB_POOL_MAX="2",
        WEBHOOK_WORKER="false",
    )
    args = haven_cmd("serve", "--host", "127.0.0.1", "--port", str(port), "--instance-id", "logs-1")
    with spawn(args, env, tmp_path / "instance.log") as child:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            wait_for(lambda: http.get("/ready").status_code == 200, 30, "the instance to be ready")
            owner = register(http)  # type: ignore[arg-type]
            body = _key(http, owner, "viewer")  # type: ignore[arg-type]
            key = body["key"]
            assert http.get("/api/v1/properties", headers=_bearer(key)).status_code == 200
            denied = http.post("/api/v1/properties", headers=_bearer(key), json=PROPERTY)
            assert denied.status_code == 403
            cookie = http.get("/api/v1/properties", headers={"Cookie": f"haven_session={key}"})
            assert cookie.status_code == 401
            http.get(f"/api/v1/properties?q={key[:30]}", headers=_bearer(key[:-2]))
            assert (
                http.delete(f"/api/v1/api-keys/{body['id']}", headers=owner.headers).status_code
                == 204
            )
            assert http.get("/api/v1/properties", headers=_bearer(key)).status_code == 401
        child.signal(signal.SIGTERM)
        child.wait(15)
        output = child.output()
    assert "/api/v1/properties" in output  # the instance did log these requests
    assert key not in output
    assert key[17:] not in output  # nor the secret part on its own


def test_people_renew_their_bearer_token_within_the_session(client: TestClient[Any]) -> None:
    owner = register(client)
    renewed = client.post("/api/v1/auth/token", headers=owner.headers)
    assert renewed.status_code == 200, renewed.text
    body = renewed.json()
    assert body["tokenType"] == "Bearer"
    # Never past the session's absolute end (SESSION_MAX_AGE after sign-in).
    assert body["expiresAt"] <= owner.body["expiresAt"]
    fresh = {"Authorization": f"Bearer {body['accessToken']}"}
    assert client.get("/api/v1/auth/me", headers=fresh).status_code == 200
    # A browser (cookie) gets one too, with its CSRF token like any cookie write.
    assert_problem(client.post("/api/v1/auth/token", headers=owner.cookie_headers), 403, "csrf")
    with_csrf = {**owner.cookie_headers, "X-CSRF-Token": owner.csrf}
    assert client.post("/api/v1/auth/token", headers=with_csrf).status_code == 200
    # The renewed token is the same session: signing out ends it too.
    assert client.post("/api/v1/auth/logout", headers=owner.headers).status_code == 204
    assert_problem(client.get("/api/v1/auth/me", headers=fresh), 401)
    assert_problem(client.post("/api/v1/auth/token", headers=fresh), 401)


def test_the_routes_are_documented_with_examples(client: TestClient[Any]) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    create = paths["/api/v1/api-keys"]["post"]
    assert "accounting" in create["requestBody"]["content"]["application/json"]["examples"]
    example = create["responses"]["201"]["content"]["application/json"]["examples"]["created"]
    assert example["value"]["key"].startswith("hvn_live_")
    assert {"get", "delete"} <= set(paths["/api/v1/api-keys/{key_id}"])
    assert "post" in paths["/api/v1/auth/token"]


def test_another_organizations_key_is_404_and_stays_usable(
    client: TestClient[Any], owner: Account
) -> None:
    """Another organization's key id reads and revokes exactly like an unknown one."""
    key = _key(client, owner, "viewer")
    stranger = register(client)
    listed = client.get("/api/v1/api-keys", headers=stranger.headers)
    assert listed.status_code == 200, listed.text
    assert key["id"] not in [k["id"] for k in listed.json()["items"]]
    assert_problem(client.get(f"/api/v1/api-keys/{key['id']}", headers=stranger.headers), 404)
    assert_problem(client.delete(f"/api/v1/api-keys/{key['id']}", headers=stranger.headers), 404)
    # The stranger's failed revocation changed nothing: the key still reads its own data.
    assert client.get("/api/v1/dashboard", headers=_bearer(key["key"])).status_code == 200
