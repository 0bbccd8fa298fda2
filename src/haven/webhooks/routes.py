"""/api/v1/webhooks: subscriptions, their delivery log, redelivery and secret rotation."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_201_CREATED,
    HTTP_202_ACCEPTED,
    HTTP_204_NO_CONTENT,
)
from sqlalchemy.ext.asyncio import AsyncSession

from haven.auth.principal import MANAGERS, Principal, roles
from haven.config import Settings
from haven.db.reader import Reader
from haven.models import WebhookDelivery, WebhookSubscription
from haven.schemas import ListOf
from haven.web import NO_STORE, ListParams, check_version, with_etag
from haven.webhooks import service
from haven.webhooks.schemas import (
    DeliveryOut,
    RedeliverIn,
    RotatedSecret,
    RotateIn,
    WebhookCreated,
    WebhookIn,
    WebhookOut,
    WebhookPatch,
)
from haven.webhooks.service import DeliveryRow, SubscriptionRow

_MANAGE = roles(*MANAGERS)


def _fields(s: WebhookSubscription | SubscriptionRow) -> dict[str, Any]:
    return {
        "id": s.id,
        "url": s.url,
        "types": list(s.types or []),
        "description": s.description,
        "status": s.status,
        "delivered_position": s.delivered_position,
        "attempts": s.attempts,
        "next_attempt_at": s.next_attempt_at if s.attempts else None,
        "failing_since": s.failing_since,
        "last_error": s.last_error,
        "previous_secret_expires_at": s.previous_secret_expires_at,
        "rotated_at": s.rotated_at,
        "version": s.version,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
    }


def webhook_out(s: WebhookSubscription | SubscriptionRow) -> WebhookOut:
    return WebhookOut(**_fields(s))


def delivery_out(d: WebhookDelivery | DeliveryRow) -> DeliveryOut:
    return DeliveryOut(
        id=d.id,
        event_id=d.event_id,
        event_type=d.event_type,
        event_position=d.event_position,
        status=d.status,
        attempt=d.attempt,
        redelivery=d.redelivery,
        response_status=d.response_status,
        error=d.error,
        duration_ms=d.duration_ms,
        instance_id=d.instance_id,
        at=d.at,
    )


class WebhooksController(Controller):
    path = "/webhooks"
    tags = ["webhooks"]

    @post("/", status_code=HTTP_201_CREATED, opt=_MANAGE)
    async def create(
        self,
        request: Request[Any, Any, Any],
        settings: Settings,
        db: AsyncSession,
        reader: Reader,
        principal: Principal,
        data: WebhookIn,
    ) -> Response[WebhookCreated]:
        """Subscribe a URL to events; the signing secret is in this answer only."""
        sub = await service.create(
            db,
            reader,
            principal.organization_id,
            data,
            allow_private=settings.webhook_allow_private,
        )
        body = WebhookCreated(**_fields(sub), secret=sub.secret)
        return with_etag(request, body, sub.version, HTTP_201_CREATED)

    @get("/", opt=_MANAGE)
    async def list_webhooks(
        self, reader: Reader, principal: Principal, page: ListParams
    ) -> Response[ListOf[WebhookOut]]:
        """The organization's webhook subscriptions, oldest first, with their delivery state."""
        result = await service.list_subscriptions(
            reader, principal.organization_id, limit=page.limit, cursor=page.cursor
        )
        body = ListOf([webhook_out(s) for s in result.items], result.next_cursor)
        return Response(body, headers=NO_STORE)

    @get("/{webhook_id:uuid}", opt=_MANAGE)
    async def show(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        webhook_id: uuid.UUID,
    ) -> Response[WebhookOut]:
        """One subscription: status (active, failing, paused), last error, delivered position."""
        sub = await service.get(db, principal.organization_id, webhook_id)
        return with_etag(request, webhook_out(sub), sub.version)

    @patch("/{webhook_id:uuid}", opt=_MANAGE)
    async def update(
        self,
        request: Request[Any, Any, Any],
        settings: Settings,
        db: AsyncSession,
        principal: Principal,
        webhook_id: uuid.UUID,
        data: WebhookPatch,
    ) -> Response[WebhookOut]:
        """Change the URL, types or description, or pause and resume delivery."""
        if data.url is not None:
            # Resolved before the transaction's first statement: no lock waits on DNS.
            await service.check_url(data.url, allow_private=settings.webhook_allow_private)
        sub = await service.get(db, principal.organization_id, webhook_id)
        check_version(sub, request.headers.get("if-match"))
        sub = await service.update(db, sub, data)
        return with_etag(request, webhook_out(sub), sub.version)

    @delete("/{webhook_id:uuid}", status_code=HTTP_204_NO_CONTENT, opt=_MANAGE)
    async def remove(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        webhook_id: uuid.UUID,
    ) -> None:
        """Delete a subscription and its delivery log."""
        sub = await service.get(db, principal.organization_id, webhook_id)
        check_version(sub, request.headers.get("if-match"))
        await service.delete(db, sub)

    @post("/{webhook_id:uuid}/rotate-secret", status_code=HTTP_200_OK, opt=_MANAGE)
    async def rotate(
        self,
        request: Request[Any, Any, Any],
        settings: Settings,
        db: AsyncSession,
        principal: Principal,
        webhook_id: uuid.UUID,
        data: RotateIn | None = None,
    ) -> Response[RotatedSecret]:
        """A new signing secret; the previous one also signs until the overlap ends."""
        sub = await service.get(db, principal.organization_id, webhook_id)
        overlap = settings.webhook_rotation_overlap_s
        if data is not None and data.overlap_seconds is not None:
            overlap = data.overlap_seconds
        sub = await service.rotate(db, sub, overlap)
        body = RotatedSecret(
            secret=sub.secret, previous_secret_expires_at=sub.previous_secret_expires_at
        )
        return Response(body, headers=NO_STORE)

    @get("/{webhook_id:uuid}/deliveries", opt=_MANAGE)
    async def deliveries(
        self,
        db: AsyncSession,
        reader: Reader,
        principal: Principal,
        webhook_id: uuid.UUID,
        page: ListParams,
    ) -> Response[ListOf[DeliveryOut]]:
        """The subscription's delivery log, newest first: status code or error of each attempt."""
        sub = await service.get(db, principal.organization_id, webhook_id)
        result = await service.list_deliveries(reader, sub, limit=page.limit, cursor=page.cursor)
        body = ListOf([delivery_out(d) for d in result.items], result.next_cursor)
        return Response(body, headers=NO_STORE)

    @post("/{webhook_id:uuid}/redeliver", status_code=HTTP_202_ACCEPTED, opt=_MANAGE)
    async def redeliver(
        self, db: AsyncSession, principal: Principal, webhook_id: uuid.UUID, data: RedeliverIn
    ) -> Response[DeliveryOut]:
        """Send a past event again (same webhook-id); a worker picks it up within seconds."""
        sub = await service.get(db, principal.organization_id, webhook_id)
        delivery = await service.redeliver(db, sub, data.event_id)
        return Response(delivery_out(delivery), status_code=HTTP_202_ACCEPTED, headers=NO_STORE)
