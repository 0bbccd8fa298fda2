"""The bench's peers (bench/peers: Express, FastAPI; and the raw baseline) still answer.

Each starts briefly as the bench starts it (bench.peers.launch) against this session's
PostgreSQL database and Valkey, with a session written the way its stack stores one
(bench.peers.sessions); its four routes must answer like Haven's: /health, the cached
dashboard, the properties page with a working cursor scoped to the organization, and the
tenant POST (the tenant and its audit row committed, visible to Haven). PostgreSQL only:
the peers are PostgreSQL apps.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from bench.peers import launch, sessions
from litestar.testing import TestClient

from conftest import Database, make_settings
from haven.app import create_app
from haven.devcluster.cluster import Child
from haven.store.embedded import EmbeddedValkey, free_port
from support import Account, register

TARGETS = ["express", "fastapi", "baseline"]


def _start(child: Child, port: int) -> None:
    child.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if not child.alive():
            pytest.fail(f"{child.name} exited: {child.log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{child.name} did not answer /health: {child.log_path.read_text()[-2000:]}")


async def _audit_rows(url: str, entity_id: str) -> list[Any]:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return list(
            await conn.fetch(
                "SELECT action, entity_type, organization_id::text FROM audit_events "
                "WHERE entity_id = $1::uuid",
                entity_id,
            )
        )
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def haven(
    database: Database, valkey: EmbeddedValkey, secret_key: str
) -> Iterator[tuple[TestClient[Any], Account, Account]]:
    """One Haven app and two organizations for every peer (signing up hashes passwords)."""
    if database.backend != "postgresql":
        pytest.skip("the bench's peers run on PostgreSQL only")
    with TestClient(create_app(make_settings(database, valkey, secret_key))) as client:
        owner, other = register(client), register(client, organization="Other Homes")
        for org, names in ((owner, ["Cedar", "Ash", "Birch"]), (other, ["Aardvark"])):
            for name in names:
                r = client.post(
                    "/api/v1/properties",
                    headers=org.headers,
                    json={
                        "name": name,
                        "type": "residential",
                        "address": {"line1": "1 Main St", "city": "Springfield", "country": "US"},
                    },
                )
                assert r.status_code == 201, r.text
        yield client, owner, other


@pytest.mark.parametrize("target", TARGETS)
def test_peer_answers_its_four_routes(
    target: str,
    haven: tuple[TestClient[Any], Account, Account],
    database: Database,
    valkey: EmbeddedValkey,
    tmp_path: Path,
) -> None:
    reason = launch.missing(target)
    if reason:
        pytest.skip(reason)
    client, owner, _other = haven
    store = redis.Redis.from_url(valkey.url)
    extra: dict[str, str] = {}
    if target == "baseline":
        assert client.get("/api/v1/dashboard", headers=owner.cookie_headers).status_code == 200
        keys = sorted(store.scan_iter(match="*:cache:*dashboard*"))
        assert keys
        prefix = keys[0].decode().split(":cache:")[0]
        extra = {"BASELINE_SESSION_PREFIX": f"{prefix}:session:", "BASELINE_CACHE_KEY": ""}
        extra["BASELINE_CACHE_KEY"] = keys[-1].decode()
        cookie = f"haven_session={owner.session_cookie}"
    elif target == "express":
        cookie = sessions.express_session(store, owner.user_id, owner.organization_id)
    else:
        cookie = sessions.fastapi_session(store, owner.user_id, owner.organization_id)
    port = free_port()
    argv, env = launch.command(target, port, database.url, valkey.url, extra)
    child = Child(target, argv, env, tmp_path / f"{target}.log")
    _start(child, port)
    try:
        base = f"http://127.0.0.1:{port}"
        auth = {"Cookie": cookie}
        with httpx.Client(base_url=base, timeout=10) as http:
            assert http.get("/health").json()["status"] == "OK"
            assert http.get("/api/v1/dashboard").status_code == 401
            assert http.get("/api/v1/properties").status_code == 401

            first = http.get("/api/v1/dashboard", headers=auth)
            assert first.status_code == 200, first.text
            assert first.headers["content-type"].startswith("application/json")
            assert http.get("/api/v1/dashboard", headers=auth).json() == first.json()

            page = http.get("/api/v1/properties?limit=2", headers=auth)
            assert page.status_code == 200, page.text
            body = page.json()
            assert [p["name"] for p in body["items"]] == ["Ash", "Birch"]
            assert body["items"][0]["address"]["city"] == "Springfield"
            assert body["nextCursor"]
            rest = http.get(
                "/api/v1/properties",
                params={"limit": 2, "cursor": body["nextCursor"]},
                headers=auth,
            ).json()
            assert [p["name"] for p in rest["items"]] == ["Cedar"]  # not the other org's
            assert rest["nextCursor"] is None
            haven_page = client.get("/api/v1/properties?limit=50", headers=owner.headers).json()
            assert [p["id"] for p in haven_page["items"]] == [
                p["id"] for p in body["items"] + rest["items"]
            ]

            created = http.post(
                "/api/v1/tenants",
                headers={**auth, "Content-Type": "application/json"},
                json={"firstName": "Pat", "lastName": "Peer", "email": "pat@example.com"},
            )
            assert created.status_code == 201, created.text
            tenant = created.json()
            assert tenant["firstName"] == "Pat"
            seen = client.get(f"/api/v1/tenants/{tenant['id']}", headers=owner.headers)
            assert seen.status_code == 200, seen.text
            assert seen.json()["email"] == "pat@example.com"
            audit = asyncio.run(_audit_rows(database.url, tenant["id"]))
            assert [(a[0], a[1], a[2]) for a in audit] == [
                ("tenant.created", "tenant", owner.organization_id)
            ]
    finally:
        child.stop()
        store.close()
        print(child.log_path.read_text()[-3000:])  # shown when the test fails
