"""/api/v1/events: the organization's ordered, replayable feed of changes (owner and manager)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Response, get
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from haven.auth.principal import MANAGERS, Principal, roles
from haven.config import Settings
from haven.errors import FieldError, ValidationError
from haven.events import service
from haven.events.schemas import EventOut, FeedPage
from haven.models import Event
from haven.uow import catalog
from haven.web import NO_STORE

_TYPES = r"^[a-z_]+\.[a-z_]+(,[a-z_]+\.[a-z_]+)*$"


def event_out(e: Event) -> EventOut:
    return EventOut(
        id=e.id,
        type=e.type,
        position=e.position,
        organization_id=e.organization_id,
        resource_type=e.resource_type,
        resource_id=e.resource_id,
        occurred_at=e.occurred_at,
        data=dict(e.data or {}),
    )


def parse_types(raw: str | None, field: str = "types") -> frozenset[str]:
    """A comma-separated list of known event types; 422 naming the unknown ones."""
    if not raw:
        return frozenset()
    types = frozenset(t.strip() for t in raw.split(",") if t.strip())
    unknown = sorted(types - catalog.EVENT_TYPES)
    if unknown:
        raise ValidationError(
            errors=[FieldError(field, f"unknown event type(s): {', '.join(unknown)[:300]}")]
        )
    return types


class EventsController(Controller):
    path = "/events"
    tags = ["events"]

    @get("/", opt=roles(*MANAGERS))
    async def feed(
        self,
        settings: Settings,
        db: AsyncSession,
        principal: Principal,
        after: Annotated[
            str | None,
            Parameter(
                max_length=18,
                pattern=r"^[0-9]+$",
                description="nextCursor of the previous page; omit to start at the oldest kept",
            ),
        ] = None,
        types: Annotated[
            str | None,
            Parameter(
                max_length=2000,
                pattern=_TYPES,
                description="Comma-separated event types to return (default: all)",
            ),
        ] = None,
        limit: Annotated[int, Parameter(ge=1, le=500, description="Page size, 1-500")] = 100,
    ) -> Response[FeedPage]:
        """The organization's events in commit order; follow `nextCursor` to see each once."""
        feed = await service.read_feed(
            db,
            principal.organization_id,
            after=int(after) if after is not None else None,
            types=parse_types(types),
            limit=limit,
            retention_days=settings.event_retention_days,
        )
        body = FeedPage(
            items=[event_out(e) for e in feed.items],
            next_cursor=str(feed.next_position),
            has_more=feed.has_more,
        )
        return Response(body, headers=NO_STORE)


def document(openapi: Any) -> None:
    """An example payload for every event type on the feed's 200 response."""
    from litestar.openapi.spec import Example

    item = (openapi.paths or {}).get("/api/v1/events")
    operation = getattr(item, "get", None)
    if operation is None or not operation.responses or "200" not in operation.responses:
        return
    content = getattr(operation.responses["200"], "content", None) or {}
    media = content.get("application/json")
    if media is None:
        return
    media.examples = {
        event_type: Example(
            summary=event_type,
            value={"items": [catalog.example(event_type)], "nextCursor": "42", "hasMore": False},
        )
        for event_type in sorted(catalog.EVENT_TYPES)
    }
    operation.description = (
        (operation.description or "")
        + "\n\nEvent types: "
        + ", ".join(f"`{t}`" for t in sorted(catalog.EVENT_TYPES))
        + ". Each event's `data` is a snapshot of the resource after the change (before it, "
        "for `.deleted`). A cursor older than EVENT_RETENTION_DAYS answers 410 `cursor-expired`."
    )
