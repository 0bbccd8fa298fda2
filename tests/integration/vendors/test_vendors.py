"""Vendors: CRUD, filters, insurance status, roles, isolation, and no delete while referenced."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from support import add_member, assert_problem, create_property, register
from support_portfolio import app_client
from support_vendors import (
    VENDORS,
    create_bill,
    create_vendor,
    create_work_order,
    days_from_today,
    everything,
    listing,
    today,
)


@pytest.fixture(scope="module")
def world(database: Any, valkey: Any, secret_key: str) -> Iterator[dict[str, Any]]:
    with app_client(database, valkey, secret_key, "vendors") as client:
        owner = register(client, organization="Vendor Homes")
        yield {
            "client": client,
            "owner": owner,
            "staff": add_member(client, owner, "staff"),
            "viewer": add_member(client, owner, "viewer"),
            "other": register(client, organization="Elsewhere"),
            "property": create_property(client, owner),
        }


def test_create_show_patch_with_if_match(world: dict[str, Any]) -> None:
    client, staff = world["client"], world["staff"]
    vendor = create_vendor(
        client,
        staff,
        name="  Bright Sparks  ",
        trade="electrical",
        contactName="Eddie",
        email="eddie@example.com",
        phone="+1 555 0100",
        payoutReference="acct-42",
        notes="Call first",
    )
    assert vendor["name"] == "Bright Sparks"
    assert vendor["insured"] is True
    shown = client.get(f"{VENDORS}/{vendor['id']}", headers=world["viewer"].headers)
    assert shown.status_code == 200
    assert shown.headers["etag"] == '"1"'
    stale = client.patch(
        f"{VENDORS}/{vendor['id']}",
        headers={**staff.headers, "If-Match": '"7"'},
        json={"name": "Nope"},
    )
    assert_problem(stale, 412, "version-mismatch")
    changed = client.patch(
        f"{VENDORS}/{vendor['id']}",
        headers={**staff.headers, "If-Match": '"1"'},
        json={"insuranceExpiresOn": days_from_today(-1), "email": None},
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["insured"] is False
    assert body["email"] is None
    assert body["version"] == 2
    # Insurance that expires today still covers today.
    today_ = client.patch(
        f"{VENDORS}/{vendor['id']}", headers=staff.headers, json={"insuranceExpiresOn": today()}
    )
    assert today_.json()["insured"] is True


def test_list_filters_search_and_pagination(world: dict[str, Any]) -> None:
    client, owner = world["client"], world["owner"]
    org = register(client, organization="Lister")
    for i in range(5):
        create_vendor(client, org, name=f"Roofer {i}", trade="roofing")
    create_vendor(
        client, org, name="Lapsed Locks", trade="locksmith", insuranceExpiresOn=days_from_today(-30)
    )
    create_vendor(client, org, name="Never Insured", trade="other", insuranceExpiresOn=None)
    page = client.get(VENDORS, headers=org.headers, params={"limit": 2})
    assert page.status_code == 200
    assert len(page.json()["items"]) == 2
    assert page.json()["nextCursor"]
    everyone = listing(client, org, VENDORS, limit=2)
    assert [v["name"] for v in everyone] == sorted(v["name"] for v in everyone)
    assert len(everyone) == 7
    assert len(listing(client, org, VENDORS, trade="roofing")) == 5
    assert [v["name"] for v in listing(client, org, VENDORS, search="lapsed")] == ["Lapsed Locks"]
    lapsed = {v["name"] for v in listing(client, org, VENDORS, insured="false")}
    assert lapsed == {"Lapsed Locks", "Never Insured"}
    assert len(listing(client, org, VENDORS, insured="true")) == 5
    # Another organization's vendors never show.
    assert all(v["name"] not in lapsed for v in listing(client, owner, VENDORS))


def test_roles(world: dict[str, Any]) -> None:
    client = world["client"]
    body = {"name": "Role Co", "trade": "general", "insuranceExpiresOn": days_from_today(30)}
    assert_problem(client.post(VENDORS, headers=world["viewer"].headers, json=body), 403)
    vendor = create_vendor(client, world["staff"], name="Staff Made")
    assert client.get(VENDORS, headers=world["viewer"].headers).status_code == 200
    assert_problem(
        client.patch(f"{VENDORS}/{vendor['id']}", headers=world["viewer"].headers, json={}), 403
    )
    assert_problem(client.delete(f"{VENDORS}/{vendor['id']}", headers=world["staff"].headers), 403)
    gone = client.delete(f"{VENDORS}/{vendor['id']}", headers=world["owner"].headers)
    assert gone.status_code == 204
    assert_problem(client.get(f"{VENDORS}/{vendor['id']}", headers=world["owner"].headers), 404)


def test_another_organization_sees_404(world: dict[str, Any]) -> None:
    client, other = world["client"], world["other"]
    vendor = create_vendor(client, world["owner"], name="Private Co")
    path = f"{VENDORS}/{vendor['id']}"
    assert_problem(client.get(path, headers=other.headers), 404)
    assert_problem(client.patch(path, headers=other.headers, json={"name": "Mine"}), 404)
    assert_problem(client.delete(path, headers=other.headers), 404)
    assert client.get(path, headers=world["owner"].headers).json()["name"] == "Private Co"


def test_delete_refused_while_referenced(world: dict[str, Any]) -> None:
    client, owner = world["client"], world["owner"]
    prop = world["property"]
    with_order = create_vendor(client, owner, name="Has Orders")
    create_work_order(client, owner, prop["id"], vendorId=with_order["id"])
    with_bill = create_vendor(client, owner, name="Has Bills")
    create_bill(client, owner, with_bill["id"], prop["id"])
    before = everything(client, owner)
    for vendor in (with_order, with_bill):
        response = client.delete(f"{VENDORS}/{vendor['id']}", headers=owner.headers)
        assert_problem(response, 409, "conflict")
    assert everything(client, owner) == before
