"""/api/v1/reports."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from litestar.openapi.datastructures import ResponseSpec
from sqlalchemy.ext.asyncio import AsyncSession

from haven.auth.principal import Principal
from haven.errors import NotAcceptableError
from haven.reports import service
from haven.reports.schemas import AgingReportOut, RentRollOut
from haven.web import NO_STORE, csv_response, wants_csv

JSON = "application/json"
CSV = "text/csv"


class ReportsController(Controller):
    path = "/reports"
    tags = ["insight"]

    @get(
        "/rent-roll",
        responses={200: ResponseSpec(RentRollOut, description="JSON, or CSV for Accept: text/csv")},
    )
    async def rent_roll(
        self, request: Request[Any, Any, Any], db: AsyncSession, principal: Principal
    ) -> Response[Any]:
        """Every unit with its active lease, rent and balance; CSV with `Accept: text/csv`."""
        accept = request.headers.get("accept")
        wanted = request.accept.best_match([JSON, CSV]) if accept else JSON
        if wanted is None:
            raise NotAcceptableError("This report is available as application/json or text/csv")
        report = await service.rent_roll(db, principal.organization_id)
        if wanted == CSV:
            headers = {
                **NO_STORE,
                "Content-Disposition": 'attachment; filename="rent-roll.csv"',
            }
            return Response(
                service.rent_roll_csv(report),
                media_type="text/csv; charset=utf-8",
                headers=headers,
            )
        return Response(report, headers=NO_STORE)

    @get(
        "/aging",
        responses={
            200: ResponseSpec(AgingReportOut, description="JSON, or CSV for Accept: text/csv")
        },
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
