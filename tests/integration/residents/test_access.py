"""A resident's access ends after their last lease's end plus the grace period, or at once
when staff revoke it (every session, on every instance)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from litestar.testing import TestClient

from support import Account, assert_problem
from support_leases import draft_lease
from support_residents import RESIDENT_PASSWORD, Resident, accept, invite, resident


def _days(n: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=n)).isoformat()


def _login(client: TestClient[Any], r: Resident) -> Any:
    response = client.post(
        "/api/v1/auth/login", json={"email": r.account.email, "password": RESIDENT_PASSWORD}
    )
    client.cookies.clear()
    return response


def _me(client: TestClient[Any], headers: dict[str, str]) -> int:
    return int(client.get("/api/v1/auth/me", headers=headers).status_code)


def _end(client: TestClient[Any], owner: Account, r: Resident, end: str | None) -> None:
    response = client.patch(
        f"/api/v1/leases/{r.lease['id']}", headers=owner.headers, json={"endDate": end}
    )
    assert response.status_code == 200, response.text


def test_access_ends_after_the_last_lease_and_the_grace_period(
    client: TestClient[Any], client_b: TestClient[Any], owner: Account
) -> None:
    r = resident(client, owner, startDate="2025-01-01")
    cookie = {"Cookie": f"haven_session={r.account.session_cookie}"}
    assert _me(client_b, r.account.headers) == 200

    _end(client, owner, r, _days(10))  # ends in the future: still in
    assert _me(client_b, r.account.headers) == 200
    _end(client, owner, r, _days(-29))  # ended, within the 30 days' grace
    assert _me(client_b, r.account.headers) == 200
    _end(client, owner, r, _days(-31))  # past the grace: the next request is 401
    assert_problem(client_b.get("/api/v1/leases", headers=r.account.headers), 401)
    assert _me(client, cookie) == 401  # every session of theirs is gone
    assert_problem(_login(client, r), 401, "invalid-credentials")  # as a wrong password

    # A renewal (another lease of the same tenant, month-to-month) opens it again.
    draft_lease(client, owner, tenant_ids=[r.tenant_id], startDate=_days(1), endDate=None)
    again = _login(client_b, r)
    assert again.status_code == 200, again.text
    assert _me(client, {"Authorization": f"Bearer {again.json()['accessToken']}"}) == 200


def test_a_terminated_lease_ends_access_from_its_termination_date(
    client: TestClient[Any], owner: Account
) -> None:
    r = resident(client, owner, startDate="2025-01-01")
    ended = client.post(
        f"/api/v1/leases/{r.lease['id']}/terminate",
        headers=owner.headers,
        json={"date": _days(-40)},
    )
    assert ended.status_code == 200, ended.text
    assert _me(client, r.account.headers) == 401
    assert_problem(_login(client, r), 401, "invalid-credentials")


def test_the_grace_period_is_configuration(
    client: TestClient[Any], app_factory: Any, owner: Account
) -> None:
    strict = app_factory(instance_id="api-strict", resident_grace_days=0)
    r = resident(client, owner, startDate="2025-01-01", endDate=_days(-1))
    assert _me(client, r.account.headers) == 200  # 30 days' grace here
    assert_problem(_login(strict, r), 401, "invalid-credentials")  # none there


def test_an_ended_tenancy_cannot_be_invited(client: TestClient[Any], owner: Account) -> None:
    r = resident(client, owner, startDate="2025-01-01")
    revoked = client.delete(f"/api/v1/tenants/{r.tenant_id}/access", headers=owner.headers)
    assert revoked.status_code == 204
    token = invite(client, owner, r.tenant_id).json()["token"]
    _end(client, owner, r, _days(-60))
    assert_problem(accept(client, token), 409)
    assert_problem(invite(client, owner, r.tenant_id), 409)


def test_revoking_access_ends_every_session_at_once_on_every_instance(
    client: TestClient[Any], client_b: TestClient[Any], owner: Account
) -> None:
    r = resident(client, owner)
    second = _login(client_b, r)
    phone = {"Authorization": f"Bearer {second.json()['accessToken']}"}
    assert _me(client, r.account.headers) == 200
    assert _me(client_b, phone) == 200
    unit = client.get(f"/api/v1/units/{r.lease['unitId']}", headers=owner.headers).json()
    opened = client.post(
        "/api/v1/maintenance-requests",
        headers=r.account.headers,
        json={"propertyId": unit["propertyId"], "unitId": unit["id"], "title": "Fridge"},
    ).json()

    revoked = client_b.delete(f"/api/v1/tenants/{r.tenant_id}/access", headers=owner.headers)
    assert revoked.status_code == 204, revoked.text
    for instance in (client, client_b):
        assert _me(instance, r.account.headers) == 401
        assert _me(instance, phone) == 401
    assert_problem(_login(client, r), 401, "invalid-credentials")
    # What they wrote still names their tenancy.
    kept = client.get(f"/api/v1/maintenance-requests/{opened['id']}", headers=owner.headers)
    assert kept.json()["createdByTenantId"] == r.tenant_id
    assert kept.json()["createdByResident"] is True
    # Revoking again changes nothing; a new invitation gives access back.
    again = client.delete(f"/api/v1/tenants/{r.tenant_id}/access", headers=owner.headers)
    assert again.status_code == 204
    token = invite(client, owner, r.tenant_id).json()["token"]
    assert accept(client, token).status_code == 201


# Two zones 25 hours apart: at any moment at least one of them is on another date than UTC.
EAST, WEST = "Pacific/Kiritimati", "Pacific/Pago_Pago"  # UTC+14, UTC-11


def test_the_grace_deadline_is_the_organizations_date_not_utcs(
    client: TestClient[Any], owner: Account
) -> None:
    """Access is judged with the organization's date: where it is already tomorrow, a
    deadline that is today in UTC has passed; where it is still yesterday, a deadline that
    passed yesterday in UTC has not."""
    now = datetime.now(UTC)
    utc_today = now.date()
    zone = next(z for z in (EAST, WEST) if now.astimezone(ZoneInfo(z)).date() != utc_today)
    local_today = now.astimezone(ZoneInfo(zone)).date()
    changed = client.patch("/api/v1/organization", headers=owner.headers, json={"timezone": zone})
    assert changed.status_code == 200, changed.text

    grace = 30
    deadline = min(local_today, utc_today)  # the last day access is open
    r = resident(client, owner, startDate="2025-01-01")
    _end(client, owner, r, (deadline - timedelta(days=grace)).isoformat())
    expected = 401 if local_today > utc_today else 200  # UTC alone would say 200 and 401
    assert _date_unchanged(utc_today, zone, local_today), "crossed midnight: run again"
    assert _me(client, r.account.headers) == expected, (zone, local_today, utc_today)


def _date_unchanged(utc_today: date, zone: str, local_today: date) -> bool:
    now = datetime.now(UTC)
    return now.date() == utc_today and now.astimezone(ZoneInfo(zone)).date() == local_today
