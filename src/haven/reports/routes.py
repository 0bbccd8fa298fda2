"""/api/v1/reports."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get
from litestar.params import Parameter
from litestar.response import Stream
from sqlalchemy.ext.asyncio import AsyncSession

from haven.auth.principal import Principal
from haven.errors import NotAcceptableError
from haven.organizations.service import get_organization, today_in
from haven.reports import property_pl, service
from haven.reports.schemas import AgingReportOut, PropertyPlOut, RentRollOut
from haven.services import Services
from haven.web import NO_STORE, answers, csv_response, wants_csv

JSON = "application/json"
CSV = "text/csv"


class ReportsController(Controller):
    path = "/reports"
    tags = ["insight"]

    @get(
        "/rent-roll",
        responses={200: answers(RentRollOut, description="JSON, or CSV for Accept: text/csv")},
    )
    async def rent_roll(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        services: Services,
    ) -> Response[Any] | Stream:
        """Every unit with its active lease, rent and balance; CSV with `Accept: text/csv`."""
        accept = request.headers.get("accept")
        wanted = request.accept.best_match([JSON, CSV]) if accept else JSON
        if wanted is None:
            raise NotAcceptableError("This report is available as application/json or text/csv")
        if wanted == CSV:
            # Streamed: a batch of properties at a time, read in its own session (the
            # request's ends with the handler), so the body is never whole in memory.
            today = today_in(await get_organization(db, principal.organization_id))

            def read_session() -> AsyncSession:
                return services.sessionmaker(bind=services.read_engine)

            return Stream(
                service.rent_roll_csv_stream(read_session, principal.organization_id, today),
                media_type="text/csv; charset=utf-8",
                headers={
                    **NO_STORE,
                    "Content-Disposition": 'attachment; filename="rent-roll.csv"',
                },
            )
        report = await service.rent_roll(db, principal.organization_id)
        return Response(report, headers=NO_STORE)

    @get(
        "/aging",
        responses={200: answers(AgingReportOut, description="JSON, or CSV for Accept: text/csv")},
    )
    async def aging(
        self, request: Request[Any, Any, Any], db: AsyncSession, principal: Principal
    ) -> Response[Any]:
        """Arrears by lease and aging bucket (FIFO, as on the ledger); CSV for Accept: text/csv."""
        csv = wants_csv(request)
        report = await service.aging_report(db, principal.organization_id)
        if csv:
            return csv_response(*service.aging_csv(report), "aging.csv")
        return Response(report, headers=NO_STORE)

    @get(
        "/property-pl",
        responses={
            200: answers(
                PropertyPlOut, description="JSON, or CSV for Accept: text/csv or format=csv"
            )
        },
    )
    async def property_pl(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        start: Annotated[date, Parameter(query="from", description="First day, YYYY-MM-DD")],
        end: Annotated[date, Parameter(query="to", description="Last day (included)")],
        property_id: Annotated[uuid.UUID | None, Parameter(query="propertyId")] = None,
        format_: Annotated[
            Literal["json", "csv"] | None,
            Parameter(query="format", description="csv: the same as Accept: text/csv"),
        ] = None,
    ) -> Response[Any]:
        """Income and expenses per property over [from, to], cash basis; CSV for text/csv.

        `income`: tenant payments dated in the period less payment reversals posted in it
        (rent ledger). `expenses`: bill payments with `paidOn` in the period, reversals
        included, also by the vendor's trade. `net` = income - expenses. Amounts in minor units.
        """
        csv = wants_csv(request) if format_ is None else format_ == "csv"
        report = await property_pl.property_pl(
            db, principal.organization_id, start, end, property_id
        )
        if csv:
            headers = {
                **NO_STORE,
                "Content-Disposition": 'attachment; filename="property-pl.csv"',
            }
            return Response(
                property_pl.property_pl_csv(report),
                media_type="text/csv; charset=utf-8",
                headers=headers,
            )
        return Response(report, headers=NO_STORE)
