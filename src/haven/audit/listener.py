"""Record an AuditEvent for every organization-owned row a transaction creates, changes or deletes.

Recording is generic, so no service can forget it: an `after_flush` listener on
every ORM Session notes each new, changed and deleted object that carries an
`organization_id` (plus Organization and User rows), and a `before_commit`
listener writes the notes as audit_events rows in the same transaction, just
before COMMIT. Writing at commit time lets a sign-up name its own new user as
the actor and file the new user under the organization its membership names.

Who, where and which request come from `session.info["audit"]`, which
haven.db.transaction.provide_db fills for each write request:
`{"instance_id", "request_id", "request_state"}`; a job sets `system_actor`
(e.g. "system:billing") instead. The principal is read from
`request_state["principal"]` at flush time, when it is certainly resolved; a write
through an API key names the key (`api_key_id`) beside its creator (`actor_id`).
A model opts out with the class attribute `__audit__ = False`.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, insert
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session, SessionTransaction, UOWTransaction

from haven.db.base import utcnow
from haven.models import AuditEvent, Membership, Organization, User

INFO_KEY = "audit"
_BUFFER = "haven_audit_buffer"

# Bookkeeping columns every row has, and anything that looks like a secret, never show up.
_SKIP_FIELDS = frozenset(
    {"id", "version", "created_at", "updated_at", "organization_id", "credential_epoch"}
)
_SECRET = re.compile(r"password|secret|token|hash", re.IGNORECASE)

# Status changes worth naming: (entity type, new status) -> verb; old status refines a few.
_STATUS_VERBS: dict[str, dict[str, str]] = {
    "lease": {"active": "activated", "terminated": "terminated", "ended": "ended"},
    "maintenance_request": {
        "in_progress": "started",
        "on_hold": "put_on_hold",
        "resolved": "resolved",
        "closed": "closed",
        "cancelled": "cancelled",
    },
}
_REOPENED = {("maintenance_request", "resolved", "in_progress"): "reopened"}
_RESUMED = {("maintenance_request", "on_hold", "in_progress"): "resumed"}


@dataclass(slots=True)
class _Note:
    organization_id: uuid.UUID | None
    action: str
    entity_type: str
    entity_id: uuid.UUID
    changes: list[str]
    user_id: uuid.UUID | None = None  # set for User rows, whose organization is found later


@dataclass(slots=True)
class _Buffer:
    notes: list[_Note] = field(default_factory=list)
    memberships: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)  # user -> org
    created_users: list[uuid.UUID] = field(default_factory=list)
    savepoints: dict[int, int] = field(default_factory=dict)  # id(savepoint) -> len(notes)
    # Their audit trail goes with them (ON DELETE CASCADE), so nothing is filed under them.
    deleted_organizations: set[uuid.UUID] = field(default_factory=set)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _shown(key: str) -> bool:
    return key not in _SKIP_FIELDS and not _SECRET.search(key)


def _entity_id(obj: Any) -> uuid.UUID | None:
    state = sa_inspect(obj)
    value = state.dict.get("id")
    if value is None and state.identity:
        value = state.identity[0]
    return value if isinstance(value, uuid.UUID) else None


def _organization_of(obj: Any) -> uuid.UUID | None:
    if isinstance(obj, Organization):
        return _entity_id(obj)
    value = sa_inspect(obj).dict.get("organization_id")
    return value if isinstance(value, uuid.UUID) else None


def _audited(obj: Any) -> bool:
    cls = type(obj)
    if isinstance(obj, AuditEvent) or not getattr(cls, "__audit__", True):
        return False
    if isinstance(obj, Organization | User):
        return True
    return "organization_id" in sa_inspect(cls).column_attrs


def _created_fields(obj: Any) -> list[str]:
    state = sa_inspect(obj)
    return sorted(
        _camel(attr.key)
        for attr in state.mapper.column_attrs
        if _shown(attr.key) and state.dict.get(attr.key) is not None
    )


def _changed_fields(obj: Any) -> tuple[list[str], tuple[Any, Any] | None]:
    """(changed field names, (old, new) status when the status changed)."""
    state = sa_inspect(obj)
    names: list[str] = []
    status: tuple[Any, Any] | None = None
    for attr in state.mapper.column_attrs:
        history = state.attrs[attr.key].history
        if not history.has_changes():
            continue
        if attr.key == "status" and history.added:
            old = history.deleted[0] if history.deleted else None
            if old != history.added[0]:
                status = (old, history.added[0])
        if _shown(attr.key):
            names.append(_camel(attr.key))
    return sorted(names), status


def _update_action(entity_type: str, status: tuple[Any, Any] | None) -> str:
    if status is not None:
        old, new = status
        verb = _REOPENED.get((entity_type, old, new)) or _RESUMED.get((entity_type, old, new))
        verb = verb or _STATUS_VERBS.get(entity_type, {}).get(new)
        if verb:
            return f"{entity_type}.{verb}"
    return f"{entity_type}.updated"


def _buffer(session: Session) -> _Buffer:
    buffer = session.info.get(_BUFFER)
    if buffer is None:
        buffer = session.info[_BUFFER] = _Buffer()
    return buffer


def _entity_type(obj: Any) -> str:
    return _snake(type(obj).__name__)


def _note(buffer: _Buffer, obj: Any, action: str, changes: list[str]) -> None:
    entity_id = _entity_id(obj)
    if entity_id is None:
        return
    is_user = isinstance(obj, User)
    buffer.notes.append(
        _Note(
            organization_id=None if is_user else _organization_of(obj),
            action=action,
            entity_type=_entity_type(obj),
            entity_id=entity_id,
            changes=changes,
            user_id=entity_id if is_user else None,
        )
    )


def after_flush(session: Session, _context: UOWTransaction) -> None:
    """Note what this flush wrote; the session still shows its pre-flush state and history."""
    buffer = _buffer(session)
    for obj in list(session.new):
        if isinstance(obj, Membership):
            buffer.memberships[obj.user_id] = obj.organization_id
        if not _audited(obj):
            continue
        if isinstance(obj, User) and (uid := _entity_id(obj)) is not None:
            buffer.created_users.append(uid)
        _note(buffer, obj, f"{_entity_type(obj)}.created", _created_fields(obj))
    for obj in list(session.dirty):
        if not _audited(obj) or not session.is_modified(obj, include_collections=False):
            continue
        changes, status = _changed_fields(obj)
        if isinstance(obj, User) and sa_inspect(obj).attrs["password_hash"].history.has_changes():
            # Named, never shown: the hash itself stays out of the trail.
            _note(buffer, obj, "user.password_changed", changes)
            continue
        if not changes and status is None:
            continue
        _note(buffer, obj, _update_action(_entity_type(obj), status), changes)
    for obj in list(session.deleted):
        if isinstance(obj, Organization) and (org := _entity_id(obj)) is not None:
            buffer.deleted_organizations.add(org)
        if _audited(obj):
            _note(buffer, obj, f"{_entity_type(obj)}.deleted", [])


def _principal(context: dict[str, Any]) -> Any:
    state = context.get("request_state")
    return state.get("principal") if isinstance(state, dict) else None


def before_commit(session: Session) -> None:
    """Flush what is left, then write the buffered notes inside the committing transaction."""
    if session.new or session.dirty or session.deleted:
        session.flush()
    buffer: _Buffer | None = session.info.pop(_BUFFER, None)
    if buffer is None or not buffer.notes:
        return
    context: dict[str, Any] = session.info.get(INFO_KEY) or {}
    principal = _principal(context)
    actor_id: uuid.UUID | None = context.get("actor_id") or (
        principal.user_id if principal is not None else None
    )
    if actor_id is None and len(buffer.created_users) == 1:
        actor_id = buffer.created_users[0]  # sign-up: the new user acted
    home = principal.organization_id if principal is not None else None
    at = utcnow()
    rows = []
    for note in buffer.notes:
        organization_id = note.organization_id
        if note.user_id is not None:
            organization_id = buffer.memberships.get(note.user_id) or home
        if organization_id is None or organization_id in buffer.deleted_organizations:
            continue  # no organization (left) to file it under
        rows.append(
            {
                "id": uuid.uuid4(),
                "organization_id": organization_id,
                "at": at,
                "actor_id": actor_id,
                "system_actor": context.get("system_actor"),
                "api_key_id": getattr(principal, "api_key_id", None),
                "action": note.action,
                "entity_type": note.entity_type,
                "entity_id": note.entity_id,
                "instance_id": context.get("instance_id"),
                "request_id": context.get("request_id"),
                "changes": note.changes,
            }
        )
    if rows:
        session.connection().execute(insert(AuditEvent), rows)


def _savepoint_started(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        buffer = _buffer(session)
        buffer.savepoints[id(transaction)] = len(buffer.notes)


def _rolled_back(session: Session, previous: SessionTransaction) -> None:
    """A savepoint rollback forgets only what it undid; a full rollback forgets everything."""
    buffer: _Buffer | None = session.info.get(_BUFFER)
    if buffer is None:
        return
    if previous.nested:
        mark = buffer.savepoints.pop(id(previous), None)
        if mark is not None:
            del buffer.notes[mark:]
        return
    if previous.parent is None:
        session.info.pop(_BUFFER, None)


def install() -> None:
    """Listen on every ORM Session; calling it again is harmless."""
    for name, fn in (
        ("after_flush", after_flush),
        ("before_commit", before_commit),
        ("after_transaction_create", _savepoint_started),
        ("after_soft_rollback", _rolled_back),
    ):
        if not event.contains(Session, name, fn):
            event.listen(Session, name, fn)
