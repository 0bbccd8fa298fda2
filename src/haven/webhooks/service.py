"""Managing webhook subscriptions (their delivery is haven.webhooks.worker's job)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import delete as sa_delete
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from haven.db.base import utcnow
from haven.db.pagination import ListQuery, Page, sort_keys
from haven.db.query import get_owned
from haven.db.reader import Reader
from haven.errors import FieldError, NotFoundError, ValidationError
from haven.events.service import counter
from haven.models import Event, WebhookDelivery, WebhookSubscription
from haven.uow import add_new, catalog
from haven.webhooks import egress, signing
from haven.webhooks.schemas import WebhookIn, WebhookPatch

SORTS = sort_keys({"createdAt": (WebhookSubscription.created_at, datetime)})
DELIVERY_SORTS = sort_keys({"at": (WebhookDelivery.at, datetime)})


class SubscriptionRow(NamedTuple):
    """A subscription as its list shows it (no secrets: they are not read)."""

    id: uuid.UUID
    url: str
    types: list[str] | None
    description: str | None
    status: str
    delivered_position: int
    attempts: int
    next_attempt_at: datetime
    failing_since: datetime | None
    last_error: str | None
    previous_secret_expires_at: datetime | None
    rotated_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime


class DeliveryRow(NamedTuple):
    """A delivery attempt as the log shows it (a row of `webhook_deliveries`)."""

    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    event_position: int
    status: str
    attempt: int
    redelivery: bool
    response_status: int | None
    error: str | None
    duration_ms: int | None
    instance_id: str | None
    at: datetime


LIST = ListQuery(WebhookSubscription, SubscriptionRow, SORTS, default_sort="createdAt")
DELIVERIES = ListQuery(
    WebhookDelivery,
    DeliveryRow,
    DELIVERY_SORTS,
    default_sort="-at",
    filters={"subscription_id": lambda value: WebhookDelivery.subscription_id == value},
)


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
    session: AsyncSession,
    reader: Reader,
    organization_id: uuid.UUID,
    data: WebhookIn,
    *,
    allow_private: bool,
) -> WebhookSubscription:
    """A new subscription, delivering the events committed from now on: after the feed's
    top as `reader` reads it (no lock: an event committed between that read and this
    commit is delivered too, as it would be from inside the transaction). Added with
    `add_new`: written with the commit's statement (haven.uow.recorder)."""
    types = _check_types(data.types)
    url = await check_url(data.url, allow_private=allow_private)
    top = (await counter(reader, organization_id)).position
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
    add_new(session, sub)
    return sub


async def list_subscriptions(
    reader: Reader, organization_id: uuid.UUID, *, limit: int, cursor: str | None
) -> Page[SubscriptionRow]:
    return await LIST.page(reader, organization_id, limit=limit, cursor=cursor, sort=None)


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
    reader: Reader,
    sub: WebhookSubscription,
    *,
    limit: int,
    cursor: str | None,
) -> Page[DeliveryRow]:
    """The subscription's delivery attempts, newest first."""
    return await DELIVERIES.page(
        reader,
        sub.organization_id,
        limit=limit,
        cursor=cursor,
        sort=None,
        subscription_id=sub.id,
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
