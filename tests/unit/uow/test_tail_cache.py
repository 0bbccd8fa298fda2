"""The tail statement is built and compiled once per shape, not once per request.

Building a statement of literal values and computing its cache key cost most of a keyed
POST's CPU (bench/PROFILE.md). The tail keeps one statement per shape, every value a
bound parameter: two requests that write the same numbers of rows with the same columns,
whatever the values, share the one statement object (so SQLAlchemy keys and compiles it
once), and each request's values travel only as parameters.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.dialects import postgresql

from haven.models import Tenant
from haven.uow import outbox, tail


def _request(events: int, audits: int) -> Any:
    org = uuid.uuid4()
    now = datetime.now(UTC)
    audit_rows = [
        {
            "id": uuid.uuid4(),
            "organization_id": org,
            "at": now,
            "action": "tenant.created",
            "entity_type": "tenant",
            "entity_id": uuid.uuid4(),
            "request_id": uuid.uuid4().hex,
            "changes": ["lastName"],
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


def test_the_same_shape_is_one_statement_whatever_the_values() -> None:
    (first, first_params), (second, second_params) = _request(2, 2), _request(2, 2)
    assert first is second, "a new statement per request: keyed and compiled every time"
    assert first._generate_cache_key() is not None, "the tail statement is not cacheable"
    assert first_params["n0_2"] != second_params["n0_2"]  # the values are parameters
    other, _ = _request(1, 2)
    assert other is not first  # another shape, its own statement


def test_every_value_is_a_parameter_of_the_compiled_statement() -> None:
    stmt, params = _request(2, 1)
    compiled = stmt.compile(dialect=postgresql.asyncpg.dialect())  # type: ignore[attr-defined]
    assert set(params) <= set(compiled.params), "a value the statement does not bind"
    sql = str(compiled)
    for value in params.values():
        if isinstance(value, str) and len(value) == 32:  # the request's random hex values
            assert value not in sql, "a value compiled into the SQL text"


def test_nothing_to_write_is_no_statement() -> None:
    assert tail.statement([], {}, None, []) is None
