"""What the audit trail records: one note per organization-owned row a flush created,
changed or deleted, and the audit_events rows those notes become at commit.

The bookkeeping (when notes are taken, forgotten on a savepoint rollback, written
before COMMIT) is haven.uow.recorder's, shared with the event outbox. Who acted
comes from the unit of work's `Actor` (haven.uow.actor), never from request state;
a write through an API key names the key (`api_key_id`) beside its creator (`actor_id`).
A sign-up names its own new user as the actor and files the new user under the
organization its membership names. A model opts out with `__audit__ = False`.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from haven.db.base import utcnow
from haven.models import AuditEvent, Membership, Organization, User
from haven.uow.actor import Actor

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
    "work_order": {
        "scheduled": "scheduled",
        "done": "completed",
        "invoiced": "invoiced",
        "cancelled": "cancelled",
    },
    "bill": {"paid": "paid", "void": "voided"},
}
_REOPENED = {
    ("maintenance_request", "resolved", "in_progress"): "reopened",
    ("bill", "paid", "open"): "reopened",
    ("work_order", "invoiced", "done"): "uninvoiced",
}
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
class AuditNotes:
    """What this transaction's flushes wrote, as the audit trail will tell it."""

    notes: list[_Note] = field(default_factory=list)
    memberships: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)  # user -> org
    created_users: list[uuid.UUID] = field(default_factory=list)


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


def _entity_type(obj: Any) -> str:
    return _snake(type(obj).__name__)


def _note(buffer: AuditNotes, obj: Any, action: str, changes: list[str]) -> None:
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


def note_flush(buffer: AuditNotes, session: Session, deleted_organizations: set[uuid.UUID]) -> None:
    """Note what this flush wrote; the session still shows its pre-flush state and history."""
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
            deleted_organizations.add(org)
        if _audited(obj):
            _note(buffer, obj, f"{_entity_type(obj)}.deleted", [])


def rows(
    buffer: AuditNotes,
    actor: Actor,
    deleted_organizations: set[uuid.UUID],
    instance_id: str | None,
    request_id: str | None,
) -> list[dict[str, Any]]:
    """The audit_events rows for the notes, as `actor` did them."""
    actor_id, system_actor = actor.audit_columns()
    if actor_id is None and system_actor is None and len(buffer.created_users) == 1:
        actor_id = buffer.created_users[0]  # sign-up: the new user acted
    home = actor.organization_id
    at = utcnow()
    out = []
    for note in buffer.notes:
        organization_id = note.organization_id
        if note.user_id is not None:
            organization_id = buffer.memberships.get(note.user_id) or home
        if organization_id is None or organization_id in deleted_organizations:
            continue  # no organization (left) to file it under
        out.append(
            {
                "id": uuid.uuid4(),
                "organization_id": organization_id,
                "at": at,
                "actor_id": actor_id,
                "system_actor": system_actor,
                "api_key_id": actor.api_key_id,
                "action": note.action,
                "entity_type": note.entity_type,
                "entity_id": note.entity_id,
                "instance_id": instance_id,
                "request_id": request_id,
                "changes": note.changes,
            }
        )
    return out
