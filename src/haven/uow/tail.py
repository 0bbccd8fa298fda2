"""The transaction's last statement on PostgreSQL: audit rows, numbered events and the
Idempotency-Key record in one round trip.

Before COMMIT the write buffer (haven.uow.recorder) has three kinds of rows to add: the
audit trail (haven.uow.audit), the outbox events with their feed positions
(haven.uow.outbox, which takes the organization's counter row lock with an
INSERT .. ON CONFLICT DO UPDATE .. RETURNING) and the answer's Idempotency-Key record.
Sent one by one that is four statements, four round trips. On PostgreSQL they are one
statement with data-modifying CTEs: the counter's upsert is a CTE, the events read the
new top position from it (so the lock is taken, and held to COMMIT, exactly as before),
and every CTE runs once and to completion whether or not the main SELECT reads it. A
failure anywhere (the record's unique scope: a concurrent request with the same key
committed first) fails the one statement, as it failed one of the four.

New rows a service added with `add_new` (haven.uow.recorder), when they are all the
transaction changed, are more CTEs of the same statement: sibling CTEs see one snapshot
and foreign keys are checked at the statement's end, so the rows may refer to each other.

The record's INSERT (`record_insert`, on both paths) does not fail when another request's
record holds the key: it writes nothing, and the statement then fails on purpose (its
result divides by the number of records written: SQLSTATE 22012), so nothing of it is
written even outside a transaction; `write` raises `KeyTaken` and the unit of work
replays that record (haven.uow.tx). A record past its 24 h that the purge job has not
yet deleted is replaced instead: the key is new again.

Only a write whose events belong to at most one organization goes this way: the order in
which PostgreSQL runs sibling CTEs is not defined, and two counter locks must always be
taken in the one order haven.uow.outbox.write keeps. Other writes (an organization and
another's rows in one transaction: rare; a job's batch of more than `MAX_ROWS` rows) and
SQLite (embedded, no round trips to save) take the statement-per-table path.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, insert, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.selectable import Select

from haven.db.base import utcnow
from haven.models import AuditEvent, Event, EventCounter, IdempotencyRecord
from haven.store.idempotency import RETENTION
from haven.uow import outbox

DIVISION_BY_ZERO = "22012"


class KeyTaken(Exception):  # noqa: N818 - not an error: the key's answer is recorded already
    """The commit's Idempotency-Key record found another request's record holding its key."""


def by_organization(
    pending: list[outbox.PendingEvent], deleted_organizations: set[uuid.UUID]
) -> dict[uuid.UUID, list[outbox.PendingEvent]]:
    by_org: dict[uuid.UUID, list[outbox.PendingEvent]] = {}
    for item in pending:
        if item.organization_id not in deleted_organizations:
            by_org.setdefault(item.organization_id, []).append(item)
    return by_org


# Rows per tail statement at most: a request writes a handful; a job's large transaction (a
# billing batch) goes the statement-per-table way, whose executemany SQLAlchemy pages
# under the driver's bound-parameter limit (32767 on asyncpg), which one multi-row VALUES
# would not be.
MAX_ROWS = 200


def fits(
    bind: Connection | Engine,
    audit_rows: list[dict[str, Any]],
    by_org: dict[uuid.UUID, list[outbox.PendingEvent]],
    inserts: int = 0,
) -> bool:
    """Whether `write` can take these rows (PostgreSQL, events of one organization at most,
    a request's handful of rows)."""
    return (
        bind.dialect.name == "postgresql"
        and len(by_org) <= 1
        and len(audit_rows) + sum(len(items) for items in by_org.values()) + inserts <= MAX_ROWS
    )


def record_insert(dialect: str, record: dict[str, Any]) -> Insert:
    """The Idempotency-Key record's INSERT, returning its id when it wrote it: nothing when
    another request's record holds the key (committed first, or still committing: the row
    lock waits for it), a replacement when that record is past its 24 h."""
    dialect_insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = dialect_insert(IdempotencyRecord).values(record)
    return stmt.on_conflict_do_update(
        index_elements=[IdempotencyRecord.scope_hash],
        set_={name: stmt.excluded[name] for name in record if name != "id"},
        where=IdempotencyRecord.created_at < record["created_at"] - RETENTION,
    ).returning(IdempotencyRecord.id)


def write(
    connection: Connection,
    audit_rows: list[dict[str, Any]],
    by_org: dict[uuid.UUID, list[outbox.PendingEvent]],
    record: dict[str, Any] | None,
    inserts: list[tuple[Any, dict[str, Any]]] | None = None,
) -> None:
    """New rows, audit rows, events (one organization) and the Idempotency-Key record: one
    statement. `KeyTaken` (nothing written) when another request's record holds the key."""
    stmt = statement(audit_rows, by_org, record, inserts)
    if stmt is None:
        return
    try:
        connection.execute(stmt)
    except DBAPIError as exc:
        code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        if record is not None and code == DIVISION_BY_ZERO:
            raise KeyTaken from None
        raise


def statement(
    audit_rows: list[dict[str, Any]],
    by_org: dict[uuid.UUID, list[outbox.PendingEvent]],
    record: dict[str, Any] | None,
    inserts: list[tuple[Any, dict[str, Any]]] | None = None,
) -> Select[Any] | None:
    """The tail's one statement (None: nothing to write). Its shape depends only on how many
    rows of each kind it writes, so SQLAlchemy compiles it once per shape and caches it."""
    ctes = [
        insert(table).values(values).cte(f"haven_new_{n}")
        for n, (table, values) in enumerate(inserts or [])
    ]
    columns: list[Any] = []
    if by_org:
        ((organization_id, items),) = by_org.items()
        count = len(items)
        counter = (
            pg_insert(EventCounter)
            .values(organization_id=organization_id, position=count, purged_through=0)
            .on_conflict_do_update(
                index_elements=[EventCounter.organization_id],
                set_={"position": EventCounter.position + count},
            )
            .returning(EventCounter.position)
            .cte("haven_counter")
        )
        top = select(counter.c.position).scalar_subquery()
        at = utcnow()
        # One single-row INSERT per row: SQLAlchemy caches the compiled form of a
        # `values(dict)` statement, never that of a multi-row `values([...])`, which it
        # would compile anew on every request (most of a POST's CPU, bench/PROFILE.md).
        ctes += [
            insert(Event)
            .values(
                id=uuid.uuid4(),
                organization_id=organization_id,
                position=top - (count - 1 - offset),
                type=item.type,
                resource_type=item.resource_type,
                resource_id=item.resource_id,
                data=item.data,
                occurred_at=at,
            )
            .cte(f"haven_event_{offset}")
            for offset, item in enumerate(items)
        ]
        columns.append(counter.c.position)
    if audit_rows:
        ctes += [
            insert(AuditEvent).values(row).cte(f"haven_audit_{n}")
            for n, row in enumerate(audit_rows)
        ]
    if record is not None:
        written = record_insert("postgresql", record).cte("haven_record")
        ctes.append(written)
        # 1 / (records written): a division by zero when the key was taken fails the statement.
        columns.append(literal(1) / select(func.count()).select_from(written).scalar_subquery())
    if not ctes and not by_org:
        return None
    return select(*(columns or [literal(1)])).add_cte(*ctes)
