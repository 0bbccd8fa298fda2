"""/api/v1/audit-events (owner and manager)."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, Response, get
from litestar.params import Parameter

from haven.audit import service
from haven.audit.schemas import AuditEventOut
from haven.audit.service import AuditRow
from haven.auth.principal import MANAGERS, Principal, roles
from haven.db.reader import Reader
from haven.models import AuditEvent
from haven.schemas import ListOf
from haven.web import NO_STORE, ListParams

_NAME = r"^[a-z][a-z0-9_]*$"
_ACTION = r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$"


def event_out(e: AuditEvent | AuditRow, emails: dict[uuid.UUID, str]) -> AuditEventOut:
    return AuditEventOut(
        id=e.id,
        at=e.at,
        actor_id=e.actor_id,
        actor_email=emails.get(e.actor_id) if e.actor_id else None,
        system_actor=e.system_actor,
        api_key_id=e.api_key_id,
        action=e.action,
        entity_type=e.entity_type,
        entity_id=e.entity_id,
        instance_id=e.instance_id,
        request_id=e.request_id,
        changes=list(e.changes or []),
    )


class AuditController(Controller):
    path = "/audit-events"
    tags = ["audit"]

    @get("/", opt=roles(*MANAGERS))
    async def list_events(
        self,
        reader: Reader,
        principal: Principal,
        page: ListParams,
        entity_type: Annotated[
            str | None, Parameter(query="entityType", max_length=64, pattern=_NAME)
        ] = None,
        entity_id: Annotated[uuid.UUID | None, Parameter(query="entityId")] = None,
        actor_id: Annotated[uuid.UUID | None, Parameter(query="actorId")] = None,
        action: Annotated[str | None, Parameter(max_length=64, pattern=_ACTION)] = None,
    ) -> Response[ListOf[AuditEventOut]]:
        """Who changed what in the organization, newest first, with instance and request id."""
        result = await service.list_events(
            reader,
            principal.organization_id,
            limit=page.limit,
            cursor=page.cursor,
            sort=page.sort,
            entity_type=entity_type,
            entity_id=entity_id,
            actor_id=actor_id,
            action=action,
        )
        emails = await service.emails_of(reader, [e.actor_id for e in result.items])
        body = ListOf([event_out(e, emails) for e in result.items], result.next_cursor)
        return Response(body, headers=NO_STORE)
