"""The process's shared services, built once in the app's lifespan, typed, immutable.

`Services` is everything a request may need beyond its own arguments: the settings, the
engines and the sessionmaker, the list `Reader`, the Redis client, its key names, the
session store and the API-key store. `open_services` builds it when the app starts and
closes what it opened when the app stops; `create_app`'s lifespan stores it on the app
once (`attach`), and `services_of` is the one place that reads it back. Routes and
dependencies take it as a typed parameter (`services: Services`, or `reader: Reader` for
lists and a write's check reads), never from `app.state`.

Only infrastructure is imported here (config, db, store, the session and API-key stores),
so any layer may name the type.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from litestar import Litestar
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from haven.auth.apikeys.store import ApiKeyStore
from haven.auth.sessions import SessionStore
from haven.config import Settings
from haven.db.engine import WRITE_OPTION, create_engine, read_only_engine, warm_pool
from haven.db.reader import Reader
from haven.store.client import Keys, create_redis

_STATE_KEY = "haven_services"


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    engine: AsyncEngine  # the pool; what the statement counter listens on
    read_engine: AsyncEngine  # safe methods (autocommit on PostgreSQL)
    write_engine: AsyncEngine  # everything else
    sessionmaker: async_sessionmaker[AsyncSession]
    reader: Reader  # list pages and assembled views, on the read engine
    redis: Redis
    redis_keys: Keys
    sessions: SessionStore
    api_keys: ApiKeyStore


@asynccontextmanager
async def open_services(
    settings: Settings,
    redis_url: str,
    create_sessionmaker: Callable[[AsyncEngine], async_sessionmaker[AsyncSession]],
) -> AsyncGenerator[Services]:
    """Build the services (nothing connects but the pool warm-up), close them on exit.

    `create_sessionmaker` is the unit of work's (haven.uow.create_sessionmaker, whose
    sessions record audit rows and events): passed in, so this module stays below it."""
    engine = create_engine(settings)
    redis = create_redis(settings, redis_url)
    keys = Keys(settings.redis_key_prefix)
    read_engine = read_only_engine(engine, settings)
    services = Services(
        settings=settings,
        engine=engine,
        read_engine=read_engine,
        write_engine=engine.execution_options(**{WRITE_OPTION: True}),
        sessionmaker=create_sessionmaker(engine),
        reader=Reader(read_engine),
        redis=redis,
        redis_keys=keys,
        sessions=SessionStore(redis, keys, settings.session_ttl, settings.session_max_age),
        api_keys=ApiKeyStore(redis, keys),
    )
    try:
        if not settings.is_sqlite:
            await warm_pool(engine, settings.db_pool_min)
        yield services
    finally:
        await redis.aclose()
        await engine.dispose()


def attach(app: Litestar, services: Services) -> None:
    """Keep the started services on the app (the lifespan calls this once)."""
    app.state[_STATE_KEY] = services


def services_of(app: Litestar) -> Services:
    """The app's services: the only read of `app.state` (after the lifespan started)."""
    services: Services = app.state[_STATE_KEY]
    return services
