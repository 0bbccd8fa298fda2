"""Invitations: single use, expiring, superseded, revoked; what accepting one creates."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from litestar.testing import TestClient

from haven.db.base import utcnow
from haven.residents import service as residents
from support import Account, add_member, assert_problem, create_tenant, unique_email
from support_leases import active_lease
from support_residents import RESIDENT_PASSWORD, accept, invite, resident


def _tenant_on_lease(client: TestClient[Any], owner: Account, **tenant: Any) -> dict[str, Any]:
    made = create_tenant(client, owner, **tenant)
    active_lease(client, owner, tenant_ids=[made["id"]], endDate=None)
    return made


def _login(client: TestClient[Any], email: str, password: str = RESIDENT_PASSWORD) -> Any:
    response = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    client.cookies.clear()
    return response


def test_an_invitation_signs_the_tenant_in_as_a_resident_once(
    client: TestClient[Any], client_b: TestClient[Any], owner: Account
) -> None:
    tenant = _tenant_on_lease(client, owner)
    invited = invite(client, owner, tenant["id"])
    assert invited.status_code == 201, invited.text
    body = invited.json()
    assert body["tenantId"] == tenant["id"]
    assert body["email"] == tenant["email"]
    assert body["token"].startswith("hvi_")
    assert "no-store" in invited.headers["cache-control"]

    accepted = accept(client_b, body["token"])
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["role"] == "resident"
    bearer = {"Authorization": f"Bearer {accepted.json()['accessToken']}"}
    me = client.get("/api/v1/auth/me", headers=bearer)
    assert me.status_code == 200
    assert me.json()["role"] == "resident"

    assert_problem(accept(client, body["token"]), 400, "invalid-invitation")  # used
    assert _login(client, tenant["email"]).status_code == 200
    # Staff see the resident among the members, and cannot make them staff.
    members = client.get("/api/v1/members", headers=owner.headers).json()["items"]
    mine = [m for m in members if m["email"] == tenant["email"]]
    assert [m["role"] for m in mine] == ["resident"]
    user_id = accepted.json()["user"]["id"]
    assert_problem(
        client.patch(f"/api/v1/members/{user_id}", headers=owner.headers, json={"role": "staff"}),
        409,
    )
    assert client.get("/api/v1/auth/me", headers=bearer).json()["role"] == "resident"


def test_staff_cannot_be_made_residents_and_keys_never_carry_the_role(
    client: TestClient[Any], owner: Account
) -> None:
    staff = add_member(client, owner, "staff")
    assert_problem(
        client.patch(
            f"/api/v1/members/{staff.user_id}", headers=owner.headers, json={"role": "resident"}
        ),
        422,
    )
    assert_problem(
        client.post(
            "/api/v1/members",
            headers=owner.headers,
            json={"email": unique_email(), "name": "R", "role": "resident", "password": "x" * 12},
        ),
        422,
    )
    assert_problem(
        client.post(
            "/api/v1/api-keys", headers=owner.headers, json={"name": "k", "role": "resident"}
        ),
        422,
    )


def test_an_expired_invitation_is_refused_and_changes_nothing(
    client: TestClient[Any], owner: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = _tenant_on_lease(client, owner)
    token = invite(client, owner, tenant["id"]).json()["token"]
    later = utcnow() + timedelta(days=7, seconds=1)
    monkeypatch.setattr(residents, "now", lambda: later)
    assert_problem(accept(client, token), 400, "invalid-invitation")
    assert_problem(_login(client, tenant["email"]), 401, "invalid-credentials")
    monkeypatch.undo()
    # A new invitation works; the expired one stays refused.
    fresh = invite(client, owner, tenant["id"]).json()["token"]
    assert accept(client, fresh).status_code == 201


def test_a_new_invitation_supersedes_the_open_one(client: TestClient[Any], owner: Account) -> None:
    tenant = _tenant_on_lease(client, owner)
    first = invite(client, owner, tenant["id"]).json()["token"]
    second = invite(client, owner, tenant["id"]).json()["token"]
    assert_problem(accept(client, first), 400, "invalid-invitation")
    assert accept(client, second).status_code == 201
    # Already signed in: no further invitation until staff revoke access.
    assert_problem(invite(client, owner, tenant["id"]), 409)


def test_revoking_access_revokes_the_open_invitation(
    client: TestClient[Any], owner: Account
) -> None:
    tenant = _tenant_on_lease(client, owner)
    token = invite(client, owner, tenant["id"]).json()["token"]
    revoked = client.delete(f"/api/v1/tenants/{tenant['id']}/access", headers=owner.headers)
    assert revoked.status_code == 204, revoked.text
    assert_problem(accept(client, token), 400, "invalid-invitation")


@pytest.mark.parametrize(
    "token",
    ["", "hvi_short", "x" * 47, "hvi_" + "A" * 43, "hvi_" + "A" * 42 + "!"],
)
def test_malformed_or_unknown_tokens_are_one_answer(client: TestClient[Any], token: str) -> None:
    response = accept(client, token)
    if token == "":
        assert_problem(response, 422)
    else:
        assert_problem(response, 400, "invalid-invitation")


def test_bad_invitations(client: TestClient[Any], owner: Account) -> None:
    no_email = _tenant_on_lease(client, owner, email=None)
    assert_problem(invite(client, owner, no_email["id"]), 422)
    given = invite(client, owner, no_email["id"], email="given@example.com")
    assert given.status_code == 201
    assert given.json()["email"] == "given@example.com"
    taken = _tenant_on_lease(client, owner, email=owner.email)
    assert_problem(invite(client, owner, taken["id"]), 409)
    no_lease = create_tenant(client, owner)
    assert_problem(invite(client, owner, no_lease["id"]), 409)
    assert_problem(invite(client, owner, no_lease["id"], email=12), 422)
    assert_problem(invite(client, owner, no_lease["id"], surprise=True), 422)
    assert_problem(
        client.post(
            "/api/v1/tenants/00000000-0000-0000-0000-000000000000/invitations",
            headers=owner.headers,
            json={},
        ),
        404,
    )
    viewer = add_member(client, owner, "viewer")
    assert_problem(invite(client, viewer, given.json()["tenantId"]), 403)
    staff = add_member(client, owner, "staff")
    assert_problem(
        client.delete(f"/api/v1/tenants/{no_email['id']}/access", headers=staff.headers), 403
    )
    short = client.post(
        "/api/v1/invitations/accept", json={"token": given.json()["token"], "password": "short"}
    )
    assert_problem(short, 422)
    assert accept(client, given.json()["token"]).status_code == 201  # still unused


def test_an_email_taken_after_the_invitation_is_a_conflict_on_accept(
    client: TestClient[Any], owner: Account
) -> None:
    tenant = _tenant_on_lease(client, owner)
    token = invite(client, owner, tenant["id"]).json()["token"]
    client.post(
        "/api/v1/members",
        headers=owner.headers,
        json={"email": tenant["email"], "name": "Same", "role": "viewer", "password": "x" * 12},
    )
    assert_problem(accept(client, token), 409)


def test_idempotency_key_replays_the_same_invitation(
    client: TestClient[Any], owner: Account
) -> None:
    tenant = _tenant_on_lease(client, owner)
    headers = {**owner.headers, "Idempotency-Key": unique_email()}
    url = f"/api/v1/tenants/{tenant['id']}/invitations"
    first = client.post(url, headers=headers, json={})
    again = client.post(url, headers=headers, json={})
    assert first.status_code == again.status_code == 201
    assert first.json()["token"] == again.json()["token"]


def test_a_resident_changes_their_password_and_signs_out(
    client: TestClient[Any], owner: Account
) -> None:
    r = resident(client, owner)
    changed = client.post(
        "/api/v1/auth/password",
        headers=r.account.headers,
        json={"currentPassword": RESIDENT_PASSWORD, "newPassword": "another passphrase 2"},
    )
    assert changed.status_code == 204, changed.text
    assert client.post("/api/v1/auth/logout", headers=r.account.headers).status_code == 204
    assert_problem(client.get("/api/v1/auth/me", headers=r.account.headers), 401)


def test_invitation_events_are_audited(client: TestClient[Any], owner: Account) -> None:
    r = resident(client, owner)
    events = client.get("/api/v1/events", headers=owner.headers, params={"limit": 100})
    assert events.status_code == 200, events.text
    types = [e["type"] for e in events.json()["items"]]
    assert "tenant_invitation.created" in types
    assert "tenant_invitation.updated" in types
    assert "membership.created" in types
    revoked = client.delete(f"/api/v1/tenants/{r.tenant_id}/access", headers=owner.headers)
    assert revoked.status_code == 204
    audit = client.get("/api/v1/audit-events", headers=owner.headers, params={"limit": 100})
    assert audit.status_code == 200
    assert any("membership" in str(e) for e in audit.json()["items"])
