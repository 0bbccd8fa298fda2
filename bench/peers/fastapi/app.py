"""The bench's FastAPI peer: Haven's four benched routes the way FastAPI's docs do them.

SQLAlchemy 2 async ORM on asyncpg (one `AsyncSession` per request from a `Depends`
generator), redis-py's asyncio client, Pydantic response models, served by uvicorn with
one worker. Against the same PostgreSQL tables Haven's seed filled.

- GET /health: a small JSON, no session, no Redis.
- GET /api/v1/dashboard: session (`session_id` cookie -> `fastapi:session:<sid>` in
  Redis), a per-user fixed-window rate limit (INCR + EXPIRE, one pipeline), then the
  organization's dashboard JSON cached in Redis for 60 s.
- GET /api/v1/properties: 50 rows by name, a keyset cursor, scoped by organization.
- POST /api/v1/tenants: the tenant and its audit row in one transaction; 201.

Run: PEER_DATABASE_URL=postgresql+asyncpg://... PEER_REDIS_URL=redis://...
uvicorn bench.peers.fastapi.app:app --port N --workers 1
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Cookie, Depends, FastAPI, HTTPException, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from redis.asyncio import Redis
from sqlalchemy import JSON, DateTime, Integer, String, Text, Uuid, func, select
from sqlalchemy import tuple_ as sql_tuple
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

DATABASE_URL = os.environ.get(
    "PEER_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/haven"
)
REDIS_URL = os.environ.get("PEER_REDIS_URL", "redis://127.0.0.1:6379")
RATE_LIMIT = int(os.environ.get("RATE_LIMIT_PER_USER", "10000000"))

engine = create_async_engine(DATABASE_URL, pool_size=10)
SessionLocal = async_sessionmaker(engine, expire_on_commit=False)
redis_client = Redis.from_url(REDIS_URL)


# ---- models (the columns of Haven's tables these routes use) ---------------------------


class Base(DeclarativeBase):
    pass


class Property(Base):
    __tablename__ = "properties"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(16))
    address_line1: Mapped[str] = mapped_column(String(200))
    address_line2: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(100))
    region: Mapped[str | None] = mapped_column(String(100))
    postal_code: Mapped[str | None] = mapped_column(String(20))
    country: Mapped[str] = mapped_column(String(2))
    year_built: Mapped[int | None] = mapped_column(Integer)
    unit_count: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Tenant(Base):
    __tablename__ = "tenants"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    organization_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    notes: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=lambda: datetime.now(UTC)
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=lambda: datetime.now(UTC)
    )


class AuditEvent(Base):
    __tablename__ = "audit_events"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    organization_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    action: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    changes: Mapped[list[str]] = mapped_column(JSON)


class Unit(Base):
    __tablename__ = "units"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(16))


class Lease(Base):
    __tablename__ = "leases"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(16))


class MaintenanceRequest(Base):
    __tablename__ = "maintenance_requests"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(16))


# ---- schemas ----------------------------------------------------------------------------


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


class AddressOut(CamelModel):
    line1: str
    line2: str | None
    city: str
    region: str | None
    postal_code: str | None
    country: str


class PropertyOut(CamelModel):
    id: uuid.UUID
    name: str
    type: str
    address: AddressOut
    year_built: int | None
    unit_count: int
    version: int
    created_at: datetime
    updated_at: datetime


class PropertyPage(CamelModel):
    items: list[PropertyOut]
    next_cursor: str | None


class TenantIn(CamelModel):
    first_name: str = Field(min_length=1, max_length=100)
    last_name: str = Field(min_length=1, max_length=100)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=40)


class TenantOut(CamelModel):
    id: uuid.UUID
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    notes: str | None
    version: int
    created_at: datetime
    updated_at: datetime


class CurrentUser(BaseModel):
    user_id: uuid.UUID
    organization_id: uuid.UUID


# ---- dependencies -----------------------------------------------------------------------


async def get_db() -> AsyncIterator[AsyncSession]:
    async with SessionLocal() as session:
        yield session


async def get_redis() -> Redis:
    return redis_client


DB = Annotated[AsyncSession, Depends(get_db)]
Cache = Annotated[Redis, Depends(get_redis)]


async def current_user(
    cache: Cache, session_id: Annotated[str | None, Cookie()] = None
) -> CurrentUser:
    raw = await cache.get(f"fastapi:session:{session_id}") if session_id else None
    if raw is None:
        raise HTTPException(status_code=401, detail="Not signed in")
    return CurrentUser.model_validate_json(raw)


async def rate_limited(
    cache: Cache, user: Annotated[CurrentUser, Depends(current_user)]
) -> CurrentUser:
    window = int(datetime.now(UTC).timestamp()) // 60
    key = f"fastapi:rate:{user.user_id}:{window}"
    async with cache.pipeline(transaction=False) as pipe:
        count, _ = await pipe.incr(key).expire(key, 60, nx=True).execute()
    if count > RATE_LIMIT:
        raise HTTPException(status_code=429, detail="Too many requests")
    return user


User = Annotated[CurrentUser, Depends(rate_limited)]


# ---- routes -----------------------------------------------------------------------------


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield
    await engine.dispose()
    await redis_client.aclose()


app = FastAPI(title="Haven bench peer (FastAPI)", lifespan=lifespan)


@app.get("/health")
async def health() -> dict[str, Any]:
    return {"success": True, "status": "OK", "instanceId": "fastapi"}


@app.get("/api/v1/dashboard")
async def dashboard(user: User, db: DB, cache: Cache) -> Response:
    key = f"dashboard:{user.organization_id}"
    cached = await cache.get(key)
    if cached is not None:
        return Response(content=cached, media_type="application/json")
    org = user.organization_id

    def count(model: Any, *where: Any) -> Any:
        stmt = select(func.count()).select_from(model).where(model.organization_id == org, *where)
        return stmt.scalar_subquery()

    row = (
        await db.execute(
            select(
                count(Property),
                count(Unit),
                count(Unit, Unit.status == "occupied"),
                count(Lease, Lease.status == "active"),
                count(Tenant),
                count(
                    MaintenanceRequest,
                    MaintenanceRequest.status.not_in(("completed", "cancelled")),
                ),
            )
        )
    ).one()
    properties, units, occupied, leases, tenants, open_maintenance = row
    body = json.dumps(
        {
            "properties": properties,
            "units": units,
            "occupiedUnits": occupied,
            "occupancyRate": occupied / units if units else 0,
            "activeLeases": leases,
            "tenants": tenants,
            "openMaintenance": open_maintenance,
        }
    )
    await cache.set(key, body, ex=60)
    return Response(content=body, media_type="application/json")


def _cursor(name: str, row_id: uuid.UUID) -> str:
    raw = json.dumps(["name", name, str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _after(cursor: str) -> tuple[str, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        sort, name, row_id = json.loads(raw)
        if sort != "name" or not isinstance(name, str):
            raise ValueError(sort)
        return name, uuid.UUID(row_id)
    except (ValueError, TypeError) as exc:
        raise HTTPException(status_code=422, detail="Invalid cursor") from exc


@app.get("/api/v1/properties", response_model=PropertyPage, response_model_by_alias=True)
async def list_properties(
    response: Response,
    user: User,
    db: DB,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: str | None = None,
) -> PropertyPage:
    stmt = select(Property).where(Property.organization_id == user.organization_id)
    if cursor:
        name, row_id = _after(cursor)
        stmt = stmt.where(sql_tuple(Property.name, Property.id) > sql_tuple(name, row_id))
    stmt = stmt.order_by(Property.name, Property.id).limit(limit + 1)
    rows = list((await db.scalars(stmt)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    response.headers["Cache-Control"] = "no-store"
    return PropertyPage(
        items=[
            PropertyOut(
                id=p.id,
                name=p.name,
                type=p.type,
                address=AddressOut(
                    line1=p.address_line1,
                    line2=p.address_line2,
                    city=p.city,
                    region=p.region,
                    postal_code=p.postal_code,
                    country=p.country,
                ),
                year_built=p.year_built,
                unit_count=p.unit_count,
                version=p.version,
                created_at=p.created_at,
                updated_at=p.updated_at,
            )
            for p in rows
        ],
        next_cursor=_cursor(rows[-1].name, rows[-1].id) if more else None,
    )


@app.post(
    "/api/v1/tenants", status_code=201, response_model=TenantOut, response_model_by_alias=True
)
async def create_tenant(body: TenantIn, user: User, db: DB, cache: Cache) -> Tenant:
    tenant = Tenant(
        organization_id=user.organization_id,
        first_name=body.first_name.strip(),
        last_name=body.last_name.strip(),
        email=body.email,
        phone=body.phone,
    )
    async with db.begin():
        db.add(tenant)
        await db.flush()
        db.add(
            AuditEvent(
                organization_id=user.organization_id,
                at=tenant.created_at,
                actor_id=user.user_id,
                action="tenant.created",
                entity_type="tenant",
                entity_id=tenant.id,
                changes=["firstName", "lastName"],
            )
        )
    await cache.delete(f"dashboard:{user.organization_id}")
    return tenant
