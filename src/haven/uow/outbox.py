"""The transactional outbox: every organization-owned row change becomes an Event row
in the same transaction, with a gap-free position in its organization's feed.

Like the audit trail (haven.uow.audit), it is fed by haven.uow.recorder, which
listens on every Haven session, so no service can forget it: each flush notes every
new, changed and deleted row with a JSON snapshot; at commit `write` takes the
organization's counter row lock
(INSERT .. ON CONFLICT DO UPDATE .. RETURNING), hands out the next positions and
inserts the events, as the last statements before COMMIT. The counter lock is held
until COMMIT, so a later position is always committed after an earlier one: a
reader that sees position n sees every position below it (docs/events.md). A
rolled-back transaction leaves no event and, having rolled back its counter
update too, no gap.

Writes that bypass the ORM (a Core INSERT) are invisible here: they must call
`haven.uow.emit` with what they changed. A model opts out with `__events__ = False`
(or `__audit__ = False`, which also keeps it out of the audit trail).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import insert
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from haven.db.base import utcnow
from haven.models import AuditEvent, Event, EventCounter, Organization, User
from haven.uow.catalog import OLD_STATUS_VERBS, STATUS_VERBS

_SKIP = frozenset({"organization_id"})
_SECRET = re.compile(r"password|secret|token|hash", re.IGNORECASE)


@dataclass(slots=True)
class PendingEvent:
    organization_id: uuid.UUID
    type: str
    resource_type: str
    resource_id: uuid.UUID
    data: dict[str, Any]


def pending_event(
    organization_id: uuid.UUID,
    type_: str,
    resource_type: str,
    resource_id: uuid.UUID,
    data: dict[str, Any],
) -> PendingEvent:
    return PendingEvent(organization_id, type_, resource_type, resource_id, json_safe(data))


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def json_safe(value: Any) -> Any:
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _evented(obj: Any) -> bool:
    cls = type(obj)
    if isinstance(obj, Event | AuditEvent | User):
        return False  # member changes are told by membership events; a user row holds secrets
    if not getattr(cls, "__events__", getattr(cls, "__audit__", True)):
        return False
    return isinstance(obj, Organization) or "organization_id" in sa_inspect(cls).column_attrs


def snapshot(obj: Any) -> dict[str, Any]:
    """The row's columns as they are now, camelCase, secrets left out, JSON-ready."""
    state = sa_inspect(obj)
    out: dict[str, Any] = {}
    for attr in state.mapper.column_attrs:
        key = attr.key
        if key in _SKIP or _SECRET.search(key) or key not in state.dict:
            continue
        out[_camel(key)] = json_safe(state.dict[key])
    return out


def _ids(obj: Any) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    state = sa_inspect(obj)
    rid = state.dict.get("id")
    if rid is None and state.identity:
        rid = state.identity[0]
    org = rid if isinstance(obj, Organization) else state.dict.get("organization_id")
    return (
        org if isinstance(org, uuid.UUID) else None,
        rid if isinstance(rid, uuid.UUID) else None,
    )


def _status_change(obj: Any) -> tuple[Any, Any] | None:
    state = sa_inspect(obj)
    if "status" not in state.attrs:
        return None
    history = state.attrs["status"].history
    if not history.added:
        return None
    old = history.deleted[0] if history.deleted else None
    return (old, history.added[0]) if old != history.added[0] else None


def _changed(obj: Any) -> bool:
    """A real change beyond bookkeeping (version and timestamps move with any flush)."""
    state = sa_inspect(obj)
    return any(
        state.attrs[a.key].history.has_changes()
        for a in state.mapper.column_attrs
        if a.key not in ("version", "updated_at")
    )


def type_of(obj: Any, action: str) -> str:
    """The event type of a created/updated/deleted row."""
    resource = _snake(type(obj).__name__)
    if resource == "ledger_entry":
        return (
            "ledger_entry.reversed"
            if getattr(obj, "type", None) == "reversal"
            else ("ledger_entry.posted")
        )
    if action == "updated" and (change := _status_change(obj)) is not None:
        old, new = change
        verb = OLD_STATUS_VERBS.get((resource, old, new)) or STATUS_VERBS.get(resource, {}).get(new)
        if verb:
            return f"{resource}.{verb}"
    return f"{resource}.{action}"


def _note(pending: list[PendingEvent], obj: Any, action: str) -> None:
    org, rid = _ids(obj)
    if org is None or rid is None:
        return
    data = snapshot(obj)
    data.setdefault("id", str(rid))
    pending.append(PendingEvent(org, type_of(obj, action), _snake(type(obj).__name__), rid, data))


def note_flush(pending: list[PendingEvent], session: Session) -> None:
    """Note what this flush wrote, with a snapshot of each row as it now stands."""
    for obj in list(session.new):
        if _evented(obj):
            _note(pending, obj, "created")
    for obj in list(session.dirty):
        if _evented(obj) and session.is_modified(obj, include_collections=False) and _changed(obj):
            _note(pending, obj, "updated")
    for obj in list(session.deleted):
        if not isinstance(obj, Organization) and _evented(obj):
            _note(pending, obj, "deleted")


def _reserve(connection: Connection, organization_id: uuid.UUID, count: int) -> int:
    """Advance the organization's counter by `count` under its row lock; the new top position."""
    dialect_insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
    stmt = (
        dialect_insert(EventCounter)
        .values(organization_id=organization_id, position=count, purged_through=0)
        .on_conflict_do_update(
            index_elements=[EventCounter.organization_id],
            set_={"position": EventCounter.position + count},
        )
        .returning(EventCounter.position)
    )
    return int(connection.execute(stmt).scalar_one())


def write(
    connection: Connection, pending: list[PendingEvent], deleted_organizations: set[uuid.UUID]
) -> None:
    """Number and insert the events: the last writes before COMMIT."""
    by_org: dict[uuid.UUID, list[PendingEvent]] = {}
    for item in pending:
        if item.organization_id not in deleted_organizations:
            by_org.setdefault(item.organization_id, []).append(item)
    if not by_org:
        return
    at = utcnow()
    rows: list[dict[str, Any]] = []
    # One lock order for every writer, so two multi-organization transactions cannot deadlock.
    for organization_id in sorted(by_org, key=str):
        items = by_org[organization_id]
        top = _reserve(connection, organization_id, len(items))
        for offset, item in enumerate(items):
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "organization_id": organization_id,
                    "position": top - len(items) + 1 + offset,
                    "type": item.type,
                    "resource_type": item.resource_type,
                    "resource_id": item.resource_id,
                    "data": item.data,
                    "occurred_at": at,
                }
            )
    connection.execute(insert(Event), rows)
