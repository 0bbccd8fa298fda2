"""Lease rules: terms, tenants, activation without overlap, termination, unit status."""

from __future__ import annotations

import uuid
from collections.abc import Container, Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

from msgspec import UNSET
from sqlalchemy import (
    ColumnElement,
    Text,
    Uuid,
    and_,
    bindparam,
    cast,
    delete,
    exists,
    literal,
    literal_column,
    or_,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from haven.billing.schedule import escalations
from haven.db.pagination import ListQuery, Page, sort_keys
from haven.db.query import get_owned, scoped
from haven.db.reader import Reader
from haven.errors import (
    ConflictError,
    FieldError,
    LeaseOverlapError,
    NotFoundError,
    ValidationError,
)
from haven.leases.schemas import MAX_TENANTS, LateFee, LeaseIn, LeasePatch
from haven.ledger.service import post_deposit_charge
from haven.models import Lease, LeaseTenant, RentChange, Tenant, Unit
from haven.uow import add_change, add_new, may_guard
from haven.uow.tail import guarded

SORTS = sort_keys(
    {"createdAt": (Lease.created_at, datetime), "startDate": (Lease.start_date, date)}
)
MAX_BASIS_POINTS = 10_000
# Fields an active lease may still change; the rest are fixed once it is in force.
ACTIVE_EDITABLE = frozenset({"end_date", "grace_days", "late_fee", "escalation"})
# An open-ended lease's escalation generates rent changes this many years ahead.
ESCALATION_YEARS = 10


async def unit_has_active_lease(session: AsyncSession, unit_id: uuid.UUID) -> bool:
    stmt = select(Lease.id).where(Lease.unit_id == unit_id, Lease.status == "active").limit(1)
    return (await session.execute(stmt)).first() is not None


async def lease_statuses(
    session: AsyncSession,
    *,
    unit_id: uuid.UUID | None = None,
    property_id: uuid.UUID | None = None,
    tenant_id: uuid.UUID | None = None,
) -> set[str]:
    """Statuses of the leases on a unit, a property's units, or with a tenant."""
    stmt = select(Lease.status).distinct()
    if unit_id is not None:
        stmt = stmt.where(Lease.unit_id == unit_id)
    if property_id is not None:
        stmt = stmt.join(Unit, Unit.id == Lease.unit_id).where(Unit.property_id == property_id)
    if tenant_id is not None:
        stmt = stmt.join(LeaseTenant, LeaseTenant.lease_id == Lease.id).where(
            LeaseTenant.tenant_id == tenant_id
        )
    return set((await session.execute(stmt)).scalars())


def refuse_delete_with_leases(what: str, statuses: set[str]) -> None:
    """Deleting a row would cascade to leases: refuse unless they are all drafts.

    An active lease must end first; an ended or terminated one carries ledger history,
    which is append-only and must never disappear with the unit, property or tenant.
    """
    if "active" in statuses:
        raise ConflictError(f"{what} has an active lease; end the lease first")
    if statuses - {"draft"}:
        raise ConflictError(
            f"{what} has lease history (ended or terminated leases with their ledger); "
            "it cannot be deleted"
        )


def _invalid(field: str, message: str) -> ValidationError:
    return ValidationError(errors=[FieldError(field, message)])


def _check_late_fee(fee: LateFee | None) -> None:
    if fee is not None and fee.kind == "percent" and fee.amount > MAX_BASIS_POINTS:
        raise _invalid("lateFee.amount", "percent late fees are basis points, at most 10000")


def _check_dates(start: date, end: date | None) -> None:
    if end is not None and end < start:
        raise _invalid("endDate", "must be on or after startDate")


async def _check_tenants(
    session: AsyncSession, organization_id: uuid.UUID, tenant_ids: Sequence[uuid.UUID]
) -> list[uuid.UUID]:
    unique = list(dict.fromkeys(tenant_ids))
    found = set(
        (
            await session.execute(
                scoped(Tenant, organization_id)
                .with_only_columns(Tenant.id)
                .where(Tenant.id.in_(unique))
            )
        ).scalars()
    )
    _refuse_missing(unique, found)
    return unique


def _refuse_missing(tenants: list[uuid.UUID], found: Container[uuid.UUID | None]) -> None:
    missing = [str(t) for t in tenants if t not in found]
    if missing:
        raise _invalid("tenantIds", f"no such tenant: {', '.join(missing)}")


async def _set_tenants(
    session: AsyncSession, lease_id: uuid.UUID, tenants: list[uuid.UUID]
) -> None:
    await session.execute(delete(LeaseTenant).where(LeaseTenant.lease_id == lease_id))
    session.add_all(
        LeaseTenant(lease_id=lease_id, tenant_id=t, position=i) for i, t in enumerate(tenants)
    )


set_tenants = _set_tenants


class _Named(NamedTuple):
    """A row of `_NAMED`: the unit's property, and one of the named tenants found (None
    when none is)."""

    property_id: uuid.UUID
    tenant_id: uuid.UUID | None


# What a new lease names, in one read: a row per named tenant of the organization (or one
# with no tenant), none at all when the unit is not the organization's. One shape whatever
# the request names (the ids padded with NULLs, which match nothing), so it is prepared once.
_NAMED = (
    select(Unit.property_id, Tenant.id)
    .select_from(Unit)
    .outerjoin(
        Tenant,
        and_(
            Tenant.organization_id == Unit.organization_id,
            Tenant.id.in_([bindparam(f"tenant_{i}", type_=Uuid) for i in range(MAX_TENANTS)]),
        ),
    )
    .where(Unit.id == bindparam("unit_id"), Unit.organization_id == bindparam("organization_id"))
)


class NewLease(NamedTuple):
    """A lease `create` drafted, with what its answer shows beside the row."""

    lease: Lease
    tenant_ids: list[uuid.UUID]  # in their order on the lease, each once
    property_id: uuid.UUID  # the unit's


async def create(
    session: AsyncSession, reader: Reader, organization_id: uuid.UUID, data: LeaseIn
) -> NewLease:
    """A draft lease. The unit and the tenants are checked in one read through `reader` (no
    lock: one deleted meanwhile fails a foreign key at the commit, a 409); the lease and its
    tenants are added with `add_new`, written with the commit's statement
    (haven.uow.recorder). Nothing is posted yet: the deposit charge and the escalation's
    rent changes come with activation."""
    tenants = list(dict.fromkeys(data.tenant_ids))
    if len(tenants) > MAX_TENANTS:  # the schema's limit; a caller that skips it is told too
        raise _invalid("tenantIds", f"at most {MAX_TENANTS} tenants")
    params: dict[str, Any] = {"organization_id": organization_id, "unit_id": data.unit_id}
    params.update(
        (f"tenant_{i}", tenants[i] if i < len(tenants) else None) for i in range(MAX_TENANTS)
    )
    named = await reader.rows(_NAMED, params, _Named)
    if not named:
        raise _invalid("unitId", "no such unit")
    _check_dates(data.start_date, data.end_date)
    _check_late_fee(data.late_fee)
    _refuse_missing(tenants, {row.tenant_id for row in named})
    lease = Lease(
        organization_id=organization_id,
        unit_id=data.unit_id,
        status="draft",
        start_date=data.start_date,
        end_date=data.end_date,
        rent=data.rent,
        deposit=data.deposit,
        due_day=data.due_day,
        grace_days=data.grace_days,
        late_fee_kind=data.late_fee.kind if data.late_fee else None,
        late_fee_amount=data.late_fee.amount if data.late_fee else None,
        charge_deposit=data.charge_deposit,
        escalation_basis_points=data.escalation.percent_basis_points if data.escalation else None,
        escalation_every_months=data.escalation.every_months if data.escalation else None,
    )
    add_new(session, lease)  # its id, now: the tenants' rows name it
    for position, tenant_id in enumerate(tenants):
        add_new(session, LeaseTenant(lease_id=lease.id, tenant_id=tenant_id, position=position))
    return NewLease(lease, tenants, named[0].property_id)


async def get(
    session: AsyncSession,
    organization_id: uuid.UUID,
    lease_id: uuid.UUID,
    *,
    for_update: bool = False,
    tenant_id: uuid.UUID | None = None,
) -> Lease:
    """The organization's lease (404 otherwise); `for_update` locks its row (PostgreSQL).
    With `tenant_id` (a resident's), a lease that tenant is not on is 404 too."""
    lease = await get_owned(session, Lease, organization_id, lease_id, for_update=for_update)
    if tenant_id is not None:
        stmt = select(LeaseTenant.lease_id).where(
            LeaseTenant.lease_id == lease.id, LeaseTenant.tenant_id == tenant_id
        )
        if (await session.execute(stmt)).first() is None:
            raise NotFoundError(f"No lease with id {lease_id}")
    return lease


class _SeenLease(NamedTuple):
    id: uuid.UUID
    organization_id: uuid.UUID
    status: str
    start_date: date
    end_date: date | None
    version: str  # the row's xmin: the transaction that last wrote it


_SEEING = select(
    Lease.id,
    Lease.organization_id,
    Lease.status,
    Lease.start_date,
    Lease.end_date,
    cast(literal_column("leases.xmin"), Text),
).where(Lease.id == bindparam("lease_id"), Lease.organization_id == bindparam("org_id"))

# The commit's guard (haven.uow.tail `guarded`): the lease's row, locked FOR SHARE (a PATCH,
# an activation or a termination waits for the commit), still the version read.
_UNCHANGED = guarded(
    select(literal(1))
    .select_from(Lease)
    .where(
        Lease.id == bindparam("g_lease_id", type_=Lease.id.type),
        cast(literal_column("leases.xmin"), Text) == bindparam("g_lease_seen", type_=Text),
    )
    .with_for_update(read=True)
)


async def get_guarded(
    session: AsyncSession, reader: Reader, organization_id: uuid.UUID, lease_id: uuid.UUID
) -> Lease:
    """The organization's lease (404 otherwise) for a write that adds rows under its terms
    (status, dates) and changes nothing of it, as if its row were locked from the read to
    the commit (`get` with `for_update`).

    On PostgreSQL the read takes no lock (in autocommit, through `reader`): the lease is
    a copy of its terms, not in `session`, and the commit writes only if the row is still
    the version read, or else nothing, and the request runs again (haven.uow.http), then
    locking. Elsewhere, or in that second run, `get` with `for_update`."""
    if not may_guard(session):
        return await get(session, organization_id, lease_id, for_update=True)
    params = {"lease_id": lease_id, "org_id": organization_id}
    rows = await reader.rows(_SEEING, params, _SeenLease)
    if not rows:
        raise NotFoundError(f"No lease with id {lease_id}")
    seen = rows[0]
    add_change(session, _UNCHANGED, {"g_lease_id": seen.id, "g_lease_seen": seen.version})
    return Lease(
        id=seen.id,
        organization_id=seen.organization_id,
        status=seen.status,
        start_date=seen.start_date,
        end_date=seen.end_date,
    )


class _LeaseId(NamedTuple):
    lease_id: uuid.UUID


_RESIDENT_LEASE = (
    select(LeaseTenant.lease_id)
    .join(Lease, Lease.id == LeaseTenant.lease_id)
    .where(
        Lease.organization_id == bindparam("organization_id"),
        LeaseTenant.lease_id == bindparam("lease_id"),
        LeaseTenant.tenant_id == bindparam("tenant_id"),
    )
)


async def require_tenant_lease(
    reader: Reader, organization_id: uuid.UUID, lease_id: uuid.UUID, tenant_id: uuid.UUID
) -> None:
    """404 unless the tenant (a resident's) is on the organization's lease."""
    params = {"organization_id": organization_id, "lease_id": lease_id, "tenant_id": tenant_id}
    if not await reader.rows(_RESIDENT_LEASE, params, _LeaseId):
        raise NotFoundError(f"No lease with id {lease_id}")


def tenant_units(tenant_id: Any) -> Any:
    """The ids of the units the tenant has (or had) a lease on: a resident's units."""
    return (
        select(Lease.unit_id)
        .join(LeaseTenant, LeaseTenant.lease_id == Lease.id)
        .where(LeaseTenant.tenant_id == tenant_id)
    )


async def tenants_of(
    session: AsyncSession, lease_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    ids = list(lease_ids)
    out: dict[uuid.UUID, list[uuid.UUID]] = {i: [] for i in ids}
    if not ids:
        return out
    stmt = (
        select(LeaseTenant.lease_id, LeaseTenant.tenant_id)
        .where(LeaseTenant.lease_id.in_(ids))
        .order_by(LeaseTenant.lease_id, LeaseTenant.position)
    )
    for lease_id, tenant_id in await session.execute(stmt):
        out[lease_id].append(tenant_id)
    return out


async def properties_of(
    session: AsyncSession, unit_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID]:
    ids = list(set(unit_ids))
    if not ids:
        return {}
    stmt = select(Unit.id, Unit.property_id).where(Unit.id.in_(ids))
    return {row.id: row.property_id for row in await session.execute(stmt)}


def _overlapping(lease: Lease, start: date, end: date | None) -> ColumnElement[bool]:
    """Other active leases on the lease's unit whose [start, end] meets [start, end]."""
    conditions = [
        Lease.unit_id == lease.unit_id,
        Lease.status == "active",
        Lease.id != lease.id,
        or_(Lease.end_date.is_(None), Lease.end_date >= start),
    ]
    if end is not None:
        conditions.append(Lease.start_date <= end)
    return and_(*conditions)


async def _lock_unit(session: AsyncSession, unit_id: uuid.UUID) -> Unit:
    # Serializes every status change of leases on one unit across instances (PostgreSQL);
    # on SQLite the write transaction already holds the database's write lock.
    stmt = select(Unit).where(Unit.id == unit_id).with_for_update()
    return (await session.execute(stmt.execution_options(populate_existing=True))).scalar_one()


async def _refuse_overlap(
    session: AsyncSession, lease: Lease, start: date, end: date | None
) -> None:
    clash = (
        await session.execute(select(Lease.id).where(_overlapping(lease, start, end)).limit(1))
    ).scalar_one_or_none()
    if clash is not None:
        raise LeaseOverlapError(f"Active lease {clash} on this unit overlaps these dates")


async def _flush_guarded(session: AsyncSession) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        # The PostgreSQL exclusion constraint is the last line: report it as the same 409.
        if "overlap" in str(exc.orig).lower() or "exclusion" in str(exc.orig).lower():
            raise LeaseOverlapError("Another active lease on this unit overlaps") from None
        raise


async def update(session: AsyncSession, lease: Lease, data: LeasePatch) -> Lease:
    changed = {name for name in data.__struct_fields__ if getattr(data, name) is not UNSET}
    if lease.status in ("ended", "terminated") and changed:
        raise ConflictError(f"The lease is {lease.status}; it can no longer change")
    if lease.status == "active" and changed - ACTIVE_EDITABLE:
        names = ", ".join(sorted(changed - ACTIVE_EDITABLE))
        hint = "; change the rent with POST /leases/{id}/rent-changes" if "rent" in changed else ""
        raise ConflictError(f"An active lease cannot change: {names}{hint}")
    start = lease.start_date if data.start_date is UNSET else data.start_date
    end = lease.end_date if data.end_date is UNSET else data.end_date
    _check_dates(start, end)
    if data.late_fee is not UNSET:
        _check_late_fee(data.late_fee)
        lease.late_fee_kind = data.late_fee.kind if data.late_fee else None
        lease.late_fee_amount = data.late_fee.amount if data.late_fee else None
    if lease.status == "active" and end != lease.end_date:
        await _lock_unit(session, lease.unit_id)
        await _refuse_overlap(session, lease, start, end)
        renewal = await session.execute(
            select(Lease.id).where(Lease.renews_id == lease.id, Lease.status == "draft").limit(1)
        )
        if renewal.first() is not None:
            raise ConflictError("The lease has a renewal starting the day after it ends")
    lease.start_date, lease.end_date = start, end
    if data.rent is not UNSET:
        lease.rent = data.rent
    if data.deposit is not UNSET:
        lease.deposit = data.deposit
    if data.due_day is not UNSET:
        lease.due_day = data.due_day
    if data.grace_days is not UNSET:
        lease.grace_days = data.grace_days
    if data.charge_deposit is not UNSET:
        lease.charge_deposit = data.charge_deposit
    if data.escalation is not UNSET:
        esc = data.escalation
        lease.escalation_basis_points = esc.percent_basis_points if esc else None
        lease.escalation_every_months = esc.every_months if esc else None
        if lease.status == "active":
            await generate_escalations(session, lease, datetime.now(UTC).date())
    if data.tenant_ids is not UNSET:
        tenants = await _check_tenants(session, lease.organization_id, data.tenant_ids)
        await _set_tenants(session, lease.id, tenants)
        lease.updated_at = datetime.now(UTC)  # a tenant change is a change of the lease
    await _flush_guarded(session)
    return lease


async def activate(session: AsyncSession, lease: Lease) -> Lease:
    """draft -> active, unless another active lease on the unit overlaps (409 lease-overlap)."""
    unit = await _lock_unit(session, lease.unit_id)
    await session.refresh(lease)  # another instance may have moved it while we waited
    if lease.status != "draft":
        raise ConflictError(f"Only a draft lease can be activated; this one is {lease.status}")
    await _refuse_overlap(session, lease, lease.start_date, lease.end_date)
    lease.status = "active"
    lease.activated_at = datetime.now(UTC)
    unit.status = "occupied"
    await _flush_guarded(session)
    if lease.charge_deposit and lease.deposit > 0:
        await post_deposit_charge(session, lease)
    await generate_escalations(session, lease, lease.start_date)
    return lease


async def generate_escalations(session: AsyncSession, lease: Lease, after: date) -> None:
    """Replace the escalation-generated rent changes effective after `after` with fresh ones.

    The steps compound from the lease's rent; a manual change stays as it is, wins on its
    own date (a step on that date is skipped) and holds until the next step.
    """
    await session.execute(
        delete(RentChange).where(
            RentChange.lease_id == lease.id,
            RentChange.source == "escalation",
            RentChange.effective_date > after,
        )
    )
    if lease.escalation_basis_points is None or lease.escalation_every_months is None:
        await session.flush()
        return
    rows = (
        await session.execute(select(RentChange).where(RentChange.lease_id == lease.id))
    ).scalars()
    taken = {row.effective_date for row in rows}
    start = lease.start_date
    limit = lease.end_date or date(start.year + ESCALATION_YEARS, start.month, min(start.day, 28))
    steps = escalations(
        lease.start_date,
        lease.end_date,
        lease.rent,
        lease.escalation_basis_points,
        lease.escalation_every_months,
        limit,
    )
    session.add_all(
        RentChange(
            organization_id=lease.organization_id,
            lease_id=lease.id,
            effective_date=step.effective,
            rent=step.rent,
            source="escalation",
        )
        for step in steps
        if step.effective > after and step.effective not in taken
    )
    await session.flush()


async def activate_renewals(
    session: AsyncSession, organization_id: uuid.UUID | None, as_of: date
) -> int:
    """Draft renewals whose predecessor has ended and whose start has come become active."""
    predecessor = Lease.__table__.alias("predecessor")
    stmt = (
        select(Lease)
        .join(predecessor, predecessor.c.id == Lease.renews_id)
        .where(
            Lease.status == "draft",
            Lease.start_date <= as_of,
            predecessor.c.status.in_(("ended", "terminated")),
        )
        .order_by(Lease.start_date, Lease.id)
    )
    if organization_id is not None:
        stmt = stmt.where(Lease.organization_id == organization_id)
    activated = 0
    for lease in list((await session.execute(stmt)).scalars()):
        try:
            async with session.begin_nested():
                await activate(session, lease)
            activated += 1
        except (ConflictError, LeaseOverlapError):
            continue  # someone activated it, or another lease took the unit: left as a draft
    return activated


async def _release_unit(session: AsyncSession, unit: Unit, lease: Lease) -> None:
    others = await session.execute(
        select(
            exists().where(Lease.unit_id == unit.id, Lease.status == "active", Lease.id != lease.id)
        )
    )
    if not others.scalar_one() and unit.status == "occupied":
        unit.status = "vacant"


async def terminate(session: AsyncSession, lease: Lease, on: date) -> Lease:
    """active -> terminated on `on`; the unit becomes vacant unless another lease holds it."""
    unit = await _lock_unit(session, lease.unit_id)
    await session.refresh(lease)
    if lease.status != "active":
        raise ConflictError(f"Only an active lease can be terminated; this one is {lease.status}")
    if on < lease.start_date:
        raise _invalid("date", "must be on or after the lease's startDate")
    lease.status = "terminated"
    lease.terminated_on = on
    if lease.end_date is None or on < lease.end_date:
        lease.end_date = on
    await _release_unit(session, unit, lease)
    await session.flush()
    return lease


async def end_expired(session: AsyncSession, organization_id: uuid.UUID | None, as_of: date) -> int:
    """Active leases whose end date has passed become `ended`; their units vacant."""
    stmt = select(Lease).where(Lease.status == "active", Lease.end_date < as_of)
    if organization_id is not None:
        stmt = stmt.where(Lease.organization_id == organization_id)
    leases = list((await session.execute(stmt.with_for_update())).scalars())
    for lease in leases:
        unit = await _lock_unit(session, lease.unit_id)
        lease.status = "ended"
        await _release_unit(session, unit, lease)
    await session.flush()
    return len(leases)


class LeaseRow(NamedTuple):
    """A lease as its list shows it (a row of `leases`)."""

    id: uuid.UUID
    unit_id: uuid.UUID
    property_id: uuid.UUID  # the unit's, read in the same statement
    status: str
    start_date: date
    end_date: date | None
    rent: int
    deposit: int
    due_day: int
    grace_days: int
    late_fee_kind: str | None
    late_fee_amount: int | None
    activated_at: datetime | None
    terminated_on: date | None
    charge_deposit: bool
    escalation_basis_points: int | None
    escalation_every_months: int | None
    renews_id: uuid.UUID | None
    version: int
    created_at: datetime
    updated_at: datetime


class _TenantLink(NamedTuple):
    lease_id: uuid.UUID
    tenant_id: uuid.UUID


LIST = ListQuery(
    Lease,
    LeaseRow,
    SORTS,
    default_sort="createdAt",
    filters={
        "status": lambda value: Lease.status == value,
        "unit_id": lambda value: Lease.unit_id == value,
        "tenant_id": lambda value: exists().where(
            LeaseTenant.lease_id == Lease.id, LeaseTenant.tenant_id == value
        ),
        "property_id": lambda value: Lease.unit_id.in_(
            select(Unit.id).where(Unit.property_id == value)
        ),
    },
    computed={
        "property_id": select(Unit.property_id).where(Unit.id == Lease.unit_id).scalar_subquery()
    },
)
TENANTS_OF = (
    select(LeaseTenant.lease_id, LeaseTenant.tenant_id)
    .where(LeaseTenant.lease_id.in_(bindparam("ids", expanding=True)))
    .order_by(LeaseTenant.lease_id, LeaseTenant.position)
)


async def list_leases(
    reader: Reader,
    organization_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None,
    sort: str | None,
    status: str | None,
    unit_id: uuid.UUID | None,
    tenant_id: uuid.UUID | None,
    property_id: uuid.UUID | None,
) -> Page[LeaseRow]:
    return await LIST.page(
        reader,
        organization_id,
        limit=limit,
        cursor=cursor,
        sort=sort,
        status=status or None,
        unit_id=unit_id,
        tenant_id=tenant_id,
        property_id=property_id,
    )


async def tenants_of_listed(
    reader: Reader, leases: Sequence[LeaseRow]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """The tenants of each listed lease, in their order on the lease, in one query."""
    tenants: dict[uuid.UUID, list[uuid.UUID]] = {lease.id: [] for lease in leases}
    if not leases:
        return tenants
    for link in await reader.rows(TENANTS_OF, {"ids": list(tenants)}, _TenantLink):
        tenants[link.lease_id].append(link.tenant_id)
    return tenants


async def rents_in_force(
    session: AsyncSession, leases: Iterable[Lease], on: date
) -> dict[uuid.UUID, int]:
    """Each lease's rent on `on`: its latest rent change effective by then, else its rent."""
    rents = {lease.id: lease.rent for lease in leases}
    if not rents:
        return rents
    stmt = (
        select(RentChange.lease_id, RentChange.rent)
        .where(RentChange.lease_id.in_(list(rents)), RentChange.effective_date <= on)
        .order_by(RentChange.lease_id, RentChange.effective_date)
    )
    # Ordered by date: for each lease the last change read wins.
    rows = await session.execute(stmt)
    rents.update((row.lease_id, row.rent) for row in rows)
    return rents
