"""Session cookies are Secure whenever the client is on HTTPS (issue 12), and only then.

Production always marks them Secure. In any environment a request that arrived
over TLS, directly or as a trusted proxy says with X-Forwarded-Proto, gets
Secure cookies too. An untrusted peer cannot claim https (the end-to-end proof
through real nginx and HAProxy is tests/e2e/test_tls.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from haven.app import create_app
from haven.config import Settings
from support import register


def _session_cookie(response: Any) -> str:
    cookies = response.headers.get_list("set-cookie")
    return next(c for c in cookies if c.startswith("haven_session="))


@pytest.fixture
def https_client(settings_factory: Callable[..., Settings]) -> Iterator[TestClient[Any]]:
    app = create_app(settings_factory(instance_id="tls-direct"))
    with TestClient(app, base_url="https://testserver.local") as client:
        yield client


def test_a_sign_in_over_https_gets_secure_cookies_that_work(
    https_client: TestClient[Any],
) -> None:
    owner = register(https_client)
    login = https_client.post(
        "/api/v1/auth/login", json={"email": owner.email, "password": owner.password}
    )
    assert login.status_code == 200
    assert "secure" in _session_cookie(login).lower()
    me = https_client.get("/api/v1/auth/me")
    assert me.status_code == 200
    assert me.json()["user"]["email"] == owner.email


def test_an_untrusted_peer_cannot_claim_https(
    app_factory: Callable[..., TestClient[Any]],
) -> None:
    # TRUST_PROXY on, but the test client's peer is not in TRUSTED_PROXIES.
    client = app_factory(trust_proxy=True, instance_id="tls-untrusted")
    owner = register(client)
    login = client.post(
        "/api/v1/auth/login",
        json={"email": owner.email, "password": owner.password},
        headers={"X-Forwarded-Proto": "https"},
    )
    assert login.status_code == 200
    assert "secure" not in _session_cookie(login).lower()
