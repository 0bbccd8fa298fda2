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
So are the Core statements a service queued with `add_change` (an upsert of a row it has
locked, such as a lease's maintained totals; a property's unit count): each is a CTE, its
parameters bound, and each runs before the counter's upsert. PostgreSQL runs the CTEs the
main SELECT reads (the counter, the record) before the others, so a change left to itself
would lock its row after the counter's: a write holding that row (a property PATCH, flushed
before its own tail takes the counter) would then deadlock with it. The counter's INSERT
reads how many rows each change wrote, which runs them first: the counter's lock stays the
last one every write takes. The same goes for the rows a new row's foreign keys name (a
lease's unit, its tenants): PostgreSQL checks the keys at the statement's end, after the
counter, so a DELETE holding the unit (then taking the counter in its own tail) deadlocked
with it. Each such row's key share lock, the lock the check takes, is a CTE the counter's
INSERT reads too.

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
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, bindparam, func, insert, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import Insert, UpdateBase
from sqlalchemy.sql.selectable import Select

from haven.db import fastpath
from haven.db.base import utcnow
from haven.models import AuditEvent, Event, EventCounter, IdempotencyRecord
from haven.store.idempotency import RETENTION
from haven.uow import outbox

DIVISION_BY_ZERO = "22012"
LOG_OF_ZERO = "2201E"  # ln(0): a guarded change that wrote no row (see `guarded`)
GUARD = "haven_guard"


class KeyTaken(Exception):  # noqa: N818 - not an error: the key's answer is recorded already
    """The commit's Idempotency-Key record found another request's record holding its key."""


class Stale(Exception):  # noqa: N818 - not an error: the request runs again (haven.uow.http)
    """A guarded change wrote no row: what its service read changed before the commit, and
    nothing of the commit was written."""


Statement = UpdateBase | Select[Any]  # what `add_change` queues


def guarded(statement: Statement) -> Statement:
    """`statement` (for `add_change`), made a guard: it must write (or, a SELECT .. FOR
    SHARE, lock) exactly one row, else the commit writes nothing and raises `Stale`. A
    service that read without a lock (an UPDATE .. WHERE the row's version is the one it
    read; an INSERT .. ON CONFLICT DO NOTHING of a row it saw absent; a lock of a row it
    only read, WHERE still that version) so has the commit refuse to write what it
    computed from a state that changed meanwhile. In the tail statement the guard is a
    column ln(rows): ln(0) fails the whole statement (SQLSTATE 2201E)."""
    return statement.execution_options(**{GUARD: True})


def is_guard(statement: Statement) -> bool:
    return bool(statement.get_execution_options().get(GUARD))


def rows_of(statement: Statement, result: Any) -> int:
    """The rows a change wrote (or a SELECT locked), run as a statement of its own."""
    return result.rowcount if isinstance(statement, UpdateBase) else len(result.all())


def by_organization(
    pending: list[outbox.PendingEvent], deleted_organizations: set[uuid.UUID]
) -> dict[uuid.UUID, list[outbox.PendingEvent]]:
    by_org: dict[uuid.UUID, list[outbox.PendingEvent]] = {}
    for item in pending:
        if item.organization_id not in deleted_organizations:
            by_org.setdefault(item.organization_id, []).append(item)
    return by_org


Change = tuple[Statement, dict[str, Any]]  # a statement `add_change` queued, its parameters


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
    changes: Sequence[Change] = (),
) -> bool:
    """Whether `write` can take these rows (PostgreSQL, events of one organization at most,
    a request's handful of rows, each queued change's statement once: twice, its parameters
    would share their names)."""
    events = sum(len(items) for items in by_org.values())
    return (
        bind.dialect.name == "postgresql"
        and len(by_org) <= 1
        and len({id(statement) for statement, _ in changes}) == len(changes)
        and len(audit_rows) + events + inserts + len(changes) <= MAX_ROWS
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
    changes: list[Change] | None = None,
    *,
    alone: bool = False,
) -> None:
    """New rows, queued changes, audit rows, events (one organization) and the
    Idempotency-Key record: one statement. `KeyTaken` (nothing written) when another
    request's record holds the key. `alone`: the statement is all the transaction sends,
    in autocommit; on asyncpg it goes straight to the driver (haven.db.fastpath)."""
    built = statement(audit_rows, by_org, record, inserts, changes)
    if built is None:
        return
    raising: dict[str, type[Exception]] = {}
    if record is not None:
        raising[DIVISION_BY_ZERO] = KeyTaken
    if any(is_guard(change) for change, _ in changes or ()):
        raising[LOG_OF_ZERO] = Stale
    if alone and fastpath.send_alone(connection, *built, raising):
        return
    try:
        connection.execute(*built)
    except DBAPIError as exc:
        code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        if code in raising:
            raise raising[code] from None
        raise


# A shape: the new rows (their table and columns), the number of events, the columns of each
# audit row and of the record, the queued changes' statements. Its statement is built once,
# with a bound parameter where each value goes, and kept: building and cache-keying a
# statement of literal values cost most of a keyed POST's CPU (bench/PROFILE.md); a kept
# one is keyed once, compiled once.
Shape = tuple[
    tuple[tuple[Table, tuple[str, ...]], ...],
    int,
    tuple[tuple[str, ...], ...],
    tuple[str, ...] | None,
    tuple[Statement, ...],
]
_TEMPLATES: dict[Shape, Select[Any]] = {}
_MAX_TEMPLATES = 512  # shapes are few (a request writes a handful of rows); bound anyway

EVENT_COLUMNS = ("id", "type", "resource_type", "resource_id", "data")


def statement(
    audit_rows: list[dict[str, Any]],
    by_org: dict[uuid.UUID, list[outbox.PendingEvent]],
    record: dict[str, Any] | None,
    inserts: list[tuple[Any, dict[str, Any]]] | None = None,
    changes: list[Change] | None = None,
) -> tuple[Select[Any], dict[str, Any]] | None:
    """The tail's one statement and its parameters (None: nothing to write). The statement
    depends only on the shape of what it writes, so the same object serves every request
    of that shape: SQLAlchemy keys and compiles it once."""
    inserts = inserts or []
    changes = changes or []
    ((organization_id, items),) = by_org.items() if by_org else ((None, []),)
    shape: Shape = (
        tuple((table, tuple(values)) for table, values in inserts),
        len(items),
        tuple(tuple(row) for row in audit_rows),
        tuple(record) if record is not None else None,
        tuple(change for change, _ in changes),
    )
    if not shape[0] and not shape[1] and not shape[2] and shape[3] is None and not shape[4]:
        return None
    template = _TEMPLATES.get(shape)
    if template is None:
        if len(_TEMPLATES) >= _MAX_TEMPLATES:
            _TEMPLATES.clear()
        template = _TEMPLATES[shape] = _template(shape)
    params: dict[str, Any] = {}
    for n, (_table, values) in enumerate(inserts):
        params.update({f"n{n}_{i}": value for i, value in enumerate(values.values())})
    if items:
        params["org"] = organization_id
        params["at"] = utcnow()
        for offset, item in enumerate(items):
            event = (uuid.uuid4(), item.type, item.resource_type, item.resource_id, item.data)
            params.update({f"e{offset}_{i}": value for i, value in enumerate(event)})
    for n, row in enumerate(audit_rows):
        params.update({f"a{n}_{i}": value for i, value in enumerate(row.values())})
    if record is not None:
        params.update({f"r_{i}": value for i, value in enumerate(record.values())})
        params["r_expired"] = record["created_at"] - RETENTION
    for _change, values in changes:
        if params.keys() & values.keys():
            raise ValueError(f"a change's parameters clash with the tail's: {sorted(values)}")
        params.update(values)
    return template, params


def _bound_insert(table: Table, columns: tuple[str, ...], prefix: str) -> Insert:
    return insert(table).values(
        {
            table.c[name]: bindparam(f"{prefix}_{i}", type_=table.c[name].type)
            for i, name in enumerate(columns)
        }
    )


def _parent_locks(new_rows: tuple[tuple[Table, tuple[str, ...]], ...]) -> list[Any]:
    """For each foreign key a new row sets (to a row of a table none of the statement's
    other new rows is in), the referred row's key share lock: the lock the key's check
    takes at the statement's end, taken first (see the module's docstring)."""
    locks: list[Any] = []
    for n, (table, columns) in enumerate(new_rows):
        siblings = {other for m, (other, _) in enumerate(new_rows) if m != n}
        for i, name in enumerate(columns):
            for key in table.c[name].foreign_keys:
                parent = key.column
                if parent.table in siblings:
                    continue
                lock = (
                    select(literal(1))
                    .select_from(parent.table)
                    .where(parent == bindparam(f"n{n}_{i}", type_=table.c[name].type))
                    .with_for_update(read=True, key_share=True)
                )
                locks.append(lock.cte(f"haven_parent_{len(locks)}"))
    return locks


def _template(shape: Shape) -> Select[Any]:
    """The statement of one shape, every value a bound parameter (see `statement`)."""
    new_rows, events, audit_columns, record_columns, changes = shape
    ctes: list[Any] = [
        _bound_insert(table, columns, f"n{n}").cte(f"haven_new_{n}")
        for n, (table, columns) in enumerate(new_rows)
    ]
    changed = [
        (change.returning(literal(1)) if isinstance(change, UpdateBase) else change).cte(
            f"haven_change_{n}"
        )
        for n, change in enumerate(changes)
    ]
    ctes += changed
    columns: list[Any] = []
    if events:
        counters: Table = EventCounter.__table__  # type: ignore[assignment]
        # The counter's lock is the last a write takes (see the module's docstring): its
        # INSERT reads how many rows each change and each parent lock found, so they run first.
        # In this order (PostgreSQL keeps the order of quals of equal cost): the rows new
        # rows name, the guarded changes, the others (a lease's totals, then a day's).
        pairs = list(zip(changes, changed, strict=True))
        ordered = (
            _parent_locks(new_rows)
            + [cte for change, cte in pairs if is_guard(change)]
            + [cte for change, cte in pairs if not is_guard(change)]
        )
        counted = [select(func.count()).select_from(c).scalar_subquery() >= 0 for c in ordered]
        source = select(
            bindparam("org", type_=counters.c.organization_id.type),
            literal(events),
            literal(0),
        ).where(*counted)
        counter = (
            pg_insert(counters)
            .from_select(["organization_id", "position", "purged_through"], source)
            .on_conflict_do_update(
                index_elements=[counters.c.organization_id],
                set_={"position": counters.c.position + events},
            )
            .returning(counters.c.position)
            .cte("haven_counter")
        )
        top = select(counter.c.position).scalar_subquery()
        table: Table = Event.__table__  # type: ignore[assignment]
        for offset in range(events):
            values: dict[Any, Any] = {
                table.c[name]: bindparam(f"e{offset}_{i}", type_=table.c[name].type)
                for i, name in enumerate(EVENT_COLUMNS)
            }
            values[table.c.organization_id] = bindparam("org", type_=table.c.organization_id.type)
            values[table.c.position] = top - (events - 1 - offset)
            values[table.c.occurred_at] = bindparam("at", type_=table.c.occurred_at.type)
            ctes.append(insert(table).values(values).cte(f"haven_event_{offset}"))
        columns.append(counter.c.position)
    audits: Table = AuditEvent.__table__  # type: ignore[assignment]
    ctes += [
        _bound_insert(audits, row, f"a{n}").cte(f"haven_audit_{n}")
        for n, row in enumerate(audit_columns)
    ]
    for change, cte in zip(changes, changed, strict=True):
        if is_guard(change):  # ln(rows written): ln(0) fails the statement (see `guarded`)
            columns.append(func.ln(select(func.count()).select_from(cte).scalar_subquery()))
    if record_columns is not None:
        records: Table = IdempotencyRecord.__table__  # type: ignore[assignment]
        stmt = pg_insert(records).values(
            {
                records.c[name]: bindparam(f"r_{i}", type_=records.c[name].type)
                for i, name in enumerate(record_columns)
            }
        )
        written = (
            stmt.on_conflict_do_update(
                index_elements=[records.c.scope_hash],
                set_={name: stmt.excluded[name] for name in record_columns if name != "id"},
                where=records.c.created_at
                < bindparam("r_expired", type_=records.c.created_at.type),
            )
            .returning(records.c.id)
            .cte("haven_record")
        )
        ctes.append(written)
        # 1 / (records written): a division by zero when the key was taken fails the statement.
        columns.append(literal(1) / select(func.count()).select_from(written).scalar_subquery())
    return select(*(columns or [literal(1)])).add_cte(*ctes)
