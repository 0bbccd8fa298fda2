"""Issue 12's acceptance: through nginx and three real `haven serve` instances, a member whose
session has outlived SESSION_TTL (kept alive by use) is demoted or removed, and within one
second of the change's response every instance refuses them (403 on writes, 401). Issue 18
adds an API key to the same cluster: revoked, it is refused by every instance within 1 s."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from haven.devcluster.cluster import Cluster, ClusterSpec
from haven.devcluster.render import find_nginx
from support_cluster import clean_env, consecutive_free_ports, e2e_database

pytestmark = pytest.mark.slow

SESSION_TTL = 60  # the smallest SESSION_TTL accepted
TENANT = {"firstName": "Ada", "lastName": "Lovelace"}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    if find_nginx() is None:
        pytest.skip("nginx not found: apt-get install nginx")
    database_url, drop = e2e_database(tmp_path)
    base = consecutive_free_ports(5)
    spec = ClusterSpec(
        instances=3,
        base_port=base + 2,
        lb="nginx",
        lb_port=base,
        stats_port=base + 1,
        runtime_dir=tmp_path / "run",
        drain_delay_ms=500,
        shutdown_timeout_ms=5000,
        demo_data=False,
        extra_env=clean_env(
            HAVEN_ENV="test",
            DATABASE_URL=database_url,
            LOG_LEVEL="warning",
            RATE_LIMIT_ENABLED="false",
            SESSION_TTL=str(SESSION_TTL),
            DB_POOL_MIN="1",
            DB_POOL_MAX="5",
        ),
    )
    c = Cluster(spec, log=lambda _line: None)
    try:
        c.start()
        yield c
    finally:
        c.stop()
        for child in [*c.instances, c.balancer]:
            if child is not None and child.alive():
                child.stop(signal.SIGKILL, 5)
        if c.valkey is not None:
            c.valkey.cleanup()
        drop()


def _bearer(body: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {body['accessToken']}"}


def _login(http: httpx.Client, email: str, password: str) -> httpx.Response:
    response = http.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    http.cookies.clear()
    return response


def _browser(login: httpx.Response) -> dict[str, str]:
    """A browser's credentials: the session cookie, and the CSRF header for writes."""
    return {
        "Cookie": f"haven_session={login.cookies['haven_session']}",
        "X-CSRF-Token": login.json()["csrfToken"],
    }


def test_demotion_and_removal_reach_every_instance_within_a_second(cluster: Cluster) -> None:
    lb = httpx.Client(base_url=f"http://127.0.0.1:{cluster.spec.lb_port}", timeout=10.0)
    direct = [
        httpx.Client(base_url=f"http://127.0.0.1:{cluster.instance_port(i)}", timeout=10.0)
        for i in range(3)
    ]
    try:
        email, password = f"owner-{uuid.uuid4().hex[:10]}@example.com", "correct horse battery"
        registered = lb.post(
            "/api/v1/auth/register",
            json={
                "organizationName": "Acme",
                "name": "Olive",
                "email": email,
                "password": password,
            },
        )
        assert registered.status_code == 201, registered.text
        lb.cookies.clear()
        owner = _bearer(registered.json())
        members: dict[str, dict[str, str]] = {}
        ids: dict[str, str] = {}
        for role in ("manager", "staff"):
            member_email = f"{role}-{uuid.uuid4().hex[:10]}@example.com"
            added = lb.post(
                "/api/v1/members",
                headers=owner,
                json={"email": member_email, "name": role, "role": role, "password": password},
            )
            assert added.status_code == 201, added.text
            login = _login(lb, member_email, password)
            ids[role] = login.json()["user"]["id"]
            members[role] = _browser(login)
        manager, staff = members["manager"], members["staff"]
        assert lb.post("/api/v1/tenants", headers=manager, json=TENANT).status_code == 201

        # Keep both sessions alive by using them, through nginx, past SESSION_TTL (bounded).
        signed_in = time.monotonic()
        for _ in range(40):
            if time.monotonic() - signed_in > SESSION_TTL + 5:
                break
            for headers in (manager, staff):
                assert lb.get("/api/v1/auth/me", headers=headers).status_code == 200
            time.sleep(5)
        assert time.monotonic() - signed_in > SESSION_TTL + 5
        owner = _bearer(_login(lb, email, password).json())  # the owner's idled out
        for http in direct:
            assert http.post("/api/v1/tenants", headers=manager, json=TENANT).status_code == 201
            assert http.get("/api/v1/auth/me", headers=staff).status_code == 200

        demoted = lb.patch(
            f"/api/v1/members/{ids['manager']}", headers=owner, json={"role": "viewer"}
        )
        assert demoted.status_code == 200, demoted.text
        _refused_everywhere(direct, lb, manager, "POST", "/api/v1/tenants", 403, time.monotonic())

        removed = lb.delete(f"/api/v1/members/{ids['staff']}", headers=owner)
        assert removed.status_code == 204, removed.text
        _refused_everywhere(direct, lb, staff, "GET", "/api/v1/auth/me", 401, time.monotonic())
        # The demoted member still reads; the removed one writes nothing either.
        for http in direct:
            assert http.get("/api/v1/tenants", headers=manager).status_code == 200
            assert http.post("/api/v1/tenants", headers=staff, json=TENANT).status_code == 401

        # An API key (issue 18): works on every instance, and once revoked is refused (401)
        # by every instance within a second of the revocation's answer.
        created = lb.post(
            "/api/v1/api-keys", headers=owner, json={"name": "Accounting", "role": "manager"}
        )
        assert created.status_code == 201, created.text
        key = {"Authorization": f"Bearer {created.json()['key']}"}
        for http in direct:
            assert http.post("/api/v1/tenants", headers=key, json=TENANT).status_code == 201
        revoked = lb.delete(f"/api/v1/api-keys/{created.json()['id']}", headers=owner)
        assert revoked.status_code == 204, revoked.text
        _refused_everywhere(direct, lb, key, "POST", "/api/v1/tenants", 401, time.monotonic())
    finally:
        lb.close()
        for http in direct:
            http.close()


def _refused_everywhere(
    direct: list[httpx.Client],
    lb: httpx.Client,
    headers: dict[str, str],
    method: str,
    path: str,
    status: int,
    changed_at: float,
) -> None:
    """Every instance (asked directly, and nginx) answers `status` within 1 s of `changed_at`."""
    deadline = changed_at + 1.0
    pending = dict(enumerate(direct))
    seen: dict[int, int] = {}
    for _ in range(200):
        for i, http in list(pending.items()):
            response = http.request(
                method, path, headers=headers, json=TENANT if method == "POST" else None
            )
            seen[i] = response.status_code
            if response.status_code == status:
                assert response.headers["content-type"].startswith("application/problem+json")
                del pending[i]
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not pending, f"instances {sorted(pending)} still answered {seen} after 1 s"
    for _ in range(3):  # and through the load balancer, whichever instance it picks
        response = lb.request(
            method, path, headers=headers, json=TENANT if method == "POST" else None
        )
        assert response.status_code == status, response.text
