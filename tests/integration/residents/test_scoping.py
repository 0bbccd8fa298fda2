"""A resident sees only what is theirs; everything else is the 404 of a missing resource.

Two tenants in one organization (the resident, a neighbour) and another organization's
resident: by id, list, filter, search and cursor, nothing of the neighbour's shows.
"""

from __future__ import annotations

from typing import Any

from litestar.testing import TestClient

from support import PROPERTY, Account, assert_problem, register
from support_leases import charge
from support_residents import Resident, resident


def _request(client: TestClient[Any], who: Account, unit: dict[str, Any], title: str) -> Any:
    return client.post(
        "/api/v1/maintenance-requests",
        headers=who.headers,
        json={"propertyId": unit["propertyId"], "unitId": unit["id"], "title": title},
    )


def _comment(client: TestClient[Any], who: Account, request_id: str, body: str) -> Any:
    return client.post(
        f"/api/v1/maintenance-requests/{request_id}/comments",
        headers=who.headers,
        json={"body": body},
    )


def _unit(client: TestClient[Any], owner: Account, r: Resident) -> dict[str, Any]:
    response = client.get(f"/api/v1/units/{r.lease['unitId']}", headers=owner.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def test_a_resident_sees_only_their_own(
    client: TestClient[Any], client_b: TestClient[Any], owner: Account
) -> None:
    mine = resident(client, owner)
    neighbour = resident(client, owner)
    other_owner = register(client, organization="Elsewhere")
    stranger = resident(client, other_owner)
    me = mine.account
    my_unit, their_unit = _unit(client, owner, mine), _unit(client, owner, neighbour)
    for r in (mine, neighbour):
        charge(client, owner, r.lease["id"], 120000, "2026-02-01")

    # Leases: list, filters, cursor, by id.
    assert _ids(client.get("/api/v1/leases", headers=me.headers)) == [mine.lease["id"]]
    for params in (
        {"tenantId": neighbour.tenant_id},
        {"unitId": their_unit["id"]},
        {"propertyId": their_unit["propertyId"]},
    ):
        assert _ids(client.get("/api/v1/leases", headers=me.headers, params=params)) == []
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = client_b.get("/api/v1/leases", headers=me.headers, params=params)
        seen += _ids(page)
        cursor = page.json()["nextCursor"]
        if cursor is None:
            break
    assert seen == [mine.lease["id"]]
    assert client.get(f"/api/v1/leases/{mine.lease['id']}", headers=me.headers).status_code == 200
    for lease in (neighbour.lease, stranger.lease):
        for path in ("", "/ledger", "/deposit-statement"):
            assert_problem(
                client.get(f"/api/v1/leases/{lease['id']}{path}", headers=me.headers), 404
            )
    ledger = client.get(f"/api/v1/leases/{mine.lease['id']}/ledger", headers=me.headers)
    assert ledger.status_code == 200
    assert ledger.json()["balance"] == 120000
    deposit = client.get(f"/api/v1/leases/{mine.lease['id']}/deposit-statement", headers=me.headers)
    assert deposit.status_code == 200, deposit.text

    # Maintenance: the resident opens one for their unit, the neighbour's is invisible.
    opened = _request(client, me, my_unit, "Dripping tap")
    assert opened.status_code == 201, opened.text
    assert opened.json()["createdByResident"] is True
    theirs = _request(client, owner, their_unit, "Broken boiler").json()
    assert _comment(client, owner, theirs["id"], "Plumber booked").status_code == 201
    assert_problem(_request(client, me, their_unit, "Not mine"), 422)
    assert_problem(
        client.post(
            "/api/v1/maintenance-requests",
            headers=me.headers,
            json={
                "propertyId": my_unit["propertyId"],
                "unitId": my_unit["id"],
                "title": "x",
                "costEstimate": 100,
            },
        ),
        422,
    )
    listed = _ids(client.get("/api/v1/maintenance-requests", headers=me.headers))
    assert listed == [opened.json()["id"]]
    for params in (
        {"search": "boiler"},
        {"unitId": their_unit["id"]},
        {"propertyId": their_unit["propertyId"]},
        {"status": "open", "search": "Broken"},
    ):
        got = client.get("/api/v1/maintenance-requests", headers=me.headers, params=params)
        assert _ids(got) == []
    for path in ("", "/comments"):
        assert_problem(
            client.get(f"/api/v1/maintenance-requests/{theirs['id']}{path}", headers=me.headers),
            404,
        )
    assert_problem(_comment(client, me, theirs["id"], "let me in"), 404)

    # The resident comments on their own; staff see who wrote what.
    comment = _comment(client, me, opened.json()["id"], "It drips at night")
    assert comment.status_code == 201, comment.text
    staff_view = client.get(
        f"/api/v1/maintenance-requests/{opened.json()['id']}", headers=owner.headers
    ).json()
    assert staff_view["createdByResident"] is True
    assert staff_view["createdByTenantId"] == mine.tenant_id
    assert staff_view["createdById"] == me.user_id
    comments = client.get(
        f"/api/v1/maintenance-requests/{opened.json()['id']}/comments", headers=owner.headers
    ).json()["items"]
    assert [(c["byResident"], c["authorTenantId"]) for c in comments] == [(True, mine.tenant_id)]
    assert comments[0]["authorName"] == "Ada Lovelace"
    staff_comments = client.get(
        f"/api/v1/maintenance-requests/{theirs['id']}/comments", headers=owner.headers
    ).json()["items"]
    assert [c["byResident"] for c in staff_comments] == [False]

    # The other organization's resident sees none of it.
    st = stranger.account
    assert_problem(client.get(f"/api/v1/leases/{mine.lease['id']}", headers=st.headers), 404)
    assert_problem(
        client.get(f"/api/v1/maintenance-requests/{opened.json()['id']}", headers=st.headers), 404
    )
    assert _ids(client.get("/api/v1/maintenance-requests", headers=st.headers)) == []
    assert _ids(client.get("/api/v1/leases", headers=st.headers)) == [stranger.lease["id"]]


def test_everything_else_is_closed_to_residents_with_404(
    client: TestClient[Any], client_b: TestClient[Any], owner: Account
) -> None:
    r = resident(client, owner)
    me = r.account
    unit = _unit(client, owner, r)
    closed = [
        ("GET", "/api/v1/properties", None),
        ("GET", f"/api/v1/properties/{unit['propertyId']}", None),
        ("GET", f"/api/v1/units/{unit['id']}", None),
        ("GET", "/api/v1/units", None),
        ("GET", "/api/v1/tenants", None),
        ("GET", f"/api/v1/tenants/{r.tenant_id}", None),
        ("GET", "/api/v1/organization", None),
        ("GET", "/api/v1/members", None),
        ("GET", "/api/v1/api-keys", None),
        ("GET", "/api/v1/audit-events", None),
        ("GET", "/api/v1/events", None),
        ("GET", "/api/v1/webhooks", None),
        ("GET", "/api/v1/reports/rent-roll", None),
        ("GET", "/api/v1/reports/aging", None),
        ("GET", "/api/v1/dashboard", None),
        ("GET", f"/api/v1/leases/{r.lease['id']}/rent-changes", None),
        ("POST", "/api/v1/properties", PROPERTY),
        ("PATCH", f"/api/v1/leases/{r.lease['id']}", {"graceDays": 3}),
        ("POST", f"/api/v1/tenants/{r.tenant_id}/invitations", {}),
        ("DELETE", f"/api/v1/tenants/{r.tenant_id}/access", None),
    ]
    # The dashboard is a cached view the edge answers itself: warm it for the organization.
    assert client.get("/api/v1/dashboard", headers=owner.headers).status_code == 200
    for instance in (client, client_b):
        # (Bodies are valid: a body that does not validate is a 422 for every role, as the
        # body is read before the role is checked.)
        for method, path, body in closed:
            response = instance.request(method, path, headers=me.headers, json=body)
            problem = assert_problem(response, 404, "not-found")
            assert problem["detail"] == "Not found", (method, path, problem)
    # What a resident opens by id but may not change: 404 as well.
    requested = _request(client, me, unit, "Window stuck").json()
    for method in ("PATCH", "DELETE"):
        assert_problem(
            client.request(
                method,
                f"/api/v1/maintenance-requests/{requested['id']}",
                headers={**me.headers, "If-Match": f'"{requested["version"]}"'},
                json={"title": "changed"},
            ),
            404,
        )
    assert_problem(
        client.post(
            f"/api/v1/maintenance-requests/{requested['id']}/transition",
            headers=me.headers,
            json={"to": "cancelled"},
        ),
        404,
    )
    # A cookie write without its CSRF token: still the 404, not a 403.
    no_csrf = client.post("/api/v1/properties", headers=me.cookie_headers, json=PROPERTY)
    assert_problem(no_csrf, 404, "not-found")
    # An unknown path answers the same.
    unknown = assert_problem(client.get("/api/v1/nothing-here", headers=me.headers), 404)
    assert unknown["type"].endswith("not-found")
