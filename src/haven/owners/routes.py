"""/api/v1/owners and /api/v1/properties/{id}/ownership."""

from __future__ import annotations

import re
import uuid
from datetime import date
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.params import Parameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from haven.auth.principal import MANAGERS, Principal, roles
from haven.db.reader import Reader
from haven.errors import FieldError, NotAcceptableError, ValidationError
from haven.models import Owner, OwnerPayout
from haven.organizations.service import get_organization, today_in
from haven.owners import render, service
from haven.owners import statement as stmt
from haven.owners.allocation import ShareSet, set_on
from haven.owners.schemas import (
    OwnedPropertiesOut,
    OwnedPropertyOut,
    OwnerIn,
    OwnerKind,
    OwnerOut,
    OwnerPatch,
    OwnershipIn,
    OwnershipOut,
    OwnershipSetOut,
    PayoutIn,
    PayoutOut,
    PayoutReverseIn,
    ShareOut,
    StatementOut,
)
from haven.owners.service import OwnerRow, PayoutRow
from haven.properties import service as properties
from haven.schemas import ListOf
from haven.web import NO_STORE, ListParams, answers, check_version, csv_response, with_etag

JSON = "application/json"
CSV = "text/csv"
PDF = "application/pdf"
# ASCII digits only: `\d` would accept other scripts' digits.
MONTH = re.compile(r"^([0-9]{4})-([0-9]{2})$")


def owner_out(o: Owner | OwnerRow) -> OwnerOut:
    return OwnerOut(
        id=o.id,
        kind=o.kind,
        name=o.name,
        email=o.email,
        phone=o.phone,
        address=o.address,
        payout_reference=o.payout_reference,
        notes=o.notes,
        version=o.version,
        created_at=o.created_at,
        updated_at=o.updated_at,
    )


def payout_out(p: OwnerPayout | PayoutRow) -> PayoutOut:
    return PayoutOut(
        id=p.id,
        owner_id=p.owner_id,
        amount=p.amount,
        paid_on=p.paid_on,
        reference=p.reference,
        reverses_id=p.reverses_id,
        created_at=p.created_at,
    )


def parse_month(text: str, today: date) -> int:
    """`YYYY-MM` as a month index; 422 when malformed or not begun yet."""
    match = MONTH.match(text)
    if match is None or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1900:
        raise ValidationError(errors=[FieldError("month", "expected YYYY-MM, e.g. 2026-01")])
    index = int(match.group(1)) * 12 + int(match.group(2)) - 1
    if index > stmt.month_index(today):
        raise ValidationError(errors=[FieldError("month", "this month has not begun yet")])
    return index


class OwnersController(Controller):
    path = "/owners"
    tags = ["owners"]

    @get("/")
    async def list_owners(
        self,
        reader: Reader,
        principal: Principal,
        page: ListParams,
        kind: OwnerKind | None = None,
    ) -> Response[ListOf[OwnerOut]]:
        """Owners; search matches name and email; sort by `name` or `createdAt`."""
        result = await service.list_owners(
            reader,
            principal.organization_id,
            limit=page.limit,
            cursor=page.cursor,
            sort=page.sort,
            search=page.search,
            kind=kind,
        )
        body = ListOf([owner_out(o) for o in result.items], result.next_cursor)
        return Response(body, headers=NO_STORE)

    @post("/", status_code=HTTP_201_CREATED, opt=roles(*MANAGERS))
    async def create(
        self, request: Request[Any, Any, Any], db: AsyncSession, principal: Principal, data: OwnerIn
    ) -> Response[OwnerOut]:
        """Add a rental owner (a person or a company)."""
        owner = await service.create(db, principal.organization_id, data)
        return with_etag(request, owner_out(owner), owner.version, HTTP_201_CREATED)

    @get("/{owner_id:uuid}")
    async def show(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        owner_id: uuid.UUID,
    ) -> Response[OwnerOut]:
        """One owner."""
        owner = await service.get(db, principal.organization_id, owner_id)
        return with_etag(request, owner_out(owner), owner.version)

    @patch("/{owner_id:uuid}", opt=roles(*MANAGERS))
    async def update(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        owner_id: uuid.UUID,
        data: OwnerPatch,
    ) -> Response[OwnerOut]:
        """Change an owner; If-Match with its ETag refuses a stale write (412)."""
        owner = await service.get(db, principal.organization_id, owner_id)
        check_version(owner, request.headers.get("if-match"))
        owner = await service.update(db, owner, data)
        return with_etag(request, owner_out(owner), owner.version)

    @delete("/{owner_id:uuid}", status_code=HTTP_204_NO_CONTENT, opt=roles(*MANAGERS))
    async def remove(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        owner_id: uuid.UUID,
    ) -> None:
        """Delete an owner; 409 once they have held a share of a property or been paid."""
        owner = await service.get(db, principal.organization_id, owner_id)
        check_version(owner, request.headers.get("if-match"))
        await service.delete_owner(db, owner)

    @get("/{owner_id:uuid}/properties")
    async def properties(
        self,
        db: AsyncSession,
        principal: Principal,
        owner_id: uuid.UUID,
        on: Annotated[date | None, Parameter(description="Date (default: today)")] = None,
    ) -> Response[OwnedPropertiesOut]:
        """The properties the owner holds a share of on a date (default today), by name."""
        owner = await service.get(db, principal.organization_id, owner_id)
        day = on or today_in(await get_organization(db, principal.organization_id))
        items = await service.owned_properties(db, principal.organization_id, owner.id, day)
        body = OwnedPropertiesOut(
            owner_id=owner.id,
            on=day,
            items=[
                OwnedPropertyOut(
                    property_id=i.property_id,
                    property_name=i.property_name,
                    basis_points=i.basis_points,
                    effective_from=i.effective_from,
                )
                for i in items
            ],
        )
        return Response(body, headers=NO_STORE)

    @post("/{owner_id:uuid}/payouts", status_code=HTTP_201_CREATED, opt=roles(*MANAGERS))
    async def create_payout(
        self,
        db: AsyncSession,
        reader: Reader,
        principal: Principal,
        owner_id: uuid.UUID,
        data: PayoutIn,
    ) -> Response[PayoutOut]:
        """Record money paid out to the owner; send Idempotency-Key so a retry pays once."""
        payout = await service.create_payout(
            db, reader, principal.organization_id, owner_id, data, principal.user_id
        )
        return Response(payout_out(payout), status_code=HTTP_201_CREATED, headers=NO_STORE)

    @get("/{owner_id:uuid}/payouts")
    async def list_payouts(
        self,
        db: AsyncSession,
        reader: Reader,
        principal: Principal,
        owner_id: uuid.UUID,
        page: ListParams,
    ) -> Response[ListOf[PayoutOut]]:
        """The owner's payouts and their reversals, newest first (sort `createdAt`)."""
        owner = await service.get(db, principal.organization_id, owner_id)
        result = await service.list_payouts(
            reader, owner, limit=page.limit, cursor=page.cursor, sort=page.sort
        )
        body = ListOf([payout_out(p) for p in result.items], result.next_cursor)
        return Response(body, headers=NO_STORE)

    @post(
        "/{owner_id:uuid}/payouts/{payout_id:uuid}/reverse",
        status_code=HTTP_201_CREATED,
        opt=roles(*MANAGERS),
    )
    async def reverse_payout(
        self,
        db: AsyncSession,
        principal: Principal,
        owner_id: uuid.UUID,
        payout_id: uuid.UUID,
        data: PayoutReverseIn | None = None,
    ) -> Response[PayoutOut]:
        """Undo a payout with a negated one (default dated today); 409 when already reversed."""
        owner = await service.get(db, principal.organization_id, owner_id)
        payout = await service.get_payout(db, owner, payout_id)
        today = today_in(await get_organization(db, principal.organization_id))
        reversal = await service.reverse_payout(db, payout, data, today, principal.user_id)
        return Response(payout_out(reversal), status_code=HTTP_201_CREATED, headers=NO_STORE)

    @get(
        "/{owner_id:uuid}/statements/{month:str}",
        responses={
            200: answers(
                StatementOut,
                description="JSON; CSV for Accept: text/csv; PDF for Accept: application/pdf",
            )
        },
    )
    async def statement(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        owner_id: uuid.UUID,
        month: Annotated[str, Parameter(description="YYYY-MM", max_length=20)],
    ) -> Response[Any]:
        """The owner's statement for a month: opening balance, rent collected per property and
        unit, expenses, management fee, net, payouts and closing balance (docs/owners.md)."""
        accept = request.headers.get("accept")
        wanted = request.accept.best_match([JSON, CSV, PDF]) if accept else JSON
        if wanted is None:
            raise NotAcceptableError("Available as application/json, text/csv or application/pdf")
        owner = await service.get(db, principal.organization_id, owner_id)
        org = await get_organization(db, principal.organization_id)
        index = parse_month(month, today_in(org))
        body = render.statement_out(
            owner, await service.statement_of(db, owner, index), org.currency
        )
        filename = f"owner-statement-{body.month}"
        if wanted == CSV:
            return csv_response(render.CSV_HEADER, render.csv_rows(body), f"{filename}.csv")
        if wanted == PDF:
            return Response(
                render.pdf_bytes(body, org.name),
                media_type=PDF,
                headers={
                    **NO_STORE,
                    "Content-Disposition": f'attachment; filename="{filename}.pdf"',
                },
            )
        return Response(body, headers=NO_STORE)


def set_out(s: ShareSet, names: dict[uuid.UUID, str]) -> OwnershipSetOut:
    return OwnershipSetOut(
        effective_from=s.effective_from,
        shares=[
            ShareOut(
                owner_id=x.owner_id,
                owner_name=names.get(x.owner_id, ""),
                basis_points=x.basis_points,
            )
            for x in s.shares
        ],
    )


async def ownership_out(
    db: AsyncSession,
    organization_id: uuid.UUID,
    property_id: uuid.UUID,
    history: list[ShareSet],
    on: date,
) -> OwnershipOut:
    names = await service.owner_names(
        db, organization_id, {x.owner_id for s in history for x in s.shares}
    )
    current = set_on(history, on)
    return OwnershipOut(
        property_id=property_id,
        on=on,
        current=set_out(current, names) if current else None,
        history=[set_out(s, names) for s in history],
    )


class PropertyOwnershipController(Controller):
    path = "/properties/{property_id:uuid}/ownership"
    tags = ["owners"]

    @get("/")
    async def show(
        self,
        db: AsyncSession,
        principal: Principal,
        property_id: uuid.UUID,
        on: Annotated[date | None, Parameter(description="Date (default: today)")] = None,
    ) -> Response[OwnershipOut]:
        """Who owns the property: the share set in effect on a date (default today) and
        every set, oldest first."""
        prop = await properties.get(db, principal.organization_id, property_id)
        day = on or today_in(await get_organization(db, principal.organization_id))
        history = await service.history_of(db, prop.id)
        body = await ownership_out(db, principal.organization_id, prop.id, history, day)
        return Response(body, headers=NO_STORE)

    @put("/", opt=roles(*MANAGERS))
    async def replace(
        self, db: AsyncSession, principal: Principal, property_id: uuid.UUID, data: OwnershipIn
    ) -> Response[OwnershipOut]:
        """Put a share set in place from `effectiveFrom` on (a set of the same date is
        replaced; earlier and later sets stay): distinct owners, 1..10000 basis points each,
        summing to exactly 10000, else 422 and nothing changes."""
        prop = await properties.get(db, principal.organization_id, property_id)
        history = await service.put_ownership(db, principal.organization_id, prop, data)
        body = await ownership_out(
            db, principal.organization_id, prop.id, history, data.effective_from
        )
        return Response(body, headers=NO_STORE)
