"""/api/v1/bills, their payments and reversals."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, patch, post
from litestar.params import Parameter
from litestar.status_codes import HTTP_201_CREATED
from sqlalchemy.ext.asyncio import AsyncSession

from haven.auth.principal import MANAGERS, STAFF, Principal, roles
from haven.bills import service
from haven.bills.schemas import (
    BillIn,
    BillOut,
    BillPatch,
    BillPaymentIn,
    BillPaymentOut,
    BillPaymentResult,
    Status,
)
from haven.bills.service import BillRow, PaymentRow
from haven.db.reader import Reader
from haven.models import Bill, BillPayment
from haven.organizations.service import get_organization, today_in
from haven.schemas import ListOf
from haven.web import NO_STORE, ListParams, check_version, with_etag


def bill_out(b: Bill | BillRow) -> BillOut:
    return BillOut(
        id=b.id,
        vendor_id=b.vendor_id,
        property_id=b.property_id,
        work_order_id=b.work_order_id,
        amount=b.amount,
        amount_paid=b.amount_paid,
        balance=0 if b.status == "void" else b.amount - b.amount_paid,
        issued_on=b.issued_on,
        due_on=b.due_on,
        description=b.description,
        reference=b.reference,
        status=b.status,
        version=b.version,
        created_at=b.created_at,
        updated_at=b.updated_at,
    )


def payment_out(p: BillPayment | PaymentRow) -> BillPaymentOut:
    return BillPaymentOut(
        id=p.id,
        bill_id=p.bill_id,
        property_id=p.property_id,
        amount=p.amount,
        paid_on=p.paid_on,
        method=p.method,
        reference=p.reference,
        reverses=p.reverses_id,
        created_by_id=p.created_by_id,
        created_at=p.created_at,
    )


class BillsController(Controller):
    path = "/bills"
    tags = ["bills"]

    @get("/")
    async def list_bills(
        self,
        db: AsyncSession,
        reader: Reader,
        principal: Principal,
        page: ListParams,
        status: Status | None = None,
        vendor_id: Annotated[uuid.UUID | None, Parameter(query="vendorId")] = None,
        property_id: Annotated[uuid.UUID | None, Parameter(query="propertyId")] = None,
        work_order_id: Annotated[uuid.UUID | None, Parameter(query="workOrderId")] = None,
        due_before: Annotated[date | None, Parameter(query="dueBefore")] = None,
        overdue: bool | None = None,
    ) -> Response[ListOf[BillOut]]:
        """Bills by due date (or `sort=createdAt`, `issuedOn`); `overdue=true`: open, past due."""
        today = None
        if overdue is not None:
            today = today_in(await get_organization(db, principal.organization_id))
        result = await service.list_bills(
            reader,
            principal.organization_id,
            limit=page.limit,
            cursor=page.cursor,
            sort=page.sort,
            search=page.search,
            status=status,
            vendor_id=vendor_id,
            property_id=property_id,
            work_order_id=work_order_id,
            due_before=due_before,
            overdue_on=today if overdue is True else None,
            not_overdue_on=today if overdue is False else None,
        )
        body = ListOf([bill_out(b) for b in result.items], result.next_cursor)
        return Response(body, headers=NO_STORE)

    @post("/", status_code=HTTP_201_CREATED, opt=roles(*STAFF))
    async def create(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        reader: Reader,
        principal: Principal,
        data: BillIn,
    ) -> Response[BillOut]:
        """Record a vendor's bill for a property (a done work order it names becomes invoiced)."""
        bill = await service.create(db, reader, principal.organization_id, data)
        return with_etag(request, bill_out(bill), bill.version, HTTP_201_CREATED)

    @get("/{bill_id:uuid}")
    async def show(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        bill_id: uuid.UUID,
    ) -> Response[BillOut]:
        """One bill, with what is paid and what is still owed."""
        bill = await service.get(db, principal.organization_id, bill_id)
        return with_etag(request, bill_out(bill), bill.version)

    @patch("/{bill_id:uuid}", opt=roles(*STAFF))
    async def update(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        bill_id: uuid.UUID,
        data: BillPatch,
    ) -> Response[BillOut]:
        """Change a bill while nothing is paid (409 otherwise); If-Match refuses a stale write."""
        bill = await service.get(db, principal.organization_id, bill_id, for_update=True)
        check_version(bill, request.headers.get("if-match"))
        bill = await service.update(db, bill, data)
        return with_etag(request, bill_out(bill), bill.version)

    @post("/{bill_id:uuid}/void", status_code=200, opt=roles(*MANAGERS))
    async def void(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        bill_id: uuid.UUID,
    ) -> Response[BillOut]:
        """Void a bill nothing is paid on (409 otherwise); If-Match refuses a stale write."""
        bill = await service.get(db, principal.organization_id, bill_id, for_update=True)
        check_version(bill, request.headers.get("if-match"))
        bill = await service.void(db, bill)
        return with_etag(request, bill_out(bill), bill.version)

    @get("/{bill_id:uuid}/payments")
    async def list_payments(
        self,
        db: AsyncSession,
        reader: Reader,
        principal: Principal,
        bill_id: uuid.UUID,
        page: ListParams,
    ) -> Response[ListOf[BillPaymentOut]]:
        """A bill's payments and reversals, oldest first (`sort=-createdAt` for newest first)."""
        bill = await service.get(db, principal.organization_id, bill_id)
        result = await service.list_payments(
            reader, bill, limit=page.limit, cursor=page.cursor, sort=page.sort
        )
        body = ListOf([payment_out(p) for p in result.items], result.next_cursor)
        return Response(body, headers=NO_STORE)

    @post("/{bill_id:uuid}/payments", status_code=HTTP_201_CREATED, opt=roles(*MANAGERS))
    async def pay(
        self,
        db: AsyncSession,
        principal: Principal,
        bill_id: uuid.UUID,
        data: BillPaymentIn,
    ) -> Response[BillPaymentResult]:
        """Pay (part of) a bill; more than its balance, or a void bill, is a 409."""
        today = today_in(await get_organization(db, principal.organization_id))
        bill = await service.get(db, principal.organization_id, bill_id, for_update=True)
        payment = await service.pay(db, bill, data, principal.user_id, today)
        body = BillPaymentResult(payment=payment_out(payment), bill=bill_out(bill))
        return Response(body, status_code=HTTP_201_CREATED, headers=NO_STORE)

    @post(
        "/{bill_id:uuid}/payments/{payment_id:uuid}/reverse",
        status_code=HTTP_201_CREATED,
        opt=roles(*MANAGERS),
    )
    async def reverse(
        self,
        db: AsyncSession,
        principal: Principal,
        bill_id: uuid.UUID,
        payment_id: uuid.UUID,
    ) -> Response[BillPaymentResult]:
        """Reverse a payment with a negated one dated today (it reopens the bill); once only."""
        today = today_in(await get_organization(db, principal.organization_id))
        bill = await service.get(db, principal.organization_id, bill_id, for_update=True)
        payment = await service.get_payment(db, bill, payment_id)
        reversal = await service.reverse(db, bill, payment, principal.user_id, today)
        body = BillPaymentResult(payment=payment_out(reversal), bill=bill_out(bill))
        return Response(body, status_code=HTTP_201_CREATED, headers=NO_STORE)
