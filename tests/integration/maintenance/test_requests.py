"""Maintenance requests: fields, references, roles, the state machine, comments, isolation."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from litestar.testing import TestClient

from support import Account, add_member, assert_problem, create_property, create_unit, register
from support_maintenance import ALLOWED, BASE, PATH_TO, create_request, transition, walk_to

STATUSES = list(PATH_TO)


def _ids(client: TestClient[Any], account: Account, **params: Any) -> list[str]:
    response = client.get(BASE, headers=account.headers, params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    assert {"private", "no-store"} <= {
        part.strip() for part in response.headers["cache-control"].split(",")
    }
    return [item["id"] for item in response.json()["items"]]


def test_create_show_patch_round_trip_across_instances(
    client: TestClient[Any], client_b: TestClient[Any], owner: Account
) -> None:
    prop = create_property(client, owner)
    unit = create_unit(client, owner, prop["id"])
    staff = add_member(client, owner, "staff")

    created = create_request(
        client,
        staff,
        prop["id"],
        unitId=unit["id"],
        title="Boiler makes a noise",
        description="Loud banging at night.\nTenant in 2B.",
        priority="high",
        assigneeId=staff.user_id,
        costEstimate=250_000_000_00,  # over 2**31 minor units: stored exactly
    )
    assert created["status"] == "open"
    assert created["priority"] == "high"
    assert created["unitId"] == unit["id"]
    assert created["assigneeId"] == staff.user_id
    assert created["createdById"] == staff.user_id
    assert created["costEstimate"] == 250_000_000_00
    assert created["costActual"] is None
    assert created["version"] == 1

    shown = client_b.get(f"{BASE}/{created['id']}", headers=owner.headers)
    assert shown.status_code == 200
    assert shown.json() == created
    assert shown.headers["etag"] == '"1"'
    unchanged = client_b.get(
        f"{BASE}/{created['id']}", headers={**owner.headers, "If-None-Match": '"1"'}
    )
    assert unchanged.status_code == 304

    patched = client_b.patch(
        f"{BASE}/{created['id']}",
        headers={**staff.headers, "If-Match": '"1"'},
        json={"costActual": 199_99, "priority": "emergency", "assigneeId": None},
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["costActual"], body["priority"], body["assigneeId"]) == (199_99, "emergency", None)
    assert body["version"] == 2
    assert patched.headers["etag"] == '"2"'

    stale = client.patch(
        f"{BASE}/{created['id']}",
        headers={**staff.headers, "If-Match": '"1"'},
        json={"title": "Lost update"},
    )
    assert_problem(stale, 412, "version-mismatch")
    assert client.get(f"{BASE}/{created['id']}", headers=owner.headers).json() == body


def test_status_cannot_be_patched_only_transitioned(
    client: TestClient[Any], owner: Account
) -> None:
    prop = create_property(client, owner)
    created = create_request(client, owner, prop["id"])
    response = client.patch(
        f"{BASE}/{created['id']}", headers=owner.headers, json={"status": "resolved"}
    )
    problem = assert_problem(response, 422, "validation")
    assert problem["errors"][0]["field"] == "status"
    shown = client.get(f"{BASE}/{created['id']}", headers=owner.headers).json()
    assert shown == created


def test_references_must_belong_to_the_property_and_organization(
    client: TestClient[Any], owner: Account
) -> None:
    prop = create_property(client, owner)
    other_prop = create_property(client, owner, name="Second Block")
    other_unit = create_unit(client, owner, other_prop["id"])
    stranger = register(client, organization="Other Co")
    stranger_prop = create_property(client, stranger)
    stranger_unit = create_unit(client, stranger, stranger_prop["id"])

    cases = [
        ({"propertyId": stranger_prop["id"]}, "propertyId"),
        ({"propertyId": str(uuid.uuid4())}, "propertyId"),
        ({"propertyId": prop["id"], "unitId": other_unit["id"]}, "unitId"),
        ({"propertyId": prop["id"], "unitId": stranger_unit["id"]}, "unitId"),
        ({"propertyId": prop["id"], "assigneeId": stranger.user_id}, "assigneeId"),
        ({"propertyId": prop["id"], "assigneeId": str(uuid.uuid4())}, "assigneeId"),
    ]
    for body, field in cases:
        response = client.post(BASE, headers=owner.headers, json={"title": "Fix it", **body})
        problem = assert_problem(response, 422, "validation")
        assert [e["field"] for e in problem["errors"]] == [field], body

    created = create_request(client, owner, prop["id"])
    for body, field in [
        ({"unitId": other_unit["id"]}, "unitId"),
        ({"propertyId": stranger_prop["id"]}, "propertyId"),
        ({"assigneeId": stranger.user_id}, "assigneeId"),
    ]:
        response = client.patch(f"{BASE}/{created['id']}", headers=owner.headers, json=body)
        problem = assert_problem(response, 422, "validation")
        assert [e["field"] for e in problem["errors"]] == [field], body
    # Moving the request to another property drops a unit that belonged to the old one.
    moved = client.patch(
        f"{BASE}/{created['id']}",
        headers=owner.headers,
        json={"propertyId": other_prop["id"], "unitId": other_unit["id"]},
    )
    assert moved.status_code == 200, moved.text
    assert (moved.json()["propertyId"], moved.json()["unitId"]) == (
        other_prop["id"],
        other_unit["id"],
    )
    back = client.patch(
        f"{BASE}/{created['id']}", headers=owner.headers, json={"propertyId": prop["id"]}
    )
    assert (back.json()["propertyId"], back.json()["unitId"]) == (prop["id"], None)
    assert _ids(client, stranger) == []


@pytest.mark.parametrize("source", STATUSES)
def test_state_machine_every_edge(client: TestClient[Any], owner: Account, source: str) -> None:
    """From each status: every allowed edge answers 200, every other one 409 and changes nothing."""
    prop = create_property(client, owner)
    for target in STATUSES:
        created = create_request(client, owner, prop["id"], title=f"{source} to {target}")
        walk_to(client, owner, created["id"], source)
        before = client.get(f"{BASE}/{created['id']}", headers=owner.headers).json()
        assert before["status"] == source
        response = transition(client, owner, created["id"], target)
        after = client.get(f"{BASE}/{created['id']}", headers=owner.headers).json()
        if (source, target) in ALLOWED:
            assert response.status_code == 200, (source, target, response.text)
            assert response.json()["status"] == target
            assert response.json()["version"] == before["version"] + 1
            assert response.headers["etag"] == f'"{before["version"] + 1}"'
            assert after == response.json()
        else:
            problem = assert_problem(response, 409, "invalid-transition")
            assert source in problem["detail"]
            assert after == before, (source, target)


def test_transition_honours_if_match(client: TestClient[Any], owner: Account) -> None:
    prop = create_property(client, owner)
    created = create_request(client, owner, prop["id"])
    assert_problem(
        transition(client, owner, created["id"], "in_progress", **{"If-Match": '"7"'}),
        412,
        "version-mismatch",
    )
    ok = transition(client, owner, created["id"], "in_progress", **{"If-Match": '"1"'})
    assert ok.status_code == 200
    assert ok.json()["status"] == "in_progress"


def test_list_filters_sorts_and_pages_across_instances(
    client: TestClient[Any], client_b: TestClient[Any], owner: Account
) -> None:
    first = create_property(client, owner)
    second = create_property(client, owner, name="Birch House")
    unit = create_unit(client, owner, first["id"])
    staff = add_member(client, owner, "staff")
    a = create_request(client, owner, first["id"], title="Alpha", priority="low")
    b = create_request(
        client, owner, first["id"], title="Bravo", unitId=unit["id"], assigneeId=staff.user_id
    )
    c = create_request(client, owner, second["id"], title="Charlie", priority="emergency")
    assert transition(client, owner, c["id"], "in_progress").status_code == 200

    assert _ids(client, owner) == [c["id"], b["id"], a["id"]]  # newest first
    assert _ids(client, owner, sort="createdAt") == [a["id"], b["id"], c["id"]]
    assert _ids(client, owner, sort="-title") == [c["id"], b["id"], a["id"]]
    assert _ids(client, owner, status="in_progress") == [c["id"]]
    assert _ids(client, owner, status="open") == [b["id"], a["id"]]
    assert _ids(client, owner, priority="emergency") == [c["id"]]
    assert _ids(client, owner, propertyId=first["id"]) == [b["id"], a["id"]]
    assert _ids(client, owner, unitId=unit["id"]) == [b["id"]]
    assert _ids(client, owner, assigneeId=staff.user_id) == [b["id"]]
    assert _ids(client, owner, search="ALPH") == [a["id"]]
    assert _ids(client, owner, propertyId=str(uuid.uuid4())) == []

    seen: list[str] = []
    cursor = None
    for turn in range(10):
        params: dict[str, Any] = {"limit": 1}
        if cursor:
            params["cursor"] = cursor
        served_by = client if turn % 2 == 0 else client_b
        page = served_by.get(BASE, headers=owner.headers, params=params).json()
        seen.extend(item["id"] for item in page["items"])
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert seen == [c["id"], b["id"], a["id"]]


def test_comments_round_trip_with_the_caller_as_author(
    client: TestClient[Any], client_b: TestClient[Any], owner: Account
) -> None:
    prop = create_property(client, owner)
    created = create_request(client, owner, prop["id"])
    staff = add_member(client, owner, "staff")
    viewer = add_member(client, owner, "viewer")
    path = f"{BASE}/{created['id']}/comments"

    posted = []
    for account, text in [
        (staff, "On my way"),
        (owner, "Thanks!\nKey is at the desk."),
        (staff, "Fixed"),
    ]:
        response = client.post(path, headers=account.headers, json={"body": text})
        assert response.status_code == 201, response.text
        comment = response.json()
        assert comment["authorId"] == account.user_id
        assert comment["body"] == text
        assert comment["requestId"] == created["id"]
        assert comment["createdAt"].endswith("Z")
        posted.append(comment)
    assert posted[0]["authorName"] == "A staff"

    listed = client_b.get(path, headers=viewer.headers)
    assert listed.status_code == 200
    assert listed.json() == {"items": posted, "nextCursor": None}

    first = client_b.get(path, headers=viewer.headers, params={"limit": 2}).json()
    rest = client.get(
        path, headers=viewer.headers, params={"limit": 2, "cursor": first["nextCursor"]}
    ).json()
    assert first["items"] + rest["items"] == posted
    assert rest["nextCursor"] is None
    newest = client.get(path, headers=viewer.headers, params={"sort": "-createdAt"}).json()
    assert newest["items"] == posted[::-1]


def test_viewer_reads_but_cannot_write(client: TestClient[Any], owner: Account) -> None:
    prop = create_property(client, owner)
    created = create_request(client, owner, prop["id"])
    viewer = add_member(client, owner, "viewer")
    staff = add_member(client, owner, "staff")
    rid = created["id"]

    assert client.get(BASE, headers=viewer.headers).status_code == 200
    assert client.get(f"{BASE}/{rid}", headers=viewer.headers).status_code == 200
    assert client.get(f"{BASE}/{rid}/comments", headers=viewer.headers).status_code == 200
    writes = [
        client.post(BASE, headers=viewer.headers, json={"propertyId": prop["id"], "title": "x"}),
        client.patch(f"{BASE}/{rid}", headers=viewer.headers, json={"title": "x"}),
        transition(client, viewer, rid, "in_progress"),
        client.post(f"{BASE}/{rid}/comments", headers=viewer.headers, json={"body": "x"}),
        client.delete(f"{BASE}/{rid}", headers=viewer.headers),
        client.delete(f"{BASE}/{rid}", headers=staff.headers),  # staff cancel, never erase
    ]
    for response in writes:
        assert_problem(response, 403, "forbidden")
    assert _ids(client, owner) == [rid]
    assert client.get(f"{BASE}/{rid}", headers=owner.headers).json() == created
    assert client.get(f"{BASE}/{rid}/comments", headers=owner.headers).json()["items"] == []
    assert_problem(client.get(BASE), 401, "not-signed-in")


def test_another_organizations_request_is_not_found_and_never_listed(
    client: TestClient[Any], client_b: TestClient[Any], owner: Account
) -> None:
    prop = create_property(client, owner)
    mine = create_request(client, owner, prop["id"])
    intruder = register(client_b, organization="Intruders Ltd")
    intruder_prop = create_property(client_b, intruder)
    theirs = create_request(client_b, intruder, intruder_prop["id"])
    rid = mine["id"]

    attempts = [
        client_b.get(f"{BASE}/{rid}", headers=intruder.headers),
        client_b.patch(f"{BASE}/{rid}", headers=intruder.headers, json={"title": "pwned"}),
        transition(client_b, intruder, rid, "cancelled"),
        client_b.get(f"{BASE}/{rid}/comments", headers=intruder.headers),
        client_b.post(f"{BASE}/{rid}/comments", headers=intruder.headers, json={"body": "hi"}),
        client_b.delete(f"{BASE}/{rid}", headers=intruder.headers),
    ]
    for response in attempts:
        assert_problem(response, 404, "not-found")
    assert _ids(client_b, intruder) == [theirs["id"]]
    assert _ids(client, owner) == [rid]
    assert _ids(client_b, intruder, propertyId=prop["id"]) == []
    assert client.get(f"{BASE}/{rid}", headers=owner.headers).json() == mine
    assert client.get(f"{BASE}/{rid}/comments", headers=owner.headers).json()["items"] == []


def test_manager_deletes_a_request_with_its_comments(
    client: TestClient[Any], client_b: TestClient[Any], owner: Account
) -> None:
    prop = create_property(client, owner)
    keep = create_request(client, owner, prop["id"], title="Keep me")
    gone = create_request(client, owner, prop["id"], title="Erase me")
    manager = add_member(client, owner, "manager")
    comment = client.post(
        f"{BASE}/{gone['id']}/comments", headers=owner.headers, json={"body": "x"}
    )
    assert comment.status_code == 201

    assert_problem(
        client.delete(f"{BASE}/{gone['id']}", headers={**manager.headers, "If-Match": '"5"'}),
        412,
        "version-mismatch",
    )
    assert client.delete(f"{BASE}/{gone['id']}", headers=manager.headers).status_code == 204
    assert_problem(client_b.get(f"{BASE}/{gone['id']}", headers=owner.headers), 404, "not-found")
    assert_problem(
        client_b.get(f"{BASE}/{gone['id']}/comments", headers=owner.headers), 404, "not-found"
    )
    assert_problem(client_b.delete(f"{BASE}/{gone['id']}", headers=owner.headers), 404)
    assert _ids(client_b, owner) == [keep["id"]]
