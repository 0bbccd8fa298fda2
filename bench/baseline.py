"""The baseline: a raw ASGI app on the same server (granian, embedded) as Haven.

The least each benched route can do, as the near-limit reference:
- /health answers a small JSON;
- /api/v1/dashboard does one Redis GET of the session (from the cookie) and one of the
  cached JSON;
- /api/v1/properties (with BASELINE_DATABASE_URL) reads the session, then one asyncpg
  query of 50 rows by name after an optional cursor (Haven's cursor format), encoded
  with msgspec;
- POST /api/v1/tenants reads the session, then inserts the tenant and its audit row in
  one statement (a CTE: one database round trip, atomic), answering 201.
Its session is Haven's own record (`<prefix>:session:<sid>`, the JSON's `oid`/`uid`).

Run: BASELINE_REDIS_URL=... BASELINE_CACHE_KEY=... [BASELINE_DATABASE_URL=postgresql://...]
python -m bench.baseline PORT
"""

from __future__ import annotations

import asyncio
import base64
import os
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
from granian.constants import Interfaces
from granian.log import LogLevels
from granian.server.embed import Server
from redis.asyncio import Redis

from haven.server import event_loop_factory

REDIS = Redis.from_url(os.environ.get("BASELINE_REDIS_URL", "redis://127.0.0.1:6379"))
PREFIX = os.environ.get("BASELINE_SESSION_PREFIX", "haven:session:").encode()
CACHE_KEY = os.environ.get("BASELINE_CACHE_KEY", "")
DATABASE_URL = os.environ.get("BASELINE_DATABASE_URL", "")
HEALTH = b'{"success":true,"status":"OK","instanceId":"baseline"}'
JSON = [(b"content-type", b"application/json")]
POOL: Any = None  # asyncpg.Pool, made on the first database request

_COLUMNS = """SELECT id, name, type, address_line1, address_line2, city, region, postal_code,
  country, year_built, unit_count, version, created_at, updated_at FROM properties"""
PAGE_SQL = f"{_COLUMNS} WHERE organization_id = $1 ORDER BY name, id LIMIT $2"
AFTER_SQL = (
    f"{_COLUMNS} WHERE organization_id = $1 AND (name, id) > ($2, $3) ORDER BY name, id LIMIT $4"
)
INSERT_SQL = """WITH t AS (
  INSERT INTO tenants (id, organization_id, first_name, last_name, email, phone, version,
    created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7) RETURNING id)
INSERT INTO audit_events (id, organization_id, at, actor_id, action, entity_type, entity_id,
  changes) SELECT $8, $2, $7, $9, 'tenant.created', 'tenant', t.id, '["firstName","lastName"]'
  FROM t"""


class TenantIn(msgspec.Struct, rename="camel"):
    first_name: str
    last_name: str
    email: str | None = None
    phone: str | None = None


_tenant = msgspec.json.Decoder(TenantIn)
_session = msgspec.json.Decoder(dict[str, Any])
_encode = msgspec.json.encode


async def _pool() -> Any:
    global POOL
    if POOL is None:
        import asyncpg

        POOL = await asyncpg.create_pool(DATABASE_URL, min_size=1, max_size=10)
    return POOL


def _page(rows: list[Any], limit: int) -> bytes:
    more = len(rows) > limit
    rows = rows[:limit]
    items = [
        {
            "id": r[0],
            "name": r[1],
            "type": r[2],
            "address": {
                "line1": r[3],
                "line2": r[4],
                "city": r[5],
                "region": r[6],
                "postalCode": r[7],
                "country": r[8],
            },
            "yearBuilt": r[9],
            "unitCount": r[10],
            "version": r[11],
            "createdAt": r[12],
            "updatedAt": r[13],
        }
        for r in rows
    ]
    cursor = None
    if more:
        raw = _encode(["name", rows[-1][1], str(rows[-1][0])])
        cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return _encode({"items": items, "nextCursor": cursor})


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    status, body = 200, HEALTH
    path = scope["path"]
    if path != "/health":
        cookie = next((v for k, v in scope["headers"] if k == b"cookie"), b"")
        sid = cookie.partition(b"haven_session=")[2].split(b";")[0]
        session = await REDIS.get(PREFIX + sid)
        if session is None:
            status, body = 401, b"{}"
        elif path == "/api/v1/dashboard":
            body = await REDIS.get(CACHE_KEY) or b"{}"
        elif path == "/api/v1/properties":
            status, body = await _properties(scope, _session.decode(session))
        elif path == "/api/v1/tenants" and scope["method"] == "POST":
            status, body = await _create_tenant(await _body(receive), _session.decode(session))
        else:
            status, body = 404, b"{}"
    await send({"type": "http.response.start", "status": status, "headers": JSON})
    await send({"type": "http.response.body", "body": body})


async def _properties(scope: dict[str, Any], session: dict[str, Any]) -> tuple[int, bytes]:
    limit, name, after = 50, None, None
    for part in scope["query_string"].decode().split("&"):
        key, _, value = part.partition("=")
        if key == "limit" and value.isdigit():
            limit = max(1, min(int(value), 100))
        elif key == "cursor" and value:
            try:
                raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
                _, name, row_id = msgspec.json.decode(raw)
                after = uuid.UUID(row_id)
            except (ValueError, TypeError, msgspec.DecodeError):
                return 422, b"{}"
    pool = await _pool()
    org = uuid.UUID(session["oid"])
    if after is None:
        rows = await pool.fetch(PAGE_SQL, org, limit + 1)
    else:
        rows = await pool.fetch(AFTER_SQL, org, name, after, limit + 1)
    return 200, _page(rows, limit)


async def _create_tenant(raw: bytes, session: dict[str, Any]) -> tuple[int, bytes]:
    try:
        data = _tenant.decode(raw)
    except msgspec.DecodeError:
        return 422, b"{}"
    tenant_id, now = uuid.uuid4(), datetime.now(UTC)
    pool = await _pool()
    await pool.execute(
        INSERT_SQL,
        tenant_id,
        uuid.UUID(session["oid"]),
        data.first_name,
        data.last_name,
        data.email,
        data.phone,
        now,
        uuid.uuid4(),
        uuid.UUID(session["uid"]),
    )
    return 201, _encode(
        {
            "id": tenant_id,
            "firstName": data.first_name,
            "lastName": data.last_name,
            "email": data.email,
            "phone": data.phone,
            "notes": None,
            "version": 1,
            "createdAt": now,
            "updatedAt": now,
        }
    )


async def _main(port: int) -> None:
    server = Server(
        app,
        address="127.0.0.1",
        port=port,
        interface=Interfaces.ASGI,
        log_access=False,
        log_level=LogLevels.warning,
    )
    await server.serve()


if __name__ == "__main__":
    # The same event loop as `haven serve` (uvloop where installed).
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(_main(int(sys.argv[1])))
