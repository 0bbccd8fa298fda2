"""Bill rules: references stay in the organization and the property, payments never overpay,
every movement of money is an append-only `bill_payments` row kept in step with the bill.

A bill is `open` until its payments add up to its amount (`paid`); a reversal reopens it.
It can be changed (PATCH) or voided only while nothing is paid. Recording a bill that names a
work order which is `done` moves that work order to `invoiced`; voiding the last live bill of
an invoiced work order moves it back to `done`.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import NamedTuple

from msgspec import UNSET
from sqlalchemy import bindparam, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from haven.bills.schemas import BillIn, BillPatch, BillPaymentIn
from haven.db.pagination import ListQuery, Page, sort_keys
from haven.db.query import get_owned
from haven.db.reader import Reader
from haven.errors import ConflictError, FieldError, NotFoundError, ValidationError
from haven.models import Bill, BillPayment, Property, Vendor, WorkOrder
from haven.uow import add_new


def _invalid(field: str, message: str) -> ValidationError:
    return ValidationError(errors=[FieldError(field, message)])


def _check_dates(issued_on: date, due_on: date) -> None:
    if due_on < issued_on:
        raise _invalid("dueOn", "is before issuedOn")


class _References(NamedTuple):
    """Whether the vendor and the property a bill names are the organization's."""

    vendor: bool
    property: bool


REFERENCES = select(
    exists()
    .where(
        Vendor.id == bindparam("vendor_id"),
        Vendor.organization_id == bindparam("organization_id"),
    )
    .label("vendor"),
    exists()
    .where(
        Property.id == bindparam("property_id"),
        Property.organization_id == bindparam("organization_id"),
    )
    .label("property"),
)


async def create(
    session: AsyncSession, reader: Reader, organization_id: uuid.UUID, data: BillIn
) -> Bill:
    """A bill of the organization's vendor for its property: both checked in one read
    through `reader` (no lock: either deleted meanwhile fails the bill's foreign key at the
    commit, a 409). Without a work order the bill is added with `add_new`, written with the
    commit's statement (haven.uow.recorder). A work order it names is locked in the
    transaction (FOR UPDATE): its status is checked (a cancelled one is not billed) and a
    done one moves to invoiced, which a concurrent transition or PATCH must not interleave
    with."""
    _check_dates(data.issued_on, data.due_on)
    params = {
        "organization_id": organization_id,
        "vendor_id": data.vendor_id,
        "property_id": data.property_id,
    }
    (found,) = await reader.rows(REFERENCES, params, _References)  # no FROM: one row
    if not found.vendor:
        raise _invalid("vendorId", "is not a vendor of your organization")
    if not found.property:
        raise _invalid("propertyId", "is not a property of your organization")
    bill = Bill(
        organization_id=organization_id,
        vendor_id=data.vendor_id,
        property_id=data.property_id,
        work_order_id=data.work_order_id,
        amount=data.amount,
        issued_on=data.issued_on,
        due_on=data.due_on,
        description=data.description,
        reference=data.reference,
        status="open",
        amount_paid=0,
    )
    if data.work_order_id is None:
        add_new(session, bill)
        return bill
    order = (
        await session.execute(
            select(WorkOrder)
            .where(
                WorkOrder.id == data.work_order_id,
                WorkOrder.organization_id == organization_id,
            )
            .with_for_update()
        )
    ).scalar_one_or_none()
    if order is None or order.property_id != data.property_id:
        raise _invalid("workOrderId", "is not a work order of that property")
    if order.vendor_id is not None and order.vendor_id != data.vendor_id:
        raise _invalid("workOrderId", "is assigned to another vendor")
    if order.status == "cancelled":
        raise ConflictError("The work order is cancelled; it cannot be billed")
    session.add(bill)
    if order.status == "done":
        order.status = "invoiced"
    await session.flush()
    return bill


async def get(
    session: AsyncSession,
    organization_id: uuid.UUID,
    bill_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> Bill:
    return await get_owned(session, Bill, organization_id, bill_id, for_update=for_update)


def _refuse_unless_unpaid(bill: Bill, action: str) -> None:
    if bill.status == "void":
        raise ConflictError(f"The bill is void; it cannot be {action}")
    if bill.amount_paid != 0:
        raise ConflictError(
            f"The bill has payments ({bill.amount_paid} paid); it cannot be {action}"
            " until they are reversed"
        )


async def update(session: AsyncSession, bill: Bill, data: BillPatch) -> Bill:
    _refuse_unless_unpaid(bill, "changed")
    issued_on = bill.issued_on if data.issued_on is UNSET else data.issued_on
    due_on = bill.due_on if data.due_on is UNSET else data.due_on
    assert isinstance(issued_on, date)
    assert isinstance(due_on, date)
    _check_dates(issued_on, due_on)
    bill.issued_on = issued_on
    bill.due_on = due_on
    if data.amount is not UNSET:
        bill.amount = data.amount
    if data.description is not UNSET:
        bill.description = data.description
    if data.reference is not UNSET:
        bill.reference = data.reference
    await session.flush()
    return bill


async def void(session: AsyncSession, bill: Bill) -> Bill:
    _refuse_unless_unpaid(bill, "voided")
    bill.status = "void"
    if bill.work_order_id is not None:
        order = await session.get(WorkOrder, bill.work_order_id, with_for_update=True)
        if order is not None and order.status == "invoiced":
            others = await session.execute(
                select(Bill.id)
                .where(Bill.work_order_id == order.id, Bill.status != "void", Bill.id != bill.id)
                .limit(1)
            )
            if others.first() is None:
                order.status = "done"
    await session.flush()
    return bill


async def refuse_delete_with_bills(session: AsyncSession, property_id: uuid.UUID) -> None:
    """409 when bills name the property: they are its expense history (and keep it)."""
    found = await session.execute(select(Bill.id).where(Bill.property_id == property_id).limit(1))
    if found.first() is not None:
        raise ConflictError("This property has vendor bills; it cannot be deleted")


def _settle(bill: Bill, delta: int) -> None:
    bill.amount_paid += delta
    bill.status = "paid" if bill.amount_paid == bill.amount else "open"


async def pay(
    session: AsyncSession, bill: Bill, data: BillPaymentIn, user_id: uuid.UUID | None, today: date
) -> BillPayment:
    """Record a payment of at most what is still owed; 409 on a void or settled bill."""
    if bill.status == "void":
        raise ConflictError("The bill is void; it cannot be paid")
    remaining = bill.amount - bill.amount_paid
    if remaining <= 0:
        raise ConflictError("The bill is paid in full")
    if data.amount > remaining:
        raise ConflictError(
            f"The payment ({data.amount}) is more than the bill's balance ({remaining})"
        )
    paid_on = data.paid_on or today
    if paid_on > today:
        raise _invalid("paidOn", "is in the future")
    payment = BillPayment(
        organization_id=bill.organization_id,
        bill_id=bill.id,
        property_id=bill.property_id,
        amount=data.amount,
        paid_on=paid_on,
        method=data.method,
        reference=data.reference,
        created_by_id=user_id,
    )
    session.add(payment)
    _settle(bill, data.amount)
    await session.flush()
    return payment


async def get_payment(session: AsyncSession, bill: Bill, payment_id: uuid.UUID) -> BillPayment:
    payment = (
        await session.execute(
            select(BillPayment).where(
                BillPayment.id == payment_id,
                BillPayment.bill_id == bill.id,
                BillPayment.organization_id == bill.organization_id,
            )
        )
    ).scalar_one_or_none()
    if payment is None:
        raise NotFoundError(f"No payment with id {payment_id} on this bill")
    return payment


async def reverse(
    session: AsyncSession,
    bill: Bill,
    payment: BillPayment,
    user_id: uuid.UUID | None,
    today: date,
) -> BillPayment:
    """Undo a payment with a negated row dated today; a payment is reversed at most once."""
    if payment.reverses_id is not None:
        raise ConflictError("A reversal cannot be reversed; record a new payment instead")
    already = await session.execute(
        select(BillPayment.id).where(BillPayment.reverses_id == payment.id)
    )
    if already.first() is not None:
        raise ConflictError("This payment has already been reversed")
    reversal = BillPayment(
        organization_id=bill.organization_id,
        bill_id=bill.id,
        property_id=bill.property_id,
        amount=-payment.amount,
        paid_on=today,
        method=payment.method,
        reference=payment.reference,
        reverses_id=payment.id,
        created_by_id=user_id,
    )
    try:
        async with session.begin_nested():
            session.add(reversal)
    except IntegrityError:
        # Another instance reversed it in the same moment: the unique key on reverses_id won.
        raise ConflictError("This payment has already been reversed") from None
    _settle(bill, -payment.amount)
    await session.flush()
    return reversal


class BillRow(NamedTuple):
    """A bill as its list shows it (a row of `bills`)."""

    id: uuid.UUID
    vendor_id: uuid.UUID
    property_id: uuid.UUID
    work_order_id: uuid.UUID | None
    amount: int
    amount_paid: int
    issued_on: date
    due_on: date
    description: str | None
    reference: str | None
    status: str
    version: int
    created_at: datetime
    updated_at: datetime


class PaymentRow(NamedTuple):
    """A payment as its list shows it (a row of `bill_payments`)."""

    id: uuid.UUID
    bill_id: uuid.UUID
    property_id: uuid.UUID
    amount: int
    paid_on: date
    method: str | None
    reference: str | None
    reverses_id: uuid.UUID | None
    created_by_id: uuid.UUID | None
    created_at: datetime


LIST = ListQuery(
    Bill,
    BillRow,
    sort_keys(
        {
            "dueOn": (Bill.due_on, date),
            "createdAt": (Bill.created_at, datetime),
            "issuedOn": (Bill.issued_on, date),
        }
    ),
    default_sort="dueOn",
    search=(Bill.description, Bill.reference),
    filters={
        "status": lambda value: Bill.status == value,
        "vendor_id": lambda value: Bill.vendor_id == value,
        "property_id": lambda value: Bill.property_id == value,
        "work_order_id": lambda value: Bill.work_order_id == value,
        "due_before": lambda value: Bill.due_on < value,
        "overdue_on": lambda value: (Bill.status == "open") & (Bill.due_on < value),
        "not_overdue_on": lambda value: (Bill.status != "open") | (Bill.due_on >= value),
    },
)
PAYMENTS = ListQuery(
    BillPayment,
    PaymentRow,
    sort_keys({"createdAt": (BillPayment.created_at, datetime)}),
    default_sort="createdAt",
    filters={"bill_id": lambda value: BillPayment.bill_id == value},
)


async def list_bills(
    reader: Reader,
    organization_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None,
    sort: str | None,
    search: str | None,
    status: str | None = None,
    vendor_id: uuid.UUID | None = None,
    property_id: uuid.UUID | None = None,
    work_order_id: uuid.UUID | None = None,
    due_before: date | None = None,
    overdue_on: date | None = None,
    not_overdue_on: date | None = None,
) -> Page[BillRow]:
    return await LIST.page(
        reader,
        organization_id,
        limit=limit,
        cursor=cursor,
        sort=sort,
        search=search,
        status=status or None,
        vendor_id=vendor_id,
        property_id=property_id,
        work_order_id=work_order_id,
        due_before=due_before,
        overdue_on=overdue_on,
        not_overdue_on=not_overdue_on,
    )


async def list_payments(
    reader: Reader, bill: Bill, *, limit: int, cursor: str | None, sort: str | None
) -> Page[PaymentRow]:
    return await PAYMENTS.page(
        reader, bill.organization_id, limit=limit, cursor=cursor, sort=sort, bill_id=bill.id
    )
