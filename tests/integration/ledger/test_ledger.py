"""The ledger: signed entries, running balance, reversals once, FIFO aging that adds up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from support import Account, assert_problem, register
from support_leases import active_lease, charge, draft_lease, ledger, pay, post_entry

BUCKETS = ("current", "days1to30", "days31to60", "days61to90", "over90")


def _days_ago(days: int) -> str:
    return (datetime.now(UTC).date() - timedelta(days=days)).isoformat()


def test_charges_payments_credits_and_reversal_move_the_balance(
    client: TestClient[Any], owner: Account
) -> None:
    lease = active_lease(client, owner)
    rent = charge(client, owner, lease["id"], 120000, _days_ago(45))
    assert rent["amount"] == 120000
    assert rent["balanceAfter"] == 120000
    paid = pay(client, owner, lease["id"], 50000)
    assert paid.status_code == 201, paid.text
    assert paid.json()["amount"] == -50000
    credit = post_entry(client, owner, lease["id"], "credits", amount=10000, description="Promo")
    assert credit["type"] == "credit"
    assert credit["balanceAfter"] == 60000

    book = ledger(client, owner, lease["id"])
    assert book["leaseId"] == lease["id"]
    assert book["currency"] == "USD"
    assert book["balance"] == 60000
    assert book["aging"] == {
        "current": 0, "days1to30": 0, "days31to60": 60000, "days61to90": 0, "over90": 0
    }  # fmt: skip
    assert [e["balanceAfter"] for e in book["entries"]] == [120000, 70000, 60000]
    assert set(book["entries"][0]) == {
        "id", "type", "kind", "amount", "date", "description", "reference", "reverses",
        "balanceAfter", "createdAt",
    }  # fmt: skip

    reversed_ = client.post(
        f"/api/v1/ledger-entries/{paid.json()['id']}/reverse", headers=owner.headers
    )
    assert reversed_.status_code == 201, reversed_.text
    body = reversed_.json()
    assert body["type"] == "reversal"
    assert body["reverses"] == paid.json()["id"]
    assert body["amount"] == 50000
    assert body["balanceAfter"] == 110000
    # Once only, and a reversal is final.
    again = client.post(
        f"/api/v1/ledger-entries/{paid.json()['id']}/reverse", headers=owner.headers
    )
    assert_problem(again, 409)
    assert_problem(
        client.post(f"/api/v1/ledger-entries/{body['id']}/reverse", headers=owner.headers), 409
    )
    assert ledger(client, owner, lease["id"])["balance"] == 110000


def test_credit_balance_is_a_negative_current_bucket(
    client: TestClient[Any], owner: Account
) -> None:
    lease = active_lease(client, owner)
    charge(client, owner, lease["id"], 1000, _days_ago(10))
    pay(client, owner, lease["id"], 3000)
    book = ledger(client, owner, lease["id"])
    assert book["balance"] == -2000
    assert book["aging"] == {b: (-2000 if b == "current" else 0) for b in BUCKETS}


def test_money_needs_an_active_lease_and_a_manager(client: TestClient[Any], owner: Account) -> None:
    from support import add_member

    draft = draft_lease(client, owner)
    assert_problem(pay(client, owner, draft["id"], 100), 409)
    lease = active_lease(client, owner)
    staff = add_member(client, owner, "staff")
    assert_problem(pay(client, staff, lease["id"], 100), 403)
    assert (
        client.get(f"/api/v1/leases/{lease['id']}/ledger", headers=staff.headers).status_code == 200
    )
    other = register(client)
    assert_problem(pay(client, other, lease["id"], 100), 404)
    assert_problem(client.get(f"/api/v1/leases/{lease['id']}/ledger", headers=other.headers), 404)


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("charge"), st.integers(1, 500_000), st.integers(0, 200)),
        st.tuples(st.just("payment"), st.integers(1, 500_000), st.integers(0, 200)),
        st.tuples(st.just("credit"), st.integers(1, 100_000), st.integers(0, 200)),
        st.tuples(st.just("reverse"), st.integers(0, 50), st.integers(0, 0)),
    ),
    min_size=1,
    max_size=12,
)


def test_ledger_invariants_for_any_sequence(client: TestClient[Any]) -> None:
    """balance = sum of signed entries = last balanceAfter = sum of aging buckets (if >= 0)."""
    owner = register(client)

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(ops=OPS)
    def run(ops: list[tuple[str, int, int]]) -> None:
        lease = active_lease(client, owner)
        posted: list[str] = []
        for op, amount, days in ops:
            if op == "charge":
                posted.append(charge(client, owner, lease["id"], amount, _days_ago(days))["id"])
            elif op == "payment":
                response = pay(client, owner, lease["id"], amount, on=_days_ago(days))
                assert response.status_code == 201, response.text
                posted.append(response.json()["id"])
            elif op == "credit":
                posted.append(
                    post_entry(client, owner, lease["id"], "credits", amount=amount)["id"]
                )
            elif posted:
                target = posted[amount % len(posted)]
                response = client.post(
                    f"/api/v1/ledger-entries/{target}/reverse", headers=owner.headers
                )
                assert response.status_code in (201, 409), response.text
        book = ledger(client, owner, lease["id"])
        amounts = [e["amount"] for e in book["entries"]]
        assert book["balance"] == sum(amounts)
        running = 0
        for entry in book["entries"]:
            running += entry["amount"]
            assert entry["balanceAfter"] == running
        if book["entries"]:
            assert book["entries"][-1]["balanceAfter"] == book["balance"]
        assert sum(book["aging"].values()) == book["balance"]
        if book["balance"] >= 0:
            assert all(v >= 0 for v in book["aging"].values())
        reversed_ids = [e["reverses"] for e in book["entries"] if e["reverses"]]
        assert len(reversed_ids) == len(set(reversed_ids))

    run()


def test_reversing_one_entry_on_two_instances_at_once_reverses_it_once(
    app_factory: Any,
) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    a, b = app_factory(instance_id="api-1"), app_factory(instance_id="api-2")
    owner = register(a)
    lease = active_lease(a, owner)
    for _round in range(3):
        entry = charge(a, owner, lease["id"], 700, _days_ago(3))
        barrier = threading.Barrier(2)

        def reverse(
            client: Any, barrier: threading.Barrier = barrier, eid: str = entry["id"]
        ) -> Any:
            barrier.wait(timeout=10)
            return client.post(f"/api/v1/ledger-entries/{eid}/reverse", headers=owner.headers)

        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(reverse, [a, b]))
        assert sorted(r.status_code for r in results) == [201, 409], [r.text for r in results]
    book = ledger(b, owner, lease["id"])
    assert book["balance"] == 0
    assert len([e for e in book["entries"] if e["type"] == "reversal"]) == 3
