"""Cached views are declared on their handlers and collected from the app's routes at start-up.

The edge answers a cached view before routing and guards, so the declaration must follow the
route wherever it is mounted, and a cached view with role guards must not start at all.
"""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar, Router, get
from litestar.exceptions import ImproperlyConfiguredException

from haven.auth.principal import MANAGERS, roles
from haven.cluster.gate import cached_views
from haven.dashboard import service
from haven.dashboard.routes import DashboardController
from haven.store.gate import cached_view


def test_the_dashboard_is_collected_where_it_is_mounted() -> None:
    """Mounting (or renaming) the route moves its fast path with it: no path string to keep."""
    app = Litestar(
        route_handlers=[Router(path="/api/v2/renamed", route_handlers=[DashboardController])]
    )
    views = cached_views(app)
    assert list(views) == ["/api/v2/renamed/dashboard"]
    assert views["/api/v2/renamed/dashboard"].name is service.cache_name


def _app_with(**options: Any) -> Litestar:
    @get("/view", **options)
    async def view() -> dict[str, str]:
        return {}

    return Litestar(route_handlers=[view])


def test_start_up_refuses_a_cached_view_with_roles() -> None:
    opt = {**cached_view(lambda: "view"), **roles(*MANAGERS)}
    with pytest.raises(ImproperlyConfiguredException, match="role guards"):
        cached_views(_app_with(opt=opt))


def test_start_up_refuses_a_cached_view_with_guards() -> None:
    def managers_only(*_args: Any) -> None:
        return None

    with pytest.raises(ImproperlyConfiguredException, match="role guards"):
        cached_views(_app_with(opt=cached_view(lambda: "view"), guards=[managers_only]))


def test_a_route_without_the_declaration_is_no_cached_view() -> None:
    assert cached_views(_app_with()) == {}
