"""Webhook delivery: signed per Standard Webhooks, in order, retried on the configured
schedule, failing after the window, logged, redeliverable, with rotating secrets."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from support import Account, assert_problem, create_tenant, register
from support_webhooks import poll, receiver

JITTER = 0.25


@pytest.fixture
def hooks(app_factory: Callable[..., TestClient[Any]]) -> Callable[..., TestClient[Any]]:
    """Apps whose workers may call 127.0.0.1 and poll often (every app of a test alike)."""

    def make(**overrides: Any) -> TestClient[Any]:
        settings: dict[str, Any] = {
            "webhook_allow_private": True,
            "webhook_poll_ms": 50,
            "webhook_timeout_ms": 2000,
            "webhook_claim_ttl_ms": 10000,
            "webhook_retry_base_ms": 200,
            **overrides,
        }
        return app_factory(**settings)

    return make


@pytest.fixture
def cleanup() -> Iterator[list[tuple[TestClient[Any], Account, str]]]:
    """Subscriptions made by a test are deleted after it, so no later worker calls their URL."""
    made: list[tuple[TestClient[Any], Account, str]] = []
    yield made
    for client, account, sub_id in made:
        client.delete(f"/api/v1/webhooks/{sub_id}", headers=account.headers)


def subscribe(
    client: TestClient[Any],
    account: Account,
    url: str,
    made: list[tuple[TestClient[Any], Account, str]],
    **body: Any,
) -> dict[str, Any]:
    response = client.post("/api/v1/webhooks", headers=account.headers, json={"url": url, **body})
    assert response.status_code == 201, response.text
    sub = dict(response.json())
    made.append((client, account, sub["id"]))
    return sub


def deliveries(client: TestClient[Any], account: Account, sub_id: str) -> list[dict[str, Any]]:
    response = client.get(
        f"/api/v1/webhooks/{sub_id}/deliveries", headers=account.headers, params={"limit": 100}
    )
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def settled(client: TestClient[Any], account: Account, sub_id: str) -> dict[str, Any]:
    """The subscription once the worker has recorded its last success (it records after the
    receiver answered, so a test that saw the delivery may read a moment too early)."""

    def active() -> dict[str, Any] | None:
        body = client.get(f"/api/v1/webhooks/{sub_id}", headers=account.headers).json()
        return body if body["status"] == "active" and body["attempts"] == 0 else None

    return dict(poll(active, 30, "the subscription to record its delivery"))


def test_events_arrive_signed_once_each_and_in_order(
    hooks: Callable[..., TestClient[Any]], cleanup: list[Any]
) -> None:
    client = hooks()
    owner = register(client)
    with receiver() as hook:
        sub = subscribe(client, owner, hook.url, cleanup, description="books")
        assert sub["secret"].startswith("whsec_")
        hook.secrets["current"] = sub["secret"]
        shown = client.get(f"/api/v1/webhooks/{sub['id']}", headers=owner.headers).json()
        assert "secret" not in shown
        assert "whsec_" not in client.get("/api/v1/webhooks", headers=owner.headers).text
        tenants = [create_tenant(client, owner, firstName=f"T{i}") for i in range(5)]
        poll(lambda: len(hook.ok()) >= 5, 30, "five deliveries")
        got = hook.ok()
        assert [r.body["resourceId"] for r in got] == [t["id"] for t in tenants]
        assert all(r.verified == {"current": True} for r in got)
        assert [r.body["position"] for r in got] == sorted(r.body["position"] for r in got)
        assert len(set(hook.ids())) == 5
        assert {r.body["id"] for r in got} == set(hook.ids())  # webhook-id is the event id
        log = deliveries(client, owner, sub["id"])
        assert {d["status"] for d in log} == {"succeeded"}
        assert {d["responseStatus"] for d in log} == {204}


def test_types_filter_what_is_sent(
    hooks: Callable[..., TestClient[Any]], cleanup: list[Any]
) -> None:
    client = hooks()
    owner = register(client)
    with receiver() as hook:
        subscribe(client, owner, hook.url, cleanup, types=["tenant.updated"])
        tenant = create_tenant(client, owner)
        create_tenant(client, owner)
        patched = client.patch(
            f"/api/v1/tenants/{tenant['id']}", headers=owner.headers, json={"notes": "x"}
        )
        assert patched.status_code == 200
        poll(lambda: hook.ok(), 30, "the update's delivery")
        time.sleep(0.5)  # room for anything wrongly sent after it
        assert [b["type"] for b in hook.bodies()] == ["tenant.updated"]


def test_retries_follow_the_configured_exponential_schedule(
    hooks: Callable[..., TestClient[Any]], cleanup: list[Any]
) -> None:
    base = 0.3
    client = hooks(webhook_retry_base_ms=int(base * 1000))
    owner = register(client)
    with receiver(status=500) as hook:
        sub = subscribe(client, owner, hook.url, cleanup)
        tenant = create_tenant(client, owner)
        poll(lambda: len(hook.attempts) >= 5, 60, "five attempts")
        with hook.lock:
            hook.status = 204
        poll(lambda: hook.ok(), 60, "the delivery once the receiver recovers")
        times = list(hook.attempts[:5])
        for k in range(1, 5):
            nominal = base * 2 ** (k - 1)
            gap = times[k] - times[k - 1]
            # Never early; late only by the worker's poll interval and scheduling (generous).
            assert gap >= nominal * (1 - JITTER) - 0.05, (k, gap, nominal)
            assert gap <= nominal * (1 + JITTER) + 2.0, (k, gap, nominal)
        assert hook.bodies()[0]["resourceId"] == tenant["id"]
        log = deliveries(client, owner, sub["id"])
        failed = [d for d in log if d["status"] == "failed"]
        assert len(failed) >= 5
        assert {d["responseStatus"] for d in failed} == {500}
        assert sorted(d["attempt"] for d in failed)[:5] == [1, 2, 3, 4, 5]
        state = settled(client, owner, sub["id"])
        assert state["lastError"] is None


def test_a_receiver_that_keeps_failing_marks_the_subscription_failing_then_recovers(
    hooks: Callable[..., TestClient[Any]], cleanup: list[Any]
) -> None:
    client = hooks(webhook_failing_after_s=1, webhook_retry_max_ms=400)
    owner = register(client)
    with receiver(status=503) as hook:
        sub = subscribe(client, owner, hook.url, cleanup)
        first = create_tenant(client, owner)
        second = create_tenant(client, owner)

        def failing() -> dict[str, Any] | None:
            body = client.get(f"/api/v1/webhooks/{sub['id']}", headers=owner.headers).json()
            return body if body["status"] == "failing" else None

        state = poll(failing, 30, "the subscription to be marked failing")
        assert state["failingSince"] is not None
        assert "HTTP 503" in state["lastError"]
        assert state["attempts"] >= 2
        assert hook.ok() == []
        with hook.lock:
            hook.status = 200
        poll(lambda: len(hook.ok()) >= 2, 30, "both events after recovery")
        assert [b["resourceId"] for b in hook.bodies()[:2]] == [first["id"], second["id"]]
        state = settled(client, owner, sub["id"])
        assert state["failingSince"] is None


def test_a_stuck_receiver_does_not_hold_up_api_requests(
    hooks: Callable[..., TestClient[Any]], cleanup: list[Any]
) -> None:
    client = hooks(webhook_timeout_ms=1500, webhook_retry_base_ms=100, webhook_retry_max_ms=200)
    owner = register(client)
    with receiver(delay=5.0) as hook:
        subscribe(client, owner, hook.url, cleanup)
        made = [create_tenant(client, owner, firstName=f"S{i}") for i in range(3)]
        poll(lambda: len(hook.attempts) >= 2, 30, "the worker to be stuck on the receiver")
        # While every delivery times out, API requests keep being answered.
        for i in range(20):
            made.append(create_tenant(client, owner, firstName=f"D{i}"))
            assert client.get("/api/v1/tenants", headers=owner.headers).status_code == 200
        with hook.lock:
            hook.delay = 0.0
        poll(lambda: len({b["id"] for b in hook.bodies()}) >= len(made), 60, "every event")
        order = [b["resourceId"] for b in hook.bodies()]
        firsts = list(dict.fromkeys(order))
        assert firsts == [t["id"] for t in made]


def test_a_receiver_down_for_a_while_loses_nothing(
    hooks: Callable[..., TestClient[Any]], cleanup: list[Any]
) -> None:
    client = hooks(webhook_retry_base_ms=100, webhook_retry_max_ms=300)
    owner = register(client)
    with receiver() as hook:
        port = hook.port
    # The port is closed now: connection refused on every attempt.
    sub = subscribe(client, owner, f"http://127.0.0.1:{port}/hook", cleanup)
    made = [create_tenant(client, owner) for _ in range(3)]
    poll(
        lambda: len(deliveries(client, owner, sub["id"])) >= 3,
        30,
        "failed attempts against the closed port",
    )
    log = deliveries(client, owner, sub["id"])
    assert all(d["status"] == "failed" and d["responseStatus"] is None for d in log)
    assert all(d["error"] for d in log)
    with receiver(port=port) as hook:
        poll(lambda: len(hook.ok()) >= 3, 30, "every event once the receiver is back")
        assert [b["resourceId"] for b in hook.bodies()] == [t["id"] for t in made]


def test_redeliver_sends_a_past_event_again_with_the_same_id(
    hooks: Callable[..., TestClient[Any]], cleanup: list[Any]
) -> None:
    client = hooks()
    owner = register(client)
    other = register(client, organization="Other")
    with receiver() as hook:
        sub = subscribe(client, owner, hook.url, cleanup)
        create_tenant(client, owner)
        poll(lambda: hook.ok(), 30, "the first delivery")
        event_id = hook.ids()[0]
        response = client.post(
            f"/api/v1/webhooks/{sub['id']}/redeliver",
            headers=owner.headers,
            json={"eventId": event_id},
        )
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "pending"
        poll(lambda: len(hook.ok()) >= 2, 30, "the redelivery")
        assert hook.ids() == [event_id, event_id]
        log = poll(
            lambda: [
                d
                for d in deliveries(client, owner, sub["id"])
                if d["redelivery"] and d["status"] == "succeeded"
            ],
            30,
            "the redelivery in the log",
        )
        assert len(log) == 1
        assert log[0]["eventId"] == event_id
        # Another organization's event, or an unknown one, is 404.
        foreign = create_tenant(client, other)
        assert foreign
        missing = client.post(
            f"/api/v1/webhooks/{sub['id']}/redeliver",
            headers=owner.headers,
            json={"eventId": "00000000-0000-4000-8000-000000000000"},
        )
        assert_problem(missing, 404, "not-found")


def test_rotation_signs_with_both_secrets_during_the_overlap(
    hooks: Callable[..., TestClient[Any]], cleanup: list[Any]
) -> None:
    client = hooks()
    owner = register(client)
    with receiver() as hook:
        sub = subscribe(client, owner, hook.url, cleanup)
        rotated = client.post(
            f"/api/v1/webhooks/{sub['id']}/rotate-secret",
            headers=owner.headers,
            json={"overlapSeconds": 3600},
        )
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()["secret"]
        assert new.startswith("whsec_")
        assert new != sub["secret"]
        hook.secrets.update({"old": sub["secret"], "new": new})
        create_tenant(client, owner)
        poll(lambda: hook.ok(), 30, "a delivery during the overlap")
        assert hook.ok()[0].verified == {"old": True, "new": True}
        assert len(hook.ok()[0].signature.split(" ")) == 2
        # Overlap 0: the old secret stops signing at once.
        final = client.post(
            f"/api/v1/webhooks/{sub['id']}/rotate-secret",
            headers=owner.headers,
            json={"overlapSeconds": 0},
        ).json()["secret"]
        hook.secrets.update({"old": new, "new": final})
        create_tenant(client, owner)
        poll(lambda: len(hook.ok()) >= 2, 30, "a delivery after the overlap")
        assert hook.ok()[1].verified == {"old": False, "new": True}


def test_a_redirect_is_not_followed(
    hooks: Callable[..., TestClient[Any]], cleanup: list[Any]
) -> None:
    client = hooks()
    owner = register(client)
    with receiver() as target, receiver(status=302) as hop:
        hop.location = target.url
        sub = subscribe(client, owner, hop.url, cleanup)
        create_tenant(client, owner)
        poll(lambda: deliveries(client, owner, sub["id"]), 30, "the redirected attempt")
        log = deliveries(client, owner, sub["id"])
        assert log[0]["status"] == "failed"
        assert log[0]["responseStatus"] == 302
        assert "redirect" in log[0]["error"]
        assert target.attempts == []


def test_lag_and_failures_show_in_metrics_and_the_status_summary(
    hooks: Callable[..., TestClient[Any]], cleanup: list[Any]
) -> None:
    operator = secrets.token_urlsafe(24)
    client = hooks(webhook_failing_after_s=1, webhook_retry_max_ms=400, operator_token=operator)
    owner = register(client)
    with receiver(status=500) as hook:
        sub = subscribe(client, owner, hook.url, cleanup)
        create_tenant(client, owner)

        def summary() -> dict[str, Any] | None:
            body = client.get(
                "/api/v1/load-balancer/metrics?scope=cluster",
                headers={"Authorization": f"Bearer {operator}"},
            ).json()
            hooks_ = body.get("webhooks") or {}
            # The failing-subscription count (read from the database) and the failure
            # counter (each worker's, published) are refreshed on their own schedules:
            # wait until the summary shows both, and the backlog and lag with them.
            shown = (
                hooks_.get("failingSubscriptions", 0) >= 1
                and hooks_.get("failed", 0) >= 1
                and hooks_.get("backlog", 0) >= 1
                and hooks_.get("lagSeconds", 0) > 0
            )
            return hooks_ if shown else None

        found = poll(summary, 40, "a failed delivery, its backlog and lag in the metrics summary")
        assert found["failingSubscriptions"] >= 1
        text = client.get("/metrics").text
        assert 'haven_webhook_deliveries_total{outcome="failure"}' in text
        values = {
            line.split(" ")[0]: float(line.split(" ")[1])
            for line in text.splitlines()
            if line.startswith("haven_webhook_") and " " in line
        }
        assert values["haven_webhook_failing_subscriptions"] >= 1
        assert values["haven_webhook_delivery_lag_seconds"] > 0
        with hook.lock:
            hook.status = 204
        poll(lambda: hook.ok(), 30, "the delivery after recovery")
        assert settled(client, owner, sub["id"])["lastError"] is None
