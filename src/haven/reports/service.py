"""Rent roll (every unit with its active lease) and aging (arrears by lease and bucket)."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, date, datetime

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from haven.leases.service import rents_in_force
from haven.ledger import repository
from haven.ledger.aging import BUCKETS, Aging, summarize
from haven.ledger.schemas import AgingOut
from haven.models import Lease, LeaseTenant, LedgerEntry, Property, Tenant, Unit
from haven.organizations.service import get_organization, today_in
from haven.reports.schemas import (
    AgingReportOut,
    AgingRow,
    AgingTotals,
    RentRollOut,
    RentRollRow,
    RentRollTotals,
)

RENT_ROLL_COLUMNS = (
    ("propertyName", "property_name"),
    ("unitLabel", "unit_label"),
    ("unitStatus", "unit_status"),
    ("marketRent", "market_rent"),
    ("leaseId", "lease_id"),
    ("tenants", "tenants"),
    ("rent", "rent"),
    ("deposit", "deposit"),
    ("startDate", "start_date"),
    ("endDate", "end_date"),
    ("balance", "balance"),
)


async def _tenant_names(session: AsyncSession, lease_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    names: dict[uuid.UUID, list[str]] = {i: [] for i in lease_ids}
    if lease_ids:
        rows = await session.execute(
            select(LeaseTenant.lease_id, Tenant.first_name, Tenant.last_name)
            .join(Tenant, Tenant.id == LeaseTenant.tenant_id)
            .where(LeaseTenant.lease_id.in_(lease_ids))
            .order_by(LeaseTenant.lease_id, LeaseTenant.position)
        )
        for lease_id, first, last in rows:
            names[lease_id].append(f"{first} {last}")
    return {k: "; ".join(v) for k, v in names.items()}


PROPERTY_BATCH = 100  # properties per keyset batch of the rent roll (their units, leases...)


async def _balances(session: AsyncSession, lease_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Each lease's balance (the sum of its entries' signed amounts, as `summarize` counts)."""
    if not lease_ids:
        return {}
    rows = await session.execute(
        select(LedgerEntry.lease_id, func.sum(LedgerEntry.amount))
        .where(LedgerEntry.lease_id.in_(lease_ids))
        .group_by(LedgerEntry.lease_id)
    )
    return {lease_id: int(total or 0) for lease_id, total in rows}


async def rent_roll_batches(
    session: AsyncSession, organization_id: uuid.UUID, today: date, batch: int | None = None
) -> AsyncIterator[list[RentRollRow]]:
    """The rent roll's rows in report order (property name, property, unit label), a batch of
    properties at a time: keyset over (name, id) on ix_properties_org_name, then those
    properties' units, active leases, tenants, rents and balances, each one statement on an
    index. Memory is bounded by a batch, whatever the portfolio's size."""
    batch = batch or PROPERTY_BATCH
    after: tuple[str, uuid.UUID] | None = None
    while True:
        stmt = select(Property.id, Property.name).where(Property.organization_id == organization_id)
        if after is not None:
            stmt = stmt.where(tuple_(Property.name, Property.id) > tuple_(*after))
        props = (
            await session.execute(stmt.order_by(Property.name, Property.id).limit(batch))
        ).all()
        if not props:
            return
        after = (props[-1].name, props[-1].id)
        names_of = {p.id: p.name for p in props}
        units = (
            (
                await session.execute(
                    select(Unit)
                    .where(
                        Unit.organization_id == organization_id,
                        Unit.property_id.in_(list(names_of)),
                    )
                    .order_by(Unit.property_id, Unit.label, Unit.id)
                )
            )
            .scalars()
            .all()
        )
        leases = (
            {
                lease.unit_id: lease
                for lease in (
                    await session.execute(
                        select(Lease).where(
                            Lease.unit_id.in_([u.id for u in units]), Lease.status == "active"
                        )
                    )
                ).scalars()
            }
            if units
            else {}
        )
        lease_ids = [lease.id for lease in leases.values()]
        names = await _tenant_names(session, lease_ids)
        rents = await rents_in_force(session, leases.values(), today)
        balances = await _balances(session, lease_ids)
        by_property: dict[uuid.UUID, list[Unit]] = {}
        for unit in units:
            by_property.setdefault(unit.property_id, []).append(unit)
        rows: list[RentRollRow] = []
        for prop in props:
            for unit in by_property.get(prop.id, []):
                lease = leases.get(unit.id)
                rows.append(
                    RentRollRow(
                        property_id=unit.property_id,
                        property_name=prop.name,
                        unit_id=unit.id,
                        unit_label=unit.label,
                        unit_status=unit.status,
                        market_rent=unit.market_rent,
                        lease_id=lease.id if lease else None,
                        tenants=names.get(lease.id, "") if lease else "",
                        rent=rents[lease.id] if lease else 0,
                        deposit=lease.deposit if lease else 0,
                        start_date=lease.start_date if lease else None,
                        end_date=lease.end_date if lease else None,
                        balance=balances.get(lease.id, 0) if lease else 0,
                    )
                )
        session.expunge_all()  # the batch's ORM rows are done with: keep memory flat
        if rows:
            yield rows
        if len(props) < batch:
            return


async def rent_roll(session: AsyncSession, organization_id: uuid.UUID) -> RentRollOut:
    org = await get_organization(session, organization_id)
    currency, today = org.currency, today_in(org)
    items: list[RentRollRow] = []
    async for rows in rent_roll_batches(session, organization_id, today):
        items.extend(rows)
    totals = RentRollTotals(
        units=len(items),
        occupied_units=sum(1 for i in items if i.lease_id is not None),
        market_rent=sum(i.market_rent for i in items),
        rent=sum(i.rent for i in items),
        balance=sum(i.balance for i in items),
    )
    return RentRollOut(
        currency=currency, generated_at=datetime.now(UTC), items=items, totals=totals
    )


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    # A cell starting with = + - @ is a formula to spreadsheets: quote it as text.
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not text.lstrip("-").isdigit():
        return "'" + text
    return text


def _csv_lines(rows: Iterable[Sequence[object]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows(rows)
    return out.getvalue().encode()


def rent_roll_csv(report: RentRollOut) -> str:
    rows = [[header for header, _ in RENT_ROLL_COLUMNS]]
    rows += [[_cell(getattr(r, attr)) for _, attr in RENT_ROLL_COLUMNS] for r in report.items]
    return _csv_lines(rows).decode()


async def rent_roll_csv_stream(
    sessions: Callable[[], AbstractAsyncContextManager[AsyncSession]],
    organization_id: uuid.UUID,
    today: date,
    batch: int | None = None,
) -> AsyncIterator[bytes]:
    """The rent roll as CSV, one chunk per batch of properties (the header first): the body is
    never whole in memory. Reads in its own session, open while the response streams."""
    yield _csv_lines([[header for header, _ in RENT_ROLL_COLUMNS]])
    async with sessions() as session:
        async for rows in rent_roll_batches(session, organization_id, today, batch):
            yield _csv_lines(
                [_cell(getattr(row, attr)) for _, attr in RENT_ROLL_COLUMNS] for row in rows
            )


def _aging_out(aging: Aging) -> AgingOut:
    return AgingOut(**aging.as_dict())


async def aging_report(session: AsyncSession, organization_id: uuid.UUID) -> AgingReportOut:
    """Every lease whose balance is not zero, with its buckets; totals add up across leases."""
    org = await get_organization(session, organization_id)
    today = today_in(org)
    ledgers = await repository.lines_by_lease(session, organization_id)
    rows = (
        await session.execute(
            select(Lease, Unit.label, Property.name)
            .join(Unit, Unit.id == Lease.unit_id)
            .join(Property, Property.id == Unit.property_id)
            .where(Lease.organization_id == organization_id, Lease.id.in_(list(ledgers)))
            .order_by(Property.name, Unit.label, Lease.start_date, Lease.id)
        )
    ).all()
    names = await _tenant_names(session, [lease.id for lease, _, _ in rows])
    items: list[AgingRow] = []
    total = Aging()
    for lease, label, property_name in rows:
        summary = summarize(ledgers[lease.id], today)
        if summary.balance == 0:
            continue
        total.add(summary.aging)
        items.append(
            AgingRow(
                lease_id=lease.id,
                status=lease.status,
                property_name=property_name,
                unit_label=label,
                tenants=names.get(lease.id, ""),
                balance=summary.balance,
                aging=_aging_out(summary.aging),
            )
        )
    return AgingReportOut(
        currency=org.currency,
        as_of=today,
        generated_at=datetime.now(UTC),
        items=items,
        totals=AgingTotals(
            leases=len(items), balance=sum(i.balance for i in items), aging=_aging_out(total)
        ),
    )


AGING_COLUMNS = ["lease_id", "status", "property", "unit", "tenants", "balance", *BUCKETS]


def aging_csv(report: AgingReportOut) -> tuple[list[str], list[list[object]]]:
    """The aging report as CSV rows (one per lease, amounts in minor units), totals last."""
    rows: list[list[object]] = [
        [i.lease_id, i.status, i.property_name, i.unit_label, i.tenants, i.balance]
        + [getattr(i.aging, b) for b in BUCKETS]
        for i in report.items
    ]
    t = report.totals
    rows.append(["total", "", "", "", "", t.balance, *(getattr(t.aging, b) for b in BUCKETS)])
    return AGING_COLUMNS, rows
