"""The checks of `haven lb-test`, as a real HTTP client of any deployment.

Each check returns a CheckResult: a name, pass/fail, a one-line summary and
details for --json. Nothing here knows how the deployment was started.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

Progress = Callable[[int], None]

INSTANCE_HEADERS = (
    "x-instance-id",
    "x-served-by",
    "x-session-shared",
    "x-load-balancer-ready",
    "x-stateless",
    "x-response-time",
    "x-request-id",
)

# Field -> expected JSON type, per ARCHITECTURE section 5.
SHAPES: dict[str, dict[str, type | tuple[type, ...]]] = {
    "/health": {"success": bool, "status": str, "timestamp": str, "instanceId": str},
    "/ready": {
        "ready": bool,
        "timestamp": str,
        "instanceId": str,
        "version": str,
        "loadBalancerReady": bool,
        "state": str,
        "dependencies": dict,
    },
    "/alive": {"alive": bool, "timestamp": str, "instanceId": str},
    "/api/v1/load-balancer/health": {
        "status": str,
        "timestamp": str,
        "instanceId": str,
        "responseTime": str,
        "uptime": int,
        "loadBalancer": dict,
        "dependencies": dict,
        "resources": dict,
    },
}


@dataclass
class CheckResult:
    name: str
    passed: bool
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def _shape_errors(body: Any, shape: dict[str, type | tuple[type, ...]]) -> list[str]:
    if not isinstance(body, dict):
        return ["body is not a JSON object"]
    errors = []
    for key, kind in shape.items():
        if key not in body:
            errors.append(f"missing {key}")
        elif not isinstance(body[key], kind) or (kind is int and isinstance(body[key], bool)):
            errors.append(f"{key} has type {type(body[key]).__name__}")
    return errors


async def check_health(client: httpx.AsyncClient) -> CheckResult:
    problems: dict[str, list[str]] = {}
    statuses: dict[str, int] = {}
    for path, shape in SHAPES.items():
        try:
            response = await client.get(path)
        except httpx.HTTPError as exc:
            problems[path] = [f"request failed: {exc!r}"]
            continue
        statuses[path] = response.status_code
        errs = [] if response.status_code == 200 else [f"status {response.status_code}"]
        try:
            errs += _shape_errors(response.json(), shape)
        except ValueError:
            errs.append("body is not JSON")
        if errs:
            problems[path] = errs
    passed = not problems
    summary = (
        "all health endpoints answer 200 with the documented fields"
        if passed
        else "; ".join(f"{p}: {', '.join(e)}" for p, e in problems.items())
    )
    return CheckResult("health", passed, summary, {"statuses": statuses, "problems": problems})


async def check_headers(client: httpx.AsyncClient) -> CheckResult:
    request_id = f"lbtest-{uuid.uuid4().hex[:12]}"
    missing: dict[str, list[str]] = {}
    for path in ("/health", "/api/v1/does-not-exist"):
        try:
            response = await client.get(path, headers={"X-Request-Id": request_id})
        except httpx.HTTPError as exc:
            missing[path] = [f"request failed: {exc!r}"]
            continue
        gone = [h for h in INSTANCE_HEADERS if h not in response.headers]
        if response.headers.get("x-request-id") != request_id:
            gone.append("x-request-id not kept")
        if gone:
            missing[path] = gone
    passed = not missing
    summary = "instance headers on success and error responses" if passed else str(missing)
    return CheckResult("headers", passed, summary, {"missing": missing})


@dataclass
class LoadRun:
    counts: Counter[str]
    latencies_ms: list[float]
    failures: int
    statuses: Counter[int]


async def run_load(
    client: httpx.AsyncClient,
    path: str,
    requests: int,
    concurrency: int,
    progress: Progress | None = None,
) -> LoadRun:
    counts: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    failures = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)

    async def worker() -> None:
        nonlocal failures
        while True:
            try:
                queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            started = time.perf_counter()
            try:
                response = await client.get(path)
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[response.status_code] += 1
                if response.status_code != 200:
                    failures += 1
                counts[response.headers.get("x-instance-id", "?")] += 1
            except httpx.HTTPError:
                failures += 1
            if progress:
                progress(1)

    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    return LoadRun(counts, latencies, failures, statuses)


def evenness(counts: Counter[str]) -> float:
    """min/max of per-instance counts: 1.0 is perfectly even, 0 means one instance got none."""
    if not counts:
        return 0.0
    return min(counts.values()) / max(counts.values())


async def check_distribution(
    client: httpx.AsyncClient,
    requests: int,
    concurrency: int,
    expect: int | None,
    progress: Progress | None = None,
) -> tuple[CheckResult, LoadRun]:
    run = await run_load(client, "/health", requests, concurrency, progress)
    total = sum(run.counts.values()) or 1
    shares = {k: round(v / total, 4) for k, v in sorted(run.counts.items())}
    n = len(run.counts)
    fair = 1 / n if n else 0
    # Every instance within +-40% of its fair share, and as many instances as expected.
    even_enough = all(abs(s - fair) <= 0.4 * fair for s in shares.values())
    passed = run.failures == 0 and even_enough and (expect is None or n >= expect) and n > 0
    summary = (
        f"{n} instances served {total} requests, shares "
        + ", ".join(f"{k} {v:.0%}" for k, v in shares.items())
        + f", evenness {evenness(run.counts):.2f}, failures {run.failures}"
    )
    details = {
        "instances": n,
        "counts": dict(sorted(run.counts.items())),
        "shares": shares,
        "evenness": round(evenness(run.counts), 4),
        "failures": run.failures,
        "statuses": {str(k): v for k, v in run.statuses.items()},
    }
    return CheckResult("load-distribution", passed, summary, details), run


def check_latency(run: LoadRun) -> CheckResult:
    lat = run.latencies_ms
    details = {
        "p50": round(percentile(lat, 50), 2),
        "p95": round(percentile(lat, 95), 2),
        "p99": round(percentile(lat, 99), 2),
        "max": round(max(lat), 2) if lat else 0.0,
        "mean": round(statistics.fmean(lat), 2) if lat else 0.0,
        "samples": len(lat),
    }
    passed = bool(lat)
    summary = f"p50 {details['p50']}ms, p95 {details['p95']}ms, p99 {details['p99']}ms"
    return CheckResult("latency", passed, summary, details)


async def _sign_in(
    client: httpx.AsyncClient, email: str | None, password: str | None
) -> tuple[httpx.Response, str, str]:
    if email and password:
        response = await client.post(
            "/api/v1/auth/login", json={"email": email, "password": password}
        )
        return response, email, password
    email = f"lb-test-{uuid.uuid4().hex[:12]}@example.com"
    password = uuid.uuid4().hex
    response = await client.post(
        "/api/v1/auth/register",
        json={
            "organizationName": "lb-test throwaway",
            "name": "LB Test",
            "email": email,
            "password": password,
        },
    )
    return response, email, password


async def check_sessions(
    client: httpx.AsyncClient,
    instances_seen: set[str],
    email: str | None,
    password: str | None,
    attempts: int = 60,
) -> CheckResult:
    signed, email, password = await _sign_in(client, email, password)
    if signed.status_code not in (200, 201):
        return CheckResult("sessions", False, f"sign-in answered {signed.status_code}", {})
    body = signed.json()
    cookie = signed.cookies.get("haven_session")
    client.cookies.clear()  # send exactly the credential each request names
    token = body.get("accessToken")
    csrf = body.get("csrfToken", "")
    by_cookie: Counter[str] = Counter()
    by_bearer: Counter[str] = Counter()
    failures: list[str] = []
    target = set(instances_seen)
    for _ in range(attempts):
        for kind, headers, counter in (
            ("cookie", {"Cookie": f"haven_session={cookie}"}, by_cookie),
            ("bearer", {"Authorization": f"Bearer {token}"}, by_bearer),
        ):
            response = await client.get("/api/v1/auth/me", headers=headers)
            instance = response.headers.get("x-instance-id", "?")
            if response.status_code != 200:
                failures.append(f"{kind} on {instance}: {response.status_code}")
            else:
                counter[instance] += 1
        if target and set(by_cookie) >= target and set(by_bearer) >= target:
            break
    # Logout on whichever instance answers, then the session must fail everywhere.
    logout = await client.post(
        "/api/v1/auth/logout", headers={"Cookie": f"haven_session={cookie}", "X-CSRF-Token": csrf}
    )
    revoked_on: Counter[str] = Counter()
    still_valid: list[str] = []
    for _ in range(max(6, 2 * len(target))):
        response = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        instance = response.headers.get("x-instance-id", "?")
        if response.status_code == 401:
            revoked_on[instance] += 1
        else:
            still_valid.append(f"{instance}: {response.status_code}")
    covered = set(by_cookie) >= target and set(by_bearer) >= target
    passed = not failures and covered and logout.status_code == 204 and not still_valid
    summary = (
        f"session worked on {len(set(by_cookie) | set(by_bearer))} instance(s) "
        "by cookie and bearer; "
        f"logout revoked it on {len(revoked_on)} instance(s)"
    )
    if not passed:
        summary += (
            f" (failures: {failures[:3]}, logout {logout.status_code},"
            f" still valid: {still_valid[:3]})"
        )
    details = {
        "account": email,
        "byCookie": dict(by_cookie),
        "byBearer": dict(by_bearer),
        "logoutStatus": logout.status_code,
        "revokedOn": dict(revoked_on),
        "failures": failures,
    }
    return CheckResult("sessions", passed, summary, details)


# -- exposure and the operator views (docs/security.md) ---------------------------------------

# Nothing here may answer 200 to an anonymous client through the load balancer.
PRIVATE_PATHS = (
    "/api/v1/load-balancer/config",
    "/api/v1/load-balancer/instances",
    "/api/v1/load-balancer/metrics?scope=cluster",
    "/metrics",
    "/%2E/metrics",  # a dot segment the instances resolve: the LB must not let it through
)


async def check_exposure(client: httpx.AsyncClient) -> CheckResult:
    """The settings, the registry and the metrics are closed to an anonymous client."""
    statuses: dict[str, int] = {}
    for path in PRIVATE_PATHS:
        try:
            statuses[path] = (await client.get(path)).status_code
        except httpx.HTTPError:
            statuses[path] = 0
    open_paths = [p for p, status in statuses.items() if status < 400]
    passed = not open_paths
    summary = (
        "settings, registry and metrics are closed without the operator token"
        if passed
        else "open to anyone: " + ", ".join(open_paths)
    )
    return CheckResult("exposure", passed, summary, {"statuses": statuses})


async def check_registry(
    client: httpx.AsyncClient, token: str | None, expect: int | None, seen: set[str]
) -> CheckResult:
    """Every instance that served is in the registry (needs the operator token)."""
    if not token:
        return CheckResult(
            "registry",
            True,
            "skipped: needs the operator token (--operator-token or HAVEN_OPERATOR_TOKEN)",
            {"skipped": True},
        )
    try:
        response = await client.get(
            "/api/v1/load-balancer/instances", headers={"Authorization": f"Bearer {token}"}
        )
    except httpx.HTTPError as exc:
        return CheckResult("registry", False, f"request failed: {exc!r}")
    if response.status_code != 200:
        return CheckResult(
            "registry",
            False,
            f"/api/v1/load-balancer/instances answered {response.status_code} to the token",
            {"status": response.status_code},
        )
    try:
        listed = {str(i["instanceId"]): str(i["state"]) for i in response.json()["instances"]}
    except (ValueError, KeyError, TypeError):
        return CheckResult("registry", False, "the registry answer has not the documented shape")
    missing = sorted(seen - set(listed))
    passed = not missing and (expect is None or len(listed) >= expect)
    summary = f"{len(listed)} instances registered: " + ", ".join(
        f"{k} {v}" for k, v in sorted(listed.items())
    )
    if missing:
        summary += f"; served but not registered: {', '.join(missing)}"
    return CheckResult("registry", passed, summary, {"instances": listed, "missing": missing})
