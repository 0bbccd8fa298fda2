"""Limits keyed by route, not by spelling; per-email, per-IP sign-up and operator-token limits.

Every test turns rate limiting on under its own Redis key prefix (the fixtures turn it off).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from haven.app import create_app
from haven.cluster.asgi import OPERATOR_PATHS, canonical_path
from support import assert_problem, register, unique_email

LOGIN = "/api/v1/auth/login"
REGISTER = "/api/v1/auth/register"

# Other spellings of /api/v1/auth/<route>: every one either is that route (and counts in its
# buckets) or is not found (404).
SPELLINGS = [
    "/api/v1/auth/{r}/",
    "/api/v1//auth/{r}",
    "/api/v1/auth//{r}",
    "/api/v1/auth/{r}//",
    "/api//v1//auth//{r}//",
    "/api/v1/auth%2F{r}",
    "/api/v1/auth/%2E/{r}",
    "/api/v1/auth/x/%2E%2E/{r}",
    "/api/v1/load-balancer/%2E%2E/auth/{r}",
    "/api/v1/auth/{r}/%2E",
    "/api/v1/auth/{r}?next=/x",
    "/api/v1/auth/{r}/?a=1&a=2",
]
# (A double-encoded `%252F` is checked against a real server in tests/e2e/test_hashing_load.py:
# the test client decodes paths twice.)
NOT_FOUND = ["/API/v1/auth/{r}", "/api/v1/Auth/{r}", "/api/v1/auth/{r}.json", "/api/v1/auth/{r}x"]


def limited(app_factory: Callable[..., TestClient[Any]], **overrides: Any) -> TestClient[Any]:
    """An app with rate limiting on, under its own key prefix (tests never share counters)."""
    return app_factory(
        rate_limit_enabled=True, redis_key_prefix=f"lim-{secrets.token_hex(4)}", **overrides
    )


class PeerFrom:
    """The test client connects from "testclient"; this sets the TCP peer from `X-Test-Peer`,
    as if each request came from that address (what a real socket would give the app)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        for name, value in scope.get("headers", ()):
            if name == b"x-test-peer":
                scope["client"] = (value.decode(), 50000)
        await self.app(scope, receive, send)


@pytest.fixture
def peers(settings_factory: Callable[..., Any]) -> Iterator[Callable[..., TestClient[Any]]]:
    """Apps with rate limiting on whose peer address each request names (X-Test-Peer)."""
    clients: list[TestClient[Any]] = []

    def factory(**overrides: Any) -> TestClient[Any]:
        settings = settings_factory(
            rate_limit_enabled=True, redis_key_prefix=f"lim-{secrets.token_hex(4)}", **overrides
        )
        client: TestClient[Any] = TestClient(PeerFrom(create_app(settings)))  # type: ignore[arg-type]
        client.__enter__()
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.__exit__(None, None, None)


def test_canonical_path_collapses_slashes_and_resolves_dot_segments() -> None:
    assert canonical_path("/") == "/"
    assert canonical_path("") == "/"
    assert canonical_path("/api/v1/auth/login") == "/api/v1/auth/login"
    assert canonical_path("/api/v1/auth/login/") == "/api/v1/auth/login"
    assert canonical_path("//api//v1///auth/login//") == "/api/v1/auth/login"
    assert canonical_path("/api/v1/auth/./login") == "/api/v1/auth/login"
    assert canonical_path("/api/v1/x/../auth/login") == "/api/v1/auth/login"
    assert canonical_path("/../../api/v1/auth/login") == "/api/v1/auth/login"
    assert canonical_path("/api/v1/auth/login/.") == "/api/v1/auth/login"
    assert canonical_path("/api/v1/auth/login/..") == "/api/v1/auth"
    assert canonical_path("/.well-known/x") == "/.well-known/x"
    assert canonical_path("/a/...") == "/a/..."


@pytest.mark.parametrize("route", ["login", "register"])
def test_every_spelling_of_a_sign_in_route_counts_in_one_bucket(
    app_factory: Callable[..., TestClient[Any]], route: str
) -> None:
    # One IP+email bucket of len(SPELLINGS) attempts; each spelling spends one, then the
    # canonical path is refused: no spelling reached the handler around the limit.
    client = limited(app_factory, rate_limit_auth=len(SPELLINGS), rate_limit_register=1000)
    email = unique_email()
    body = {"email": email, "password": "not the password"}
    if route == "register":
        body = {"organizationName": "Spelling Homes", "name": "S", **body, "password": "x"}
    expected = 401 if route == "login" else 422  # the handler answered (a short password: 422)
    for spelling in SPELLINGS:
        response = client.post(spelling.format(r=route), json=body)
        assert_problem(response, expected)
        assert response.headers["ratelimit-limit"] == str(len(SPELLINGS)), spelling
    refused = client.post(f"/api/v1/auth/{route}", json=body)
    assert_problem(refused, 429, "rate-limited")
    assert int(refused.headers["retry-after"]) >= 1
    for spelling in SPELLINGS:  # ...and so is every other spelling
        assert_problem(client.post(spelling.format(r=route), json=body), 429, "rate-limited")
    for spelling in NOT_FOUND:  # never a way around: not found, still counted per IP
        assert_problem(client.post(spelling.format(r=route), json=body), 404, "not-found")


def test_sign_in_attempts_per_email_are_limited_across_addresses(
    peers: Callable[..., TestClient[Any]],
) -> None:
    client = peers(rate_limit_auth_email=5)
    account = register(client)

    def login(email: str, ip: str, password: str = "not the password") -> Any:  # noqa: S107
        return client.post(
            LOGIN, json={"email": email, "password": password}, headers={"x-test-peer": ip}
        )

    # Five addresses, one guess each, with the email spelled in other cases: one bucket.
    spellings = [account.email, account.email.upper(), account.email.title(), account.email]
    for i, email in enumerate(spellings):
        assert_problem(login(email, f"203.0.113.{i + 1}"), 401, "invalid-credentials")
    # Surrounding whitespace is the same email too (the body is refused, the attempt counts).
    assert_problem(login(f"  {account.email.upper()} ", "203.0.113.5"), 422, "validation")
    refused = login(account.email, "198.51.100.7")
    assert_problem(refused, 429, "rate-limited")
    assert refused.headers["ratelimit-limit"] == "5"
    assert 3500 <= int(refused.headers["retry-after"]) <= 3600  # an hour's window
    # Even the right password waits now, from any address...
    assert_problem(login(account.email, "198.51.100.8", account.password), 429)
    # ...while another account is untouched.
    other = register(client)
    assert login(other.email, "198.51.100.9", other.password).status_code == 200


def test_guesses_at_the_current_password_are_limited_per_session(
    peers: Callable[..., TestClient[Any]],
) -> None:
    # A thief holding a session (cookie or bearer token) guesses the current password to take
    # the account over for good: RATE_LIMIT_PASSWORD guesses an hour, from any address.
    client = peers(rate_limit_password=3)
    owner = register(client)
    cookie = {**owner.cookie_headers, "X-CSRF-Token": owner.csrf}
    guess = {"currentPassword": "not the password", "newPassword": "a much better passphrase"}
    tries = [
        ("/api/v1/auth/password", owner.headers, "203.0.113.1"),
        ("/api/v1//auth/password/", cookie, "203.0.113.2"),
        ("/api/v1/auth/./password", owner.headers, "203.0.113.3"),
    ]
    for path, headers, ip in tries:
        response = client.post(path, headers={**headers, "x-test-peer": ip}, json=guess)
        assert_problem(response, 403, "wrong-password")
    # One bucket for the session however it is sent and spelled: even the right password waits.
    right = {**guess, "currentPassword": owner.password}
    for headers in (owner.headers, cookie):
        refused = client.post(
            "/api/v1/auth/password", headers={**headers, "x-test-peer": "198.51.100.7"}, json=right
        )
        assert_problem(refused, 429, "rate-limited")
        assert refused.headers["ratelimit-limit"] == "3"
        assert 3500 <= int(refused.headers["retry-after"]) <= 3600  # an hour's window
    # Nothing changed: the old password still signs in, and the owner's own new session
    # (another bucket) changes it.
    login = client.post(LOGIN, json={"email": owner.email, "password": owner.password})
    assert login.status_code == 200, login.text
    client.cookies.clear()
    fresh = {"Authorization": f"Bearer {login.json()['accessToken']}"}
    assert client.post("/api/v1/auth/password", headers=fresh, json=right).status_code == 204


def test_sign_ups_per_address_are_limited(
    peers: Callable[..., TestClient[Any]],
) -> None:
    client = peers(rate_limit_register=3)

    def sign_up(ip: str) -> Any:
        body = {
            "organizationName": "Spam Homes",
            "name": "S",
            "email": unique_email(),
            "password": "correct horse battery",
        }
        response = client.post(REGISTER, json=body, headers={"x-test-peer": ip})
        client.cookies.clear()
        return response, body

    assert [sign_up("203.0.113.50")[0].status_code for _ in range(3)] == [201, 201, 201]
    refused, body = sign_up("203.0.113.50")
    assert_problem(refused, 429, "rate-limited")
    assert 3500 <= int(refused.headers["retry-after"]) <= 3600
    assert refused.headers["ratelimit-limit"] == "3"
    # The refused sign-up created nothing: its email and password sign nobody in.
    login = {"email": body["email"], "password": body["password"]}
    assert_problem(client.post(LOGIN, json=login, headers={"x-test-peer": "203.0.113.52"}), 401)
    assert sign_up("203.0.113.51")[0].status_code == 201  # another address is not affected


def test_wrong_operator_tokens_are_limited_per_address_and_the_right_one_never(
    peers: Callable[..., TestClient[Any]],
) -> None:
    token = secrets.token_urlsafe(24)
    client = peers(operator_token=token, rate_limit_operator=10)
    good = {"authorization": f"Bearer {token}", "x-test-peer": "203.0.113.9"}
    for i in range(10):
        bad = {"authorization": f"Bearer guess-{i}", "x-test-peer": "203.0.113.9"}
        path = "/api/v1/load-balancer/health-check" if i % 2 else "/api/v1//load-balancer/drain/"
        assert_problem(client.post(path, headers=bad), 403, "forbidden")
        # Successes in between do not count.
        assert client.post("/api/v1/load-balancer/health-check", headers=good).status_code == 200
    for headers in ({"authorization": "Bearer guess-x"}, {}):
        refused = client.post(
            "/api/v1/load-balancer/drain", headers={**headers, "x-test-peer": "203.0.113.9"}
        )
        assert_problem(refused, 429, "rate-limited")
        assert 1 <= int(refused.headers["retry-after"]) <= 60
    # The instance was not drained by any refused attempt, and the right token still works.
    assert client.get("/ready").status_code == 200
    assert client.post("/api/v1/load-balancer/health-check", headers=good).status_code == 200
    # Another address has its own count.
    other = {"authorization": "Bearer nope", "x-test-peer": "203.0.113.10"}
    assert_problem(client.post("/api/v1/load-balancer/drain", headers=other), 403)


def test_operator_paths_name_exactly_the_routes_that_take_the_operator_token(
    settings_factory: Callable[..., Any],
) -> None:
    app = create_app(settings_factory(operator_token=secrets.token_urlsafe(24)))
    marked = {
        route.path
        for route in app.routes
        for handler in getattr(route, "route_handlers", [])
        if handler.opt.get("operator")
    }
    assert marked == set(OPERATOR_PATHS)


def test_the_openapi_document_names_the_limits(client: TestClient[Any]) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (LOGIN, REGISTER, "/api/v1/tenants", "/api/v1/load-balancer/drain"):
        post = paths[path]["post"]["responses"]
        assert "application/problem+json" in post["429"]["content"], path
    for path in (LOGIN, REGISTER):
        assert "503" in paths[path]["post"]["responses"]
    assert "429" not in paths["/api/v1/load-balancer/health"]["get"]["responses"]


def test_wrong_tokens_on_every_operator_view_count_in_one_bucket(
    peers: Callable[..., TestClient[Any]],
) -> None:
    """The cluster views (config, instances, cluster metrics) are operator endpoints too."""
    token = secrets.token_urlsafe(24)
    client = peers(operator_token=token, rate_limit_operator=3)
    wrong = {"authorization": "Bearer " + secrets.token_urlsafe(24), "x-test-peer": "203.0.113.7"}
    views = [
        "/api/v1/load-balancer/config",
        "/api/v1/load-balancer/instances",
        "/api/v1/load-balancer/metrics?scope=cluster",
    ]
    for view in views:
        assert_problem(client.get(view, headers=wrong), 403, "forbidden")
    assert_problem(client.get(views[0], headers=wrong), 429, "rate-limited")
    # This instance's own figures stay open, however often they are read.
    peer = {"x-test-peer": "203.0.113.7"}
    for _ in range(5):
        assert client.get("/api/v1/load-balancer/metrics", headers=peer).status_code == 200
    right = {"authorization": f"Bearer {token}", "x-test-peer": "203.0.113.7"}
    assert client.get(views[1], headers=right).status_code == 200
