"""Owner rules: owners, ownership share sets, payouts, and the data of a statement."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import NamedTuple

from msgspec import UNSET
from sqlalchemy import bindparam, exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from haven.db.pagination import ListQuery, Page, sort_keys
from haven.db.query import get_owned
from haven.db.reader import Reader
from haven.errors import ConflictError, FieldError, NotFoundError, ValidationError
from haven.models import (
    BillPayment,
    Lease,
    LedgerEntry,
    Owner,
    OwnerPayout,
    Property,
    PropertyOwnership,
    Unit,
)
from haven.owners import statement as stmt
from haven.owners.allocation import ShareSet, history_from_rows, make_set, set_on, share_problems
from haven.owners.schemas import OwnerIn, OwnerPatch, OwnershipIn, PayoutIn, PayoutReverseIn
from haven.uow import add_new

# -- owners


def _clean(text: str | None) -> str | None:
    return text.strip() or None if text is not None else None


async def create(session: AsyncSession, organization_id: uuid.UUID, data: OwnerIn) -> Owner:
    owner = Owner(
        organization_id=organization_id,
        kind=data.kind,
        name=data.name.strip(),
        email=data.email,
        phone=data.phone,
        address=_clean(data.address),
        payout_reference=data.payout_reference,
        notes=data.notes,
    )
    add_new(session, owner)  # written with the commit's statement (haven.uow.recorder)
    return owner


async def get(session: AsyncSession, organization_id: uuid.UUID, owner_id: uuid.UUID) -> Owner:
    return await get_owned(session, Owner, organization_id, owner_id)


async def update(session: AsyncSession, owner: Owner, data: OwnerPatch) -> Owner:
    if data.kind is not UNSET:
        owner.kind = data.kind
    if data.name is not UNSET:
        owner.name = data.name.strip()
    if data.email is not UNSET:
        owner.email = data.email
    if data.phone is not UNSET:
        owner.phone = data.phone
    if data.address is not UNSET:
        owner.address = _clean(data.address)
    if data.payout_reference is not UNSET:
        owner.payout_reference = data.payout_reference
    if data.notes is not UNSET:
        owner.notes = data.notes
    await session.flush()
    return owner


async def delete_owner(session: AsyncSession, owner: Owner) -> None:
    """Delete an owner who never held a share and was never paid (their history stays)."""
    held = await session.scalar(
        select(
            or_(
                exists().where(PropertyOwnership.owner_id == owner.id),
                exists().where(OwnerPayout.owner_id == owner.id),
            )
        )
    )
    if held:
        raise ConflictError("This owner holds or held shares of a property, or has payouts")
    await session.delete(owner)
    try:
        await session.flush()
    except IntegrityError:
        # A share or payout written in the same moment by another instance: the FK refused.
        raise ConflictError("This owner holds shares of a property or has payouts") from None


class OwnerRow(NamedTuple):
    id: uuid.UUID
    kind: str
    name: str
    email: str | None
    phone: str | None
    address: str | None
    payout_reference: str | None
    notes: str | None
    version: int
    created_at: datetime
    updated_at: datetime


LIST = ListQuery(
    Owner,
    OwnerRow,
    sort_keys({"name": (Owner.name, str), "createdAt": (Owner.created_at, datetime)}),
    default_sort="name",
    search=(Owner.name, Owner.email),
    filters={"kind": lambda value: Owner.kind == value},
)


async def list_owners(
    reader: Reader,
    organization_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None,
    sort: str | None,
    search: str | None,
    kind: str | None,
) -> Page[OwnerRow]:
    return await LIST.page(
        reader,
        organization_id,
        limit=limit,
        cursor=cursor,
        sort=sort,
        search=search,
        kind=kind or None,
    )


# -- ownership


async def history_of(session: AsyncSession, property_id: uuid.UUID) -> list[ShareSet]:
    rows = await session.execute(
        select(
            PropertyOwnership.effective_from,
            PropertyOwnership.owner_id,
            PropertyOwnership.basis_points,
        ).where(PropertyOwnership.property_id == property_id)
    )
    return history_from_rows([tuple(r) for r in rows])  # type: ignore[misc]


async def owner_names(
    session: AsyncSession, organization_id: uuid.UUID, ids: set[uuid.UUID]
) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    rows = await session.execute(
        select(Owner.id, Owner.name).where(
            Owner.organization_id == organization_id, Owner.id.in_(ids)
        )
    )
    return {row.id: row.name for row in rows}


async def put_ownership(
    session: AsyncSession, organization_id: uuid.UUID, prop: Property, data: OwnershipIn
) -> list[ShareSet]:
    """Put a share set in place from `effective_from` (replacing a set of that date)."""
    pairs = [(s.owner_id, s.basis_points) for s in data.shares]
    problems = share_problems(pairs)
    if problems:
        raise ValidationError(errors=[FieldError(f, m) for f, m in problems])
    known = await owner_names(session, organization_id, {o for o, _ in pairs})
    for i, (owner_id, _) in enumerate(pairs):
        if owner_id not in known:
            raise NotFoundError(f"No owner with id {owner_id} (shares[{i}].ownerId)")
    new = make_set(data.effective_from, pairs)
    # Lock the property: two sets put at once for the same date would mix their rows.
    await get_owned(session, Property, organization_id, prop.id, for_update=True)
    replaced = await session.execute(
        select(PropertyOwnership).where(
            PropertyOwnership.property_id == prop.id,
            PropertyOwnership.effective_from == data.effective_from,
        )
    )
    # Row by row through the session, so each removed share is audited and evented.
    for row in replaced.scalars().all():
        await session.delete(row)
    await session.flush()
    session.add_all(
        PropertyOwnership(
            organization_id=organization_id,
            property_id=prop.id,
            owner_id=share.owner_id,
            effective_from=new.effective_from,
            basis_points=share.basis_points,
        )
        for share in new.shares
    )
    await session.flush()
    return await history_of(session, prop.id)


class OwnedProperty(NamedTuple):
    property_id: uuid.UUID
    property_name: str
    basis_points: int
    effective_from: date


async def owned_properties(
    session: AsyncSession, organization_id: uuid.UUID, owner_id: uuid.UUID, on: date
) -> list[OwnedProperty]:
    """The properties the owner holds a share of on `on`, by name."""
    rows = await session.execute(
        select(Property.id, Property.name)
        .where(
            Property.organization_id == organization_id,
            Property.id.in_(
                select(PropertyOwnership.property_id).where(PropertyOwnership.owner_id == owner_id)
            ),
        )
        .order_by(Property.name, Property.id)
    )
    owned: list[OwnedProperty] = []
    for prop_id, name in rows.all():
        current = set_on(await history_of(session, prop_id), on)
        if current is not None and current.of(owner_id):
            owned.append(OwnedProperty(prop_id, name, current.of(owner_id), current.effective_from))
    return owned


# -- payouts


class _OwnerId(NamedTuple):
    id: uuid.UUID


_OWNER = select(Owner.id).where(
    Owner.id == bindparam("owner_id"), Owner.organization_id == bindparam("organization_id")
)


async def create_payout(
    session: AsyncSession,
    reader: Reader,
    organization_id: uuid.UUID,
    owner_id: uuid.UUID,
    data: PayoutIn,
    user_id: uuid.UUID | None,
) -> OwnerPayout:
    """A payout to the organization's owner (404 for another's), checked through `reader`
    (no lock: an owner deleted meanwhile fails the payout's foreign key at the commit, a
    409), then added with `add_new`: written with the commit's statement."""
    params = {"owner_id": owner_id, "organization_id": organization_id}
    if await reader.first(_OWNER, params, _OwnerId) is None:
        raise NotFoundError(f"No owner with id {owner_id}")
    payout = OwnerPayout(
        organization_id=organization_id,
        owner_id=owner_id,
        amount=data.amount,
        paid_on=data.paid_on,
        reference=data.reference,
        created_by_id=user_id,
    )
    add_new(session, payout)
    return payout


async def get_payout(session: AsyncSession, owner: Owner, payout_id: uuid.UUID) -> OwnerPayout:
    payout = await get_owned(session, OwnerPayout, owner.organization_id, payout_id)
    if payout.owner_id != owner.id:
        raise NotFoundError(f"No payout with id {payout_id} for this owner")
    return payout


async def reverse_payout(
    session: AsyncSession,
    payout: OwnerPayout,
    data: PayoutReverseIn | None,
    today: date,
    user_id: uuid.UUID | None,
) -> OwnerPayout:
    """Undo a payout with a new one of the negated amount; a payout is reversed at most once."""
    if payout.reverses_id is not None:
        raise ConflictError("A reversal cannot be reversed; record a new payout instead")
    already = await session.execute(
        select(OwnerPayout.id).where(OwnerPayout.reverses_id == payout.id)
    )
    if already.first() is not None:
        raise ConflictError("This payout has already been reversed")
    reversal = OwnerPayout(
        organization_id=payout.organization_id,
        owner_id=payout.owner_id,
        amount=-payout.amount,
        paid_on=(data.paid_on if data and data.paid_on else None) or today,
        reference=(data.reference if data else None) or payout.reference,
        reverses_id=payout.id,
        created_by_id=user_id,
    )
    try:
        async with session.begin_nested():
            session.add(reversal)
    except IntegrityError:
        raise ConflictError("This payout has already been reversed") from None
    return reversal


class PayoutRow(NamedTuple):
    id: uuid.UUID
    owner_id: uuid.UUID
    amount: int
    paid_on: date
    reference: str | None
    reverses_id: uuid.UUID | None
    created_at: datetime


PAYOUTS = ListQuery(
    OwnerPayout,
    PayoutRow,
    sort_keys({"createdAt": (OwnerPayout.created_at, datetime)}),
    default_sort="-createdAt",
    filters={"owner": lambda value: OwnerPayout.owner_id == value},
)


async def list_payouts(
    reader: Reader, owner: Owner, *, limit: int, cursor: str | None, sort: str | None
) -> Page[PayoutRow]:
    return await PAYOUTS.page(
        reader, owner.organization_id, limit=limit, cursor=cursor, sort=sort, owner=owner.id
    )


# -- statements


async def books_for(
    session: AsyncSession, organization_id: uuid.UUID, owner_id: uuid.UUID, until: date
) -> list[stmt.Book]:
    """The books of every property the owner ever held a share of, movements up to `until`."""
    props = (
        (
            await session.execute(
                select(Property)
                .where(
                    Property.organization_id == organization_id,
                    Property.id.in_(
                        select(PropertyOwnership.property_id).where(
                            PropertyOwnership.owner_id == owner_id
                        )
                    ),
                )
                .order_by(Property.name, Property.id)
            )
        )
        .scalars()
        .all()
    )
    if not props:
        return []
    ids = [p.id for p in props]
    original = aliased(LedgerEntry)
    receipts: dict[uuid.UUID, list[stmt.Receipt]] = {i: [] for i in ids}
    rows = await session.execute(
        select(Unit.property_id, Unit.id, Unit.label, LedgerEntry.date, LedgerEntry.amount)
        .join(Lease, Lease.id == LedgerEntry.lease_id)
        .join(Unit, Unit.id == Lease.unit_id)
        .outerjoin(original, original.id == LedgerEntry.reverses_id)
        .where(
            LedgerEntry.organization_id == organization_id,
            Unit.property_id.in_(ids),
            LedgerEntry.date <= until,
            or_(
                LedgerEntry.type == "payment",
                (LedgerEntry.type == "reversal") & (original.type == "payment"),
            ),
        )
    )
    for prop_id, unit_id, label, day, amount in rows:
        # Payments lower the balance (negative amounts): collected is the opposite sign.
        receipts[prop_id].append(stmt.Receipt(day, -int(amount), unit_id, label))
    expenses: dict[uuid.UUID, list[stmt.Expense]] = {i: [] for i in ids}
    paid = await session.execute(
        select(BillPayment.property_id, BillPayment.paid_on, BillPayment.amount).where(
            BillPayment.organization_id == organization_id,
            BillPayment.property_id.in_(ids),
            BillPayment.paid_on <= until,
        )
    )
    for prop_id, day, amount in paid:
        expenses[prop_id].append(stmt.Expense(day, int(amount)))
    return [
        stmt.Book(
            property_id=p.id,
            name=p.name,
            fee_kind=p.management_fee_kind,
            fee_amount=p.management_fee_amount,
            history=await history_of(session, p.id),
            receipts=receipts[p.id],
            expenses=expenses[p.id],
        )
        for p in props
    ]


async def payouts_until(session: AsyncSession, owner: Owner, until: date) -> list[tuple[date, int]]:
    rows = await session.execute(
        select(OwnerPayout.paid_on, OwnerPayout.amount).where(
            OwnerPayout.organization_id == owner.organization_id,
            OwnerPayout.owner_id == owner.id,
            OwnerPayout.paid_on <= until,
        )
    )
    return [(day, int(amount)) for day, amount in rows]


async def statement_of(session: AsyncSession, owner: Owner, month: int) -> stmt.Statement:
    _first, last = stmt.month_bounds(month)
    books = await books_for(session, owner.organization_id, owner.id, last)
    return stmt.statement(owner.id, month, books, await payouts_until(session, owner, last))
