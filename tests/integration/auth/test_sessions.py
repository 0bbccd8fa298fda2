"""Sessions shared through Valkey: two app instances, one session."""

from __future__ import annotations

from typing import Any

from litestar.testing import TestClient

from support import assert_problem, register


def test_session_created_on_one_instance_works_on_the_other_by_cookie_and_bearer(
    client: TestClient[Any], client_b: TestClient[Any]
) -> None:
    account = register(client)

    by_bearer = client_b.get("/api/v1/auth/me", headers=account.headers)
    assert by_bearer.status_code == 200
    assert by_bearer.json()["user"]["email"] == account.email
    assert by_bearer.headers["x-instance-id"] == "api-2"

    by_cookie = client_b.get("/api/v1/auth/me", headers=account.cookie_headers)
    assert by_cookie.status_code == 200
    assert by_cookie.json()["role"] == "owner"


def test_logout_on_one_instance_revokes_the_session_on_the_other_at_once(
    client: TestClient[Any], client_b: TestClient[Any]
) -> None:
    account = register(client)
    assert client_b.get("/api/v1/auth/me", headers=account.headers).status_code == 200

    assert client.post("/api/v1/auth/logout", headers=account.headers).status_code == 204

    assert_problem(client_b.get("/api/v1/auth/me", headers=account.headers), 401, "not-signed-in")
    assert_problem(
        client_b.get("/api/v1/auth/me", headers=account.cookie_headers), 401, "not-signed-in"
    )


def test_login_sets_httponly_lax_session_cookie_and_readable_csrf_cookie(
    client: TestClient[Any],
) -> None:
    account = register(client)
    response = client.post(
        "/api/v1/auth/login", json={"email": account.email, "password": account.password}
    )
    assert response.status_code == 200
    cookies = response.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("haven_session="))
    csrf = next(c for c in cookies if c.startswith("haven_csrf="))
    assert "HttpOnly" in session
    assert "SameSite=lax" in session or "SameSite=Lax" in session
    assert "Path=/" in session
    assert "HttpOnly" not in csrf
    body = response.json()
    assert csrf.split(";")[0] == f"haven_csrf={body['csrfToken']}"
    assert set(body) >= {"user", "organization", "role", "accessToken", "expiresAt", "csrfToken"}
    # Login rotates the session id.
    assert response.cookies["haven_session"] != account.session_cookie


def test_wrong_email_and_wrong_password_get_the_same_401(client: TestClient[Any]) -> None:
    account = register(client)
    wrong_password = client.post(
        "/api/v1/auth/login", json={"email": account.email, "password": "not the password"}
    )
    wrong_email = client.post(
        "/api/v1/auth/login", json={"email": "nobody@example.com", "password": account.password}
    )
    a = assert_problem(wrong_password, 401)
    b = assert_problem(wrong_email, 401)
    assert a["type"] == b["type"]
    assert a["detail"] == b["detail"]


def test_cookie_writes_need_the_csrf_header_and_bearer_writes_do_not(
    client: TestClient[Any],
) -> None:
    account = register(client)
    cookie = account.cookie_headers
    tenant = {"firstName": "Ada", "lastName": "Lovelace"}

    assert_problem(client.post("/api/v1/tenants", json=tenant, headers=cookie), 403, "csrf")
    wrong = client.post("/api/v1/tenants", json=tenant, headers={**cookie, "X-CSRF-Token": "no"})
    assert_problem(wrong, 403, "csrf")
    ok = client.post(
        "/api/v1/tenants", json=tenant, headers={**cookie, "X-CSRF-Token": account.csrf}
    )
    assert ok.status_code == 201
    assert client.post("/api/v1/tenants", json=tenant, headers=account.headers).status_code == 201
    # GET never needs it (the seed's `curl -b cookies.txt` works).
    assert client.get("/api/v1/tenants", headers=cookie).status_code == 200


def test_sessions_list_and_revoke_another_device(client: TestClient[Any]) -> None:
    account = register(client)
    second = client.post(
        "/api/v1/auth/login", json={"email": account.email, "password": account.password}
    ).json()
    client.cookies.clear()
    second_headers = {"Authorization": f"Bearer {second['accessToken']}"}

    listed = client.get("/api/v1/auth/sessions", headers=account.headers)
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert len(items) == 2
    assert sum(1 for s in items if s["current"]) == 1
    assert all("haven_session" not in str(s) for s in items)
    other = next(s for s in items if not s["current"])

    revoked = client.delete(f"/api/v1/auth/sessions/{other['id']}", headers=account.headers)
    assert revoked.status_code == 204
    assert_problem(client.get("/api/v1/auth/me", headers=second_headers), 401)
    assert client.get("/api/v1/auth/me", headers=account.headers).status_code == 200
    assert_problem(
        client.delete(f"/api/v1/auth/sessions/{other['id']}", headers=account.headers), 404
    )


def test_forged_or_garbage_tokens_are_401(client: TestClient[Any]) -> None:
    for header in ("Bearer garbage", "Bearer a.b.c", "Basic dXNlcjpwYXNz", "Bearer "):
        assert_problem(client.get("/api/v1/auth/me", headers={"Authorization": header}), 401)
    assert_problem(
        client.get("/api/v1/auth/me", headers={"Cookie": "haven_session=" + "x" * 500}), 401
    )
