"""Property income and expenses (P&L) over a period, on a cash basis.

Definitions (also in the OpenAPI description of GET /reports/property-pl and docs/vendors.md):

* Cash basis: money counts on the day it moved, whatever period it was for.
* `income` of a property is what its tenants paid in the period: the ledger's payment entries
  dated in the period (their receipt date), less the reversals of payments dated in the period
  (a reversal is dated the day it was posted). Charges, credits and deposit refunds move no
  cash into the organization and are not income; a payment that settles a deposit charge is
  cash received and counts.
* `expenses` of a property is what was paid to vendors for it in the period: the `bill_payments`
  rows with `paidOn` in the period, reversals (negative rows) included, grouped by the trade of
  the bill's vendor.
* `net` = income - expenses. Totals are sums over the properties listed.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from haven.db.query import get_owned
from haven.errors import FieldError, ValidationError
from haven.models import Bill, BillPayment, Lease, LedgerEntry, Property, Unit, Vendor
from haven.models.vendor import TRADES
from haven.organizations.service import get_organization
from haven.reports.schemas import PropertyPl, PropertyPlOut, PropertyPlTotals, TradeAmount
from haven.web import csv_cell

# Reports longer than this are refused: a P&L is read by month, quarter or year.
MAX_DAYS = 366 * 10


async def income_by_property(
    session: AsyncSession, organization_id: uuid.UUID, start: date, end: date
) -> dict[uuid.UUID, int]:
    """Tenant payments received in [start, end] net of payment reversals posted in it."""
    reversed_ = aliased(LedgerEntry)
    stmt = (
        select(Unit.property_id, func.sum(LedgerEntry.amount))
        .select_from(LedgerEntry)
        .join(Lease, Lease.id == LedgerEntry.lease_id)
        .join(Unit, Unit.id == Lease.unit_id)
        .outerjoin(reversed_, reversed_.id == LedgerEntry.reverses_id)
        .where(
            LedgerEntry.organization_id == organization_id,
            LedgerEntry.date >= start,
            LedgerEntry.date <= end,
            or_(
                LedgerEntry.type == "payment",
                and_(LedgerEntry.type == "reversal", reversed_.type == "payment"),
            ),
        )
        .group_by(Unit.property_id)
    )
    # Payments are negative on the ledger (they lower what the tenants owe).
    return {pid: -int(total or 0) for pid, total in await session.execute(stmt)}


async def expenses_by_property(
    session: AsyncSession, organization_id: uuid.UUID, start: date, end: date
) -> dict[uuid.UUID, dict[str, int]]:
    """Bill payments (reversals included) with paidOn in [start, end], by property and trade."""
    stmt = (
        select(BillPayment.property_id, Vendor.trade, func.sum(BillPayment.amount))
        .select_from(BillPayment)
        .join(Bill, Bill.id == BillPayment.bill_id)
        .join(Vendor, Vendor.id == Bill.vendor_id)
        .where(
            BillPayment.organization_id == organization_id,
            BillPayment.paid_on >= start,
            BillPayment.paid_on <= end,
        )
        .group_by(BillPayment.property_id, Vendor.trade)
    )
    out: dict[uuid.UUID, dict[str, int]] = defaultdict(dict)
    for pid, trade, total in await session.execute(stmt):
        out[pid][trade] = int(total or 0)
    return out


def _by_trade(amounts: dict[str, int]) -> list[TradeAmount]:
    order = {t: i for i, t in enumerate(TRADES)}
    return [
        TradeAmount(trade=t, amount=a)
        for t, a in sorted(amounts.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))
        if a != 0
    ]


async def property_pl(
    session: AsyncSession,
    organization_id: uuid.UUID,
    start: date,
    end: date,
    property_id: uuid.UUID | None = None,
) -> PropertyPlOut:
    if end < start:
        raise ValidationError(errors=[FieldError("to", "is before from")])
    if (end - start).days >= MAX_DAYS:
        raise ValidationError(errors=[FieldError("to", f"is more than {MAX_DAYS} days after from")])
    org = await get_organization(session, organization_id)
    if property_id is not None:
        prop = await get_owned(session, Property, organization_id, property_id)
        properties = [(prop.id, prop.name)]
    else:
        rows = await session.execute(
            select(Property.id, Property.name)
            .where(Property.organization_id == organization_id)
            .order_by(Property.name, Property.id)
        )
        properties = [(pid, name) for pid, name in rows]
    income = await income_by_property(session, organization_id, start, end)
    expenses = await expenses_by_property(session, organization_id, start, end)
    items: list[PropertyPl] = []
    all_trades: dict[str, int] = defaultdict(int)
    for pid, name in properties:
        trades = expenses.get(pid, {})
        for trade, amount in trades.items():
            all_trades[trade] += amount
        spent = sum(trades.values())
        got = income.get(pid, 0)
        items.append(
            PropertyPl(
                property_id=pid,
                property_name=name,
                income=got,
                expenses=spent,
                expenses_by_trade=_by_trade(trades),
                net=got - spent,
            )
        )
    total_income = sum(i.income for i in items)
    total_expenses = sum(i.expenses for i in items)
    return PropertyPlOut(
        currency=org.currency,
        start=start,
        end=end,
        basis="cash",
        generated_at=datetime.now(UTC),
        items=items,
        totals=PropertyPlTotals(
            income=total_income,
            expenses=total_expenses,
            expenses_by_trade=_by_trade(dict(all_trades)),
            net=total_income - total_expenses,
        ),
    )


CSV_COLUMNS = [
    "property_id",
    "property",
    "income",
    "expenses",
    *(f"expenses_{t}" for t in TRADES),
    "net",
]


def property_pl_csv(report: PropertyPlOut) -> str:
    """One row per property, amounts in minor units, one expense column per trade; totals last."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)

    def row(
        pid: object, name: str, income: int, spent: int, trades: list[TradeAmount], net: int
    ) -> list[str]:
        by = {t.trade: t.amount for t in trades}
        cells: list[object] = [pid, name, income, spent, *(by.get(t, 0) for t in TRADES), net]
        return [csv_cell(c) for c in cells]

    for i in report.items:
        writer.writerow(
            row(i.property_id, i.property_name, i.income, i.expenses, i.expenses_by_trade, i.net)
        )
    t = report.totals
    writer.writerow(row("total", "", t.income, t.expenses, t.expenses_by_trade, t.net))
    return out.getvalue()
