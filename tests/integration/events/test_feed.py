"""GET /api/v1/events: one event per committed change, in commit order, per organization."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import func, select

from conftest import Database
from haven.config import load_settings
from haven.db.base import utcnow
from haven.db.engine import WRITE_OPTION, create_engine
from haven.events.service import purge_expired
from haven.models import Event, Tenant
from haven.uow import catalog, create_sessionmaker
from support import Account, add_member, assert_problem, create_property, create_tenant, register
from support_events import feed_page, read_all
from support_leases import active_lease, charge


def test_each_change_has_one_event_with_a_snapshot(client: TestClient[Any], owner: Account) -> None:
    events, _ = read_all(client, owner)
    assert [e["type"] for e in events] == [
        "organization.created",
        "membership.created",
    ], events
    tenant = create_tenant(client, owner, firstName="Ada")
    patched = client.patch(
        f"/api/v1/tenants/{tenant['id']}", headers=owner.headers, json={"firstName": "Grace"}
    )
    assert patched.status_code == 200, patched.text
    assert (
        client.delete(f"/api/v1/tenants/{tenant['id']}", headers=owner.headers).status_code == 204
    )
    events, _ = read_all(client, owner)
    tail = events[2:]
    assert [e["type"] for e in tail] == ["tenant.created", "tenant.updated", "tenant.deleted"]
    assert [e["position"] for e in events] == list(range(1, len(events) + 1))
    assert {e["resourceId"] for e in tail} == {tenant["id"]}
    assert tail[0]["data"]["firstName"] == "Ada"
    assert tail[1]["data"]["firstName"] == "Grace"
    assert tail[0]["organizationId"] == owner.organization_id
    assert all(e["type"] in catalog.EVENT_TYPES for e in events)
    for e in events:
        assert "passwordHash" not in e["data"]


def test_state_transitions_and_ledger_entries_are_named(
    client: TestClient[Any], owner: Account
) -> None:
    _, cursor = read_all(client, owner)
    lease = active_lease(client, owner)
    entry = charge(client, owner, lease["id"], 5000, "2026-12-01")
    reversed_ = client.post(f"/api/v1/ledger-entries/{entry['id']}/reverse", headers=owner.headers)
    assert reversed_.status_code == 201, reversed_.text
    events, _ = read_all(client, owner, cursor)
    types = [e["type"] for e in events]
    assert "lease.activated" in types
    assert types.index("lease.created") < types.index("lease.activated")
    assert types[-2:] == ["ledger_entry.posted", "ledger_entry.reversed"]
    assert events[-1]["data"]["reversesId"] == entry["id"]
    assert events[-2]["data"]["amount"] == 5000
    only, _ = read_all(client, owner, cursor, types="lease.activated,ledger_entry.reversed")
    assert [e["type"] for e in only] == ["lease.activated", "ledger_entry.reversed"]


def test_a_rejected_write_leaves_no_event(client: TestClient[Any], owner: Account) -> None:
    _, cursor = read_all(client, owner)
    prop = create_property(client, owner)
    lease = active_lease(client, owner)
    # Deleting a property with an active lease is refused (409): its transaction rolls back.
    refused = client.delete(f"/api/v1/units/{lease['unitId']}", headers=owner.headers)
    assert refused.status_code == 409, refused.text
    bad = client.post("/api/v1/tenants", headers=owner.headers, json={"firstName": ""})
    assert bad.status_code == 422
    events, _ = read_all(client, owner, cursor)
    assert not [e for e in events if e["type"].endswith(".deleted")]
    assert next(e for e in events if e["resourceId"] == prop["id"])["type"] == "property.created"
    assert [e["position"] for e in events] == list(
        range(events[0]["position"], events[0]["position"] + len(events))
    )


def test_feeds_are_isolated_and_for_managers(client: TestClient[Any], owner: Account) -> None:
    other = register(client, organization="Other Homes")
    create_tenant(client, other)
    mine, _ = read_all(client, owner)
    theirs, _ = read_all(client, other)
    assert {e["organizationId"] for e in mine} == {owner.organization_id}
    assert {e["organizationId"] for e in theirs} == {other.organization_id}
    assert not {e["id"] for e in mine} & {e["id"] for e in theirs}
    for role in ("viewer", "staff"):
        member = add_member(client, owner, role)
        assert_problem(client.get("/api/v1/events", headers=member.headers), 403, "forbidden")
    manager = add_member(client, owner, "manager")
    assert client.get("/api/v1/events", headers=manager.headers).status_code == 200
    assert_problem(client.get("/api/v1/events"), 401)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"after": "-1"}, "after"),
        ({"after": "abc"}, "after"),
        ({"after": "1" * 19}, "after"),
        ({"after": "999999"}, "after"),
        ({"types": "lease.exploded"}, "types"),
        ({"types": "LEASE"}, "types"),
        ({"types": "lease.created,,"}, "types"),
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "x"}, "limit"),
    ],
)
def test_bad_feed_queries_are_422(
    client: TestClient[Any], owner: Account, params: dict[str, str], field: str
) -> None:
    response = client.get("/api/v1/events", headers=owner.headers, params=params)
    body = assert_problem(response, 422)
    assert field in response.text, body


def test_short_page_moves_the_cursor_to_the_feed_head(
    client: TestClient[Any], owner: Account
) -> None:
    create_tenant(client, owner)
    page = feed_page(client, owner, types="lease.activated")
    assert page["items"] == []
    assert not page["hasMore"]
    everything, head = read_all(client, owner)
    assert page["nextCursor"] == head == str(everything[-1]["position"])
    again = feed_page(client, owner, head)
    assert again == {"items": [], "nextCursor": head, "hasMore": False}


async def _age_events(url: str, organization_id: uuid.UUID, days: int) -> None:
    engine = create_engine(load_settings({"DATABASE_URL": url}))
    try:
        maker = create_sessionmaker(engine.execution_options(**{WRITE_OPTION: True}))
        async with maker() as session, session.begin():
            events = (
                await session.execute(
                    select(Event)
                    .where(Event.organization_id == organization_id)
                    .order_by(Event.position)  # "first" is the feed's first, not the heap's
                )
            ).scalars()
            first = True
            for event in events:
                if first or event.type != "tenant.created":
                    event.occurred_at = utcnow() - timedelta(days=days)
                first = False
    finally:
        await engine.dispose()


def _purge(url: str, days: int) -> int:
    async def run() -> int:
        engine = create_engine(load_settings({"DATABASE_URL": url}))
        try:
            maker = create_sessionmaker(engine.execution_options(**{WRITE_OPTION: True}))
            async with maker() as session, session.begin():
                return await purge_expired(session, days)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_a_cursor_past_retention_is_410(
    client: TestClient[Any], owner: Account, database: Database
) -> None:
    create_tenant(client, owner)
    before, _ = read_all(client, owner)
    asyncio.run(_age_events(database.url, uuid.UUID(owner.organization_id), 31))
    assert _purge(database.url, 30) >= 2
    body = assert_problem(
        client.get("/api/v1/events", headers=owner.headers, params={"after": "1"}),
        410,
        "cursor-expired",
    )
    assert "retention" in body["detail"]
    kept, _ = read_all(client, owner)
    assert [e["type"] for e in kept] == ["tenant.created"]
    assert kept[0]["position"] == before[-1]["position"]
    # A cursor at the purge line is still good: nothing after it was lost.
    assert feed_page(client, owner, str(before[-2]["position"]))["items"] == kept


async def _slow_writer(
    url: str, organization_id: uuid.UUID, flushed: asyncio.Event, go: asyncio.Event
) -> None:
    engine = create_engine(load_settings({"DATABASE_URL": url}))
    try:
        maker = create_sessionmaker(engine.execution_options(**{WRITE_OPTION: True}))
        async with maker() as session:
            session.add(Tenant(organization_id=organization_id, first_name="Slow", last_name="One"))
            await session.flush()  # its row is written; the transaction stays open
            flushed.set()
            await go.wait()
            await session.commit()
    finally:
        await engine.dispose()


def test_a_transaction_that_commits_late_is_not_skipped(
    client: TestClient[Any], owner: Account, database: Database
) -> None:
    """Started first, committed last: its event comes after what committed meanwhile."""
    if database.backend == "sqlite":
        pytest.skip("SQLite serializes writers (BEGIN IMMEDIATE): no write can commit meanwhile")
    _, cursor = read_all(client, owner)

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        flushed, go = asyncio.Event(), asyncio.Event()
        slow = asyncio.create_task(
            _slow_writer(database.url, uuid.UUID(owner.organization_id), flushed, go)
        )
        await asyncio.wait_for(flushed.wait(), 30)
        fast = await asyncio.to_thread(create_tenant, client, owner, firstName="Fast")
        seen_first, after = await asyncio.to_thread(read_all, client, owner, cursor)
        go.set()
        await asyncio.wait_for(slow, 30)
        seen_then, _ = await asyncio.to_thread(read_all, client, owner, after)
        assert [e["resourceId"] for e in seen_first] == [fast["id"]]
        return seen_first, seen_then

    first, then = asyncio.run(scenario())
    assert [e["data"]["firstName"] for e in then] == ["Slow"]
    assert then[0]["position"] == first[0]["position"] + 1


def test_events_and_changes_match_one_to_one(
    client: TestClient[Any], owner: Account, database: Database
) -> None:
    """Every tenant row has exactly one tenant.created event (no change without its event)."""
    for _ in range(5):
        create_tenant(client, owner)

    async def count() -> tuple[int, int]:
        engine = create_engine(load_settings({"DATABASE_URL": database.url}))
        try:
            async with engine.connect() as conn:
                org = uuid.UUID(owner.organization_id)
                rows = await conn.scalar(
                    select(func.count()).select_from(Tenant).where(Tenant.organization_id == org)
                )
                events = await conn.scalar(
                    select(func.count(func.distinct(Event.resource_id))).where(
                        Event.organization_id == org, Event.type == "tenant.created"
                    )
                )
                return int(rows or 0), int(events or 0)
        finally:
            await engine.dispose()

    assert asyncio.run(count()) == (5, 5)


def test_openapi_has_an_example_for_every_event_type(client: TestClient[Any]) -> None:
    doc = client.get("/openapi.json").json()
    media = doc["paths"]["/api/v1/events"]["get"]["responses"]["200"]["content"]["application/json"]
    assert set(media["examples"]) == set(catalog.EVENT_TYPES)
    for name, example in media["examples"].items():
        assert example["value"]["items"][0]["type"] == name


def test_members_organization_and_maintenance_transitions_have_events(
    client: TestClient[Any], owner: Account
) -> None:
    from support_maintenance import create_request, transition

    _, cursor = read_all(client, owner)
    member = add_member(client, owner, "staff")
    promoted = client.patch(
        f"/api/v1/members/{member.user_id}", headers=owner.headers, json={"role": "manager"}
    )
    assert promoted.status_code == 200, promoted.text
    renamed = client.patch("/api/v1/organization", headers=owner.headers, json={"name": "New"})
    assert renamed.status_code == 200, renamed.text
    prop = create_property(client, owner)
    request = create_request(client, owner, prop["id"])
    assert transition(client, owner, request["id"], "in_progress").status_code == 200
    assert transition(client, owner, request["id"], "resolved").status_code == 200
    events, _ = read_all(client, owner, cursor)
    types = [e["type"] for e in events]
    assert types[:3] == ["membership.created", "membership.updated", "organization.updated"]
    assert events[1]["data"]["role"] == "manager"
    assert events[2]["data"]["name"] == "New"
    assert types[-2:] == ["maintenance_request.started", "maintenance_request.resolved"]
    assert all("password" not in json.dumps(e).lower() for e in events)
