"""The tail statement is compiled once per shape, not once per request.

SQLAlchemy caches a statement's compiled form by its cache key; a multi-row
`values([...])` has none (it was compiled on every keyed POST: half of its CPU), so the
tail writes one single-row INSERT per row. Two requests that write the same numbers of
rows, with other values, must share one cache key.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from haven.models import Tenant
from haven.uow import outbox, tail


def _request(events: int, audits: int) -> Any:
    org = uuid.uuid4()
    now = datetime.now(UTC)
    audit_rows = [
        {
            "id": uuid.uuid4(),
            "organization_id": org,
            "action": "tenant.created",
            "resource_type": "tenant",
            "resource_id": uuid.uuid4(),
            "changes": {"lastName": [None, uuid.uuid4().hex]},
            "created_at": now,
        }
        for _ in range(audits)
    ]
    pending = [
        outbox.PendingEvent(org, "tenant.created", "tenant", uuid.uuid4(), {"n": n})
        for n in range(events)
    ]
    record = {
        "id": uuid.uuid4(),
        "scope_hash": uuid.uuid4().hex,
        "fingerprint": uuid.uuid4().hex,
        "status_code": 201,
        "created_at": now,
    }
    row = {"id": uuid.uuid4(), "organization_id": org, "first_name": uuid.uuid4().hex}
    return tail.statement(audit_rows, {org: pending}, record, [(Tenant.__table__, row)])


def test_the_same_shape_has_one_cache_key_whatever_the_values() -> None:
    first, second = _request(2, 2), _request(2, 2)
    key = first._generate_cache_key()
    assert key is not None, "the tail statement is not cacheable: compiled on every request"
    assert key == second._generate_cache_key()
    assert _request(1, 2)._generate_cache_key() != key  # another shape, its own entry
