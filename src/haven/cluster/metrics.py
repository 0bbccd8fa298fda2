"""Metrics: Prometheus (per-app registry) and the JSON summaries of /api/v1/load-balancer/metrics.

Each app gets its own CollectorRegistry, so several apps in one process (the
tests) never collide. The JSON summary of an instance is also what it
publishes in the registry, so `?scope=cluster` can add every instance up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from haven.cluster.state import InstanceState, ResourceSampler, WindowSnapshot, status_class

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The Prometheus side: counters the middleware feeds, gauges read at scrape time."""

    def __init__(
        self,
        instance: InstanceState,
        resources: ResourceSampler,
        dependencies: Callable[[], dict[str, str]],
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.active_sessions = 0
        # Sections other layers add to the JSON summary (name -> reader), e.g. "webhooks".
        self.sections: dict[str, Callable[[], dict[str, Any]]] = {}
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        labels = {"instance_id": instance.instance_id}
        self.requests = Counter(
            "haven_http_requests",
            "HTTP requests answered, by method and status class",
            ["method", "status"],
            registry=self.registry,
        )
        self.db_statements = Counter(
            "haven_db_statements",
            "SQL statements sent to the database (BEGIN included), for statements per request",
            registry=self.registry,
        )
        self.duration = Histogram(
            "haven_http_request_duration_seconds",
            "Time from request start to the end of the response",
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        Gauge(
            "haven_http_requests_in_flight", "Requests being served now", registry=self.registry
        ).set_function(lambda: instance.in_flight)
        Gauge(
            "haven_active_sessions",
            "Live sessions in the shared store (cluster-wide; refreshed every few seconds)",
            registry=self.registry,
        ).set_function(lambda: self.active_sessions)
        Gauge(
            "haven_instance_ready", "1 while this instance accepts traffic", registry=self.registry
        ).set_function(lambda: 1 if instance.ready else 0)
        Gauge(
            "haven_instance_uptime_seconds",
            "Seconds since this instance started",
            registry=self.registry,
        ).set_function(lambda: instance.uptime)
        Gauge(
            "haven_instance_draining",
            "1 while this instance drains (not ready, finishing its requests)",
            registry=self.registry,
        ).set_function(lambda: 1 if instance.draining else 0)
        up = Gauge(
            "haven_dependency_up",
            "1 when the dependency answered its last check (1 s timeout)",
            ["dependency"],
            registry=self.registry,
        )
        for name in ("redis", "database"):
            up.labels(name).set_function(_up(dependencies, name))
        info = Gauge(
            "haven_instance_info",
            "Instance id and version",
            ["instance_id", "version"],
            registry=self.registry,
        )
        info.labels(labels["instance_id"], instance.version).set(1)
        self._resources = resources
        self._request_children: dict[tuple[str, int], Any] = {}

    def observe(self, method: str, status: int, duration_s: float) -> None:
        # labels() takes a lock and builds its key on every call: keep the few children.
        child = self._request_children.get((method, status))
        if child is None:
            child = self.requests.labels(method, status_class(status))
            if len(self._request_children) < 256:
                self._request_children[(method, status)] = child
        child.inc()
        self.duration.observe(duration_s)


def count_statements(engine: AsyncEngine, metrics: Metrics) -> None:
    """Feed haven_db_statements_total from every statement `engine` executes."""
    counter = metrics.db_statements

    def _count(*_args: Any) -> None:
        counter.inc()

    event.listen(engine.sync_engine, "before_cursor_execute", _count)


def _up(dependencies: Callable[[], dict[str, str]], name: str) -> Callable[[], float]:
    return lambda: 1.0 if dependencies().get(name) == "healthy" else 0.0


def instance_summary(
    instance: InstanceState, resources: ResourceSampler, active_sessions: int
) -> dict[str, Any]:
    """This instance's numbers, in the shape of /api/v1/load-balancer/metrics."""
    window = instance.window.snapshot()
    span = max(1, min(instance.uptime, instance.window.seconds))
    return {
        "instanceId": instance.instance_id,
        "state": instance.state,
        "uptime": instance.uptime,
        "requests": {
            "total": instance.requests_total,
            "inFlight": instance.in_flight,
            "byStatus": dict(instance.by_status),
            "perSecond": round(window.count / span, 2),
        },
        "latencyMs": _latency(window),
        "errorRate": round(window.errors / window.count, 4) if window.count else 0.0,
        "sessions": {"active": active_sessions},
        "memory": {"rssBytes": resources.rss_bytes()},
        "cpuPercent": resources.cpu_percent(),
        "window": window.to_wire(),
    }


_BUILT_IN = frozenset(
    {
        "instanceId",
        "state",
        "uptime",
        "requests",
        "latencyMs",
        "errorRate",
        "sessions",
        "memory",
        "cpuPercent",
        "window",
        "scope",
        "instances",
    }
)


def _latency(window: WindowSnapshot) -> dict[str, float]:
    return {
        "p50": window.percentile(0.50),
        "p95": window.percentile(0.95),
        "p99": window.percentile(0.99),
    }


def cluster_summary(own: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
    """Add up every live instance's published summary (this one's live numbers replace its own)."""
    summaries: dict[str, dict[str, Any]] = {}
    for record in records:
        metrics = record.get("metrics")
        if isinstance(metrics, dict) and record.get("instanceId"):
            summaries[str(record["instanceId"])] = metrics
    summaries[own["instanceId"]] = own
    window = WindowSnapshot()
    total = in_flight = 0
    per_second = cpu = 0.0
    rss = 0
    by_status = {"1xx": 0, "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0}
    for item in summaries.values():
        requests = item.get("requests", {})
        total += int(requests.get("total", 0))
        in_flight += int(requests.get("inFlight", 0))
        per_second += float(requests.get("perSecond", 0.0))
        for key, value in requests.get("byStatus", {}).items():
            by_status[key] = by_status.get(key, 0) + int(value)
        wire = item.get("window", {})
        window.merge(
            int(wire.get("count", 0)), int(wire.get("errors", 0)), wire.get("histogram", {})
        )
        rss += int(item.get("memory", {}).get("rssBytes", 0))
        cpu += float(item.get("cpuPercent", 0.0))
    instances = [
        {k: v for k, v in s.items() if k != "window"}
        for _, s in sorted(summaries.items(), key=lambda kv: kv[0])
    ]
    return {
        "instanceId": own["instanceId"],
        "scope": "cluster",
        "uptime": max(int(s.get("uptime", 0)) for s in summaries.values()),
        "requests": {
            "total": total,
            "inFlight": in_flight,
            "byStatus": by_status,
            "perSecond": round(per_second, 2),
        },
        "latencyMs": _latency(window),
        "errorRate": round(window.errors / window.count, 4) if window.count else 0.0,
        "sessions": dict(own["sessions"]),
        "memory": {"rssBytes": rss},
        "cpuPercent": round(cpu, 1),
        "instances": instances,
        # Sections added by other layers (their numbers are cluster-wide where they say so).
        **{k: v for k, v in own.items() if k not in _BUILT_IN},
    }
