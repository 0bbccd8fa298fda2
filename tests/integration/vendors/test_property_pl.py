"""The property P&L (cash basis) reconciles to the cent with the rent ledger and bill payments."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support import (
    add_member,
    assert_problem,
    create_property,
    create_tenant,
    create_unit,
    register,
)
from support_leases import active_lease, pay
from support_portfolio import app_client
from support_vendors import (
    BILLS,
    PL,
    create_bill,
    create_vendor,
    days_from_today,
    everything,
    listing,
    pay_bill,
    reverse_payment,
    today,
)

TRADES = ("plumbing", "painting")


@pytest.fixture(scope="module")
def client(database: Any, valkey: Any, secret_key: str) -> Iterator[Any]:
    with app_client(database, valkey, secret_key, "property-pl") as client:
        yield client


def _portfolio(client: Any) -> dict[str, Any]:
    owner = register(client, organization="P&L Homes")
    props, leases = [], []
    for name in ("Alder Court", "Birch House"):
        prop = create_property(client, owner, name=name)
        unit = create_unit(client, owner, prop["id"])
        lease = active_lease(
            client,
            owner,
            unit_id=unit["id"],
            tenant_ids=[create_tenant(client, owner)["id"]],
            startDate=days_from_today(-365),
            endDate=days_from_today(365),
        )
        props.append(prop)
        leases.append(lease)
    vendors = [create_vendor(client, owner, name=f"{t} co", trade=t) for t in TRADES]
    return {"owner": owner, "props": props, "leases": leases, "vendors": vendors}


OPS = st.lists(
    st.one_of(
        # (op, property index, vendor index, amount, days ago)
        st.tuples(
            st.just("rent"),
            st.integers(0, 1),
            st.just(0),
            st.integers(1, 300_000),
            st.integers(0, 60),
        ),
        st.tuples(
            st.just("bill"),
            st.integers(0, 1),
            st.integers(0, 1),
            st.integers(1, 300_000),
            st.integers(0, 60),
        ),
        st.tuples(st.just("reverse_rent"), st.just(0), st.just(0), st.integers(0, 50), st.just(0)),
        st.tuples(st.just("reverse_bill"), st.just(0), st.just(0), st.integers(0, 50), st.just(0)),
    ),
    min_size=1,
    max_size=10,
)
WINDOW = st.tuples(st.integers(0, 70), st.integers(0, 70)).map(lambda t: (max(t), min(t)))


def _report(client: Any, owner: Any, start: str, end: str, **params: Any) -> dict[str, Any]:
    response = client.get(PL, headers=owner.headers, params={"from": start, "to": end, **params})
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_report_equals_the_sums_for_any_history(client: Any) -> None:
    @settings(
        max_examples=12,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(ops=OPS, window=WINDOW)
    def run(ops: list[tuple[str, int, int, int, int]], window: tuple[int, int]) -> None:
        world = _portfolio(client)
        owner, props, leases, vendors = (world[k] for k in ("owner", "props", "leases", "vendors"))
        start, end = days_from_today(-window[0]), days_from_today(-window[1])
        # The model: (property index, date, signed cash) per movement, kept apart from Haven.
        income: list[tuple[int, str, int]] = []
        spent: list[tuple[int, str, str, int]] = []
        rent_ids: list[tuple[int, str, int]] = []
        bill_ids: list[tuple[int, int, str, str, int]] = []
        for op, p, v, amount, days in ops:
            if op == "rent":
                response = pay(client, owner, leases[p]["id"], amount, on=days_from_today(-days))
                assert response.status_code == 201, response.text
                income.append((p, days_from_today(-days), amount))
                rent_ids.append((p, response.json()["id"], amount))
            elif op == "bill":
                bill = create_bill(
                    client,
                    owner,
                    vendors[v]["id"],
                    props[p]["id"],
                    amount + 5,
                    issuedOn=days_from_today(-90),
                    dueOn=days_from_today(-80),
                )
                response = pay_bill(
                    client, owner, bill["id"], amount, paidOn=days_from_today(-days)
                )
                assert response.status_code == 201, response.text
                spent.append((p, TRADES[v], days_from_today(-days), amount))
                bill_ids.append((p, v, bill["id"], response.json()["payment"]["id"], amount))
            elif op == "reverse_rent" and rent_ids:
                p, entry_id, paid = rent_ids.pop(amount % len(rent_ids))
                response = client.post(
                    f"/api/v1/ledger-entries/{entry_id}/reverse", headers=owner.headers
                )
                assert response.status_code == 201, response.text
                income.append((p, today(), -paid))
            elif op == "reverse_bill" and bill_ids:
                p, v, bill_id, payment_id, paid = bill_ids.pop(amount % len(bill_ids))
                response = reverse_payment(client, owner, bill_id, payment_id)
                assert response.status_code == 201, response.text
                spent.append((p, TRADES[v], today(), -paid))

        report = _report(client, owner, start, end)
        by_id = {item["propertyId"]: item for item in report["items"]}
        assert list(by_id) == [props[0]["id"], props[1]["id"]]  # by name
        for p, prop in enumerate(props):
            item = by_id[prop["id"]]
            want_income = sum(a for q, d, a in income if q == p and start <= d <= end)
            trades: dict[str, int] = defaultdict(int)
            for q, trade, d, a in spent:
                if q == p and start <= d <= end:
                    trades[trade] += a
            assert item["income"] == want_income
            assert item["expenses"] == sum(trades.values())
            assert {t["trade"]: t["amount"] for t in item["expensesByTrade"]} == {
                t: a for t, a in trades.items() if a
            }
            assert item["net"] == item["income"] - item["expenses"]
            # ... and with what Haven itself lists: the lease's ledger and the bills' payments.
            book = client.get(f"/api/v1/leases/{leases[p]['id']}/ledger", headers=owner.headers)
            entries = {e["id"]: e for e in book.json()["entries"]}
            cash = [
                e
                for e in entries.values()
                if start <= e["date"] <= end
                and (
                    e["type"] == "payment"
                    or (e["type"] == "reversal" and entries[e["reverses"]]["type"] == "payment")
                )
            ]
            assert item["income"] == -sum(e["amount"] for e in cash)
            paid_out = [
                pmt["amount"]
                for bill in listing(client, owner, BILLS, propertyId=prop["id"])
                for pmt in listing(client, owner, f"{BILLS}/{bill['id']}/payments")
                if start <= pmt["paidOn"] <= end
            ]
            assert item["expenses"] == sum(paid_out)
        totals = report["totals"]
        assert totals["income"] == sum(i["income"] for i in report["items"])
        assert totals["expenses"] == sum(i["expenses"] for i in report["items"])
        assert totals["net"] == totals["income"] - totals["expenses"]
        # The CSV says the same, to the cent.
        text = client.get(
            PL, headers={**owner.headers, "Accept": "text/csv"}, params={"from": start, "to": end}
        ).text
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [r["property_id"] for r in rows] == [*by_id, "total"]
        for row in rows:
            item = by_id.get(row["property_id"], totals)
            assert int(row["income"]) == item["income"]
            assert int(row["expenses"]) == item["expenses"]
            assert int(row["net"]) == item["net"]
            for t in TRADES:
                amounts = {x["trade"]: x["amount"] for x in item["expensesByTrade"]}
                assert int(row[f"expenses_{t}"]) == amounts.get(t, 0)

    run()


def test_one_property_csv_formats_and_bad_queries(client: Any) -> None:
    world = _portfolio(client)
    owner, props = world["owner"], world["props"]
    pay(client, owner, world["leases"][1]["id"], 50000, on=today())
    one = _report(client, owner, days_from_today(-5), today(), propertyId=props[1]["id"])
    assert [i["propertyId"] for i in one["items"]] == [props[1]["id"]]
    assert one["totals"]["income"] == 50000
    assert one["basis"] == "cash"
    assert one["from"] == days_from_today(-5)
    assert one["currency"] == "USD"
    viewer = add_member(client, owner, "viewer")
    csv_by_param = client.get(
        PL, headers=viewer.headers, params={"from": today(), "to": today(), "format": "csv"}
    )
    assert csv_by_param.status_code == 200
    assert csv_by_param.headers["content-type"].startswith("text/csv")
    assert "property-pl.csv" in csv_by_param.headers["content-disposition"]
    other = register(client, organization="Elsewhere")
    for params, status in (
        ({"from": today(), "to": days_from_today(-1)}, 422),
        ({"from": "2026-13-01", "to": today()}, 422),
        ({"from": today()}, 422),
        ({"from": today(), "to": today(), "propertyId": "nope"}, 422),
        ({"from": today(), "to": today(), "format": "pdf"}, 422),
        ({"from": "2000-01-01", "to": "2030-01-01"}, 422),
    ):
        assert_problem(client.get(PL, headers=owner.headers, params=params), status)
    assert_problem(
        client.get(
            PL,
            headers=other.headers,
            params={"from": today(), "to": today(), "propertyId": props[0]["id"]},
        ),
        404,
    )
    assert_problem(
        client.get(
            PL,
            headers={**owner.headers, "Accept": "application/pdf"},
            params={"from": today(), "to": today()},
        ),
        406,
    )
    assert everything(client, owner)[2] == []
