"""/api/v1/leases."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from haven.auth.principal import ANYONE, MANAGERS, RESIDENT, Principal, roles
from haven.billing import service as billing
from haven.db.reader import Reader
from haven.leases import service, terms
from haven.leases.schemas import (
    EscalationOut,
    LateFeeOut,
    LeaseIn,
    LeaseOut,
    LeasePatch,
    LeaseStatus,
    RecurringChargeIn,
    RecurringChargeOut,
    RecurringChargePatch,
    RenewIn,
    RentChangeIn,
    RentChangeOut,
    TerminateIn,
)
from haven.leases.service import LeaseRow
from haven.models import Lease, RecurringCharge, RentChange
from haven.organizations.service import get_organization
from haven.schemas import ListOf
from haven.web import NO_STORE, ListParams, check_version, with_etag


def lease_out(
    lease: Lease | LeaseRow, tenant_ids: list[uuid.UUID], property_id: uuid.UUID
) -> LeaseOut:
    fee = None
    if lease.late_fee_kind is not None and lease.late_fee_amount is not None:
        fee = LateFeeOut(kind=lease.late_fee_kind, amount=lease.late_fee_amount)
    escalation = None
    if lease.escalation_basis_points is not None and lease.escalation_every_months is not None:
        escalation = EscalationOut(
            percent_basis_points=lease.escalation_basis_points,
            every_months=lease.escalation_every_months,
        )
    return LeaseOut(
        id=lease.id,
        unit_id=lease.unit_id,
        property_id=property_id,
        tenant_ids=tenant_ids,
        start_date=lease.start_date,
        end_date=lease.end_date,
        rent=lease.rent,
        deposit=lease.deposit,
        due_day=lease.due_day,
        grace_days=lease.grace_days,
        late_fee=fee,
        status=lease.status,
        activated_at=lease.activated_at,
        terminated_on=lease.terminated_on,
        charge_deposit=lease.charge_deposit,
        escalation=escalation,
        renews=lease.renews_id,
        version=lease.version,
        created_at=lease.created_at,
        updated_at=lease.updated_at,
    )


async def render(db: AsyncSession, lease: Lease) -> LeaseOut:
    tenants = await service.tenants_of(db, [lease.id])
    props = await service.properties_of(db, [lease.unit_id])
    return lease_out(lease, tenants[lease.id], props[lease.unit_id])


class LeasesController(Controller):
    path = "/leases"
    tags = ["leases"]

    @get("/", opt=roles(*ANYONE, RESIDENT))
    async def list_leases(
        self,
        reader: Reader,
        principal: Principal,
        page: ListParams,
        status: LeaseStatus | None = None,
        unit_id: Annotated[uuid.UUID | None, Parameter(query="unitId")] = None,
        tenant_id: Annotated[uuid.UUID | None, Parameter(query="tenantId")] = None,
        property_id: Annotated[uuid.UUID | None, Parameter(query="propertyId")] = None,
    ) -> Response[ListOf[LeaseOut]]:
        """Leases; filter by status, unitId, tenantId, propertyId; sort `createdAt`, `startDate`.

        A resident sees only the leases they are a tenant on."""
        resident = principal.resident_tenant_id
        if resident is not None and tenant_id not in (None, resident):
            return Response(ListOf([], None), headers=NO_STORE)
        tenant_id = resident or tenant_id
        result = await service.list_leases(
            reader,
            principal.organization_id,
            limit=page.limit,
            cursor=page.cursor,
            sort=page.sort,
            status=status,
            unit_id=unit_id,
            tenant_id=tenant_id,
            property_id=property_id,
        )
        tenants = await service.tenants_of_listed(reader, result.items)
        items = [lease_out(x, tenants[x.id], x.property_id) for x in result.items]
        return Response(ListOf(items, result.next_cursor), headers=NO_STORE)

    @post("/", status_code=HTTP_201_CREATED, opt=roles(*MANAGERS))
    async def create(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        reader: Reader,
        principal: Principal,
        data: LeaseIn,
    ) -> Response[LeaseOut]:
        """Draft a lease: unit, one or more tenants, dates (no endDate = month-to-month), terms."""
        new = await service.create(db, reader, principal.organization_id, data)
        out = lease_out(new.lease, new.tenant_ids, new.property_id)  # what it wrote: no read
        return with_etag(request, out, new.lease.version, HTTP_201_CREATED)

    @get("/{lease_id:uuid}", opt=roles(*ANYONE, RESIDENT))
    async def show(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        lease_id: uuid.UUID,
    ) -> Response[LeaseOut]:
        """One lease (a resident: one they are a tenant on)."""
        lease = await service.get(
            db, principal.organization_id, lease_id, tenant_id=principal.resident_tenant_id
        )
        return with_etag(request, await render(db, lease), lease.version)

    @patch("/{lease_id:uuid}", opt=roles(*MANAGERS))
    async def update(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        lease_id: uuid.UUID,
        data: LeasePatch,
    ) -> Response[LeaseOut]:
        """Change a lease (drafts: anything; active: endDate, graceDays, lateFee); If-Match."""
        lease = await service.get(db, principal.organization_id, lease_id)
        check_version(lease, request.headers.get("if-match"))
        lease = await service.update(db, lease, data)
        if lease.status == "active":  # an earlier end credits the months billed past it
            org = await get_organization(db, principal.organization_id)
            await billing.reconcile(db, org, lease)
        return with_etag(request, await render(db, lease), lease.version)

    @post("/{lease_id:uuid}/activate", status_code=HTTP_200_OK, opt=roles(*MANAGERS))
    async def activate(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        lease_id: uuid.UUID,
    ) -> Response[LeaseOut]:
        """draft -> active, unit occupied; 409 lease-overlap if another active lease overlaps."""
        lease = await service.get(db, principal.organization_id, lease_id)
        lease = await service.activate(db, lease)
        return with_etag(request, await render(db, lease), lease.version)

    @post("/{lease_id:uuid}/terminate", status_code=HTTP_200_OK, opt=roles(*MANAGERS))
    async def terminate(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        lease_id: uuid.UUID,
        data: TerminateIn,
    ) -> Response[LeaseOut]:
        """active -> terminated on `date`; the unit becomes vacant; rent billed past it credited."""
        lease = await service.get(db, principal.organization_id, lease_id)
        lease = await service.terminate(db, lease, data.date)
        org = await get_organization(db, principal.organization_id)
        await billing.reconcile(db, org, lease)
        return with_etag(request, await render(db, lease), lease.version)

    @post("/{lease_id:uuid}/renew", status_code=HTTP_201_CREATED, opt=roles(*MANAGERS))
    async def renew(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        lease_id: uuid.UUID,
        data: RenewIn,
    ) -> Response[LeaseOut]:
        """Draft the successor lease from the day after this one ends; it activates then."""
        lease = await service.get(db, principal.organization_id, lease_id)
        successor = await terms.renew(db, lease, data)
        return with_etag(request, await render(db, successor), successor.version, HTTP_201_CREATED)

    @get("/{lease_id:uuid}/rent-changes")
    async def list_rent_changes(
        self, db: AsyncSession, principal: Principal, lease_id: uuid.UUID
    ) -> Response[list[RentChangeOut]]:
        """The lease's rent changes (manual and escalation-generated), by effective date."""
        lease = await service.get(db, principal.organization_id, lease_id)
        rows = await terms.rent_changes(db, lease)
        return Response([rent_change_out(r) for r in rows], headers=NO_STORE)

    @post("/{lease_id:uuid}/rent-changes", status_code=HTTP_201_CREATED, opt=roles(*MANAGERS))
    async def add_rent_change(
        self, db: AsyncSession, principal: Principal, lease_id: uuid.UUID, data: RentChangeIn
    ) -> Response[RentChangeOut]:
        """The rent from `effectiveDate` on (within the lease); billing splits the month by days."""
        lease = await service.get(db, principal.organization_id, lease_id, for_update=True)
        change = await terms.add_rent_change(db, lease, data)
        if lease.status == "active":
            org = await get_organization(db, principal.organization_id)
            await billing.reconcile(db, org, lease)
        return Response(rent_change_out(change), status_code=HTTP_201_CREATED, headers=NO_STORE)

    @delete(
        "/{lease_id:uuid}/rent-changes/{change_id:uuid}",
        status_code=HTTP_204_NO_CONTENT,
        opt=roles(*MANAGERS),
    )
    async def remove_rent_change(
        self, db: AsyncSession, principal: Principal, lease_id: uuid.UUID, change_id: uuid.UUID
    ) -> None:
        """Delete a rent change that is not yet in force (409 for one already in force)."""
        lease = await service.get(db, principal.organization_id, lease_id, for_update=True)
        org = await get_organization(db, principal.organization_id)
        await terms.remove_rent_change(db, org, lease, change_id)
        if lease.status == "active":  # this month may already be billed with the change in it
            await billing.reconcile(db, org, lease)

    @get("/{lease_id:uuid}/recurring-charges")
    async def list_recurring_charges(
        self, db: AsyncSession, principal: Principal, lease_id: uuid.UUID
    ) -> Response[list[RecurringChargeOut]]:
        """The lease's recurring charges (parking, pet, utility ...), billed with the rent."""
        lease = await service.get(db, principal.organization_id, lease_id)
        rows = await terms.recurring_charges(db, lease)
        return Response([recurring_out(r) for r in rows], headers=NO_STORE)

    @post("/{lease_id:uuid}/recurring-charges", status_code=HTTP_201_CREATED, opt=roles(*MANAGERS))
    async def add_recurring_charge(
        self,
        db: AsyncSession,
        reader: Reader,
        principal: Principal,
        lease_id: uuid.UUID,
        data: RecurringChargeIn,
    ) -> Response[RecurringChargeOut]:
        """A monthly charge from startDate to endDate (within the lease), prorated like rent."""
        lease = await service.get_guarded(db, reader, principal.organization_id, lease_id)
        charge = await terms.add_recurring_charge(db, lease, data)
        return Response(recurring_out(charge), status_code=HTTP_201_CREATED, headers=NO_STORE)

    @patch("/{lease_id:uuid}/recurring-charges/{charge_id:uuid}", opt=roles(*MANAGERS))
    async def end_recurring_charge(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        lease_id: uuid.UUID,
        charge_id: uuid.UUID,
        data: RecurringChargePatch,
    ) -> Response[RecurringChargeOut]:
        """Set a recurring charge's endDate (If-Match); months billed past it are credited."""
        lease = await service.get(db, principal.organization_id, lease_id, for_update=True)
        charge = await terms.recurring_charge(db, lease, charge_id)
        check_version(charge, request.headers.get("if-match"))
        charge = await terms.end_recurring_charge(db, lease, charge, data)
        if lease.status == "active":
            org = await get_organization(db, principal.organization_id)
            await billing.reconcile(db, org, lease)
        return with_etag(request, recurring_out(charge), charge.version)

    @delete(
        "/{lease_id:uuid}/recurring-charges/{charge_id:uuid}",
        status_code=HTTP_204_NO_CONTENT,
        opt=roles(*MANAGERS),
    )
    async def remove_recurring_charge(
        self, db: AsyncSession, principal: Principal, lease_id: uuid.UUID, charge_id: uuid.UUID
    ) -> None:
        """Delete a recurring charge that was never billed (409 once billed)."""
        lease = await service.get(db, principal.organization_id, lease_id, for_update=True)
        await terms.remove_recurring_charge(db, lease, charge_id)


def rent_change_out(row: RentChange) -> RentChangeOut:
    return RentChangeOut(
        id=row.id,
        lease_id=row.lease_id,
        effective_date=row.effective_date,
        rent=row.rent,
        source=row.source,
        created_at=row.created_at,
    )


def recurring_out(row: RecurringCharge) -> RecurringChargeOut:
    return RecurringChargeOut(
        id=row.id,
        lease_id=row.lease_id,
        kind=row.kind,
        description=row.description,
        amount=row.amount,
        start_date=row.start_date,
        end_date=row.end_date,
        version=row.version,
        created_at=row.created_at,
    )
