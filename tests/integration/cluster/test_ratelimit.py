"""Rate limits are shared by every instance through Redis and answer 429 problem+json."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from litestar.testing import TestClient

from support import assert_problem, register, unique_email


def limited(app_factory: Callable[..., TestClient[Any]], **overrides: Any) -> TestClient[Any]:
    """An app with rate limiting on, under its own key prefix (tests never share counters)."""
    prefix = overrides.pop("redis_key_prefix")
    return app_factory(rate_limit_enabled=True, redis_key_prefix=prefix, **overrides)


def test_the_global_limit_holds_across_two_instances(
    app_factory: Callable[..., TestClient[Any]],
) -> None:
    prefix = f"rl-{secrets.token_hex(4)}"
    a = limited(app_factory, redis_key_prefix=prefix, rate_limit_global=10, instance_id="rl-a")
    b = limited(app_factory, redis_key_prefix=prefix, rate_limit_global=10, instance_id="rl-b")
    answers = [(a if i % 2 else b).get("/api/v1/auth/me") for i in range(30)]
    allowed = [r for r in answers if r.status_code != 429]
    refused = [r for r in answers if r.status_code == 429]
    assert len(allowed) == 10  # the sum over both instances stays within the limit
    assert {r.headers["x-instance-id"] for r in allowed} == {"rl-a", "rl-b"}
    assert len(refused) == 20

    first = allowed[0]
    assert first.headers["ratelimit-limit"] == "10"
    assert first.headers["ratelimit-remaining"] == "9"
    assert 1 <= int(first.headers["ratelimit-reset"]) <= 60
    assert allowed[-1].headers["ratelimit-remaining"] == "0"

    problem = refused[0]
    body = assert_problem(problem, 429, "rate-limited")
    assert body["instance"] == "/api/v1/auth/me"
    assert 1 <= int(problem.headers["retry-after"]) <= 60
    assert problem.headers["ratelimit-remaining"] == "0"
    assert problem.headers["ratelimit-limit"] == "10"
    assert problem.headers["x-instance-id"] in {"rl-a", "rl-b"}  # edge headers on a 429 too


def test_load_balancer_endpoints_are_never_rate_limited(
    app_factory: Callable[..., TestClient[Any]],
) -> None:
    prefix = f"rl-{secrets.token_hex(4)}"
    client = limited(app_factory, redis_key_prefix=prefix, rate_limit_global=2)
    for _ in range(5):
        for path in ("/health", "/ready", "/alive", "/metrics", "/api/v1/load-balancer/health"):
            response = client.get(path)
            assert response.status_code == 200, path
            assert "ratelimit-limit" not in response.headers
    assert client.get("/api/v1/auth/me").status_code == 401  # the first two API calls pass
    assert client.get("/api/v1/auth/me").status_code == 401
    assert_problem(client.get("/api/v1/auth/me"), 429, "rate-limited")


def test_login_is_limited_per_ip_and_email_and_the_body_still_reaches_the_app(
    app_factory: Callable[..., TestClient[Any]],
) -> None:
    prefix = f"rl-{secrets.token_hex(4)}"
    client = limited(app_factory, redis_key_prefix=prefix, rate_limit_auth=3)
    account = register(client)  # register and login share the IP+email bucket: 1 of 3
    wrong = {"email": account.email, "password": "not the password"}
    for _ in range(2):
        assert_problem(client.post("/api/v1/auth/login", json=wrong), 401)
    refused = client.post("/api/v1/auth/login", json=wrong)
    assert_problem(refused, 429, "rate-limited")
    assert refused.headers["ratelimit-limit"] == "3"
    # Even the right password is refused now for this email from this address...
    right = {"email": account.email, "password": account.password}
    assert_problem(client.post("/api/v1/auth/login", json=right), 429)
    # ...while another email is untouched, and its body was replayed intact to the app.
    other = client.post(
        "/api/v1/auth/login", json={"email": unique_email(), "password": "whatever pass"}
    )
    assert_problem(other, 401, "invalid-credentials")
    # Malformed and oversized bodies still get the app's own answers.
    assert_problem(
        client.post(
            "/api/v1/auth/login", content=b"{not json", headers={"content-type": "application/json"}
        ),
        400,
    )
    big = b'{"email": "' + b"a" * (1024 * 1024 + 10) + b'"}'
    assert_problem(
        client.post(
            "/api/v1/auth/login", content=big, headers={"content-type": "application/json"}
        ),
        413,
    )


def test_per_user_limit_follows_the_session_not_the_address(
    app_factory: Callable[..., TestClient[Any]],
) -> None:
    prefix = f"rl-{secrets.token_hex(4)}"
    a = limited(app_factory, redis_key_prefix=prefix, rate_limit_per_user=4, instance_id="u-a")
    b = limited(app_factory, redis_key_prefix=prefix, rate_limit_per_user=4, instance_id="u-b")
    first, second = register(a), register(a)
    statuses = [
        (a if i % 2 else b).get("/api/v1/auth/me", headers=first.headers).status_code
        for i in range(6)
    ]
    assert statuses.count(200) == 4
    assert statuses.count(429) == 2
    # The cookie names the same session as the bearer token's `sid`: same bucket.
    assert_problem(b.get("/api/v1/auth/me", headers=first.cookie_headers), 429, "rate-limited")
    # Another user from the same address is not affected.
    assert a.get("/api/v1/auth/me", headers=second.headers).status_code == 200


def test_forwarded_for_is_believed_only_from_a_trusted_proxy(
    app_factory: Callable[..., TestClient[Any]],
) -> None:
    prefix = f"rl-{secrets.token_hex(4)}"
    # The test client's peer address is "testclient", never a trusted proxy: XFF is ignored,
    # so two different claimed clients share the one bucket of the real peer.
    untrusted = limited(app_factory, redis_key_prefix=prefix, rate_limit_global=2, trust_proxy=True)
    for ip in ("203.0.113.1", "203.0.113.2"):
        untrusted.get("/api/v1/auth/me", headers={"X-Forwarded-For": ip})
    refused = untrusted.get("/api/v1/auth/me", headers={"X-Forwarded-For": "203.0.113.3"})
    assert_problem(refused, 429)
