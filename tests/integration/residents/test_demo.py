"""`haven demo-data` includes a resident with a login (docs/residents.md)."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

from litestar.testing import TestClient

from haven.app import create_app
from haven.config import load_settings
from haven.db.migrate import upgrade
from haven.demo import DEMO_PASSWORD, DEMO_RESIDENT_EMAIL, load_demo_data
from haven.store.embedded import EmbeddedValkey


def test_the_demo_resident_signs_in_and_sees_their_lease(
    tmp_path: Path, valkey: EmbeddedValkey
) -> None:
    env = {
        "HAVEN_ENV": "development",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}",
        "REDIS_URL": valkey.url,
        "REDIS_KEY_PREFIX": f"demo-{secrets.token_hex(3)}",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "RATE_LIMIT_ENABLED": "false",
        "LOG_LEVEL": "warning",
    }
    settings = load_settings(env, instance_id="demo-1")
    upgrade(settings)
    assert asyncio.run(load_demo_data(settings)) is True
    with TestClient(create_app(settings)) as client:
        login = client.post(
            "/api/v1/auth/login", json={"email": DEMO_RESIDENT_EMAIL, "password": DEMO_PASSWORD}
        )
        assert login.status_code == 200, login.text
        assert login.json()["role"] == "resident"
        headers = {"Authorization": f"Bearer {login.json()['accessToken']}"}
        client.cookies.clear()
        leases = client.get("/api/v1/leases", headers=headers)
        assert leases.status_code == 200
        assert len(leases.json()["items"]) == 1
        assert client.get("/api/v1/properties", headers=headers).status_code == 404
