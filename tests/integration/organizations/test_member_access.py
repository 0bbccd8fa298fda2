"""A demotion, a removal or a password reset reaches every session of the member, however old,
on every instance, whatever became of the auxiliary Redis keys, and no request undoes it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis
from litestar.testing import TestClient

from haven.services import services_of
from haven.store.embedded import EmbeddedValkey
from support import Account, add_member, assert_problem, register
from support_maintenance import audit_events

TENANT = {"firstName": "Ada", "lastName": "Lovelace"}
NEW_PASSWORD = "reset by the owner 1"
TTL = 6  # seconds; SESSION_TTL of the apps that test sessions older than it


def _me(client: TestClient[Any], headers: dict[str, str]) -> Any:
    return client.get("/api/v1/auth/me", headers=headers)


def _write(client: TestClient[Any], account: Account) -> Any:
    return client.post("/api/v1/tenants", headers=account.headers, json=TENANT)


def _keep_alive(clients: list[TestClient[Any]], accounts: list[Account], seconds: float) -> None:
    """Use every session on alternating instances until `seconds` have passed (bounded)."""
    deadline = time.monotonic() + seconds
    for i in range(200):
        if time.monotonic() >= deadline:
            return
        for account in accounts:
            response = _me(clients[i % len(clients)], account.headers)
            assert response.status_code == 200, response.text
        time.sleep(0.4)
    raise AssertionError("keep-alive loop did not end")


def test_sessions_older_than_the_ttl_are_demoted_and_removed_everywhere(
    app_factory: Callable[..., TestClient[Any]],
) -> None:
    # Short enough to outlive in a test, long enough for the sign-ups (argon2) in between.
    a = app_factory(instance_id="api-1", session_ttl=TTL)
    b = app_factory(instance_id="api-2", session_ttl=TTL)
    owner = register(a)
    manager = add_member(a, owner, "manager")
    leaving = add_member(b, owner, "staff")
    assert _write(b, manager).status_code == 201
    _keep_alive([a, b], [owner, manager, leaving], TTL + 2)  # signed in longer than the TTL

    # Still listed while alive.
    for account in (manager, leaving):
        listed = b.get("/api/v1/auth/sessions", headers=account.headers).json()["items"]
        assert [s["current"] for s in listed] == [True], listed

    demoted = a.patch(
        f"/api/v1/members/{manager.user_id}", headers=owner.headers, json={"role": "viewer"}
    )
    assert demoted.status_code == 200, demoted.text
    removed = b.delete(f"/api/v1/members/{leaving.user_id}", headers=owner.headers)
    assert removed.status_code == 204

    for instance in (a, b):
        assert_problem(_write(instance, manager), 403, "forbidden")
        assert _me(instance, manager.headers).json()["role"] == "viewer"
        assert instance.get("/api/v1/tenants", headers=manager.headers).status_code == 200
        cookie_write = instance.post(
            "/api/v1/tenants",
            headers={**manager.cookie_headers, "X-CSRF-Token": manager.csrf},
            json=TENANT,
        )
        assert_problem(cookie_write, 403, "forbidden")
        assert_problem(_me(instance, leaving.headers), 401)
        assert_problem(_write(instance, leaving), 401)
        assert_problem(instance.get("/api/v1/dashboard", headers=leaving.cookie_headers), 401)


def test_demotion_and_removal_hold_without_the_index_or_the_mirror_key(
    client: TestClient[Any],
    client_b: TestClient[Any],
    owner: Account,
    valkey: EmbeddedValkey,
) -> None:
    manager = add_member(client, owner, "manager")
    leaving = add_member(client, owner, "manager")
    assert client_b.get("/api/v1/dashboard", headers=manager.cookie_headers).status_code == 200
    r = redis.Redis.from_url(valkey.url)
    try:

        def drop_keys(account: Account) -> None:
            r.delete(
                f"haven:user-sessions:{account.user_id}", f"haven:user:{account.user_id}:authz"
            )

        drop_keys(manager)
        drop_keys(leaving)
        demoted = client.patch(
            f"/api/v1/members/{manager.user_id}", headers=owner.headers, json={"role": "viewer"}
        )
        assert demoted.status_code == 200
        removed = client.delete(f"/api/v1/members/{leaving.user_id}", headers=owner.headers)
        assert removed.status_code == 204
        drop_keys(manager)  # evicted again after the change: the database still decides
        drop_keys(leaving)

        assert_problem(_write(client_b, manager), 403, "forbidden")
        assert _me(client, manager.headers).json()["role"] == "viewer"
        # The mirror was re-read from the database and published again.
        assert r.get(f"haven:user:{manager.user_id}:authz").endswith(b":viewer")
        # The cached dashboard (answered at the edge) honours it too.
        drop_keys(leaving)
        assert_problem(client_b.get("/api/v1/dashboard", headers=leaving.cookie_headers), 401)
        assert_problem(_me(client, leaving.headers), 401)
        assert_problem(_write(client_b, leaving), 401)
    finally:
        r.close()


def test_a_demotion_racing_the_members_requests_is_never_undone(
    client: TestClient[Any],
    client_b: TestClient[Any],
    owner: Account,
    valkey: EmbeddedValkey,
) -> None:
    member = add_member(client, owner, "manager")
    path = f"/api/v1/members/{member.user_id}"
    key = f"haven:session:{member.session_cookie}"
    # Each racing request finds the session last seen over a minute ago, so each one updates
    # its lastSeenAt while the demotion lands.
    age_seen = (
        "local v = redis.call('GET', KEYS[1]) if not v then return 0 end"
        " local d = cjson.decode(v) d['seen'] = d['seen'] - 120"
        " redis.call('SET', KEYS[1], cjson.encode(d), 'KEEPTTL') return 1"
    )

    def member_reads(instance: TestClient[Any], stop: threading.Event) -> list[int]:
        r = redis.Redis.from_url(valkey.url)
        statuses = []
        try:
            for _ in range(300):
                if stop.is_set():
                    break
                r.eval(age_seen, 1, key)
                statuses.append(int(_me(instance, member.headers).status_code))
        finally:
            r.close()
        return statuses

    for iteration in range(10):
        promoted = client.patch(path, headers=owner.headers, json={"role": "manager"})
        assert promoted.status_code == 200, promoted.text
        assert _write(client_b, member).status_code == 201
        stop = threading.Event()
        with ThreadPoolExecutor(2) as pool:
            readers = [pool.submit(member_reads, c, stop) for c in (client, client_b)]
            time.sleep(0.05)
            demoted = client_b.patch(path, headers=owner.headers, json={"role": "viewer"})
            time.sleep(0.05)
            stop.set()
            assert demoted.status_code == 200, demoted.text
            assert all(s == 200 for f in readers for s in f.result())
        for instance in (client, client_b):
            assert_problem(_write(instance, member), 403, "forbidden")
            assert _me(instance, member.headers).json()["role"] == "viewer", iteration


def test_owner_reset_ends_every_session_of_the_member(
    client: TestClient[Any],
    client_b: TestClient[Any],
    owner: Account,
    valkey: EmbeddedValkey,
) -> None:
    staff = add_member(client, owner, "staff")
    second = client_b.post(
        "/api/v1/auth/login", json={"email": staff.email, "password": staff.password}
    )
    client_b.cookies.clear()
    second_headers = {"Authorization": f"Bearer {second.json()['accessToken']}"}
    r = redis.Redis.from_url(valkey.url)
    r.delete(f"haven:user-sessions:{staff.user_id}")  # not relied upon
    r.close()

    path = f"/api/v1/members/{staff.user_id}/password"
    reset = client.post(path, headers=owner.headers, json={"newPassword": NEW_PASSWORD})
    assert reset.status_code == 204, reset.text
    for instance in (client, client_b):
        assert_problem(_me(instance, staff.headers), 401)
        assert_problem(_me(instance, second_headers), 401)
        assert_problem(_me(instance, staff.cookie_headers), 401)
        assert _me(instance, owner.headers).status_code == 200
    assert_problem(
        client.post("/api/v1/auth/login", json={"email": staff.email, "password": staff.password}),
        401,
    )
    new = client.post("/api/v1/auth/login", json={"email": staff.email, "password": NEW_PASSWORD})
    client.cookies.clear()
    assert new.status_code == 200
    assert new.json()["role"] == "staff"

    events = [e for e in audit_events(client, owner) if e["action"] == "user.password_changed"]
    assert [(e["entityId"], e["actorId"]) for e in events] == [(staff.user_id, owner.user_id)]


def test_owner_reset_is_refused_for_bad_input_other_roles_and_foreign_members(
    client: TestClient[Any], owner: Account
) -> None:
    manager = add_member(client, owner, "manager")
    path = f"/api/v1/members/{manager.user_id}/password"
    assert_problem(client.post(path, headers=owner.headers, json={"newPassword": "short"}), 422)
    assert_problem(client.post(path, headers=owner.headers, json={"password": NEW_PASSWORD}), 422)
    assert_problem(
        client.post(path, headers=manager.headers, json={"newPassword": NEW_PASSWORD}), 403
    )
    own = f"/api/v1/members/{owner.user_id}/password"
    assert_problem(client.post(own, headers=owner.headers, json={"newPassword": NEW_PASSWORD}), 409)
    other = register(client, organization="Elsewhere")
    foreign = f"/api/v1/members/{other.user_id}/password"
    assert_problem(
        client.post(foreign, headers=owner.headers, json={"newPassword": NEW_PASSWORD}), 404
    )
    # Nothing changed: every session still works, every old password still signs in.
    for account in (manager, owner, other):
        assert _me(client, account.headers).status_code == 200
        login = client.post(
            "/api/v1/auth/login", json={"email": account.email, "password": account.password}
        )
        client.cookies.clear()
        assert login.status_code == 200


def test_an_owner_cannot_set_their_own_password_by_patch_without_the_current_one(
    client: TestClient[Any], client_b: TestClient[Any], owner: Account
) -> None:
    # A thief holding the owner's session must not set the password (and end the owner's
    # other sessions) without knowing the current one: that is POST /auth/password's job.
    other = client_b.post(
        "/api/v1/auth/login", json={"email": owner.email, "password": owner.password}
    )
    client_b.cookies.clear()
    other_headers = {"Authorization": f"Bearer {other.json()['accessToken']}"}
    path = f"/api/v1/members/{owner.user_id}"
    for body in ({"password": NEW_PASSWORD}, {"password": NEW_PASSWORD, "name": "Mallory"}):
        assert_problem(client.patch(path, headers=owner.headers, json=body), 409, "conflict")
    # Nothing changed: both sessions work, the old password signs in, the name is the same.
    assert _me(client_b, owner.headers).status_code == 200
    assert _me(client_b, other_headers).status_code == 200
    assert client.get(path, headers=owner.headers).json()["name"] == "Olive Owner"
    old = client.post("/api/v1/auth/login", json={"email": owner.email, "password": owner.password})
    client.cookies.clear()
    assert old.status_code == 200
    # Renaming yourself is still a PATCH.
    renamed = client.patch(path, headers=owner.headers, json={"name": "Olive O."})
    assert renamed.status_code == 200, renamed.text


def test_a_reader_publishing_an_older_state_late_cannot_undo_a_change(
    client: TestClient[Any], client_b: TestClient[Any], owner: Account, valkey: EmbeddedValkey
) -> None:
    member = add_member(client, owner, "manager")
    r = redis.Redis.from_url(valkey.url)
    try:
        mirror = f"haven:user:{member.user_id}:authz"
        before = r.get(mirror)  # what a request that read the database now would publish
        assert before is not None
        assert before.endswith(b":manager")
        demoted = client.patch(
            f"/api/v1/members/{member.user_id}", headers=owner.headers, json={"role": "viewer"}
        )
        assert demoted.status_code == 200
        sessions = services_of(client_b.app).sessions
        client_b.blocking_portal.call(sessions.publish_authz, member.user_id, before.decode())
        assert r.get(mirror).endswith(b":viewer")
        assert_problem(_write(client_b, member), 403, "forbidden")

        removed = client.delete(f"/api/v1/members/{member.user_id}", headers=owner.headers)
        assert removed.status_code == 204
        client_b.blocking_portal.call(sessions.publish_authz, member.user_id, before.decode())
        assert r.get(mirror) == b"x"
        assert_problem(_me(client_b, member.headers), 401)
    finally:
        r.close()
