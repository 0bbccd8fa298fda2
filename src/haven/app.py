"""create_app(settings) -> Litestar. The lifespan builds the services (engine, Redis client...)."""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from litestar import Litestar, Request, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.routes import HTTPRoute
from litestar.static_files import create_static_files_router

from haven.accounts.routes import AuthController
from haven.apikeys.routes import ApiKeysController
from haven.apikeys.routes import document as document_api_keys
from haven.audit.routes import AuditController
from haven.auth.apikeys.verify import drain as drain_api_key_writes
from haven.auth.principal import provide_principal
from haven.billing.routes import BillingController
from haven.bills.routes import BillsController
from haven.cluster.health import routes as cluster_routes
from haven.cluster.metrics import count_statements
from haven.cluster.middleware import install as install_cluster
from haven.cluster.runtime import Cluster
from haven.config import Settings
from haven.dashboard.routes import DashboardController
from haven.db.reader import Reader
from haven.errors import UnsupportedMediaTypeError, exception_handler
from haven.events.routes import EventsController
from haven.events.routes import document as document_events
from haven.leases.routes import LeasesController
from haven.ledger.routes import LeaseLedgerController, LedgerEntriesController
from haven.logging import configure_logging
from haven.maintenance.routes import MaintenanceController
from haven.openapi import document_contract, document_problems
from haven.organizations.routes import MembersController, OrganizationController
from haven.owners.routes import OwnersController, PropertyOwnershipController
from haven.properties.routes import PropertiesController
from haven.reports.routes import ReportsController
from haven.residents.routes import InvitationsController, TenantAccessController
from haven.services import Services, attach, open_services, services_of
from haven.status.routes import status_assets, status_page
from haven.store import idempotency
from haven.tenants.routes import TenantsController
from haven.units.routes import PropertyUnitsController, UnitsController
from haven.uow import create_sessionmaker
from haven.uow.http import provide_db, write_boundary
from haven.vendors.routes import VendorsController
from haven.web import check_json_body, provide_list_params
from haven.webhooks.routes import WebhooksController
from haven.webhooks.worker import DeliveryWorker, WebhookMetrics
from haven.work_orders.routes import RequestWorkOrdersController, WorkOrdersController

MAX_BODY_BYTES = 1024 * 1024
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

API_HANDLERS: list[Any] = [
    AuthController,
    OrganizationController,
    MembersController,
    ApiKeysController,
    PropertiesController,
    PropertyUnitsController,
    UnitsController,
    TenantsController,
    MaintenanceController,
    AuditController,
    EventsController,
    LeasesController,
    LeaseLedgerController,
    LedgerEntriesController,
    BillingController,
    WebhooksController,
    DashboardController,
    ReportsController,
    OwnersController,
    PropertyOwnershipController,
    TenantAccessController,
    InvitationsController,
    VendorsController,
    RequestWorkOrdersController,
    WorkOrdersController,
    BillsController,
]


def _swagger_assets() -> Path:
    # Found, not imported: importing swagger_ui loads Jinja2 (its own page templates), which
    # an instance never uses; only the package's static files are served.
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or spec.origin is None:
        raise RuntimeError("swagger-ui-py is not installed (a dependency of Haven)")
    return Path(spec.origin).parent / "static"


async def require_json_body(request: Request[Any, Any, Any]) -> None:
    """415 for a body that is not JSON, before anything tries to parse it."""
    if request.method not in BODY_METHODS:
        return
    length = request.headers.get("content-length")
    chunked = "chunked" in request.headers.get("transfer-encoding", "")
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    has_body = chunked or (length is not None and length.strip() not in ("", "0"))
    if has_body and not (
        media == "application/json"
        or (media.startswith("application/") and media.endswith("+json"))
    ):
        raise UnsupportedMediaTypeError(
            f"Send the body as application/json (got {media or 'no Content-Type'})"
        )
    await check_json_body(request)


@get("/openapi.json", include_in_schema=False, media_type="application/json", sync_to_thread=False)
def openapi_json(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The OpenAPI document."""
    return request.app.openapi_schema.to_schema()


def fix_options_allow(app: Litestar) -> None:
    """Make every automatic OPTIONS answer list all of its path's methods in `Allow`.

    Litestar builds a path's OPTIONS handler with the first route it sees; when a later
    handler on the same path (another method) merges in, the route is rebuilt but the old
    OPTIONS handler still reads the first route's methods, so `OPTIONS /members/{id}` said
    `Allow: GET, OPTIONS` while PATCH and DELETE exist too (found by schemathesis).
    """
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if handler.http_methods != {"OPTIONS"}:
                continue
            for cell in getattr(handler.fn, "__closure__", None) or ():
                owner = cell.cell_contents
                if isinstance(owner, HTTPRoute) and owner is not route:
                    owner.methods = route.methods


def resolve_dependencies_in_order(app: Litestar) -> None:
    """Resolve each route's dependencies one after another, never in a task group.

    Litestar resolves the dependencies of one level of the graph concurrently: an anyio
    task group and a task per dependency, on every request (4-5 % of a list page's CPU,
    bench/PROFILE.md). Haven's dependencies do not wait on I/O side by side: the reader
    and the page are built from the request alone, and the principal (from what the gate
    read) is one level below the write's unit of work, which needs it. Each level is split
    into single-dependency levels, which Litestar awaits directly, in the graph's order
    (by name within a level).
    """
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for _handler, model in route.route_handler_map.values():
            model.dependency_batches = [
                {dependency}
                for batch in model.dependency_batches
                for dependency in sorted(batch, key=lambda d: str(d.key))
            ]


def create_app(
    settings: Settings, *, redis_url: str | None = None, cluster: Cluster | None = None
) -> Litestar:
    """Build the Haven ASGI app. `redis_url` overrides settings (the embedded Valkey's URL);
    `cluster` is the load-balancer layer `haven serve` drains on a signal (else a new one)."""
    configure_logging(settings)
    url = redis_url or settings.redis_url
    if url is None:
        raise RuntimeError("create_app needs a Redis URL: set REDIS_URL or use `haven serve`")
    cluster = cluster or Cluster(settings)
    webhook_metrics = WebhookMetrics(cluster.metrics.registry)
    cluster.metrics.sections["webhooks"] = webhook_metrics.summary

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncGenerator[None]:
        async with open_services(settings, url, create_sessionmaker) as services:
            count_statements(services.engine, cluster.metrics)  # haven_db_statements_total
            attach(app, services)
            # Every instance delivers webhooks: its own connections, never the request pool's.
            worker = DeliveryWorker(settings, webhook_metrics)
            if settings.webhook_worker:
                await worker.start()
            try:
                async with cluster.running(
                    services.redis, services.redis_keys, services.engine, services.sessions
                ):
                    yield
            finally:
                await worker.stop()
                await drain_api_key_writes()  # last_used_at writes in flight (bounded)

    def provide_settings() -> Settings:
        return settings

    def provide_cluster() -> Cluster:
        return cluster

    # `services` and `reader` name the app itself, not the request's `app`: a dependency with
    # no parameters is called as it is, without converting its arguments through a signature
    # model on every request.
    def provide_services() -> Services:
        return services_of(app)

    def provide_reader() -> Reader:
        """List pages, assembled views and a write's check reads (no session, no
        transaction of the request's)."""
        return services_of(app).reader

    api = Router(
        path="/api/v1",
        route_handlers=API_HANDLERS,
        dependencies={
            "principal": Provide(provide_principal),
            "db": Provide(provide_db),  # a write's unit of work (haven.uow)
            "page": Provide(provide_list_params),
        },
        # Commits a write's unit of work before its answer leaves (haven.uow.http).
        middleware=[write_boundary],
        # Every API answer is per-user: no shared cache may keep it (handlers may override).
        cache_control=CacheControlHeader(private=True, no_store=True),
    )
    docs_assets = create_static_files_router(
        path="/docs/assets", directories=[_swagger_assets()], include_in_schema=False
    )
    swagger = SwaggerRenderPlugin(
        path="/",
        js_url="/docs/assets/swagger-ui-bundle.js",
        css_url="/docs/assets/swagger-ui.css",
        standalone_preset_js_url="/docs/assets/swagger-ui-standalone-preset.js",
        # Litestar's default favicon comes from a CDN; every docs asset is served locally.
        favicon="<link rel='icon' type='image/png' href='/docs/assets/favicon-32x32.png'>",
    )
    app = Litestar(
        route_handlers=[
            api,
            *cluster_routes(settings),
            openapi_json,
            docs_assets,
            status_page,
            status_assets,
        ],
        dependencies={
            "settings": Provide(provide_settings, sync_to_thread=False),
            "cluster": Provide(provide_cluster, sync_to_thread=False),
            "services": Provide(provide_services, sync_to_thread=False),
            "reader": Provide(provide_reader, sync_to_thread=False),
        },
        lifespan=[lifespan],
        before_request=require_json_body,
        exception_handlers={
            Exception: exception_handler,
            idempotency.IdempotentReplay: idempotency.replay_handler,
        },
        openapi_config=OpenAPIConfig(
            title="Haven API",
            version=settings.version,
            path="/docs",
            render_plugins=[swagger],
            use_handler_docstrings=True,
        ),
        request_max_body_size=MAX_BODY_BYTES,
        debug=False,
    )
    document_problems(app.openapi_schema)
    idempotency.document(app.openapi_schema)
    document_events(app.openapi_schema)
    document_api_keys(app.openapi_schema)
    document_contract(app.openapi_schema)
    fix_options_allow(app)
    resolve_dependencies_in_order(app)
    install_cluster(app, cluster)  # the edge middleware wraps everything, 404s included
    return app
