"""/api/v1/webhooks: roles, organization isolation, bad input, SSRF refusals and audit."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from support import Account, add_member, assert_problem, register

HOOK = "http://127.0.0.1:9/hook"  # never called: the app under test delivers nothing here
PUBLIC = "https://93.184.215.14/hook"  # an IP literal: no DNS needed to judge it


@pytest.fixture
def api(app_factory: Callable[..., TestClient[Any]]) -> TestClient[Any]:
    # The worker stays off: these tests look at the API, and nothing is sent anywhere.
    return app_factory(webhook_worker=False)


@pytest.fixture
def lax(app_factory: Callable[..., TestClient[Any]]) -> TestClient[Any]:
    return app_factory(webhook_worker=False, webhook_allow_private=True)


@pytest.fixture
def boss(lax: TestClient[Any]) -> Account:
    return register(lax)


@pytest.fixture
def sub(lax: TestClient[Any], boss: Account) -> Iterator[dict[str, Any]]:
    response = lax.post("/api/v1/webhooks", headers=boss.headers, json={"url": HOOK})
    assert response.status_code == 201, response.text
    yield dict(response.json())
    lax.delete(f"/api/v1/webhooks/{response.json()['id']}", headers=boss.headers)


def _state(client: TestClient[Any], account: Account) -> Any:
    listing = client.get("/api/v1/webhooks", headers=account.headers)
    assert listing.status_code == 200
    return listing.json()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8080/hook",
        "http://10.0.0.8/hook",
        "http://172.16.3.4/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[fe80::1]/hook",
        "http://[::ffff:169.254.169.254]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fd00:ec2::254]/hook",
        "http://0.0.0.0/hook",
        "http://100.64.0.1/hook",
        "http://2130706433/hook",
        "http://0x7f.1/hook",
    ],
)
def test_private_loopback_and_metadata_targets_are_refused(api: TestClient[Any], url: str) -> None:
    owner = register(api)
    before = _state(api, owner)
    body = assert_problem(
        api.post("/api/v1/webhooks", headers=owner.headers, json={"url": url}), 422
    )
    assert body["errors"][0]["field"] == "url", body
    assert _state(api, owner) == before


@pytest.mark.parametrize(
    "url",
    [
        "ftp://93.184.215.14/x",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "https://user:pw@93.184.215.14/x",
        "https:///nohost",
        "http://93.184.215.14:99999/x",
        "https://93.184.215.14/a b",
        "https://93.184.215.14/\u0000",
        "not a url",
        "https://" + "a" * 2050,
    ],
)
def test_malformed_urls_are_422(api: TestClient[Any], url: str) -> None:
    owner = register(api)
    response = api.post("/api/v1/webhooks", headers=owner.headers, json={"url": url})
    assert_problem(response, 422)


def test_a_public_address_is_accepted_and_private_ones_only_when_allowed(
    api: TestClient[Any], lax: TestClient[Any]
) -> None:
    owner = register(api)
    made = api.post("/api/v1/webhooks", headers=owner.headers, json={"url": PUBLIC})
    assert made.status_code == 201, made.text
    api.delete(f"/api/v1/webhooks/{made.json()['id']}", headers=owner.headers)
    local = lax.post("/api/v1/webhooks", headers=owner.headers, json={"url": HOOK})
    assert local.status_code == 201, local.text
    lax.delete(f"/api/v1/webhooks/{local.json()['id']}", headers=owner.headers)


def test_patching_to_a_private_url_is_refused(api: TestClient[Any]) -> None:
    owner = register(api)
    made = api.post("/api/v1/webhooks", headers=owner.headers, json={"url": PUBLIC}).json()
    refused = api.patch(
        f"/api/v1/webhooks/{made['id']}",
        headers=owner.headers,
        json={"url": "http://169.254.169.254/"},
    )
    assert_problem(refused, 422)
    shown = api.get(f"/api/v1/webhooks/{made['id']}", headers=owner.headers).json()
    assert shown["url"] == PUBLIC
    api.delete(f"/api/v1/webhooks/{made['id']}", headers=owner.headers)


def test_roles_and_isolation(lax: TestClient[Any], boss: Account, sub: dict[str, Any]) -> None:
    paths = [
        ("GET", "/api/v1/webhooks", None),
        ("POST", "/api/v1/webhooks", {"url": HOOK}),
        ("GET", f"/api/v1/webhooks/{sub['id']}", None),
        ("PATCH", f"/api/v1/webhooks/{sub['id']}", {"description": "x"}),
        ("DELETE", f"/api/v1/webhooks/{sub['id']}", None),
        ("GET", f"/api/v1/webhooks/{sub['id']}/deliveries", None),
        ("POST", f"/api/v1/webhooks/{sub['id']}/rotate-secret", {}),
        ("POST", f"/api/v1/webhooks/{sub['id']}/redeliver", {"eventId": sub["id"]}),
    ]
    for role in ("viewer", "staff"):
        member = add_member(lax, boss, role)
        for method, path, body in paths:
            response = lax.request(method, path, headers=member.headers, json=body)
            assert_problem(response, 403, "forbidden")
    manager = add_member(lax, boss, "manager")
    assert lax.get(f"/api/v1/webhooks/{sub['id']}", headers=manager.headers).status_code == 200
    stranger = register(lax, organization="Stranger")
    for method, path, body in paths[2:]:
        response = lax.request(method, path, headers=stranger.headers, json=body)
        assert_problem(response, 404, "not-found")
    assert _state(lax, stranger)["items"] == []
    for method, path, body in paths:
        assert_problem(lax.request(method, path, json=body), 401)
    still = lax.get(f"/api/v1/webhooks/{sub['id']}", headers=boss.headers).json()
    assert still["description"] is None
    assert still["version"] == sub["version"]


BAD_BODIES: list[tuple[str, str, Any, str]] = [
    ("create", "POST", {"url": 7}, "url"),
    ("create", "POST", {"url": HOOK, "types": "lease.created"}, "types"),
    ("create", "POST", {"url": HOOK, "types": ["lease.exploded"]}, "types"),
    ("create", "POST", {"url": HOOK, "types": ["LEASE"]}, "types"),
    ("create", "POST", {"url": HOOK, "types": ["lease.created"] * 65}, "types"),
    ("create", "POST", {"url": HOOK, "description": "x" * 201}, "description"),
    ("create", "POST", {"url": HOOK, "description": "bad\u0000"}, "description"),
    ("create", "POST", {"url": HOOK, "secret": "mine"}, "secret"),
    ("create", "POST", {}, "url"),
    ("patch", "PATCH", {"paused": "yes"}, "paused"),
    ("patch", "PATCH", {"types": [1]}, "types"),
    ("patch", "PATCH", {"status": "active"}, "status"),
    ("rotate", "POST", {"overlapSeconds": -1}, "overlapSeconds"),
    ("rotate", "POST", {"overlapSeconds": 10**9}, "overlapSeconds"),
    ("rotate", "POST", {"overlapSeconds": "1"}, "overlapSeconds"),
    ("redeliver", "POST", {"eventId": "nope"}, "eventId"),
    ("redeliver", "POST", {}, "eventId"),
]


def _path(kind: str, sub: dict[str, Any]) -> str:
    return {
        "create": "/api/v1/webhooks",
        "patch": f"/api/v1/webhooks/{sub['id']}",
        "rotate": f"/api/v1/webhooks/{sub['id']}/rotate-secret",
        "redeliver": f"/api/v1/webhooks/{sub['id']}/redeliver",
    }[kind]


def test_bad_bodies_are_422_naming_the_field_and_change_nothing(
    lax: TestClient[Any], boss: Account, sub: dict[str, Any]
) -> None:
    before = _state(lax, boss)
    for kind, method, body, field in BAD_BODIES:
        response = lax.request(method, _path(kind, sub), headers=boss.headers, json=body)
        problem = assert_problem(response, 422)
        assert field in json.dumps(problem), (kind, body, problem)
    for kind, method in (("create", "POST"), ("patch", "PATCH"), ("redeliver", "POST")):
        path = _path(kind, sub)
        headers = {**boss.headers, "Content-Type": "application/json"}
        assert_problem(lax.request(method, path, headers=headers, content=b"{nope"), 400)
        headers["Content-Type"] = "text/plain"
        assert_problem(lax.request(method, path, headers=headers, content=b"{}"), 415)
    assert _state(lax, boss) == before
    assert_problem(lax.get("/api/v1/webhooks/not-a-uuid", headers=boss.headers), 404)
    assert_problem(lax.get("/api/v1/webhooks", headers=boss.headers, params={"limit": "0"}), 422)
    assert_problem(
        lax.get(
            f"/api/v1/webhooks/{sub['id']}/deliveries",
            headers=boss.headers,
            params={"cursor": "garbage!"},
        ),
        422,
    )


def test_if_match_and_pause(lax: TestClient[Any], boss: Account, sub: dict[str, Any]) -> None:
    stale = lax.patch(
        f"/api/v1/webhooks/{sub['id']}",
        headers={**boss.headers, "If-Match": '"999"'},
        json={"paused": True},
    )
    assert_problem(stale, 412)
    paused = lax.patch(f"/api/v1/webhooks/{sub['id']}", headers=boss.headers, json={"paused": True})
    assert paused.status_code == 200
    assert paused.json()["status"] == "paused"
    resumed = lax.patch(
        f"/api/v1/webhooks/{sub['id']}", headers=boss.headers, json={"paused": False}
    )
    assert resumed.json()["status"] == "active"


def test_subscription_changes_are_audited_without_the_secret(
    lax: TestClient[Any], boss: Account, sub: dict[str, Any]
) -> None:
    rotated = lax.post(
        f"/api/v1/webhooks/{sub['id']}/rotate-secret", headers=boss.headers, json={}
    ).json()
    lax.patch(f"/api/v1/webhooks/{sub['id']}", headers=boss.headers, json={"description": "d"})
    response = lax.get(
        "/api/v1/audit-events",
        headers=boss.headers,
        params={"entityType": "webhook_subscription"},
    )
    assert response.status_code == 200
    actions = sorted(e["action"] for e in response.json()["items"])
    assert actions == [
        "webhook_subscription.created",
        "webhook_subscription.updated",
        "webhook_subscription.updated",
    ]
    text = response.text
    assert sub["secret"] not in text
    assert rotated["secret"] not in text
    assert "rotatedAt" in text
    assert "whsec_" not in text
    # Subscriptions are not themselves fed back as events.
    feed = lax.get("/api/v1/events", headers=boss.headers).json()
    assert not [e for e in feed["items"] if e["type"].startswith("webhook")]
