"""Audit events: every write records who, what, when, on which instance and in which request."""

from __future__ import annotations

import uuid
from typing import Any

from litestar.testing import TestClient

from support import (
    Account,
    add_member,
    assert_problem,
    create_property,
    create_tenant,
    create_unit,
    register,
)
from support_leases import draft_lease, key, pay
from support_maintenance import BASE, audit_events, create_request, transition

AUDIT = "/api/v1/audit-events"


def _rid(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}"


def _send(
    client: TestClient[Any], account: Account, method: str, path: str, request_id: str, **kw: Any
) -> Any:
    headers = {**account.headers, "X-Request-Id": request_id}
    response = client.request(method, path, headers=headers, **kw)
    assert response.status_code < 300, response.text
    assert response.headers["x-request-id"] == request_id
    return response


def _only(events: list[dict[str, Any]], action: str) -> dict[str, Any]:
    matching = [e for e in events if e["action"] == action]
    assert len(matching) == 1, (action, events)
    return matching[0]


def test_writes_on_two_instances_record_actor_action_instance_and_request_id(
    client: TestClient[Any], client_b: TestClient[Any], owner: Account
) -> None:
    staff = add_member(client, owner, "staff")
    expected: list[tuple[str, Account, str, str]] = []  # action, actor, instance, request id

    def write(
        instance: TestClient[Any], actor: Account, method: str, path: str, action: str, **kw: Any
    ) -> Any:
        rid = _rid(action.replace(".", "-"))
        response = _send(instance, actor, method, path, rid, **kw)
        inst = response.headers["x-instance-id"]
        expected.append((action, actor, inst, rid))
        return response

    prop = write(
        client,
        owner,
        "POST",
        "/api/v1/properties",
        "property.created",
        json={
            "name": "Audit Court",
            "type": "residential",
            "address": {"line1": "1 Ledger Lane", "city": "Springfield", "country": "US"},
        },
    ).json()
    write(
        client_b,
        owner,
        "PATCH",
        f"/api/v1/properties/{prop['id']}",
        "property.updated",
        json={"name": "Audit Court II"},
    )
    unit = write(
        client,
        owner,
        "POST",
        f"/api/v1/properties/{prop['id']}/units",
        "unit.created",
        json={"label": "A-1", "marketRent": 90000},
    ).json()
    write(
        client_b,
        owner,
        "PATCH",
        f"/api/v1/units/{unit['id']}",
        "unit.updated",
        json={"bedrooms": 3},
    )
    tenant = write(
        client_b,
        owner,
        "POST",
        "/api/v1/tenants",
        "tenant.created",
        json={"firstName": "Ada", "lastName": "Audit"},
    ).json()
    write(
        client,
        owner,
        "PATCH",
        f"/api/v1/tenants/{tenant['id']}",
        "tenant.updated",
        json={"notes": "prefers email"},
    )
    request = write(
        client_b,
        staff,
        "POST",
        BASE,
        "maintenance_request.created",
        json={"propertyId": prop["id"], "unitId": unit["id"], "title": "Drip"},
    ).json()
    write(
        client,
        staff,
        "PATCH",
        f"{BASE}/{request['id']}",
        "maintenance_request.updated",
        json={"priority": "high", "costEstimate": 4500},
    )
    write(
        client_b,
        staff,
        "POST",
        f"{BASE}/{request['id']}/transition",
        "maintenance_request.started",
        json={"to": "in_progress"},
    )
    write(client, owner, "DELETE", f"{BASE}/{request['id']}", "maintenance_request.deleted")
    write(client, owner, "DELETE", f"/api/v1/tenants/{tenant['id']}", "tenant.deleted")
    write(client_b, owner, "DELETE", f"/api/v1/units/{unit['id']}", "unit.deleted")
    write(client, owner, "DELETE", f"/api/v1/properties/{prop['id']}", "property.deleted")

    entity_of = {
        "property": prop["id"],
        "unit": unit["id"],
        "tenant": tenant["id"],
        "maintenance_request": request["id"],
    }
    events = audit_events(client_b, owner)
    for action, actor, instance, rid in expected:
        entity_type = action.split(".")[0]
        event = _only([e for e in events if e["entityId"] == entity_of[entity_type]], action)
        assert event["entityType"] == entity_type
        assert event["actorId"] == actor.user_id, action
        assert event["actorEmail"] == actor.email
        assert event["instanceId"] == instance, action
        assert event["requestId"] == rid, action
        assert event["at"].endswith("Z")
    assert {"api-1", "api-2"} <= {instance for _, _, instance, _ in expected}

    by_entity = {e["action"]: e for e in events if e["entityId"] == prop["id"]}
    assert by_entity["property.updated"]["changes"] == ["name"]
    assert "addressLine1" in by_entity["property.created"]["changes"]
    req_events = {e["action"]: e for e in events if e["entityId"] == request["id"]}
    assert req_events["maintenance_request.updated"]["changes"] == ["costEstimate", "priority"]
    assert req_events["maintenance_request.started"]["changes"] == ["status"]


def test_list_is_newest_first_filters_and_pages(
    client: TestClient[Any], client_b: TestClient[Any], owner: Account
) -> None:
    manager = add_member(client, owner, "manager")
    props = [create_property(client, manager, name=f"P{i}") for i in range(3)]
    tenant = create_tenant(client, owner)

    created = audit_events(client, owner, action="property.created")
    assert [e["entityId"] for e in created] == [p["id"] for p in reversed(props)]
    assert all(e["actorId"] == manager.user_id for e in created)
    assert [e["entityId"] for e in audit_events(client, owner, entityType="tenant")] == [
        tenant["id"]
    ]
    by_manager = audit_events(client, owner, actorId=manager.user_id)
    assert {e["entityId"] for e in by_manager} == {p["id"] for p in props}
    assert audit_events(client, owner, entityId=props[1]["id"])[0]["entityId"] == props[1]["id"]
    assert audit_events(client, owner, entityId=str(uuid.uuid4())) == []

    everything = audit_events(client, owner)
    ats = [e["at"] for e in everything]
    assert ats == sorted(ats, reverse=True)
    paged: list[dict[str, Any]] = []
    cursor = None
    for turn in range(len(everything) + 2):
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        served_by = client if turn % 2 == 0 else client_b
        page = served_by.get(AUDIT, headers=manager.headers, params=params).json()
        paged.extend(page["items"])
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert paged == everything


def test_sign_up_and_members_are_audited_without_secrets(client: TestClient[Any]) -> None:
    owner = register(client, organization="Fresh Start")
    signup = audit_events(client, owner)
    org_event = _only(signup, "organization.created")
    assert org_event["entityId"] == owner.organization_id
    user_event = _only(signup, "user.created")
    assert user_event["entityId"] == owner.user_id
    assert user_event["actorId"] == owner.user_id  # who signed up did it
    assert set(user_event["changes"]) == {"email", "name"}

    viewer = add_member(client, owner, "viewer")
    member_event = _only(audit_events(client, owner, entityId=viewer.user_id), "user.created")
    assert member_event["actorId"] == owner.user_id
    for event in audit_events(client, owner):
        assert not any("password" in field.lower() for field in event["changes"]), event


def test_refused_writes_record_nothing(client: TestClient[Any], owner: Account) -> None:
    prop = create_property(client, owner)
    request = create_request(client, owner, prop["id"])
    before = audit_events(client, owner)

    assert_problem(transition(client, owner, request["id"], "closed"), 409, "invalid-transition")
    assert_problem(
        client.patch(f"/api/v1/properties/{prop['id']}", headers=owner.headers, json={"name": ""}),
        422,
    )
    assert_problem(
        client.patch(
            f"{BASE}/{request['id']}",
            headers={**owner.headers, "If-Match": '"99"'},
            json={"title": "stale"},
        ),
        412,
    )
    assert audit_events(client, owner) == before


def test_audit_list_is_isolated_and_for_owners_and_managers_only(
    client: TestClient[Any], client_b: TestClient[Any], owner: Account
) -> None:
    prop = create_property(client, owner)
    unit = create_unit(client, owner, prop["id"])
    other = register(client_b, organization="Other Org")
    create_property(client_b, other, name="Their Place")

    mine = {e["entityId"] for e in audit_events(client, owner)}
    theirs = {e["entityId"] for e in audit_events(client_b, other)}
    assert {prop["id"], unit["id"], owner.organization_id} <= mine
    assert not mine & theirs
    assert audit_events(client_b, other, entityId=prop["id"]) == []

    manager = add_member(client, owner, "manager")
    assert client.get(AUDIT, headers=manager.headers).status_code == 200
    for role in ("staff", "viewer"):
        member = add_member(client, owner, role)
        assert_problem(client.get(AUDIT, headers=member.headers), 403, "forbidden")
    assert_problem(client.get(AUDIT), 401, "not-signed-in")


def test_leases_and_ledger_are_recorded_without_anyone_calling_the_audit(
    client: TestClient[Any], client_b: TestClient[Any], owner: Account
) -> None:
    """Domains written by others get audited too: the listener sees every ORM write."""
    lease = draft_lease(client, owner)
    rid = _rid("activate")
    _send(client_b, owner, "POST", f"/api/v1/leases/{lease['id']}/activate", rid)
    activated = _only(audit_events(client, owner, entityId=lease["id"]), "lease.activated")
    assert (activated["instanceId"], activated["requestId"]) == ("api-2", rid)
    assert "status" in activated["changes"]
    unit_events = audit_events(client, owner, entityId=lease["unitId"], action="unit.updated")
    assert unit_events, "the unit turning occupied is recorded"

    idem = {**key(), "X-Request-Id": _rid("pay")}
    first = pay(client, owner, lease["id"], 50_00, headers=idem)
    assert first.status_code == 201, first.text
    replay = pay(client_b, owner, lease["id"], 50_00, headers=idem)
    assert replay.status_code == 201
    assert replay.headers.get("idempotent-replayed") == "true"
    payments = [
        e
        for e in audit_events(client, owner, entityType="ledger_entry")
        if e["entityId"] == first.json()["id"]
    ]
    assert [e["action"] for e in payments] == ["ledger_entry.created"]
    assert payments[0]["requestId"] == idem["X-Request-Id"]
    assert not [e for e in audit_events(client, owner) if e["entityType"].startswith("idempot")]
