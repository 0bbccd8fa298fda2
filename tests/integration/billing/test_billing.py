"""Billing: rent and late fees once per lease and period, however often and wherever it runs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from click.testing import CliRunner
from litestar.testing import TestClient

from support import Account, add_member, assert_problem, register
from support_leases import active_lease, ledger, pay


def _run(client: TestClient[Any], account: Account, **body: Any) -> Any:
    return client.post("/api/v1/billing/run", headers=account.headers, json=body)


def test_dry_run_previews_then_run_posts_rent_once(client: TestClient[Any], owner: Account) -> None:
    lease = active_lease(client, owner, dueDay=5, rent=100000, lateFee=None)
    preview = _run(client, owner, date="2026-03-02", dryRun=True)
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert body["dryRun"] is True
    assert body["period"] == "2026-03"
    assert body["posted"] == 0
    assert [(c["kind"], c["amount"], c["dueDate"]) for c in body["charges"]] == [
        ("rent", 100000, "2026-03-05")
    ]
    assert ledger(client, owner, lease["id"])["entries"] == []

    first = _run(client, owner, date="2026-03-02")
    assert first.status_code == 200, first.text
    assert first.json()["posted"] == 1
    second = _run(client, owner, date="2026-03-20")
    assert second.json()["posted"] == 0
    entries = ledger(client, owner, lease["id"])["entries"]
    assert [(e["type"], e["kind"], e["amount"], e["date"]) for e in entries] == [
        ("charge", "rent", 100000, "2026-03-05")
    ]


def test_late_fee_after_grace_only_when_rent_unpaid(
    client: TestClient[Any], owner: Account
) -> None:
    unpaid = active_lease(client, owner, dueDay=1, graceDays=5, rent=100000,
                          lateFee={"kind": "percent", "amount": 500})  # fmt: skip
    paid = active_lease(client, owner, dueDay=1, graceDays=5, rent=80000,
                        lateFee={"kind": "flat", "amount": 2500})  # fmt: skip
    assert _run(client, owner, date="2026-04-01").json()["posted"] == 2
    assert pay(client, owner, paid["id"], 80000, on="2026-04-03").status_code == 201
    # Within grace: no fee yet.
    assert _run(client, owner, date="2026-04-06").json()["posted"] == 0
    after = _run(client, owner, date="2026-04-07").json()
    assert [(c["leaseId"], c["kind"], c["amount"]) for c in after["charges"] if c["posted"]] == [
        (unpaid["id"], "late_fee", 5000)
    ]
    assert _run(client, owner, date="2026-04-20").json()["posted"] == 0
    kinds = [e["kind"] for e in ledger(client, owner, unpaid["id"])["entries"]]
    assert kinds == ["rent", "late_fee"]
    assert [e["kind"] for e in ledger(client, owner, paid["id"])["entries"]] == [
        "rent",
        "bank_transfer",
    ]


def test_billing_needs_owner_or_manager_and_is_per_organization(
    client: TestClient[Any], owner: Account
) -> None:
    active_lease(client, owner)
    staff = add_member(client, owner, "staff")
    assert_problem(_run(client, staff, date="2026-05-01"), 403)
    other = register(client)
    assert _run(client, other, date="2026-05-01").json()["charges"] == []


def test_three_instances_at_once_post_each_charge_once(
    app_factory: Callable[..., TestClient[Any]],
) -> None:
    instances = [app_factory(instance_id=f"api-{n}") for n in range(1, 4)]
    owner = register(instances[0])
    leases = [
        active_lease(instances[0], owner, dueDay=1, rent=1000 * (n + 1), lateFee=None)
        for n in range(3)
    ]
    barrier = threading.Barrier(3)

    def run(client: TestClient[Any]) -> Any:
        barrier.wait(timeout=30)
        return _run(client, owner, date="2026-06-15")

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(run, instances))
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    assert sum(r.json()["posted"] for r in results) == 3
    for lease in leases:
        entries = ledger(instances[1], owner, lease["id"])["entries"]
        assert len(entries) == 1, entries


def test_cli_job_bills_every_organization_once(
    client: TestClient[Any], settings_factory: Callable[..., Any], monkeypatch: Any
) -> None:
    from haven.cli import main

    first, second = register(client), register(client)
    a = active_lease(client, first, dueDay=2, rent=5000)
    b = active_lease(client, second, dueDay=3, rent=7000)
    settings = settings_factory()
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    monkeypatch.setenv("HAVEN_ENV", "test")
    runner = CliRunner()
    for _ in range(2):
        result = runner.invoke(main, ["jobs", "billing", "--date", "2026-07-01"])
        assert result.exit_code == 0, result.output
    assert "already posted" in result.output
    assert [e["amount"] for e in ledger(client, first, a["id"])["entries"]] == [5000]
    assert [e["amount"] for e in ledger(client, second, b["id"])["entries"]] == [7000]
