"""/api/v1/dashboard."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from sqlalchemy.ext.asyncio import AsyncSession

from haven.auth.principal import Principal
from haven.dashboard import service
from haven.dashboard.schemas import DashboardOut
from haven.services import Services
from haven.store.gate import cached_view, prefetch_of
from haven.web import NO_STORE, answers


class DashboardController(Controller):
    path = "/dashboard"
    tags = ["insight"]

    @get(
        "/",
        responses={200: answers(DashboardOut, description="The dashboard")},
        # The edge answers a cached read itself (haven.cluster.gate); no role guards here.
        opt=cached_view(service.cache_name),
    )
    async def dashboard(
        self, request: Request[Any, Any, Any], principal: Principal, services: Services
    ) -> Response[bytes]:
        """Portfolio figures; cached per organization, fresh after any write on any instance."""

        def read_session() -> AsyncSession:
            return services.sessionmaker(bind=services.read_engine)  # only on a cache miss

        prefetch = prefetch_of(request.scope)
        if principal.session.oid != str(principal.organization_id):
            prefetch = None  # the gate derived its keys from the raw oid: only use a canonical one
        body = await service.dashboard_json(
            read_session, services.redis, services.redis_keys, principal.organization_id, prefetch
        )
        return Response(body, media_type="application/json", headers=NO_STORE)
