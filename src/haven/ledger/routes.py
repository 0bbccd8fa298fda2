"""/api/v1/leases/{id}/ledger, charges, credits, payments, and /api/v1/ledger-entries."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.status_codes import HTTP_201_CREATED
from sqlalchemy.ext.asyncio import AsyncSession

from haven.auth.principal import ANYONE, MANAGERS, RESIDENT, Principal, roles
from haven.db.reader import Reader
from haven.errors import FieldError, MalformedRequestError, ValidationError
from haven.leases import service as leases
from haven.ledger import service
from haven.ledger.repository import EntryRow
from haven.ledger.schemas import (
    AgingOut,
    ChargeIn,
    CreditIn,
    DepositStatementOut,
    DispositionIn,
    EntryOut,
    LedgerOut,
    PaymentIn,
    ReverseIn,
)
from haven.models import LedgerEntry
from haven.organizations.service import get_organization
from haven.web import NO_STORE, answers, csv_response, wants_csv

CREATED_HEADERS = NO_STORE


def entry_out(entry: LedgerEntry | EntryRow, balance_after: int) -> EntryOut:
    return EntryOut(
        id=entry.id,
        type=entry.type,
        kind=entry.kind,
        amount=entry.amount,
        date=entry.date,
        description=entry.description,
        reference=entry.reference,
        reverses=entry.reverses_id,
        balance_after=balance_after,
        created_at=entry.created_at,
    )


def _created(entry: LedgerEntry, balance_after: int) -> Response[EntryOut]:
    return Response(
        entry_out(entry, balance_after), status_code=HTTP_201_CREATED, headers=CREATED_HEADERS
    )


class LeaseLedgerController(Controller):
    path = "/leases/{lease_id:uuid}"
    tags = ["ledger"]

    @get("/ledger", opt=roles(*ANYONE, RESIDENT))
    async def ledger(
        self, reader: Reader, principal: Principal, lease_id: uuid.UUID
    ) -> Response[LedgerOut]:
        """The lease's ledger: balance (what the tenants owe), aging, entries with balanceAfter.

        Entry amounts are signed as they move the balance: charges positive, payments and
        credits negative, a reversal the negation of the entry it names. Aging allocates
        payments and credits to the oldest unpaid charges first (FIFO) and buckets what is
        left by days past each charge's due date (`current` = not yet overdue). The buckets
        add up to the balance; a credit balance shows as a negative `current`.
        """
        if principal.resident_tenant_id is not None:  # a resident: only a lease of theirs
            await leases.require_tenant_lease(
                reader, principal.organization_id, lease_id, principal.resident_tenant_id
            )
        view = await service.view(reader, principal.organization_id, lease_id)
        body = LedgerOut(
            lease_id=lease_id,
            currency=view.currency,
            balance=view.summary.balance,
            deposit_held=view.deposit_held,
            aging=AgingOut(**view.summary.aging.as_dict()),
            entries=[entry_out(e, bal) for e, bal in view.entries],
        )
        return Response(body, headers=NO_STORE)

    @post("/charges", opt=roles(*MANAGERS), status_code=HTTP_201_CREATED)
    async def charge(
        self,
        db: AsyncSession,
        reader: Reader,
        principal: Principal,
        lease_id: uuid.UUID,
        data: ChargeIn,
    ) -> Response[EntryOut]:
        """Charge the tenants (rent, deposit, late_fee, utility, other), due on dueDate."""
        org_id, user_id = principal.organization_id, principal.user_id
        return _created(*await service.post_charge(db, org_id, lease_id, data, user_id, reader))

    @post("/credits", opt=roles(*MANAGERS), status_code=HTTP_201_CREATED)
    async def credit(
        self,
        db: AsyncSession,
        reader: Reader,
        principal: Principal,
        lease_id: uuid.UUID,
        data: CreditIn,
    ) -> Response[EntryOut]:
        """Credit the tenants (a concession or write-off); lowers the balance."""
        org_id, user_id = principal.organization_id, principal.user_id
        return _created(*await service.post_credit(db, org_id, lease_id, data, user_id, reader))

    @post("/payments", opt=roles(*MANAGERS), status_code=HTTP_201_CREATED)
    async def payment(
        self,
        db: AsyncSession,
        reader: Reader,
        principal: Principal,
        lease_id: uuid.UUID,
        data: PaymentIn,
    ) -> Response[EntryOut]:
        """Record a payment received; send Idempotency-Key so a retry never records it twice."""
        org_id, user_id = principal.organization_id, principal.user_id
        return _created(*await service.post_payment(db, org_id, lease_id, data, user_id, reader))

    @post(
        "/deposit-disposition",
        opt=roles(*MANAGERS),
        status_code=HTTP_201_CREATED,
        responses={
            201: answers(DepositStatementOut, description="JSON, or CSV for Accept: text/csv")
        },
    )
    async def deposit_disposition(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        lease_id: uuid.UUID,
        data: DispositionIn,
    ) -> Response[Any]:
        """Settle the deposit at move-out: itemized deductions, the rest refunded; a statement."""
        csv = wants_csv(request)
        lease = await leases.get(db, principal.organization_id, lease_id, for_update=True)
        org = await get_organization(db, principal.organization_id)
        await service.dispose_deposit(db, org, lease, data, principal.user_id)
        return _statement(await service.deposit_statement(db, org, lease), csv, HTTP_201_CREATED)

    @get(
        "/deposit-statement",
        opt=roles(*ANYONE, RESIDENT),
        responses={
            200: answers(DepositStatementOut, description="JSON, or CSV for Accept: text/csv")
        },
    )
    async def deposit_statement(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        lease_id: uuid.UUID,
    ) -> Response[Any]:
        """The deposit's statement for the tenants: charged, paid, deductions, refunds, held."""
        csv = wants_csv(request)
        lease = await leases.get(
            db, principal.organization_id, lease_id, tenant_id=principal.resident_tenant_id
        )
        org = await get_organization(db, principal.organization_id)
        return _statement(await service.deposit_statement(db, org, lease), csv)


def _statement(body: DepositStatementOut, csv: bool, status: int = 200) -> Response[Any]:
    if not csv:
        return Response(body, status_code=status, headers=NO_STORE)
    rows: list[list[object]] = [
        [line.date, line.item, line.description, line.amount, line.entry_id or ""]
        for line in body.lines
    ]
    rows.append(["", "deposit_held", "Deposit held", body.deposit_held, ""])
    rows.append(["", "balance", "Balance owed", body.balance, ""])
    response = csv_response(
        ["date", "item", "description", f"amount_{body.currency.lower()}_minor", "entry_id"],
        rows,
        f"deposit-statement-{body.lease_id}.csv",
    )
    response.status_code = status
    return response


def _optional_body(raw: bytes) -> ReverseIn | None:
    if not raw.strip():
        return None
    try:
        return msgspec.json.decode(raw, type=ReverseIn)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `")
        field = where.rstrip("`").removeprefix("$.").removeprefix("$") or "body"
        raise ValidationError(errors=[FieldError(field, message)]) from None
    except (msgspec.DecodeError, UnicodeDecodeError):  # invalid UTF-8 in a string: the latter
        raise MalformedRequestError("The body is not valid JSON (UTF-8)") from None


class LedgerEntriesController(Controller):
    path = "/ledger-entries"
    tags = ["ledger"]

    @post("/{entry_id:uuid}/reverse", opt=roles(*MANAGERS), status_code=HTTP_201_CREATED)
    async def reverse(
        self,
        db: AsyncSession,
        principal: Principal,
        request: Request[Any, Any, Any],
        entry_id: uuid.UUID,
    ) -> Response[EntryOut]:
        """Reverse an entry (the ledger is append-only); 409 if already reversed or a reversal.

        The body is optional: `{"description": "..."}`.
        """
        data = _optional_body(await request.body())
        entry = await service.get_entry(db, principal.organization_id, entry_id)
        org = await get_organization(db, principal.organization_id)
        return _created(*await service.reverse(db, org, entry, data, principal.user_id))


__all__ = ["LeaseLedgerController", "LedgerEntriesController", "entry_out"]
