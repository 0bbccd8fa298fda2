"""A request whose handler fails ends its unit of work inside the request: nothing is left
suspended for the garbage collector to close later in a task that races the write boundary
(which logged IllegalStateChangeError, "Task exception was never retrieved", on every refused
write)."""

from __future__ import annotations

import gc
import logging
import uuid
from typing import Any

import pytest
from litestar.testing import TestClient

from support import Account, add_member, create_property

MISSING = str(uuid.UUID(int=0x4000_8000_0000_0000_0000))


def test_refused_reads_and_writes_leave_nothing_for_the_garbage_collector(
    client: TestClient[Any], owner: Account, caplog: pytest.LogCaptureFixture
) -> None:
    manager = add_member(client, owner, "manager")
    prop = create_property(client, owner)
    made = client.post(
        "/api/v1/api-keys", headers=owner.headers, json={"name": "Owner's", "role": "viewer"}
    )
    assert made.status_code == 201, made.text
    caplog.set_level(logging.ERROR, logger="asyncio")
    refused = [
        # the service refuses after reading the row for update: a manager revokes the owner's key
        ("DELETE", f"/api/v1/api-keys/{made.json()['id']}", manager, None, 403),
        ("PATCH", f"/api/v1/properties/{MISSING}", owner, {"name": "x"}, 404),
        ("DELETE", f"/api/v1/properties/{MISSING}", owner, None, 404),
        ("GET", f"/api/v1/properties/{MISSING}", owner, None, 404),
        ("POST", "/api/v1/maintenance-requests", owner, {"propertyId": MISSING, "title": "x"}, 422),
    ]
    for method, path, account, body, status in refused:
        kwargs: dict[str, Any] = {"json": body} if body is not None else {}
        response = client.request(method, path, headers=account.headers, **kwargs)
        assert response.status_code == status, response.text
    gc.collect()
    leftovers = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert leftovers == []
    # ... and the database is free for the next write (nothing kept a transaction open).
    renamed = client.patch(
        f"/api/v1/properties/{prop['id']}", headers=owner.headers, json={"name": "After"}
    )
    assert renamed.status_code == 200, renamed.text
