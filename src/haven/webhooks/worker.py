"""The delivery worker every instance runs: any instance may deliver, none is special.

Work is claimed per subscription, so a subscription's events go out one at a time
and in feed order (only the oldest undelivered event of a subscription is ever in
flight). A claim is a lease: `claim_token`, `claimed_by` and `claim_expires_at` on
the subscription row, set by one UPDATE (on PostgreSQL over `FOR UPDATE SKIP LOCKED`,
so instances never wait on each other; on SQLite writers are serialized and the
UPDATE's WHERE re-checks the claim). A worker sends only while its lease has more
than the HTTP timeout left (renewing it first), and every write it makes names its
token, so an instance that died, or stalled past its lease, can neither send nor
record anything once another has taken over. An instance killed between the
receiver's 2xx and the recording of it leaves the event undelivered in the
database: the next claimer sends it again, with the same `webhook-id`
(at-least-once).

HTTP is never sent inside a database transaction, the worker has its own small
engine (WEBHOOK_CONCURRENCY + 1 connections, apart from the request pool) and its
own HTTP client with timeouts, so a slow or dead receiver cannot slow API requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import Table, and_, exists, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from haven.config import Settings
from haven.db.base import utcnow
from haven.db.engine import WRITE_OPTION, create_engine
from haven.models import Event, EventCounter, WebhookDelivery, WebhookSubscription
from haven.uow.outbox import json_safe
from haven.webhooks import egress, signing

if TYPE_CHECKING:
    import httpx

log = structlog.get_logger("haven.webhooks")

S = cast(Table, WebhookSubscription.__table__)
E = cast(Table, Event.__table__)
D = cast(Table, WebhookDelivery.__table__)
C = cast(Table, EventCounter.__table__)

JITTER = 0.25  # each retry delay is its nominal value times a factor in [0.75, 1.25]
PAGE = 50  # events read per query while a subscription is claimed
MAX_PER_CLAIM = 500  # events sent per claim before the subscription goes back to the pool
STATS_EVERY_S = 5.0
_MARGIN_S = 2.0
# Its own generator: jitter never touches (or depends on) the process-wide random state.
_RNG = random.Random()


def retry_delay_ms(
    attempt: int, base_ms: int, max_ms: int, rand: Callable[[], float] = _RNG.random
) -> float:
    """Delay after the `attempt`-th failure: base * 2^(attempt-1), capped, with +-25 % jitter."""
    nominal = min(base_ms * 2 ** max(0, attempt - 1), max_ms)
    return float(nominal) * (1 - JITTER + 2 * JITTER * rand())


def payload(event: Any) -> bytes:
    """The request body: the event exactly as the feed shows it (plus the spec's `timestamp`)."""
    occurred = json_safe(event.occurred_at)
    return json.dumps(
        {
            "id": str(event.id),
            "type": event.type,
            "timestamp": occurred,
            "position": event.position,
            "organizationId": str(event.organization_id),
            "resourceType": event.resource_type,
            "resourceId": str(event.resource_id),
            "occurredAt": occurred,
            "data": event.data or {},
        },
        separators=(",", ":"),
    ).encode()


class WebhookMetrics:
    """Delivery counters of this instance, and cluster-wide lag and failure gauges."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.snapshot: dict[str, float] = {
            "delivered": 0,
            "failed": 0,
            "lagSeconds": 0.0,
            "backlog": 0,
            "failingSubscriptions": 0,
            "failingSeconds": 0.0,
        }
        self.deliveries = Counter(
            "haven_webhook_deliveries",
            "Webhook delivery attempts made by this instance, by outcome",
            ["outcome"],
            registry=registry,
        )
        for name, doc, key in (
            (
                "haven_webhook_delivery_lag_seconds",
                "Age of the oldest event not yet delivered to a subscription (cluster-wide)",
                "lagSeconds",
            ),
            (
                "haven_webhook_backlog_events",
                "Events waiting for delivery, summed over subscriptions (cluster-wide)",
                "backlog",
            ),
            (
                "haven_webhook_failing_subscriptions",
                "Subscriptions marked failing (retried for WEBHOOK_FAILING_AFTER without success)",
                "failingSubscriptions",
            ),
            (
                "haven_webhook_failing_seconds",
                "Seconds since the longest-failing subscription was marked failing (0: none)",
                "failingSeconds",
            ),
        ):
            Gauge(name, doc, registry=registry).set_function(self._reader(key))

    def summary(self) -> dict[str, Any]:
        """For /api/v1/load-balancer/metrics and the status page."""
        snap = self.snapshot
        return {
            "delivered": int(snap["delivered"]),
            "failed": int(snap["failed"]),
            "lagSeconds": round(snap["lagSeconds"], 1),
            "backlog": int(snap["backlog"]),
            "failingSubscriptions": int(snap["failingSubscriptions"]),
            "failingSeconds": round(snap["failingSeconds"], 1),
        }

    def _reader(self, key: str) -> Callable[[], float]:
        return lambda: float(self.snapshot[key])

    def delivered(self, ok: bool) -> None:
        self.deliveries.labels("success" if ok else "failure").inc()
        self.snapshot["delivered" if ok else "failed"] += 1


@dataclass(slots=True)
class Claim:
    id: uuid.UUID
    organization_id: uuid.UUID
    url: str
    types: frozenset[str]
    secret: str
    previous_secret: str | None
    previous_secret_expires_at: datetime | None
    status: str
    delivered_position: int
    attempts: int
    next_attempt_at: datetime
    first_failure_at: datetime | None
    failing_since: datetime | None
    token: uuid.UUID
    expires_at: datetime


@dataclass(slots=True)
class Outcome:
    ok: bool
    status: int | None = None
    error: str | None = None
    duration_ms: int = 0


@dataclass
class DeliveryWorker:
    settings: Settings
    metrics: WebhookMetrics
    engine: AsyncEngine | None = None
    _task: asyncio.Task[None] | None = None
    _active: set[asyncio.Task[None]] = field(default_factory=set)
    _client: httpx.AsyncClient | None = None
    _next_stats: float = 0.0

    @property
    def _db(self) -> AsyncEngine:
        assert self.engine is not None
        return self.engine

    @property
    def _writer(self) -> AsyncEngine:
        return self._db.execution_options(**{WRITE_OPTION: True})

    async def start(self) -> None:
        size = self.settings.webhook_concurrency + 1
        self.engine = create_engine(self.settings.with_overrides(db_pool_min=0, db_pool_max=size))
        self._task = asyncio.create_task(self._run(), name="haven-webhook-worker")

    def _http(self) -> httpx.AsyncClient:
        """The HTTP client, made on the first delivery: httpx and its TLS context (the CA
        bundle, ~7 MB with the import) stay out of an instance that has none to make."""
        if self._client is None:
            import httpx

            timeout = self.settings.webhook_timeout_ms / 1000
            self._client = httpx.AsyncClient(
                follow_redirects=False,
                timeout=httpx.Timeout(timeout),
                trust_env=False,
                limits=httpx.Limits(max_connections=self.settings.webhook_concurrency * 2),
                headers={"user-agent": f"Haven-Webhooks/{self.settings.version}"},
            )
        return self._client

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._active) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._client is not None:
            await self._client.aclose()
        if self.engine is not None:
            await self.engine.dispose()

    async def _run(self) -> None:
        poll = self.settings.webhook_poll_ms / 1000
        while True:
            try:
                free = self.settings.webhook_concurrency - len(self._active)
                if free > 0 and await self._anything_due():
                    for claim in await self._claim(free):
                        task = asyncio.create_task(self._serve(claim))
                        self._active.add(task)
                        task.add_done_callback(self._active.discard)
                if time.monotonic() >= self._next_stats:
                    self._next_stats = time.monotonic() + STATS_EVERY_S
                    await self._refresh_stats()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database down: try again next tick
                log.warning("webhook_worker_tick_failed", error=repr(exc))
            await asyncio.sleep(poll * (0.5 + _RNG.random()))

    def _due(self, alias: Any, now: datetime) -> Any:
        pending_events = (
            exists()
            .where(E.c.organization_id == alias.c.organization_id)
            .where(E.c.position > alias.c.delivered_position)
        )
        pending_redeliveries = (
            exists().where(D.c.subscription_id == alias.c.id).where(D.c.status == "pending")
        )
        return and_(
            alias.c.status != "paused",
            or_(alias.c.claim_expires_at.is_(None), alias.c.claim_expires_at < now),
            or_(and_(alias.c.next_attempt_at <= now, pending_events), pending_redeliveries),
        )

    async def _anything_due(self) -> bool:
        """A cheap read first, so an idle cluster takes no write lock per tick."""
        due = S.alias("due")
        stmt = select(due.c.id).where(self._due(due, utcnow())).limit(1)
        async with self._db.connect() as conn:
            found = (await conn.execute(stmt)).first()
            await conn.rollback()
        return found is not None

    async def _claim(self, limit: int) -> list[Claim]:
        now = utcnow()
        token = uuid.uuid4()
        expires = now + timedelta(milliseconds=self.settings.webhook_claim_ttl_ms)
        due = S.alias("due")
        candidates = (
            select(due.c.id).where(self._due(due, now)).order_by(due.c.next_attempt_at).limit(limit)
        )
        if not self.settings.is_sqlite:
            candidates = candidates.with_for_update(skip_locked=True)
        stmt = (
            update(S)
            .where(S.c.id.in_(candidates.scalar_subquery()))
            .values(
                claim_token=token,
                claimed_by=self.settings.instance_id,
                claim_expires_at=expires,
            )
            .returning(
                S.c.id,
                S.c.organization_id,
                S.c.url,
                S.c.types,
                S.c.secret,
                S.c.previous_secret,
                S.c.previous_secret_expires_at,
                S.c.status,
                S.c.delivered_position,
                S.c.attempts,
                S.c.next_attempt_at,
                S.c.first_failure_at,
                S.c.failing_since,
            )
        )
        async with self._writer.begin() as conn:
            rows = (await conn.execute(stmt)).all()
        return [
            Claim(
                id=r.id,
                organization_id=r.organization_id,
                url=r.url,
                types=frozenset(r.types or ()),
                secret=r.secret,
                previous_secret=r.previous_secret,
                previous_secret_expires_at=r.previous_secret_expires_at,
                status=r.status,
                delivered_position=int(r.delivered_position),
                attempts=int(r.attempts),
                next_attempt_at=r.next_attempt_at,
                first_failure_at=r.first_failure_at,
                failing_since=r.failing_since,
                token=token,
                expires_at=expires,
            )
            for r in rows
        ]

    async def _serve(self, claim: Claim) -> None:
        try:
            await self._redeliveries(claim)
            if claim.next_attempt_at <= utcnow():
                await self._stream(claim)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("webhook_serve_failed", subscription=str(claim.id), error=repr(exc))
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._release(claim), 5)

    async def _release(self, claim: Claim) -> None:
        async with self._writer.begin() as conn:
            await conn.execute(
                update(S)
                .where(S.c.id == claim.id, S.c.claim_token == claim.token)
                .values(claim_token=None, claimed_by=None, claim_expires_at=None)
            )

    async def _hold(self, claim: Claim) -> bool:
        """True while the lease has room for one more request (renewed when it runs short)."""
        room = timedelta(milliseconds=self.settings.webhook_timeout_ms) + timedelta(
            seconds=_MARGIN_S
        )
        now = utcnow()
        if claim.expires_at - now > room:
            return True
        expires = now + timedelta(milliseconds=self.settings.webhook_claim_ttl_ms)
        async with self._writer.begin() as conn:
            result = await conn.execute(
                update(S)
                .where(
                    S.c.id == claim.id,
                    S.c.claim_token == claim.token,
                    S.c.claim_expires_at > now,
                )
                .values(claim_expires_at=expires)
            )
        if result.rowcount != 1:
            return False
        claim.expires_at = expires
        return True

    async def _events_after(self, claim: Claim, position: int) -> list[Any]:
        """The next page of the organization's events, and the subscription's secrets read
        after it (a statement of its own, so as new as any event on the page): a secret
        rotated while the claim streams signs the events found after the rotation, not the
        secrets as of the claim."""
        stmt = (
            select(E)
            .where(E.c.organization_id == claim.organization_id, E.c.position > position)
            .order_by(E.c.position)
            .limit(PAGE)
        )
        secrets = select(S.c.secret, S.c.previous_secret, S.c.previous_secret_expires_at).where(
            S.c.id == claim.id
        )
        async with self._db.connect() as conn:
            rows = list((await conn.execute(stmt)).all())
            current = (await conn.execute(secrets)).first() if rows else None
            await conn.rollback()
        if current is not None:
            claim.secret, claim.previous_secret = current.secret, current.previous_secret
            claim.previous_secret_expires_at = current.previous_secret_expires_at
        return rows

    async def _stream(self, claim: Claim) -> None:
        """Send the claimed subscription's undelivered events, oldest first, one at a time."""
        position = claim.delivered_position
        sent = 0
        while sent < MAX_PER_CLAIM:
            events = await self._events_after(claim, position)
            if not events:
                break
            for event in events:
                if claim.types and event.type not in claim.types:
                    position = event.position  # not subscribed: step over it
                    continue
                if not await self._hold(claim):
                    return
                outcome = await self._send(claim, event)
                if not await self._record(claim, event, outcome, position):
                    return
                position = event.position
                sent += 1
        if position > claim.delivered_position:
            await self._advance(claim, position)

    async def _advance(self, claim: Claim, position: int) -> None:
        async with self._writer.begin() as conn:
            await conn.execute(
                update(S)
                .where(
                    S.c.id == claim.id,
                    S.c.claim_token == claim.token,
                    S.c.delivered_position == claim.delivered_position,
                )
                .values(delivered_position=position)
            )
        claim.delivered_position = position

    def _keys(self, claim: Claim) -> list[str]:
        keys = [claim.secret]
        if (
            claim.previous_secret
            and claim.previous_secret_expires_at is not None
            and claim.previous_secret_expires_at > utcnow()
        ):
            keys.append(claim.previous_secret)
        return keys

    async def _send(self, claim: Claim, event: Any) -> Outcome:
        import httpx  # loaded by _http() below (first delivery)

        client = self._http()
        body = payload(event)
        started = time.monotonic()

        def done(ok: bool, status: int | None = None, error: str | None = None) -> Outcome:
            ms = int((time.monotonic() - started) * 1000)
            self.metrics.delivered(ok)
            return Outcome(ok, status, error[:500] if error else None, ms)

        try:
            target = await egress.target(
                claim.url, allow_private=self.settings.webhook_allow_private
            )
        except egress.EgressRefusedError as exc:
            return done(False, error=f"refused: {exc}")
        headers = signing.headers(str(event.id), int(time.time()), body, self._keys(claim))
        headers["content-type"] = "application/json"
        headers["host"] = target.host_header
        extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else None
        try:
            response = await client.post(
                target.url, content=body, headers=headers, extensions=extensions
            )
        except httpx.TimeoutException:
            return done(False, error=f"timed out after {self.settings.webhook_timeout_ms} ms")
        except httpx.HTTPError as exc:
            return done(False, error=f"{type(exc).__name__}: {exc}")
        status = response.status_code
        if 200 <= status < 300:
            return done(True, status)
        if 300 <= status < 400:
            where = response.headers.get("location", "")[:200]
            return done(False, status, f"HTTP {status}: redirects are not followed ({where})")
        return done(False, status, f"HTTP {status}")

    def _log_row(self, claim: Claim, event: Any, outcome: Outcome, attempt: int) -> dict[str, Any]:
        return {
            "id": uuid.uuid4(),
            "organization_id": claim.organization_id,
            "subscription_id": claim.id,
            "event_id": event.id,
            "event_type": event.type,
            "event_position": event.position,
            "status": "succeeded" if outcome.ok else "failed",
            "attempt": attempt,
            "redelivery": False,
            "response_status": outcome.status,
            "error": outcome.error,
            "duration_ms": outcome.duration_ms,
            "instance_id": self.settings.instance_id,
            "at": utcnow(),
        }

    async def _record(self, claim: Claim, event: Any, outcome: Outcome, skipped_to: int) -> bool:
        """Write the attempt's result under the claim; True to go on with the next event."""
        now = utcnow()
        attempt = claim.attempts + 1
        fence = and_(
            S.c.id == claim.id,
            S.c.claim_token == claim.token,
            S.c.delivered_position == claim.delivered_position,
        )
        if outcome.ok:
            values: dict[str, Any] = {
                "delivered_position": event.position,
                "attempts": 0,
                "first_failure_at": None,
                "failing_since": None,
                "last_error": None,
                "next_attempt_at": now,
            }
            if claim.status == "failing":
                values["status"] = "active"
        else:
            first = claim.first_failure_at or now
            delay = retry_delay_ms(
                attempt, self.settings.webhook_retry_base_ms, self.settings.webhook_retry_max_ms
            )
            values = {
                "delivered_position": skipped_to,
                "attempts": attempt,
                "first_failure_at": first,
                "next_attempt_at": now + timedelta(milliseconds=delay),
                "last_error": f"event {event.position}: {outcome.error}"[:500],
            }
            if (now - first).total_seconds() >= self.settings.webhook_failing_after_s:
                values["failing_since"] = claim.failing_since or now
                if claim.status == "active":
                    values["status"] = "failing"
        async with self._writer.begin() as conn:
            result = await conn.execute(update(S).where(fence).values(**values))
            if result.rowcount != 1:
                return False  # the lease was lost: another instance owns the subscription now
            await conn.execute(insert(D).values(**self._log_row(claim, event, outcome, attempt)))
        if not outcome.ok:
            return False
        claim.delivered_position = event.position
        claim.attempts = 0
        claim.first_failure_at = None
        claim.failing_since = None
        if claim.status == "failing":
            claim.status = "active"
        return True

    async def _redeliveries(self, claim: Claim) -> None:
        """Send the queued redeliveries of the claimed subscription (once each, logged)."""
        stmt = (
            select(D.c.id.label("delivery_id"), *E.c)
            .join(E, E.c.id == D.c.event_id, isouter=True)
            .where(D.c.subscription_id == claim.id, D.c.status == "pending")
            .order_by(D.c.at)
            .limit(20)
        )
        async with self._db.connect() as conn:
            rows = list((await conn.execute(stmt)).all())
            await conn.rollback()
        for row in rows:
            if not await self._hold(claim):
                return
            if row.position is None:
                outcome = Outcome(False, error="the event is past its retention and was purged")
            else:
                outcome = await self._send(claim, row)
            async with self._writer.begin() as conn:
                await conn.execute(
                    update(D)
                    .where(D.c.id == row.delivery_id, D.c.status == "pending")
                    .values(
                        status="succeeded" if outcome.ok else "failed",
                        attempt=1,
                        response_status=outcome.status,
                        error=outcome.error,
                        duration_ms=outcome.duration_ms,
                        instance_id=self.settings.instance_id,
                        at=utcnow(),
                    )
                )

    async def _refresh_stats(self) -> None:
        now = utcnow()
        lag_stmt = (
            select(func.min(E.c.occurred_at))
            .select_from(S)
            .join(
                E,
                and_(
                    E.c.organization_id == S.c.organization_id,
                    E.c.position == S.c.delivered_position + 1,
                ),
            )
            .where(S.c.status != "paused")
        )
        backlog_stmt = (
            select(func.coalesce(func.sum(C.c.position - S.c.delivered_position), 0))
            .select_from(S)
            .join(C, C.c.organization_id == S.c.organization_id)
            .where(S.c.status != "paused")
        )
        failing_stmt = select(func.count(), func.min(S.c.failing_since)).where(
            S.c.status == "failing"
        )
        async with self._db.connect() as conn:
            oldest = (await conn.execute(lag_stmt)).scalar()
            backlog = (await conn.execute(backlog_stmt)).scalar()
            failing = (await conn.execute(failing_stmt)).one()
            await conn.rollback()
        oldest_at = _aware(oldest)
        since = _aware(failing[1])
        snap = self.metrics.snapshot
        snap["lagSeconds"] = max(0.0, (now - oldest_at).total_seconds()) if oldest_at else 0.0
        snap["backlog"] = int(backlog or 0)
        snap["failingSubscriptions"] = int(failing[0] or 0)
        snap["failingSeconds"] = max(0.0, (now - since).total_seconds()) if since else 0.0


def _aware(value: Any) -> datetime | None:
    """Aggregates come back untyped (a naive datetime, or a string on SQLite)."""
    from datetime import UTC

    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None
