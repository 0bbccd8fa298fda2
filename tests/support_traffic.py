"""A well-behaved API client driving steady mixed traffic, recording every attempt.

Reads: GET /dashboard and GET /properties. Writes: POST /tenants and POST
/leases/{id}/payments, each with its own Idempotency-Key and a unique marker
so a duplicate write is visible afterwards. On a transport error, 502, 503 or
409 idempotency-in-flight the client retries the same request with the same
key, honouring Retry-After, for up to RETRY_BUDGET seconds.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

RETRY_BUDGET = 10.0
RETRYABLE = {502, 503, 504}


@dataclass
class Attempt:
    op: str
    status: int | None  # None: transport error
    error: str | None
    instance: str | None
    elapsed: float
    problem_type: str | None = None
    retry_after: str | None = None
    at: float = 0.0  # time.monotonic() when the answer (or the transport error) came


@dataclass
class Logical:
    op: str
    key: str | None
    marker: str | None
    ok: bool
    status: int | None
    attempts: int
    elapsed: float
    body: Any = None


@dataclass
class Recorder:
    attempts: list[Attempt] = field(default_factory=list)
    logical: list[Logical] = field(default_factory=list)

    def failed_attempts(self, op_prefix: str = "") -> list[Attempt]:
        return [a for a in self.attempts if a.op.startswith(op_prefix) and not _is_success(a)]

    def failed_logical(self) -> list[Logical]:
        return [lg for lg in self.logical if not lg.ok]

    def statuses(self) -> Counter[int | None]:
        return Counter(a.status for a in self.attempts)

    def max_latency_ms(self) -> float:
        return max((lg.elapsed for lg in self.logical), default=0.0) * 1000


def _is_success(attempt: Attempt) -> bool:
    return attempt.status is not None and 200 <= attempt.status < 300


@dataclass
class Org:
    headers: dict[str, str]
    lease_id: str
    token: str
    email: str = ""
    password: str = ""


class Client:
    def __init__(
        self,
        base_url: str,
        recorder: Recorder,
        concurrency: int = 8,
        *,
        retry_budget: float = RETRY_BUDGET,
        timeout: float = 15.0,
    ) -> None:
        self.retry_budget = retry_budget
        limits = httpx.Limits(
            max_connections=concurrency * 2, max_keepalive_connections=concurrency
        )
        self.http = httpx.AsyncClient(base_url=base_url, timeout=timeout, limits=limits)
        self.recorder = recorder

    async def aclose(self) -> None:
        await self.http.aclose()

    async def call(
        self,
        op: str,
        method: str,
        path: str,
        *,
        headers: dict[str, str],
        json: Any = None,
        key: str | None = None,
        marker: str | None = None,
        record: bool = True,
    ) -> Logical:
        """One logical request, retried as a careful client would."""
        started = time.monotonic()
        send_headers = dict(headers)
        if key is not None:
            send_headers["Idempotency-Key"] = key
        attempts = 0
        status: int | None = None
        body: Any = None
        while True:
            attempts += 1
            t0 = time.monotonic()
            retry_after = 0.2
            try:
                response = await self.http.request(method, path, headers=send_headers, json=json)
                status = response.status_code
                try:
                    body = response.json()
                except ValueError:
                    body = response.text
                problem = body.get("type") if isinstance(body, dict) else None
                attempt = Attempt(
                    op,
                    status,
                    None,
                    response.headers.get("x-instance-id"),
                    time.monotonic() - t0,
                    problem,
                    response.headers.get("retry-after"),
                    time.monotonic(),
                )
                retryable = status in RETRYABLE or (
                    status == 409
                    and isinstance(problem, str)
                    and problem.endswith("idempotency-in-flight")
                )
                if "retry-after" in response.headers:
                    try:
                        retry_after = min(float(response.headers["retry-after"]), 2.0)
                    except ValueError:
                        retry_after = 0.5
            except httpx.TransportError as exc:
                status = None
                attempt = Attempt(
                    op, None, type(exc).__name__, None, time.monotonic() - t0, at=time.monotonic()
                )
                retryable = True
            if record:
                self.recorder.attempts.append(attempt)
            if not retryable or time.monotonic() - started + retry_after > self.retry_budget:
                break
            await asyncio.sleep(retry_after)
        ok = status is not None and 200 <= status < 300
        logical = Logical(op, key, marker, ok, status, attempts, time.monotonic() - started, body)
        if record:
            self.recorder.logical.append(logical)
        return logical


async def setup_org(client: Client) -> Org:
    """Register an organization with a property, unit, tenant and an active lease."""
    email = f"e2e-{uuid.uuid4().hex[:10]}@example.com"
    reg = await client.call(
        "setup",
        "POST",
        "/api/v1/auth/register",
        headers={},
        record=False,
        json={
            "organizationName": "E2E Homes",
            "name": "E2E Owner",
            "email": email,
            "password": "e2e password 123",
        },
    )
    assert reg.ok, reg
    token = reg.body["accessToken"]
    headers = {"Authorization": f"Bearer {token}"}

    async def post(path: str, body: dict[str, Any]) -> Any:
        result = await client.call(
            "setup", "POST", path, headers=headers, json=body, record=False, key=uuid.uuid4().hex
        )
        assert result.ok, (path, result)
        return result.body

    prop = await post(
        "/api/v1/properties",
        {
            "name": "E2E Court",
            "type": "residential",
            "address": {"line1": "1 Test St", "city": "Testville", "country": "US"},
        },
    )
    unit = await post(
        f"/api/v1/properties/{prop['id']}/units", {"label": "1A", "marketRent": 100000}
    )
    tenant = await post("/api/v1/tenants", {"firstName": "Lease", "lastName": "Holder"})
    lease = await post(
        "/api/v1/leases",
        {
            "unitId": unit["id"],
            "tenantIds": [tenant["id"]],
            "startDate": "2026-01-01",
            "endDate": None,
            "rent": 100000,
            "deposit": 0,
            "dueDay": 1,
            "graceDays": 5,
            "lateFee": {"kind": "flat", "amount": 5000},
        },
    )
    await post(f"/api/v1/leases/{lease['id']}/activate", {})
    return Org(
        headers=headers,
        lease_id=lease["id"],
        token=token,
        email=email,
        password="e2e password 123",
    )


async def one_operation(
    client: Client, org: Org, rng: random.Random, only: str | None = None
) -> None:
    op = only or rng.choice(["dashboard", "properties", "tenant", "payment"])
    marker = uuid.uuid4().hex[:16]
    if op == "dashboard":
        await client.call("GET dashboard", "GET", "/api/v1/dashboard", headers=org.headers)
    elif op == "properties":
        await client.call(
            "GET properties", "GET", "/api/v1/properties?limit=20", headers=org.headers
        )
    elif op == "tenant":
        await client.call(
            "POST tenant",
            "POST",
            "/api/v1/tenants",
            headers=org.headers,
            key=uuid.uuid4().hex,
            marker=marker,
            json={"firstName": "T", "lastName": f"m-{marker}"},
        )
    else:
        await client.call(
            "POST payment",
            "POST",
            f"/api/v1/leases/{org.lease_id}/payments",
            headers=org.headers,
            key=uuid.uuid4().hex,
            marker=marker,
            json={
                "amount": rng.randint(1, 5000),
                "receivedOn": "2026-11-01",
                "method": "bank_transfer",
                "reference": f"m-{marker}",
            },
        )


async def drive(
    client: Client,
    org: Org,
    stop: asyncio.Event,
    *,
    workers: int = 6,
    seed: int = 7,
    pause: float = 0.01,
    max_ops: int = 20000,
) -> None:
    """Steady traffic until `stop` is set (bounded by max_ops per worker)."""

    async def worker(n: int) -> None:
        rng = random.Random(seed * 100 + n)
        for _ in range(max_ops):
            if stop.is_set():
                return
            await one_operation(client, org, rng)
            await asyncio.sleep(pause)

    await asyncio.gather(*(worker(n) for n in range(workers)))


async def verify_writes(client: Client, org: Org, recorder: Recorder) -> dict[str, int]:
    """Every acknowledged write exists exactly once; nothing unacknowledged was doubled."""
    tenants: Counter[str] = Counter()
    cursor: str | None = None
    for _ in range(1000):
        path = "/api/v1/tenants?limit=100" + (f"&cursor={cursor}" if cursor else "")
        page = await client.call("verify", "GET", path, headers=org.headers, record=False)
        assert page.ok, page
        for t in page.body["items"]:
            tenants[t["lastName"]] += 1
        cursor = page.body["nextCursor"]
        if not cursor:
            break
    ledger = await client.call(
        "verify", "GET", f"/api/v1/leases/{org.lease_id}/ledger", headers=org.headers, record=False
    )
    assert ledger.ok, ledger
    payment_ids = [e["id"] for e in ledger.body["entries"] if e["type"] == "payment"]
    references = Counter(e["reference"] for e in ledger.body["entries"] if e["type"] == "payment")
    lost = duplicates = 0
    acknowledged_payments: set[str] = set()
    for lg in recorder.logical:
        if lg.marker is None or not lg.ok:
            continue
        if lg.op == "POST tenant":
            seen = tenants[f"m-{lg.marker}"]
            lost += seen == 0
            duplicates += seen > 1
        elif lg.op == "POST payment":
            acknowledged_payments.add(lg.body["id"])
            lost += lg.body["id"] not in payment_ids
            duplicates += references[f"m-{lg.marker}"] > 1
    # Each logical payment request writes at most once: any payment entry beyond the
    # acknowledged ones (and those whose request failed for good) is a duplicate.
    failed_payments = sum(1 for lg in recorder.logical if lg.op == "POST payment" and not lg.ok)
    duplicates += max(0, len(payment_ids) - len(acknowledged_payments) - failed_payments)
    return {"lost": lost, "duplicates": duplicates}
