"""The write buffer: one per session, fed by its flushes, written just before COMMIT.

Every Haven session (`create_sessionmaker` builds them with `HavenSession`) carries
one `WriteBuffer`. Its listeners are attached to that session class only, never to
SQLAlchemy's global `Session`:

* `before_flush` notes which organizations the flush touches (their cache versions
  are bumped after the commit);
* `after_flush` takes the audit notes (haven.uow.audit) and the outbox events
  (haven.uow.outbox) of what the flush wrote;
* a savepoint remembers how far both lists went, and rolling it back cuts both
  back there; a full rollback forgets everything;
* `before_commit` flushes what is left, then writes the audit rows, the events and
  the Idempotency-Key record (`record`) as the last statement of the transaction
  (haven.uow.tail: one statement on PostgreSQL; one per table otherwise). When the
  record finds its key taken by another request's record, the commit stops with
  `KeyTaken` (haven.uow.tx rolls back and replays that record).

A new row a service needs nothing back from the database for (`add_new`: every column
has a Python-side default, so its id and timestamps are known at once) is not flushed on
its own: if the transaction's only changes are such rows, the commit writes them as part
of the tail statement; and if that statement is then all the transaction sends, it goes
without BEGIN and COMMIT (one statement is atomic by itself in PostgreSQL), so such a
keyed POST is one round trip. Where the tail is a statement per table (SQLite), the commit
writes them one INSERT each, in the order they were added, so a row may refer to one added
before it. Anything else flushes them first, as any pending row. A row added with a `taken`
error (a unit and its label's conflict) makes the commit raise that error when a unique key
of its table is found taken: the race a check read cannot see (a label taken by a write
that committed after the check) answers as the check would have, nothing written.

A change to an existing row a service computed itself (`add_change`: a Core INSERT .. ON
CONFLICT or UPDATE, every value bound) is written with the commit too, after every flush: a
CTE of the tail statement on PostgreSQL, its own statement otherwise (a lease's maintained
totals, computed under the lock the service took; a property's unit count, moved by one).

Who acted, on which instance and for which request is set once, by whoever opened
the session (haven.uow.tx for a request, `as_system` for a job).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from sqlalchemy import event, insert
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, SessionTransaction, UOWTransaction
from sqlalchemy.sql import ClauseElement

from haven.db.base import Base
from haven.db.engine import behind_pgbouncer
from haven.models import AuditEvent, Organization
from haven.uow import audit, outbox, tail
from haven.uow.actor import ANONYMOUS, Actor

_KEY = "haven_write_buffer"  # the one session.info key: this module's own
UNIQUE_VIOLATION = "23505"  # SQLSTATE

AfterCommit = Callable[[], Awaitable[Any]]


@dataclass(slots=True)
class WriteBuffer:
    actor: Actor = ANONYMOUS
    instance_id: str | None = None
    request_id: str | None = None
    audit: audit.AuditNotes = field(default_factory=audit.AuditNotes)
    events: list[outbox.PendingEvent] = field(default_factory=list)
    # Their audit trail and feed go with them (ON DELETE CASCADE): nothing is filed under them.
    deleted_organizations: set[uuid.UUID] = field(default_factory=set)
    changed_organizations: set[uuid.UUID] = field(default_factory=set)
    after_commit: list[AfterCommit] = field(default_factory=list)
    at_end: list[AfterCommit] = field(default_factory=list)  # after commit or rollback
    # id(savepoint) -> (len(audit notes), len(events), len(changes)) when it began
    savepoints: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    # The Idempotency-Key record (an idempotency_records row), written with the commit.
    record: dict[str, Any] | None = None
    # Rows `add_new` added (pending, not yet flushed), and whether this transaction has
    # sent anything yet (a connection joined it): neither, and the commit may go alone.
    added: list[Any] = field(default_factory=list)
    began: bool = False
    # Core statements `add_change` queued, with their parameters: written with the commit.
    changes: list[tuple[tail.Statement, dict[str, Any]]] = field(default_factory=list)
    # (table, error) for rows `add_new` added with `taken`: the commit's answer when it finds
    # a unique key of that table taken.
    taken: list[tuple[str, Exception]] = field(default_factory=list)
    # A request's second run: its first run's commit found a guarded change `Stale`.
    rerun: bool = False

    def forget(self) -> None:
        """A full rollback: nothing this transaction noted happened."""
        self.audit = audit.AuditNotes()
        self.events = []
        self.record = None
        self.added = []
        self.began = False
        self.changes = []
        self.taken = []
        self.deleted_organizations = set()
        self.savepoints = {}


class HavenSession(Session):
    """The sync session behind every Haven AsyncSession; the recorder listens on it."""


def buffer_of(session: AsyncSession | Session) -> WriteBuffer:
    sync = session.sync_session if isinstance(session, AsyncSession) else session
    buffer = sync.info.get(_KEY)
    if buffer is None:
        buffer = sync.info[_KEY] = WriteBuffer()
    return buffer


def as_actor(
    session: AsyncSession | Session,
    actor: Actor,
    instance_id: str | None,
    request_id: str | None = None,
) -> None:
    """Name who this session's writes are done by (the audit trail's actor)."""
    buffer = buffer_of(session)
    buffer.actor, buffer.instance_id, buffer.request_id = actor, instance_id, request_id


def emit(
    session: AsyncSession | Session,
    organization_id: uuid.UUID,
    type_: str,
    resource_type: str,
    resource_id: uuid.UUID,
    data: dict[str, Any],
) -> None:
    """Queue an event a Core statement caused; it is written with the transaction's commit."""
    buffer_of(session).events.append(
        outbox.pending_event(organization_id, type_, resource_type, resource_id, data)
    )


def mark_changed(session: AsyncSession | Session, organization_id: uuid.UUID) -> None:
    """Note a change made with a Core statement (the flush listener sees only ORM objects)."""
    buffer_of(session).changed_organizations.add(organization_id)


def after_commit(session: AsyncSession | Session, callback: AfterCommit) -> None:
    """Run `callback` once this session's transaction has committed (requests only)."""
    buffer_of(session).after_commit.append(callback)


def at_end(session: AsyncSession | Session, callback: AfterCommit) -> None:
    """Run `callback` when the request's unit of work ends, committed or not (requests only)."""
    buffer_of(session).at_end.append(callback)


def take_changed(session: AsyncSession | Session) -> set[uuid.UUID]:
    """The organizations this session changed since the last call (their cache versions)."""
    buffer = buffer_of(session)
    changed, buffer.changed_organizations = buffer.changed_organizations, set()
    return changed


def add_new(session: AsyncSession, obj: Base, *, taken: Exception | None = None) -> None:
    """Add a new row whose every column the application fills (its id, timestamps and
    version included, set here), so the caller can answer with it without a flush. It is
    written by the next flush (a query's autoflush, an explicit `flush()`), or else with
    the commit's last statement (haven.uow.tail). Only for a row without related objects.
    `taken`: what the commit raises, nothing written, when it finds a unique key of the
    row's table taken (by a write that committed after the caller's check read saw it free),
    so that race answers as the check itself would have."""
    state = sa_inspect(obj)
    mapper = state.mapper
    if any(key in state.dict for key in mapper.relationships.keys()):  # noqa: SIM118
        raise ValueError(f"add_new takes a row without related objects: {mapper.class_}")
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        if state.dict.get(prop.key) is not None:
            continue
        if column is mapper.version_id_col:
            setattr(obj, prop.key, 1)  # what the flush would set
        elif column.default is not None and column.default.is_callable:
            setattr(obj, prop.key, column.default.arg(None))
        elif column.default is not None and column.default.is_scalar:
            setattr(obj, prop.key, column.default.arg)
    session.add(obj)
    buffer = buffer_of(session)
    buffer.added.append(obj)
    if taken is not None:
        buffer.taken.append((mapper.class_.__tablename__, taken))


def add_change(
    session: AsyncSession | Session, statement: tail.Statement, params: dict[str, Any]
) -> None:
    """Write `statement` (a Core INSERT, upsert or UPDATE of a row the caller has locked or
    owns) with the commit, after every flush: on PostgreSQL a CTE of the tail statement
    (haven.uow.tail), so it costs no round trip of its own; elsewhere its own statement.
    Build `statement` once, every value a bound parameter (the tail keys its template by
    the statement object), its parameters' names apart from the tail's own (a clash is a
    ValueError at the commit). Sibling CTEs see one snapshot: it must not read what the
    same commit writes. A rolled-back savepoint forgets what was added inside it. A
    `guarded` statement (haven.uow.tail) must write one row, or the commit writes nothing
    and raises `Stale`: the request runs again (haven.uow.http)."""
    buffer_of(session).changes.append((statement, params))


def is_rerun(session: AsyncSession | Session) -> bool:
    """Whether this is a request's second run, after what its first run read without a lock
    changed before the commit (haven.uow.http): a service that reads that way the first
    time locks what it reads now, so the run cannot be refused again."""
    return buffer_of(session).rerun


def may_guard(session: AsyncSession | Session) -> bool:
    """Whether a service may read without a lock and have the commit guard what it read
    (haven.uow.tail `guarded`): on PostgreSQL (the guard's `xmin` and the one statement in
    autocommit are its), and not in a request's second run, which locks."""
    bind = (
        session.sync_session.get_bind() if isinstance(session, AsyncSession) else session.get_bind()
    )
    return bind.dialect.name == "postgresql" and not is_rerun(session)


def _insert_values(obj: Any) -> tuple[Any, dict[str, Any]] | None:
    """(table, column values) of a row `add_new` added; None when a column is left to the
    database (a server default), holds a SQL expression (the tail binds plain values only)
    or the row gained related objects since."""
    state = sa_inspect(obj)
    mapper = state.mapper
    if any(key in state.dict for key in mapper.relationships.keys()):  # noqa: SIM118
        return None
    values: dict[str, Any] = {}
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        value = state.dict.get(prop.key)
        if value is None and (column.server_default is not None or not column.nullable):
            return None
        if isinstance(value, ClauseElement):
            return None
        values[column.key] = value
    return mapper.local_table, values


def _tail_inserts(session: Session, buffer: WriteBuffer) -> list[tuple[Any, dict[str, Any]]]:
    """The pending rows the commit writes itself, in the order they were added: the
    transaction's only changes are new rows `add_new` added, each filled in. Empty
    otherwise (a flush writes them, as any pending row)."""
    added, buffer.added = buffer.added, []
    if not added or session.dirty or session.deleted or set(session.new) != set(added):
        return []
    inserts = [_insert_values(obj) for obj in added]
    return [] if None in inserts else [i for i in inserts if i is not None]


def _connection(session: Session, buffer: WriteBuffer, alone: bool) -> tuple[Connection, bool]:
    """The commit's connection, and whether it is in autocommit. A transaction that has sent
    nothing yet and whose commit is one statement sends it in autocommit: no BEGIN, no
    COMMIT (a statement is atomic by itself). Not behind PgBouncer in transaction mode:
    outside a transaction it may run a statement on another server connection than the one
    it was prepared on."""
    bind = session.get_bind()
    if (
        alone
        and not buffer.began
        and bind.dialect.name == "postgresql"
        and not behind_pgbouncer(bind.engine.url.render_as_string(hide_password=True))
    ):
        return session.connection(execution_options={"isolation_level": "AUTOCOMMIT"}), True
    return session.connection(), False


def _before_flush(session: Session, _context: UOWTransaction, _instances: Any) -> None:
    changed = buffer_of(session).changed_organizations
    for obj in chain(session.new, session.dirty, session.deleted):
        org = getattr(obj, "organization_id", None)
        if org is None and isinstance(obj, Organization):
            org = obj.id
        if isinstance(org, uuid.UUID):
            changed.add(org)


def _after_flush(session: Session, _context: UOWTransaction) -> None:
    buffer = buffer_of(session)
    audit.note_flush(buffer.audit, session, buffer.deleted_organizations)
    outbox.note_flush(buffer.events, session)


def _taken_table(exc: IntegrityError) -> str | None:
    """The table of the unique key `exc` found taken; None for any other violation."""
    orig = exc.orig
    if getattr(orig, "sqlstate", None) == UNIQUE_VIOLATION:  # asyncpg's error is the cause
        return getattr(orig.__cause__, "table_name", None) if orig is not None else None
    if getattr(orig, "sqlite_errorcode", None) == sqlite3.SQLITE_CONSTRAINT_UNIQUE:
        # "UNIQUE constraint failed: units.property_id, units.label"
        return str(orig).rpartition(": ")[2].partition(".")[0]
    return None


def _before_commit(session: Session) -> None:
    buffer = buffer_of(session)
    taken, buffer.taken = buffer.taken, []
    try:
        _write(session, buffer)
    except IntegrityError as exc:
        table = _taken_table(exc)
        refusal = next((error for name, error in taken if name == table), None)
        if refusal is None:
            raise
        raise refusal from exc


def _write(session: Session, buffer: WriteBuffer) -> None:
    """What is left of the transaction, then its tail (see the module's docstring)."""
    inserts = _tail_inserts(session, buffer)
    if inserts:  # noted as a flush would note them; written by the tail, not by a flush
        _before_flush(session, None, None)  # type: ignore[arg-type]
        _after_flush(session, None)  # type: ignore[arg-type]
    elif session.new or session.dirty or session.deleted:
        session.flush()
    notes, events = buffer.audit, buffer.events
    buffer.audit, buffer.events, buffer.savepoints = audit.AuditNotes(), [], {}
    deleted = buffer.deleted_organizations
    buffer.deleted_organizations = set()
    record, buffer.record = buffer.record, None
    changes, buffer.changes = buffer.changes, []
    if not notes.notes and not events and record is None and not inserts and not changes:
        return
    rows = audit.rows(notes, buffer.actor, deleted, buffer.instance_id, buffer.request_id)
    by_org = tail.by_organization(events, deleted)
    fits = tail.fits(session.get_bind(), rows, by_org, len(inserts), changes)
    connection, autocommit = _connection(session, buffer, alone=fits)
    if fits:
        tail.write(connection, rows, by_org, record, inserts, changes, alone=autocommit)
    else:
        for table, values in inserts:
            # One INSERT each, in the order they were added: a row may refer to one added
            # before it (a membership to its new user), and a flush would not order two
            # tables that no relationship links. Then the tail, a statement per table.
            connection.execute(insert(table), [values])
    if inserts:
        for obj in list(session.new):  # written: nothing left for the commit's flush
            session.expunge(obj)
    if fits:
        return
    if record is not None:  # first: a key already taken then costs nothing more
        stmt = tail.record_insert(connection.dialect.name, record)
        if connection.execute(stmt).first() is None:
            raise tail.KeyTaken
    for statement, params in changes:
        written = connection.execute(statement, params)
        if tail.is_guard(statement) and tail.rows_of(statement, written) != 1:
            raise tail.Stale
    if rows:
        connection.execute(insert(AuditEvent), rows)
    if events:
        outbox.write(connection, events, deleted)


def _connection_joined(session: Session, _transaction: Any, _connection: Any) -> None:
    buffer_of(session).began = True


def _transaction_began(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        buffer = buffer_of(session)
        buffer.savepoints[id(transaction)] = (
            len(buffer.audit.notes),
            len(buffer.events),
            len(buffer.changes),
        )


def _rolled_back(session: Session, previous: SessionTransaction) -> None:
    """A savepoint rollback forgets only what it undid; a full rollback forgets everything."""
    buffer: WriteBuffer | None = session.info.get(_KEY)
    if buffer is None:
        return
    if previous.nested:
        mark = buffer.savepoints.pop(id(previous), None)
        if mark is not None:
            del buffer.audit.notes[mark[0] :]
            del buffer.events[mark[1] :]
            del buffer.changes[mark[2] :]
        return
    if previous.parent is None:
        buffer.forget()


for _name, _fn in (
    ("before_flush", _before_flush),
    ("after_flush", _after_flush),
    ("before_commit", _before_commit),
    ("after_transaction_create", _transaction_began),
    ("after_begin", _connection_joined),
    ("after_soft_rollback", _rolled_back),
):
    event.listen(HavenSession, _name, _fn)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Haven's sessions: every one that writes records its audit trail and outbox events."""
    return async_sessionmaker(
        engine, expire_on_commit=False, autoflush=True, sync_session_class=HavenSession
    )
