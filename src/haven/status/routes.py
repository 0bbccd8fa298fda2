"""GET /status: the operator page shell; its data comes from the load-balancer endpoints.

The shell holds no data. The page signs in with the operator token (checked
by the operator-only POST /api/v1/load-balancer/health-check on every
refresh) and keeps it in the tab's session storage. Without OPERATOR_TOKEN
configured the page answers 404, like every operator endpoint.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Response, get
from litestar.static_files import create_static_files_router

from haven.config import Settings
from haven.errors import NotFoundError

STATIC = Path(__file__).parent / "static"
_PAGE = (STATIC / "status.html").read_bytes()


@get("/status", include_in_schema=False, sync_to_thread=False)
def status_page(settings: Settings) -> Response[bytes]:
    """The live cluster status page (operators)."""
    if not settings.operator_token:
        raise NotFoundError("The status page is off: OPERATOR_TOKEN is not configured")
    return Response(
        _PAGE,
        media_type="text/html; charset=utf-8",
        headers={"Cache-Control": "no-store"},
    )


status_assets = create_static_files_router(
    path="/status/assets", directories=[STATIC], include_in_schema=False
)
