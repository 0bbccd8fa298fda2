"""Owners, ownership share sets, management fees and payouts: the API and its bad input."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from litestar.testing import TestClient

from support import Account, add_member, assert_problem, create_property, register
from support_leases import key
from support_owners import create_owner, put_shares


def owners_count(client: TestClient[Any], account: Account) -> int:
    response = client.get("/api/v1/owners", headers=account.headers, params={"limit": 100})
    assert response.status_code == 200
    return len(response.json()["items"])


def test_owner_crud_search_pages_and_roles(client: TestClient[Any], owner: Account) -> None:
    made = [
        create_owner(client, owner, name=f"Zed {n}", email=f"z{n}@example.com") for n in range(3)
    ]
    company = create_owner(
        client, owner, kind="company", name="Acme Holdings LLC", payoutReference="acct_tok_123"
    )
    assert company["kind"] == "company"
    assert company["payoutReference"] == "acct_tok_123"
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/owners", headers=owner.headers, params=params).json()
        seen += [o["id"] for o in page["items"]]
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert seen == [company["id"], *(o["id"] for o in made)]  # by name, no gap or repeat
    found = client.get("/api/v1/owners", headers=owner.headers, params={"search": "acme"}).json()
    assert [o["id"] for o in found["items"]] == [company["id"]]
    kinds = client.get("/api/v1/owners", headers=owner.headers, params={"kind": "company"}).json()
    assert [o["id"] for o in kinds["items"]] == [company["id"]]

    path = f"/api/v1/owners/{company['id']}"
    shown = client.get(path, headers=owner.headers)
    assert shown.headers["etag"] == '"1"'
    stale = client.patch(path, headers={**owner.headers, "If-Match": '"9"'}, json={"phone": "1"})
    assert_problem(stale, 412)
    changed = client.patch(
        path, headers={**owner.headers, "If-Match": '"1"'}, json={"phone": "+1 555 0100"}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["phone"] == "+1 555 0100"
    assert changed.json()["version"] == 2

    viewer, staff = add_member(client, owner, "viewer"), add_member(client, owner, "staff")
    for reader in (viewer, staff):
        assert client.get(path, headers=reader.headers).status_code == 200
        assert_problem(
            client.post(
                "/api/v1/owners", headers=reader.headers, json={"kind": "person", "name": "X"}
            ),
            403,
        )
        assert_problem(client.patch(path, headers=reader.headers, json={"phone": "1"}), 403)
        assert_problem(client.delete(path, headers=reader.headers), 403)

    assert client.delete(path, headers=owner.headers).status_code == 204
    assert_problem(client.get(path, headers=owner.headers), 404)


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "robot", "name": "X"},
        {"kind": "person"},
        {"kind": "person", "name": ""},
        {"kind": "person", "name": 12},
        {"kind": "person", "name": "X", "email": "not-an-email"},
        {"kind": "person", "name": "X", "payoutReference": "has spaces"},
        {"kind": "person", "name": "X", "iban": "DE00"},
        {"kind": "person", "name": "X\x00"},
    ],
)
def test_bad_owner_bodies_change_nothing(
    client: TestClient[Any], owner: Account, body: dict[str, Any]
) -> None:
    before = owners_count(client, owner)
    assert_problem(client.post("/api/v1/owners", headers=owner.headers, json=body), 422)
    assert owners_count(client, owner) == before


def test_ownership_sets_history_and_owned_properties(
    client: TestClient[Any], owner: Account
) -> None:
    prop = create_property(client, owner)
    a, b = create_owner(client, owner, name="Alice"), create_owner(client, owner, name="Bob")
    path = f"/api/v1/properties/{prop['id']}/ownership"
    empty = client.get(path, headers=owner.headers).json()
    assert empty["current"] is None
    assert empty["history"] == []

    put_shares(client, owner, prop["id"], "2026-01-01", [(a["id"], 6000), (b["id"], 4000)])
    body = put_shares(client, owner, prop["id"], "2026-03-01", [(a["id"], 10000)])
    assert [s["effectiveFrom"] for s in body["history"]] == ["2026-01-01", "2026-03-01"]
    # the same date again replaces that set, the earlier one stays
    body = put_shares(client, owner, prop["id"], "2026-03-01", [(a["id"], 2500), (b["id"], 7500)])
    assert len(body["history"]) == 2
    feb = client.get(path, headers=owner.headers, params={"on": "2026-02-15"}).json()
    assert {s["ownerName"]: s["basisPoints"] for s in feb["current"]["shares"]} == {
        "Alice": 6000,
        "Bob": 4000,
    }
    before = client.get(path, headers=owner.headers, params={"on": "2025-12-31"}).json()
    assert before["current"] is None

    owned = client.get(
        f"/api/v1/owners/{b['id']}/properties", headers=owner.headers, params={"on": "2026-04-01"}
    ).json()
    assert owned["items"] == [
        {
            "propertyId": prop["id"],
            "propertyName": prop["name"],
            "basisPoints": 7500,
            "effectiveFrom": "2026-03-01",
        }
    ]
    # an owner who holds (or held) shares cannot be deleted
    assert_problem(client.delete(f"/api/v1/owners/{b['id']}", headers=owner.headers), 409)
    viewer = add_member(client, owner, "viewer")
    assert client.get(path, headers=viewer.headers).status_code == 200
    assert_problem(
        client.put(
            path,
            headers=viewer.headers,
            json={
                "effectiveFrom": "2026-05-01",
                "shares": [{"ownerId": a["id"], "basisPoints": 10000}],
            },
        ),
        403,
    )


def test_bad_share_sets_are_422_and_change_nothing(client: TestClient[Any], owner: Account) -> None:
    prop = create_property(client, owner)
    a, b = create_owner(client, owner), create_owner(client, owner)
    path = f"/api/v1/properties/{prop['id']}/ownership"
    put_shares(client, owner, prop["id"], "2026-01-01", [(a["id"], 10000)])
    before = client.get(path, headers=owner.headers).json()

    def share(o: dict[str, Any], points: Any) -> dict[str, Any]:
        return {"ownerId": o["id"], "basisPoints": points}

    bad: list[Any] = [
        {"effectiveFrom": "2026-01-01", "shares": [share(a, 6000), share(b, 5000)]},  # over
        {"effectiveFrom": "2026-01-01", "shares": [share(a, 6000), share(b, 3999)]},  # under
        {"effectiveFrom": "2026-01-01", "shares": [share(a, 5000), share(a, 5000)]},  # twice
        {"effectiveFrom": "2026-01-01", "shares": [share(a, 0), share(b, 10000)]},
        {"effectiveFrom": "2026-01-01", "shares": [share(a, -1), share(b, 10001)]},
        {"effectiveFrom": "2026-01-01", "shares": [share(a, 5000.5), share(b, 4999.5)]},
        {"effectiveFrom": "2026-01-01", "shares": [share(a, "10000")]},
        {"effectiveFrom": "2026-01-01", "shares": []},
        {"effectiveFrom": "2026-02-30", "shares": [share(a, 10000)]},
        {"effectiveFrom": 20260101, "shares": [share(a, 10000)]},
        {"shares": [share(a, 10000)]},
        {"effectiveFrom": "2026-01-01", "shares": [{"ownerId": "nope", "basisPoints": 10000}]},
        {"effectiveFrom": "2026-01-01", "shares": [share(a, 10000)], "extra": 1},
    ]
    for body in bad:
        assert_problem(client.put(path, headers=owner.headers, json=body), 422)
    missing = {
        "effectiveFrom": "2026-01-01",
        "shares": [{"ownerId": str(uuid.uuid4()), "basisPoints": 10000}],
    }
    assert_problem(client.put(path, headers=owner.headers, json=missing), 404)
    assert client.get(path, headers=owner.headers).json() == before


def test_another_organizations_owners_and_properties_are_404(
    client: TestClient[Any], owner: Account
) -> None:
    other = register(client, organization="Elsewhere")
    theirs = create_owner(client, other)
    their_prop = create_property(client, other)
    mine = create_owner(client, owner)
    my_prop = create_property(client, owner)
    paths = [
        ("GET", f"/api/v1/owners/{theirs['id']}", None),
        ("PATCH", f"/api/v1/owners/{theirs['id']}", {"phone": "1"}),
        ("DELETE", f"/api/v1/owners/{theirs['id']}", None),
        ("GET", f"/api/v1/owners/{theirs['id']}/properties", None),
        ("GET", f"/api/v1/owners/{theirs['id']}/payouts", None),
        ("POST", f"/api/v1/owners/{theirs['id']}/payouts", {"amount": 100, "paidOn": "2026-01-01"}),
        ("GET", f"/api/v1/owners/{theirs['id']}/statements/2026-01", None),
        ("GET", f"/api/v1/properties/{their_prop['id']}/ownership", None),
        (
            "PUT",
            f"/api/v1/properties/{their_prop['id']}/ownership",
            {
                "effectiveFrom": "2026-01-01",
                "shares": [{"ownerId": mine["id"], "basisPoints": 10000}],
            },
        ),
        (
            "PUT",  # my property, their owner
            f"/api/v1/properties/{my_prop['id']}/ownership",
            {
                "effectiveFrom": "2026-01-01",
                "shares": [{"ownerId": theirs["id"], "basisPoints": 10000}],
            },
        ),
    ]
    for method, path, body in paths:
        assert_problem(client.request(method, path, headers=owner.headers, json=body), 404)
    assert client.get(f"/api/v1/owners/{theirs['id']}", headers=other.headers).status_code == 200
    assert (
        client.get(f"/api/v1/properties/{my_prop['id']}/ownership", headers=owner.headers).json()[
            "history"
        ]
        == []
    )
    assert (
        client.get(
            f"/api/v1/properties/{their_prop['id']}/ownership", headers=other.headers
        ).json()["history"]
        == []
    )


def test_management_fee_is_set_through_the_property(
    client: TestClient[Any], owner: Account
) -> None:
    prop = create_property(client, owner, managementFee={"kind": "flat", "amount": 15000})
    assert prop["managementFee"] == {"kind": "flat", "amount": 15000}
    path = f"/api/v1/properties/{prop['id']}"
    for fee in (
        {"kind": "percent", "amount": 10001},
        {"kind": "percent", "amount": 0},
        {"kind": "flat", "amount": -5},
        {"kind": "flat", "amount": 12.5},
        {"kind": "flat", "amount": "100"},
        {"kind": "bribe", "amount": 100},
        {"kind": "flat"},
    ):
        assert_problem(client.patch(path, headers=owner.headers, json={"managementFee": fee}), 422)
    assert client.get(path, headers=owner.headers).json()["managementFee"] == {
        "kind": "flat",
        "amount": 15000,
    }
    changed = client.patch(
        path, headers=owner.headers, json={"managementFee": {"kind": "percent", "amount": 850}}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["managementFee"] == {"kind": "percent", "amount": 850}
    listed = client.get("/api/v1/properties", headers=owner.headers).json()["items"]
    assert next(p for p in listed if p["id"] == prop["id"])["managementFee"]["amount"] == 850
    removed = client.patch(path, headers=owner.headers, json={"managementFee": None})
    assert removed.json()["managementFee"] is None


def test_payouts_are_idempotent_listed_and_reversed_once(
    client: TestClient[Any], owner: Account
) -> None:
    o = create_owner(client, owner)
    path = f"/api/v1/owners/{o['id']}/payouts"
    headers = {**owner.headers, **key()}
    body = {"amount": 50000, "paidOn": "2026-02-01", "reference": "TX-9"}
    first = client.post(path, headers=headers, json=body)
    assert first.status_code == 201, first.text
    again = client.post(path, headers=headers, json=body)
    assert again.status_code == 201
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json()["id"] == first.json()["id"]
    for bad in (
        {"amount": 0, "paidOn": "2026-02-01"},
        {"amount": -100, "paidOn": "2026-02-01"},
        {"amount": 10.5, "paidOn": "2026-02-01"},
        {"amount": "100", "paidOn": "2026-02-01"},
        {"amount": 100},
        {"amount": 100, "paidOn": "yesterday"},
        {"amount": 100, "paidOn": "2026-02-01", "reversesId": first.json()["id"]},
    ):
        assert_problem(client.post(path, headers=owner.headers, json=bad), 422)
    listed = client.get(path, headers=owner.headers).json()["items"]
    assert [p["id"] for p in listed] == [first.json()["id"]]

    reverse = f"{path}/{first.json()['id']}/reverse"
    undone = client.post(reverse, headers=owner.headers, json={"paidOn": "2026-02-03"})
    assert undone.status_code == 201, undone.text
    assert undone.json()["amount"] == -50000
    assert undone.json()["reversesId"] == first.json()["id"]
    assert_problem(client.post(reverse, headers=owner.headers), 409)
    assert_problem(client.post(f"{path}/{undone.json()['id']}/reverse", headers=owner.headers), 409)
    assert_problem(client.post(f"{path}/{uuid.uuid4()}/reverse", headers=owner.headers), 404)
    other = create_owner(client, owner)
    assert_problem(
        client.post(
            f"/api/v1/owners/{other['id']}/payouts/{first.json()['id']}/reverse",
            headers=owner.headers,
        ),
        404,
    )
    assert len(client.get(path, headers=owner.headers).json()["items"]) == 2
    # an owner who was paid cannot be deleted
    assert_problem(client.delete(f"/api/v1/owners/{o['id']}", headers=owner.headers), 409)
    staff = add_member(client, owner, "staff")
    assert_problem(client.post(path, headers=staff.headers, json=body), 403)
    assert client.get(path, headers=staff.headers).status_code == 200
