"""Access that ends when it should: password changes, the absolute session lifetime, tokens.

Two app instances share Valkey and the database; what one does, the other enforces.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import jwt
import redis
from litestar.testing import TestClient

from haven.store.embedded import EmbeddedValkey
from support import assert_problem, register
from support_maintenance import audit_events

NEW_PASSWORD = "a much better passphrase"


def _login(client: TestClient[Any], email: str, password: str) -> Any:
    response = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    client.cookies.clear()
    return response


def _bearer(login: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {login.json()['accessToken']}"}


def _me(client: TestClient[Any], headers: dict[str, str]) -> int:
    return int(client.get("/api/v1/auth/me", headers=headers).status_code)


def _valkey(valkey: EmbeddedValkey) -> redis.Redis:
    return redis.Redis.from_url(valkey.url)


def test_password_change_ends_every_other_session_and_keeps_this_one(
    client: TestClient[Any], client_b: TestClient[Any], valkey: EmbeddedValkey
) -> None:
    owner = register(client)
    phone = _bearer(_login(client_b, owner.email, owner.password))
    laptop = _login(client, owner.email, owner.password)
    laptop_cookie = {"Cookie": f"haven_session={laptop.cookies['haven_session']}"}
    assert _me(client_b, phone) == 200
    assert _me(client, laptop_cookie) == 200
    for instance in (client, client_b):  # cached, so later answered at the edge
        assert instance.get("/api/v1/dashboard", headers=laptop_cookie).status_code == 200
    # The per-user session index is housekeeping, not security: without it the change
    # still ends the other sessions.
    r = _valkey(valkey)
    r.delete(f"haven:user-sessions:{owner.user_id}")
    r.close()

    changed = client_b.post(
        "/api/v1/auth/password",
        headers=owner.headers,
        json={"currentPassword": owner.password, "newPassword": NEW_PASSWORD},
    )
    assert changed.status_code == 204, changed.text

    for instance in (client, client_b):
        assert _me(instance, owner.headers) == 200  # the session that changed it stays
        assert_problem(instance.get("/api/v1/auth/me", headers=phone), 401)
        assert_problem(instance.get("/api/v1/auth/me", headers=laptop_cookie), 401)
        assert_problem(instance.get("/api/v1/dashboard", headers=laptop_cookie), 401)
    # ... and it can still write.
    tenant = {"firstName": "Ada", "lastName": "Lovelace"}
    assert client.post("/api/v1/tenants", headers=owner.headers, json=tenant).status_code == 201
    assert_problem(_login(client, owner.email, owner.password), 401, "invalid-credentials")
    assert _login(client, owner.email, NEW_PASSWORD).status_code == 200

    # Recorded, named, and the hash is nowhere in the trail.
    events = audit_events(client, owner, entityType="user")
    changes = [e for e in events if e["action"] == "user.password_changed"]
    assert len(changes) == 1, events
    assert changes[0]["actorId"] == owner.user_id
    assert changes[0]["entityId"] == owner.user_id
    assert not any("hash" in c.lower() or "$argon2" in c for e in events for c in e["changes"])


def test_password_change_by_cookie_needs_the_csrf_header(
    client: TestClient[Any], client_b: TestClient[Any]
) -> None:
    owner = register(client)
    body = {"currentPassword": owner.password, "newPassword": NEW_PASSWORD}
    refused = client.post("/api/v1/auth/password", headers=owner.cookie_headers, json=body)
    assert_problem(refused, 403, "csrf")
    assert _login(client_b, owner.email, owner.password).status_code == 200
    accepted = client.post(
        "/api/v1/auth/password",
        headers={**owner.cookie_headers, "X-CSRF-Token": owner.csrf},
        json=body,
    )
    assert accepted.status_code == 204, accepted.text
    assert _me(client_b, owner.cookie_headers) == 200


def test_wrong_current_or_bad_new_password_is_refused_and_changes_nothing(
    client: TestClient[Any], client_b: TestClient[Any]
) -> None:
    owner = register(client)
    other = _bearer(_login(client_b, owner.email, owner.password))
    path = "/api/v1/auth/password"
    wrong = client.post(
        path,
        headers=owner.headers,
        json={"currentPassword": "not my password", "newPassword": NEW_PASSWORD},
    )
    assert_problem(wrong, 403, "wrong-password")
    for new in ("short", "x" * 201):
        weak = client.post(
            path,
            headers=owner.headers,
            json={"currentPassword": owner.password, "newPassword": new},
        )
        assert_problem(weak, 422)
    for body in ({"newPassword": NEW_PASSWORD}, {"currentPassword": owner.password}, {}, []):
        assert_problem(client.post(path, headers=owner.headers, json=body), 422)
    assert_problem(
        client.post(path, json={"currentPassword": "a", "newPassword": NEW_PASSWORD}), 401
    )

    assert _me(client_b, other) == 200
    assert _me(client, owner.headers) == 200
    assert _login(client, owner.email, owner.password).status_code == 200
    assert_problem(_login(client, owner.email, NEW_PASSWORD), 401)
    events = audit_events(client, owner, entityType="user")
    assert not [e for e in events if e["action"] == "user.password_changed"]


def test_a_session_ends_at_its_max_age_even_while_in_use(
    app_factory: Callable[..., TestClient[Any]], valkey: EmbeddedValkey
) -> None:
    a = app_factory(instance_id="api-1", session_ttl=2, session_max_age=5)
    b = app_factory(instance_id="api-2", session_ttl=2, session_max_age=5)
    owner = register(a)
    sid = owner.session_cookie
    signed_in = time.monotonic()
    statuses: list[tuple[float, int]] = []
    # Used every 0.3 s, far within the 2 s sliding TTL, on alternating instances; bounded.
    for i in range(100):
        instance = a if i % 2 else b
        headers = owner.cookie_headers if i % 3 else owner.headers
        status = _me(instance, headers)
        statuses.append((time.monotonic() - signed_in, status))
        if status == 401:
            break
        time.sleep(0.3)
    alive_past_ttl = [t for t, s in statuses if s == 200 and t > 2.5]
    assert alive_past_ttl, statuses  # the slide kept it alive past SESSION_TTL ...
    assert statuses[-1][1] == 401, statuses  # ... and the max age ended it anyway
    assert all(s == 200 for _, s in statuses[:-1]), statuses
    for instance in (a, b):
        assert_problem(instance.get("/api/v1/auth/me", headers=owner.headers), 401)
        assert_problem(instance.get("/api/v1/dashboard", headers=owner.cookie_headers), 401)
    r = _valkey(valkey)
    assert r.exists(f"haven:session:{sid}") == 0  # refused and deleted
    r.close()
    assert _login(a, owner.email, owner.password).status_code == 200


def test_the_session_ttl_never_slides_past_the_max_age(
    app_factory: Callable[..., TestClient[Any]], valkey: EmbeddedValkey
) -> None:
    a = app_factory(session_ttl=3600, session_max_age=3600)
    owner = register(a)
    r = _valkey(valkey)
    key = f"haven:session:{owner.session_cookie}"
    # As if signed in 3590 s ago: 10 s of its lifetime are left, whatever the TTL says.
    created = time.time() - 3590
    r.eval(
        "local d = cjson.decode(redis.call('GET', KEYS[1])) d['created'] = tonumber(ARGV[1])"
        " redis.call('SET', KEYS[1], cjson.encode(d), 'KEEPTTL')",
        1,
        key,
        created,
    )
    assert _me(a, owner.headers) == 200
    ttl = r.ttl(key)
    r.close()
    assert 0 < ttl <= 10, ttl


def test_bearer_token_and_cookies_never_outlive_the_max_age(
    app_factory: Callable[..., TestClient[Any]], secret_key: str
) -> None:
    # The cap holds even where the sliding TTL is configured longer than the max age.
    a = app_factory(session_ttl=7200, session_max_age=3600)
    response = a.post(
        "/api/v1/auth/register",
        json={
            "organizationName": "Cap Co",
            "name": "Cap",
            "email": f"cap-{time.time_ns()}@example.com",
            "password": "long enough password",
        },
    )
    assert response.status_code == 201, response.text
    a.cookies.clear()
    body = response.json()
    claims = jwt.decode(body["accessToken"], secret_key, algorithms=["HS256"], issuer="haven")
    headers = {"Authorization": f"Bearer {body['accessToken']}"}
    sessions = a.get("/api/v1/auth/sessions", headers=headers).json()["items"]
    created = datetime.fromisoformat(sessions[0]["createdAt"].replace("Z", "+00:00"))
    assert claims["exp"] <= created.timestamp() + 3600
    assert (
        datetime.fromisoformat(body["expiresAt"].replace("Z", "+00:00")).timestamp()
        == claims["exp"]
    )
    for cookie in response.headers.get_list("set-cookie"):
        max_age = next(
            int(p.split("=")[1])
            for p in cookie.split(";")
            if p.strip().lower().startswith("max-age")
        )
        assert max_age <= 3600, cookie
