"""Members and the organization: owner-only management that applies to live sessions at once."""

from __future__ import annotations

from typing import Any

from litestar.testing import TestClient

from support import Account, add_member, assert_problem, register


def _me(client: TestClient[Any], account: Account) -> Any:
    return client.get("/api/v1/auth/me", headers=account.headers)


def test_role_change_on_one_instance_applies_to_live_sessions_on_the_other(
    client: TestClient[Any], client_b: TestClient[Any], owner: Account
) -> None:
    viewer = add_member(client, owner, "viewer")
    tenant = {"firstName": "Ada", "lastName": "Lovelace"}
    assert_problem(client_b.post("/api/v1/tenants", headers=viewer.headers, json=tenant), 403)

    promoted = client.patch(
        f"/api/v1/members/{viewer.user_id}", headers=owner.headers, json={"role": "manager"}
    )
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["role"] == "manager"

    # The same session, on the other instance, without signing in again.
    assert _me(client_b, viewer).json()["role"] == "manager"
    assert client_b.post("/api/v1/tenants", headers=viewer.headers, json=tenant).status_code == 201
    cookie_me = client_b.get("/api/v1/auth/me", headers=viewer.cookie_headers)
    assert cookie_me.json()["role"] == "manager"

    demoted = client_b.patch(
        f"/api/v1/members/{viewer.user_id}", headers=owner.headers, json={"role": "staff"}
    )
    assert demoted.status_code == 200
    assert_problem(client.post("/api/v1/tenants", headers=viewer.headers, json=tenant), 403)
    assert client.get("/api/v1/tenants", headers=viewer.headers).status_code == 200


def test_removing_a_member_ends_their_sessions_everywhere_at_once(
    client: TestClient[Any], client_b: TestClient[Any], owner: Account
) -> None:
    manager = add_member(client, owner, "manager")
    second = client_b.post(
        "/api/v1/auth/login", json={"email": manager.email, "password": manager.password}
    ).json()
    client_b.cookies.clear()
    second_headers = {"Authorization": f"Bearer {second['accessToken']}"}
    assert _me(client_b, manager).status_code == 200

    removed = client.delete(f"/api/v1/members/{manager.user_id}", headers=owner.headers)
    assert removed.status_code == 204

    assert_problem(_me(client_b, manager), 401)
    assert_problem(client_b.get("/api/v1/auth/me", headers=second_headers), 401)
    assert_problem(client.get("/api/v1/auth/me", headers=manager.cookie_headers), 401)
    login = client.post(
        "/api/v1/auth/login", json={"email": manager.email, "password": manager.password}
    )
    assert_problem(login, 401, "invalid-credentials")
    members = client.get("/api/v1/members", headers=owner.headers).json()["items"]
    assert manager.user_id not in {m["id"] for m in members}


def test_password_change_by_the_owner_signs_the_member_out(
    client: TestClient[Any], client_b: TestClient[Any], owner: Account
) -> None:
    staff = add_member(client, owner, "staff")
    changed = client.patch(
        f"/api/v1/members/{staff.user_id}",
        headers=owner.headers,
        json={"password": "a brand new password"},
    )
    assert changed.status_code == 200
    assert_problem(_me(client_b, staff), 401)
    old = client.post("/api/v1/auth/login", json={"email": staff.email, "password": staff.password})
    assert_problem(old, 401)
    new = client.post(
        "/api/v1/auth/login", json={"email": staff.email, "password": "a brand new password"}
    )
    assert new.status_code == 200


def test_the_last_owner_cannot_be_demoted_or_removed(
    client: TestClient[Any], owner: Account
) -> None:
    path = f"/api/v1/members/{owner.user_id}"
    assert_problem(client.patch(path, headers=owner.headers, json={"role": "viewer"}), 409)
    assert_problem(client.delete(path, headers=owner.headers), 409)
    assert _me(client, owner).json()["role"] == "owner"

    # With a second owner, the first may step down.
    second = add_member(client, owner, "owner")
    stepped = client.patch(path, headers=second.headers, json={"role": "manager"})
    assert stepped.status_code == 200, stepped.text
    assert _me(client, owner).json()["role"] == "manager"


def test_member_email_must_be_unique_across_haven(client: TestClient[Any], owner: Account) -> None:
    other = register(client)
    body = {"email": other.email.upper(), "name": "Dup", "role": "viewer", "password": "pw123456"}
    duplicate = client.post("/api/v1/members", headers=owner.headers, json=body)
    assert_problem(duplicate, 409, "conflict")
    members = client.get("/api/v1/members", headers=owner.headers).json()["items"]
    assert [m["email"] for m in members] == [owner.email]


def test_member_version_and_if_match(client: TestClient[Any], owner: Account) -> None:
    viewer = add_member(client, owner, "viewer")
    path = f"/api/v1/members/{viewer.user_id}"
    first = client.get(path, headers=owner.headers)
    etag = first.headers["etag"]
    assert etag == f'"{first.json()["version"]}"'
    renamed = client.patch(path, headers={**owner.headers, "If-Match": etag}, json={"name": "Vera"})
    assert renamed.status_code == 200
    assert renamed.json()["version"] == first.json()["version"] + 1
    stale = client.patch(path, headers={**owner.headers, "If-Match": etag}, json={"name": "Lost"})
    assert_problem(stale, 412)
    assert client.get(path, headers=owner.headers).json()["name"] == "Vera"


def test_organization_settings(
    client: TestClient[Any], client_b: TestClient[Any], owner: Account
) -> None:
    changed = client.patch(
        "/api/v1/organization",
        headers=owner.headers,
        json={"name": "Renamed Co", "currency": "EUR", "timezone": "Europe/Berlin"},
    )
    assert changed.status_code == 200, changed.text
    seen = client_b.get("/api/v1/organization", headers=owner.headers).json()
    assert (seen["name"], seen["currency"], seen["timezone"]) == (
        "Renamed Co",
        "EUR",
        "Europe/Berlin",
    )
    bad_zone = client.patch(
        "/api/v1/organization", headers=owner.headers, json={"timezone": "Mars/Olympus"}
    )
    body = assert_problem(bad_zone, 422, "validation")
    assert body["errors"][0]["field"] == "timezone"
    assert client.get("/api/v1/organization", headers=owner.headers).json() == seen
