"""/api/v1/dashboard."""

from __future__ import annotations

from litestar import Controller, Response, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from sqlalchemy.ext.asyncio import AsyncSession

from haven.auth.principal import Principal
from haven.dashboard import service
from haven.dashboard.schemas import DashboardOut
from haven.web import NO_STORE


class DashboardController(Controller):
    path = "/dashboard"
    tags = ["insight"]

    @get("/", responses={200: ResponseSpec(DashboardOut, description="The dashboard")})
    async def dashboard(
        self, db: AsyncSession, principal: Principal, state: State
    ) -> Response[bytes]:
        """Portfolio figures; cached per organization, fresh after any write on any instance."""
        body = await service.dashboard_json(
            db, state.redis, state.redis_keys, principal.organization_id
        )
        return Response(body, media_type="application/json", headers=NO_STORE)
