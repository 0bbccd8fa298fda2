"""Contract-test helpers: a real cluster (3 instances behind nginx), one account per role."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from support_cluster import (
    clean_env,
    consecutive_free_ports,
    e2e_database,
    haven_cmd,
    spawn,
    wait_for,
)

ROLES = ("owner", "manager", "staff", "viewer")
# The credential of an integration: an owner-role API key, in an organization of its own.
API_KEY = "api-key"
PASSWORD = "contract password 1"


@dataclass
class Cluster:
    url: str
    backend: str
    tokens: dict[str, str]  # role (or API_KEY) -> Bearer access token (or the key)


def database_url(backend: str, tmp: Path) -> tuple[str, contextlib.AbstractContextManager[None]]:
    """(DATABASE_URL, cleanup) for a fresh database of this backend; skips PostgreSQL unset."""
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp / 'haven.db'}", contextlib.nullcontext()
    if not os.environ.get("HAVEN_TEST_DATABASE_URL"):
        pytest.skip("the PostgreSQL contract run needs HAVEN_TEST_DATABASE_URL")
    url, drop = e2e_database(tmp, "contract")

    @contextlib.contextmanager
    def dropped() -> Iterator[None]:
        try:
            yield
        finally:
            drop()

    return url, dropped()


def accounts(url: str) -> dict[str, str]:
    """An access token per role and an owner-role API key, each in an organization of its own.

    The owner's run may change or remove members it can see (schemathesis follows the ids a
    list returns); the other roles live where it cannot reach them.
    """
    tokens: dict[str, str] = {}
    with httpx.Client(base_url=url, timeout=15) as http:
        for role in ROLES:
            owner = http.post(
                "/api/v1/auth/register",
                json={
                    "organizationName": f"Contract Homes ({role})",
                    "name": "Olive Owner",
                    "email": f"owner.{role}@contract.example",
                    "password": PASSWORD,
                },
            )
            assert owner.status_code == 201, owner.text
            http.cookies.clear()  # every request below says which credential it sends
            tokens[role] = owner.json()["accessToken"]
            if role == "owner":
                continue
            email = f"{role}@contract.example"
            added = http.post(
                "/api/v1/members",
                headers={"Authorization": f"Bearer {tokens[role]}"},
                json={"email": email, "name": f"A {role}", "role": role, "password": PASSWORD},
            )
            assert added.status_code == 201, added.text
            login = http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
            assert login.status_code == 200, login.text
            http.cookies.clear()
            tokens[role] = login.json()["accessToken"]
        keys_owner = http.post(
            "/api/v1/auth/register",
            json={
                "organizationName": "Contract Homes (API key)",
                "name": "Kim Keyholder",
                "email": f"owner.{API_KEY}@contract.example",
                "password": PASSWORD,
            },
        )
        assert keys_owner.status_code == 201, keys_owner.text
        http.cookies.clear()
        created = http.post(
            "/api/v1/api-keys",
            headers={"Authorization": f"Bearer {keys_owner.json()['accessToken']}"},
            json={"name": "Contract run", "role": "owner"},
        )
        assert created.status_code == 201, created.text
        tokens[API_KEY] = created.json()["key"]
    return tokens


@contextlib.contextmanager
def contract_cluster(backend: str, tmp: Path) -> Iterator[Cluster]:
    """`haven up` with 3 instances behind nginx on a fresh database of `backend`."""
    url, cleanup = database_url(backend, tmp)
    base = consecutive_free_ports(5)
    lb_port, instance_base = base, base + 2
    env = clean_env(
        HAVEN_ENV="development",
        DATABASE_URL=url,
        LOG_LEVEL="warning",
        # The fuzzer sends thousands of requests a minute from one address and one user;
        # the limiter's 429s are documented and tested in tests/integration/cluster.
        RATE_LIMIT_ENABLED="false",
        # Generated webhooks name random hosts: no delivery ever leaves this machine.
        WEBHOOK_WORKER="false",
    )
    args = haven_cmd(
        "up",
        "--instances",
        "3",
        "--lb",
        "nginx",
        "--lb-port",
        str(lb_port),
        "--base-port",
        str(instance_base),
        "--runtime-dir",
        str(tmp / "run"),
    )
    with cleanup, spawn(args, env, tmp / "up.log") as up:
        lb = f"http://127.0.0.1:{lb_port}"

        def ready() -> bool:
            assert up.process.poll() is None, up.output()
            return httpx.get(f"{lb}/health", timeout=1).status_code == 200

        wait_for(ready, 120, "haven up to answer through nginx")
        yield Cluster(url=lb, backend=backend, tokens=accounts(lb))
