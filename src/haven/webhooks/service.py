"""Managing webhook subscriptions (their delivery is haven.webhooks.worker's job)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete as sa_delete
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from haven.db.base import utcnow
from haven.db.pagination import Page, paginate, resolve_sort, sort_keys
from haven.db.query import get_owned, scoped
from haven.errors import FieldError, NotFoundError, ValidationError
from haven.events.service import counter
from haven.models import Event, WebhookDelivery, WebhookSubscription
from haven.uow import catalog
from haven.webhooks import egress, signing
from haven.webhooks.schemas import WebhookIn, WebhookPatch

SORTS = sort_keys({"createdAt": (WebhookSubscription.created_at, datetime)})
DELIVERY_SORTS = sort_keys({"at": (WebhookDelivery.at, datetime)})


def _check_types(types: list[str]) -> list[str]:
    unknown = sorted(set(types) - catalog.EVENT_TYPES)
    if unknown:
        raise ValidationError(
            errors=[FieldError("types", f"unknown event type(s): {', '.join(unknown)[:300]}")]
        )
    return sorted(set(types))


async def check_url(url: str, *, allow_private: bool) -> str:
    try:
        await egress.target(url, allow_private=allow_private)
    except egress.EgressRefusedError as exc:
        raise ValidationError(errors=[FieldError("url", str(exc))]) from None
    return url


async def create(
    session: AsyncSession, organization_id: uuid.UUID, data: WebhookIn, *, allow_private: bool
) -> WebhookSubscription:
    """A new subscription, delivering the events committed from now on."""
    types = _check_types(data.types)
    url = await check_url(data.url, allow_private=allow_private)
    top, _ = await counter(session, organization_id)
    sub = WebhookSubscription(
        organization_id=organization_id,
        url=url,
        types=types,
        description=data.description,
        secret=signing.new_secret(),
        status="active",
        delivered_position=top,
        attempts=0,
        next_attempt_at=utcnow(),
    )
    session.add(sub)
    await session.flush()
    return sub


async def list_subscriptions(
    session: AsyncSession, organization_id: uuid.UUID, *, limit: int, cursor: str | None
) -> Page[WebhookSubscription]:
    sort_name, key = resolve_sort(SORTS, None, "createdAt")
    return await paginate(
        session,
        scoped(WebhookSubscription, organization_id),
        id_column=WebhookSubscription.id,
        sort_name=sort_name,
        key=key,
        limit=limit,
        cursor=cursor,
    )


async def get(
    session: AsyncSession, organization_id: uuid.UUID, subscription_id: uuid.UUID
) -> WebhookSubscription:
    return await get_owned(session, WebhookSubscription, organization_id, subscription_id)


async def update(
    session: AsyncSession, sub: WebhookSubscription, data: WebhookPatch
) -> WebhookSubscription:
    """Apply a change whose URL (if any) `check_url` has already accepted."""
    if data.url is not None and data.url != sub.url:
        sub.url = data.url
        sub.next_attempt_at = utcnow()  # a fixed URL is tried now, not after the backoff
    if data.types is not None:
        sub.types = _check_types(data.types)
    if data.description is not None:
        sub.description = data.description
    if data.paused is True:
        sub.status = "paused"
    elif data.paused is False and sub.status == "paused":
        sub.status = "active"
        sub.next_attempt_at = utcnow()
    await session.flush()
    return sub


async def rotate(
    session: AsyncSession, sub: WebhookSubscription, overlap_seconds: int
) -> WebhookSubscription:
    """A new secret; the old one keeps signing too until the overlap ends."""
    if overlap_seconds > 0:
        sub.previous_secret = sub.secret
        sub.previous_secret_expires_at = utcnow() + timedelta(seconds=overlap_seconds)
    else:
        sub.previous_secret = None
        sub.previous_secret_expires_at = None
    sub.secret = signing.new_secret()
    sub.rotated_at = utcnow()
    await session.flush()
    return sub


async def delete(session: AsyncSession, sub: WebhookSubscription) -> None:
    await session.delete(sub)
    await session.flush()


async def list_deliveries(
    session: AsyncSession,
    sub: WebhookSubscription,
    *,
    limit: int,
    cursor: str | None,
) -> Page[WebhookDelivery]:
    """The subscription's delivery attempts, newest first."""
    sort_name, key = resolve_sort(DELIVERY_SORTS, None, "-at")
    stmt = scoped(WebhookDelivery, sub.organization_id).where(
        WebhookDelivery.subscription_id == sub.id
    )
    return await paginate(
        session,
        stmt,
        id_column=WebhookDelivery.id,
        sort_name=sort_name,
        key=key,
        limit=limit,
        cursor=cursor,
    )


async def redeliver(
    session: AsyncSession, sub: WebhookSubscription, event_id: uuid.UUID
) -> WebhookDelivery:
    """Queue one more delivery of a past event (any worker sends it, out of the stream's order)."""
    event = (
        await session.execute(
            select(Event).where(Event.organization_id == sub.organization_id, Event.id == event_id)
        )
    ).scalar_one_or_none()
    if event is None:
        raise NotFoundError(f"No event with id {event_id} (or it is past its retention)")
    delivery = WebhookDelivery(
        organization_id=sub.organization_id,
        subscription_id=sub.id,
        event_id=event.id,
        event_type=event.type,
        event_position=event.position,
        status="pending",
        attempt=0,
        redelivery=True,
        at=utcnow(),
    )
    session.add(delivery)
    await session.flush()
    return delivery


async def purge_deliveries(
    session: AsyncSession, retention_days: int, *, now: datetime | None = None
) -> int:
    """Delete finished delivery log rows older than the event retention."""
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    result = await session.execute(
        sa_delete(WebhookDelivery).where(
            WebhookDelivery.at < cutoff, WebhookDelivery.status.in_(("succeeded", "failed"))
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
