"""A realistic organization, created through the public API (so every rule and index is real).

About 50 properties, 500 units, 450 tenants with active leases started a year ago, 12 months
of billed rent (POST /billing/run per month), a year of payments on some leases (all of them
on the lease the ledger scenario reads), and 200 maintenance requests.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx

_F = float(os.environ.get("BENCH_SCALE", "1"))  # < 1 only to try the harness quickly
SCALE = {
    "properties": max(1, int(50 * _F)),
    "units_per_property": 10,
    "leases": max(1, int(450 * _F)),
    "maintenance": max(1, int(200 * _F)),
}
PAID_LEASES = max(1, int(24 * _F))  # leases that also get a year of payments


@dataclass
class Org:
    token: str
    cookie: str
    csrf: str
    organization_id: str
    ledger_lease: str  # a 12-month lease with charges and payments
    user_id: str = ""  # the owner (the peers' sessions name them)


def _months_back(today: date, n: int) -> date:
    year, month = today.year, today.month - n
    while month <= 0:
        month += 12
        year -= 1
    return date(year, month, 1)


async def seed(urls: list[str], concurrency: int = 8, log: Any = print) -> Org:
    rng = random.Random(7)
    base = itertools.cycle(urls)
    async with httpx.AsyncClient(timeout=60.0) as client:
        email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
        r = await client.post(
            f"{urls[0]}/api/v1/auth/register",
            json={
                "organizationName": "Bench Homes",
                "name": "Bench Owner",
                "email": email,
                "password": "bench password 1",
            },
        )
        r.raise_for_status()
        body = r.json()
        token, csrf = body["accessToken"], body["csrfToken"]
        cookie = r.cookies["haven_session"]
        org_id = body["organization"]["id"]
        headers = {"Authorization": f"Bearer {token}"}
        gate = asyncio.Semaphore(concurrency)

        async def call(method: str, path: str, payload: Any = None) -> Any:
            async with gate:
                for attempt in range(5):
                    resp = await client.request(
                        method, f"{next(base)}{path}", json=payload, headers=headers
                    )
                    if resp.status_code in (503, 429) and attempt < 4:
                        await asyncio.sleep(0.2 * (attempt + 1))
                        continue
                    if resp.status_code >= 400:
                        raise RuntimeError(f"{method} {path}: {resp.status_code} {resp.text}")
                    return resp.json()
            raise RuntimeError(f"{method} {path}: gave up")

        def prop(i: int) -> dict[str, Any]:
            return {
                "name": f"Bench Property {i:03d}",
                "type": rng.choice(["residential", "commercial", "mixed"]),
                "address": {
                    "line1": f"{100 + i} Main Street",
                    "city": "Springfield",
                    "postalCode": f"{10000 + i}",
                    "country": "US",
                },
            }

        props = await asyncio.gather(
            *(call("POST", "/api/v1/properties", prop(i)) for i in range(SCALE["properties"]))
        )
        log(f"seed: {len(props)} properties")
        unit_jobs = [
            call(
                "POST",
                f"/api/v1/properties/{p['id']}/units",
                {"label": f"U{j + 1:02d}", "bedrooms": 1 + j % 3, "marketRent": 120000 + j * 5000},
            )
            for p in props
            for j in range(SCALE["units_per_property"])
        ]
        units = await asyncio.gather(*unit_jobs)
        log(f"seed: {len(units)} units")
        tenants = await asyncio.gather(
            *(
                call(
                    "POST",
                    "/api/v1/tenants",
                    {"firstName": f"Tenant{i}", "lastName": "Bench", "email": f"t{i}@example.com"},
                )
                for i in range(SCALE["leases"])
            )
        )
        log(f"seed: {len(tenants)} tenants")
        today = date.today()
        start = _months_back(today, 12)

        async def lease(unit: dict[str, Any], tenant: dict[str, Any]) -> dict[str, Any]:
            created = await call(
                "POST",
                "/api/v1/leases",
                {
                    "unitId": unit["id"],
                    "tenantIds": [tenant["id"]],
                    "startDate": start.isoformat(),
                    "endDate": (start + timedelta(days=729)).isoformat(),
                    "rent": 150000,
                    "deposit": 150000,
                    "dueDay": 1,
                    "graceDays": 5,
                },
            )
            await call("POST", f"/api/v1/leases/{created['id']}/activate")
            return created

        leases = await asyncio.gather(*(lease(u, t) for u, t in zip(units, tenants, strict=False)))
        log(f"seed: {len(leases)} active leases")
        for n in range(11, -1, -1):
            await call("POST", "/api/v1/billing/run", {"date": _months_back(today, n).isoformat()})
        log("seed: 12 months billed")
        pay_jobs = [
            call(
                "POST",
                f"/api/v1/leases/{lease_['id']}/payments",
                {
                    "amount": 150000,
                    "receivedOn": (_months_back(today, n) + timedelta(days=2)).isoformat(),
                    "method": "bank_transfer",
                },
            )
            for lease_ in leases[:PAID_LEASES]
            for n in range(11, -1, -1)
            if _months_back(today, n) + timedelta(days=2) <= today
        ]
        await asyncio.gather(*pay_jobs)
        log(f"seed: {len(pay_jobs)} payments")
        await asyncio.gather(
            *(
                call(
                    "POST",
                    "/api/v1/maintenance-requests",
                    {
                        "propertyId": props[i % len(props)]["id"],
                        "unitId": units[
                            (i % len(props)) * SCALE["units_per_property"]
                            + (i // len(props)) % SCALE["units_per_property"]
                        ]["id"],
                        "title": f"Fix item {i}",
                        "priority": rng.choice(["low", "normal", "high", "emergency"]),
                    },
                )
                for i in range(SCALE["maintenance"])
            )
        )
        log(f"seed: {SCALE['maintenance']} maintenance requests")
        return Org(token, cookie, csrf, org_id, leases[0]["id"], body["user"]["id"])
