"""The load-balancer endpoints (ARCHITECTURE section 5): open probes, metrics, operator actions.

Open endpoints need no session and are never rate limited. Operator endpoints
act on the cluster, not on an organization: they take only
`Authorization: Bearer <OPERATOR_TOKEN>` and do not exist (404) without one; wrong
tokens are rate limited per client IP at the edge (haven.cluster.ratelimit).
What names the cluster's insides (settings with database and Redis addresses,
the registry with every instance's address, the cluster-wide metrics) is an
operator endpoint too (docs/security.md); this instance's own health and
traffic numbers stay open for load balancers and dashboards.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from litestar import Request, Response, Router, get, post
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED, HTTP_503_SERVICE_UNAVAILABLE
from prometheus_client.exposition import choose_encoder

from haven.cluster.asgi import operator_token_ok
from haven.cluster.deps import overall_status
from haven.cluster.metrics import cluster_summary
from haven.cluster.runtime import Cluster
from haven.cluster.state import DRAINING, STARTING
from haven.config import Settings
from haven.errors import (
    DependencyUnavailableError,
    ForbiddenError,
    NotFoundError,
    NotSignedInError,
)

NO_CACHE = {"Cache-Control": "no-store"}
READY_MAX_AGE = 1.0  # seconds a dependency check result is reused by probes

Req = Request[Any, Any, Any]

# Settings fields whose environment variable has another name (ARCHITECTURE section 6).
ENV_NAMES = {
    "ENV": "HAVEN_ENV",
    "DRAIN_DELAY_MS": "DRAIN_DELAY",
    "SHUTDOWN_TIMEOUT_MS": "SHUTDOWN_TIMEOUT",
}


def now_iso() -> str:
    """UTC now as "2026-11-27T21:30:24.191Z"; the date and time are formatted once a second
    (every probe answer carries it)."""
    now = time.time()
    second = int(now)
    if second != _second[0]:
        _second[0], _second[1] = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
    return f"{_second[1]}.{int((now - second) * 1000):03d}Z"


_second: list[Any] = [-1, ""]  # the last whole second seen and its ISO text


def _mb(value: int) -> str:
    return f"{value / (1024 * 1024):.1f}MB"


def require_operator(request: Req, settings: Settings) -> None:
    """404 without OPERATOR_TOKEN configured; 401 without a bearer; 403 for any other bearer."""
    expected = settings.operator_token
    if not expected:
        raise NotFoundError()
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotSignedInError("Operator endpoints need Authorization: Bearer <OPERATOR_TOKEN>")
    if not operator_token_ok(expected, header):
        raise ForbiddenError("This token is not the operator token")


# -- open probes -------------------------------------------------------------------------------


@get("/health", sync_to_thread=False, tags=["load-balancer"])
def health(cluster: Cluster) -> Response[dict[str, Any]]:
    """Liveness of this process, for any load balancer (touches no dependency)."""
    body = {
        "success": True,
        "status": "OK",
        "timestamp": now_iso(),
        "instanceId": cluster.instance.instance_id,
    }
    return Response(body, headers=NO_CACHE)


@get("/alive", sync_to_thread=False, tags=["load-balancer"])
def alive(cluster: Cluster) -> Response[dict[str, Any]]:
    """Liveness probe: the process answers; never touches a dependency."""
    body = {"alive": True, "timestamp": now_iso(), "instanceId": cluster.instance.instance_id}
    return Response(body, headers=NO_CACHE)


@get("/ready", tags=["load-balancer"])
async def ready(cluster: Cluster) -> Response[dict[str, Any]]:
    """Readiness of this instance only (starting, ready, draining); dependencies are reported."""
    instance = cluster.instance
    dependencies = await cluster.links.monitor.check(READY_MAX_AGE)
    body: dict[str, Any] = {
        "ready": instance.ready,
        "timestamp": now_iso(),
        "instanceId": instance.instance_id,
        "version": instance.version,
        "loadBalancerReady": instance.ready,
        "state": instance.state,
        "dependencies": dependencies,
    }
    if instance.ready:
        return Response(body, status_code=HTTP_200_OK, headers=NO_CACHE)
    body["reason"] = STARTING if instance.state == STARTING else DRAINING
    return Response(body, status_code=HTTP_503_SERVICE_UNAVAILABLE, headers=NO_CACHE)


@get("/metrics", tags=["load-balancer"], media_type="text/plain")
async def prometheus_metrics(request: Req, cluster: Cluster) -> Response[bytes]:
    """Prometheus text format for this instance (process collector included)."""
    await cluster.refresh_sessions()
    await cluster.links.monitor.check(READY_MAX_AGE)
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encoder(cluster.metrics.registry), media_type=content_type, headers=NO_CACHE)


async def _lb_health(cluster: Cluster) -> Response[dict[str, Any]]:
    """Detailed health of this instance and its dependencies (checked now, 1 s timeouts)."""
    started = time.perf_counter()
    instance = cluster.instance
    dependencies = await cluster.links.monitor.check()
    rss, total = cluster.resources.rss_bytes(), cluster.resources.total_memory
    body = {
        "status": overall_status(dependencies, instance.draining),
        "timestamp": now_iso(),
        "instanceId": instance.instance_id,
        "version": instance.version,
        "state": instance.state,
        "responseTime": f"{round((time.perf_counter() - started) * 1000)}ms",
        "uptime": instance.uptime,
        "loadBalancer": {
            "ready": instance.ready,
            "stateless": True,
            "sessionStore": "redis",
            "cacheStore": "redis",
        },
        "dependencies": dependencies,
        "resources": {
            "memory": {
                "used": _mb(rss),
                "total": _mb(total),
                "percentage": f"{100 * rss / total:.1f}%" if total else "0.0%",
            },
            "cpuPercent": cluster.resources.cpu_percent(),
        },
    }
    return Response(body, headers=NO_CACHE)


lb_health = get("/health", tags=["load-balancer"])(_lb_health)


@get("/metrics", tags=["load-balancer"])
async def lb_metrics(
    request: Req,
    cluster: Cluster,
    scope_: str = Parameter(query="scope", default="instance", pattern="^(instance|cluster)$"),
) -> Response[dict[str, Any]]:
    """Traffic of this instance (last 60 s), or of every instance (?scope=cluster: operator)."""
    if scope_ == "cluster":
        require_operator(request, cluster.settings)
    await cluster.refresh_sessions()
    own = cluster.summary()
    if scope_ == "cluster":
        try:
            records = await asyncio.wait_for(cluster.links.registry.instances(), timeout=2.0)
        except Exception as exc:
            raise DependencyUnavailableError(
                "The instance registry (Redis) is unavailable; ?scope=instance still works"
            ) from exc
        return Response(cluster_summary(own, records), headers=NO_CACHE)
    own.pop("window", None)
    own.pop("state", None)
    return Response({**own, "scope": "instance"}, headers=NO_CACHE)


@get("/instances", tags=["load-balancer"], opt={"operator": True})
async def lb_instances(request: Req, cluster: Cluster) -> Response[dict[str, Any]]:
    """Operator: every live instance in the registry, with its address (Bearer OPERATOR_TOKEN)."""
    require_operator(request, cluster.settings)
    try:
        records = await asyncio.wait_for(cluster.links.registry.instances(), timeout=2.0)
    except Exception as exc:
        raise DependencyUnavailableError("The instance registry (Redis) is unavailable") from exc
    instances = [{k: v for k, v in r.items() if k != "metrics"} for r in records]
    return Response({"instances": instances, "count": len(instances)}, headers=NO_CACHE)


@get("/config", sync_to_thread=False, tags=["load-balancer"], opt={"operator": True})
def lb_config(request: Req, cluster: Cluster) -> Response[dict[str, Any]]:
    """Operator: effective settings of this instance, secrets left out (Bearer OPERATOR_TOKEN)."""
    settings = cluster.settings
    require_operator(request, settings)
    view = {ENV_NAMES.get(k, k): v for k, v in settings.public_view().items()}
    view["REDIS_PASSWORD"] = "(set)" if settings.redis_password else "(unset)"
    view["REDIS_SENTINEL_PASSWORD"] = "(set)" if settings.redis_sentinel_password else "(unset)"
    return Response(view, headers=NO_CACHE)


# -- operator ----------------------------------------------------------------------------------


@post("/health-check", status_code=HTTP_200_OK, tags=["load-balancer"], opt={"operator": True})
async def lb_health_check(request: Req, cluster: Cluster) -> Response[dict[str, Any]]:
    """Operator: re-check this instance's dependencies now (Bearer OPERATOR_TOKEN)."""
    require_operator(request, cluster.settings)
    return await _lb_health(cluster)


@post("/drain", status_code=HTTP_202_ACCEPTED, tags=["load-balancer"], opt={"operator": True})
async def lb_drain(request: Req, cluster: Cluster) -> Response[dict[str, Any]]:
    """Operator: turn this instance not-ready without exiting (Bearer OPERATOR_TOKEN)."""
    require_operator(request, cluster.settings)
    cluster.begin_drain("operator")
    body = {
        "instanceId": cluster.instance.instance_id,
        "state": cluster.instance.state,
        "ready": cluster.instance.ready,
        "inFlight": cluster.instance.in_flight,
        "timestamp": now_iso(),
    }
    return Response(body, status_code=HTTP_202_ACCEPTED, headers=NO_CACHE)


# -- test only ---------------------------------------------------------------------------------


@get("/debug/sleep", include_in_schema=False)
async def debug_sleep(
    ms: int = Parameter(default=1000, ge=0, le=60_000),
) -> dict[str, Any]:
    """Test only (HAVEN_ENV=test): answer after `ms` milliseconds, to have a request in flight."""
    await asyncio.sleep(ms / 1000)
    return {"slept": ms}


def routes(settings: Settings) -> list[Any]:
    """Route handlers of the load-balancer layer; the sleep hook exists only in the test env."""
    lb_handlers: list[Any] = [
        lb_health,
        lb_metrics,
        lb_instances,
        lb_config,
        lb_health_check,
        lb_drain,
    ]
    if settings.env == "test":
        lb_handlers.append(debug_sleep)
    lb = Router(path="/api/v1/load-balancer", route_handlers=lb_handlers)
    return [health, alive, ready, prometheus_metrics, lb]
