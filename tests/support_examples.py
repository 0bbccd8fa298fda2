"""One real exchange per operation: the OpenAPI examples are recorded from this scenario.

`run_scenario(client)` signs up, creates an API key, builds a portfolio, leases it, takes
money, runs the back office (the dashboard read with the API key) and finally revokes the key
and signs out, calling every operation of the document once (the
first answer of each is kept). `python tests/support_examples.py` re-records
src/haven/openapi_examples.json; tests/integration/contract/test_examples.py replays
the scenario and checks every answer against the document.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import sys
import tempfile
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.serialization import encode_json
from litestar.testing import TestClient

from haven.app import create_app
from haven.config import load_settings
from haven.db.migrate import upgrade
from haven.openapi import EXAMPLES_FILE
from haven.store.embedded import EmbeddedValkey

OPERATOR_TOKEN = "contract-operator-token-" + "x" * 24
Exchange = dict[str, Any]


def unstarted_app() -> Litestar:
    """The app as configured for tests, never started (nothing connects)."""
    settings = load_settings(
        {
            "HAVEN_ENV": "test",
            "DATABASE_URL": "sqlite+aiosqlite:///unused.db",
            "SECRET_KEY": "s" * 64,
            "REDIS_URL": "redis://127.0.0.1:1/0",
        }
    )
    return create_app(settings)


def served_document() -> dict[str, Any]:
    """What /openapi.json serves (built without starting the app: nothing connects)."""
    document: dict[str, Any] = json.loads(encode_json(unstarted_app().openapi_schema.to_schema()))
    return document


@contextlib.contextmanager
def example_client(database_url: str, redis_url: str) -> Iterator[TestClient[Any]]:
    """One in-process instance: operator token set, rate limits and webhook delivery off."""
    settings = load_settings(
        {
            "HAVEN_ENV": "test",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": secrets.token_urlsafe(48),
            "OPERATOR_TOKEN": OPERATOR_TOKEN,
            "RATE_LIMIT_ENABLED": "false",
            "WEBHOOK_WORKER": "false",  # the example webhook's URL is never called
            "LOG_LEVEL": "warning",
            "DB_POOL_MIN": "1",
            "DB_POOL_MAX": "5",
        },
        instance_id=f"examples-{secrets.token_hex(2)}",
    )
    with TestClient(create_app(settings)) as client:
        yield client


class Recorder:
    def __init__(self, client: TestClient[Any]) -> None:
        self.client = client
        self.exchanges: dict[str, Exchange] = {}
        self.token = ""
        self.api_key = ""

    def call(
        self,
        method: str,
        template: str,
        ids: dict[str, str] | None = None,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        auth: str | None = "user",
    ) -> Any:
        path = template.format(**(ids or {}))
        sent = dict(headers or {})
        if auth == "user":
            sent["Authorization"] = f"Bearer {self.token}"
        elif auth == "key":
            sent["Authorization"] = f"Bearer {self.api_key}"
        elif auth == "operator":
            sent["Authorization"] = f"Bearer {OPERATOR_TOKEN}"
        response = self.client.request(method, path, json=json_body, params=params, headers=sent)
        self.client.cookies.clear()  # each call says which credential it sends
        kind = response.headers.get("content-type", "").split(";")[0]
        body: Any = None
        if kind.endswith("json") and response.content:
            body = response.json()
        elif response.content:
            body = response.text
        if response.status_code >= 400:
            print(f"{method} {path}: {response.status_code} {response.text[:300]}", file=sys.stderr)
        key = f"{method} {template}"
        self.exchanges.setdefault(
            key,
            {
                "status": response.status_code,
                "contentType": kind or None,
                "requestBody": json_body,
                "parameters": {
                    **{k: str(v) for k, v in (params or {}).items()},
                    **{k: v for k, v in (ids or {}).items() if "{" + k + "}" in template},
                },
                "response": body,
            },
        )
        return body


def run_scenario(client: TestClient[Any]) -> dict[str, Exchange]:
    """Call every operation once, in an order where each finds what it needs."""
    r = Recorder(client)
    call = r.call
    today = date.today()
    first = today.replace(day=1)
    email = f"olive.{secrets.token_hex(3)}@example.com"
    password = "correct horse battery"

    # -- probes and the load balancer's endpoints
    for probe in ("/health", "/alive", "/ready", "/metrics"):
        call("GET", probe, auth=None)
    call("GET", "/api/v1/load-balancer/health", auth=None)
    call("GET", "/api/v1/load-balancer/metrics", auth=None)
    call("GET", "/api/v1/load-balancer/config", auth="operator")
    call("GET", "/api/v1/load-balancer/instances", auth="operator")
    call("POST", "/api/v1/load-balancer/health-check", auth="operator")

    # -- sign-up, sessions, organization, members
    signup = call(
        "POST",
        "/api/v1/auth/register",
        json_body={
            "organizationName": "Maple Homes",
            "name": "Olive Owner",
            "email": email,
            "password": password,
        },
        auth=None,
    )
    r.token = signup["accessToken"]
    call("POST", "/api/v1/auth/login", json_body={"email": email, "password": password}, auth=None)
    call("POST", "/api/v1/auth/token")
    call("GET", "/api/v1/auth/me")
    sessions = call("GET", "/api/v1/auth/sessions")
    listed = sessions["items"] if isinstance(sessions, dict) else sessions
    other = next(s["id"] for s in listed if not s.get("current"))
    call("DELETE", "/api/v1/auth/sessions/{session_id}", {"session_id": other})
    call("GET", "/api/v1/organization")
    call("PATCH", "/api/v1/organization", json_body={"timezone": "Europe/Berlin"})
    member = call(
        "POST",
        "/api/v1/members",
        json_body={
            "email": f"mia.{secrets.token_hex(3)}@example.com",
            "name": "Mia Manager",
            "role": "manager",
            "password": "member password 1",
        },
    )
    m = {"member_id": member["id"]}
    call("GET", "/api/v1/members")
    call("GET", "/api/v1/members/{member_id}", m)
    call("PATCH", "/api/v1/members/{member_id}", m, json_body={"role": "staff"})
    call(
        "POST",
        "/api/v1/members/{member_id}/password",
        m,
        json_body={"newPassword": "another password 2"},
    )

    # -- an API key for an integration (sent as a Bearer token, like the session's)
    created = call(
        "POST",
        "/api/v1/api-keys",
        json_body={"name": "Accounting sync", "role": "viewer"},
    )
    r.api_key = created["key"]
    k = {"key_id": created["id"]}
    call("GET", "/api/v1/api-keys")
    call("GET", "/api/v1/api-keys/{key_id}", k)

    # -- portfolio
    prop = call(
        "POST",
        "/api/v1/properties",
        json_body={
            "name": "Maple Court",
            "type": "residential",
            "address": {
                "line1": "12 Maple Street",
                "city": "Springfield",
                "postalCode": "12345",
                "country": "US",
            },
            "yearBuilt": 1998,
        },
    )
    p = {"property_id": prop["id"]}
    call("GET", "/api/v1/properties", params={"limit": 20, "search": "maple"})
    call("GET", "/api/v1/properties/{property_id}", p)
    call("PATCH", "/api/v1/properties/{property_id}", p, json_body={"yearBuilt": 1999})
    unit = call(
        "POST",
        "/api/v1/properties/{property_id}/units",
        p,
        json_body={"label": "1A", "bedrooms": 2, "bathrooms": 1.5, "marketRent": 125000},
    )
    u = {"unit_id": unit["id"]}
    call("GET", "/api/v1/properties/{property_id}/units", p)
    call("GET", "/api/v1/units", params={"propertyId": prop["id"]})
    call("GET", "/api/v1/units/{unit_id}", u)
    call("PATCH", "/api/v1/units/{unit_id}", u, json_body={"areaSqft": 780})
    tenant = call(
        "POST",
        "/api/v1/tenants",
        json_body={"firstName": "Tom", "lastName": "Tenant", "email": "tom@example.com"},
    )
    t = {"tenant_id": tenant["id"]}
    call("GET", "/api/v1/tenants")
    call("GET", "/api/v1/tenants/{tenant_id}", t)
    call("PATCH", "/api/v1/tenants/{tenant_id}", t, json_body={"phone": "+1 555 0100"})

    # -- a lease and its money
    start = first - timedelta(days=62)
    lease = call(
        "POST",
        "/api/v1/leases",
        json_body={
            "unitId": unit["id"],
            "tenantIds": [tenant["id"]],
            "startDate": start.replace(day=1).isoformat(),
            "rent": 125000,
            "deposit": 125000,
            "chargeDeposit": True,
            "dueDay": 1,
        },
    )
    lid = {"lease_id": lease["id"]}
    call("GET", "/api/v1/leases", params={"status": "draft"})
    call("GET", "/api/v1/leases/{lease_id}", lid)
    call("PATCH", "/api/v1/leases/{lease_id}", lid, json_body={"graceDays": 5})
    call("POST", "/api/v1/leases/{lease_id}/activate", lid)
    call(
        "POST",
        "/api/v1/leases/{lease_id}/charges",
        lid,
        json_body={
            "kind": "utility",
            "amount": 4500,
            "dueDate": first.isoformat(),
            "description": "Water",
        },
    )
    credit = call(
        "POST",
        "/api/v1/leases/{lease_id}/credits",
        lid,
        json_body={"amount": 2000, "description": "Goodwill"},
    )
    call(
        "POST",
        "/api/v1/leases/{lease_id}/payments",
        lid,
        json_body={
            "amount": 125000,
            "receivedOn": first.isoformat(),
            "method": "bank_transfer",
            "reference": "TX-1001",
        },
        headers={"Idempotency-Key": f"payment-{secrets.token_hex(4)}"},
    )
    call("GET", "/api/v1/leases/{lease_id}/ledger", lid)
    call("POST", "/api/v1/ledger-entries/{entry_id}/reverse", {"entry_id": credit["id"]})
    recurring = call(
        "POST",
        "/api/v1/leases/{lease_id}/recurring-charges",
        lid,
        json_body={"kind": "parking", "amount": 5000, "startDate": first.isoformat()},
    )
    rc = {**lid, "charge_id": recurring["id"]}
    call("GET", "/api/v1/leases/{lease_id}/recurring-charges", lid)
    call(
        "PATCH",
        "/api/v1/leases/{lease_id}/recurring-charges/{charge_id}",
        rc,
        json_body={"endDate": (first + timedelta(days=90)).isoformat()},
    )
    call("DELETE", "/api/v1/leases/{lease_id}/recurring-charges/{charge_id}", rc)
    change = call(
        "POST",
        "/api/v1/leases/{lease_id}/rent-changes",
        lid,
        json_body={"effectiveDate": (first + timedelta(days=120)).isoformat(), "rent": 130000},
    )
    call("GET", "/api/v1/leases/{lease_id}/rent-changes", lid)
    call(
        "DELETE",
        "/api/v1/leases/{lease_id}/rent-changes/{change_id}",
        {**lid, "change_id": change["id"]},
    )
    call("POST", "/api/v1/billing/run", json_body={"date": first.isoformat(), "dryRun": True})
    call("GET", "/api/v1/dashboard", auth="key")  # the key reads what its viewer role may
    call("GET", "/api/v1/reports/rent-roll")
    call("GET", "/api/v1/reports/aging")

    # -- owners, their shares, payouts and statements
    rental_owner = call(
        "POST",
        "/api/v1/owners",
        json_body={
            "kind": "person",
            "name": "Rhea Landlord",
            "email": "rhea@example.com",
            "payoutReference": "payee_8f2c1a",
        },
    )
    ow = {"owner_id": rental_owner["id"]}
    call("GET", "/api/v1/owners", params={"search": "rhea"})
    call("GET", "/api/v1/owners/{owner_id}", ow)
    call("PATCH", "/api/v1/owners/{owner_id}", ow, json_body={"phone": "+1 555 0101"})
    call(
        "PATCH",
        "/api/v1/properties/{property_id}",
        p,
        json_body={"managementFee": {"kind": "percent", "amount": 800}},
    )
    call(
        "PUT",
        "/api/v1/properties/{property_id}/ownership",
        p,
        json_body={
            "effectiveFrom": start.replace(day=1).isoformat(),
            "shares": [{"ownerId": rental_owner["id"], "basisPoints": 10000}],
        },
    )
    call("GET", "/api/v1/properties/{property_id}/ownership", p)
    call("GET", "/api/v1/owners/{owner_id}/properties", ow)
    payout = call(
        "POST",
        "/api/v1/owners/{owner_id}/payouts",
        ow,
        json_body={"amount": 100000, "paidOn": first.isoformat(), "reference": "DIST-1"},
        headers={"Idempotency-Key": f"payout-{secrets.token_hex(4)}"},
    )
    call("GET", "/api/v1/owners/{owner_id}/payouts", ow)
    call(
        "POST",
        "/api/v1/owners/{owner_id}/payouts/{payout_id}/reverse",
        {**ow, "payout_id": payout["id"]},
        json_body={"reference": "DIST-1 sent twice"},
    )
    call(
        "GET",
        "/api/v1/owners/{owner_id}/statements/{month}",
        {**ow, "month": first.strftime("%Y-%m")},
    )
    spare = call("POST", "/api/v1/owners", json_body={"kind": "company", "name": "Spare LLC"})
    call("DELETE", "/api/v1/owners/{owner_id}", {"owner_id": spare["id"]})
    end = today + timedelta(days=30)
    call(
        "POST",
        "/api/v1/leases/{lease_id}/renew",
        lid,
        json_body={
            "rent": 130000,
            "startDate": (end + timedelta(days=1)).isoformat(),
            "endDate": (end + timedelta(days=365)).isoformat(),
        },
    )
    call("POST", "/api/v1/leases/{lease_id}/terminate", lid, json_body={"date": end.isoformat()})
    call("GET", "/api/v1/leases/{lease_id}/deposit-statement", lid)
    call(
        "POST",
        "/api/v1/leases/{lease_id}/deposit-disposition",
        lid,
        json_body={"refundMethod": "check", "deductions": []},
    )

    # -- maintenance
    request = call(
        "POST",
        "/api/v1/maintenance-requests",
        json_body={
            "propertyId": prop["id"],
            "unitId": unit["id"],
            "title": "Leaking tap",
            "priority": "normal",
        },
    )
    mr = {"request_id": request["id"]}
    call("GET", "/api/v1/maintenance-requests", params={"priority": "normal"})
    call("GET", "/api/v1/maintenance-requests/{request_id}", mr)
    call("PATCH", "/api/v1/maintenance-requests/{request_id}", mr, json_body={"costEstimate": 9000})
    call(
        "POST",
        "/api/v1/maintenance-requests/{request_id}/transition",
        mr,
        json_body={"to": "in_progress"},
    )
    call(
        "POST",
        "/api/v1/maintenance-requests/{request_id}/comments",
        mr,
        json_body={"body": "Plumber booked for Tuesday"},
    )
    call("GET", "/api/v1/maintenance-requests/{request_id}/comments", mr)

    # -- vendors, work orders, bills, the property P&L
    vendor = call(
        "POST",
        "/api/v1/vendors",
        json_body={
            "name": "Ace Plumbing",
            "trade": "plumbing",
            "contactName": "Pat Piper",
            "email": "pat@aceplumbing.example",
            "insuranceExpiresOn": (today + timedelta(days=365)).isoformat(),
        },
    )
    v = {"vendor_id": vendor["id"]}
    call("GET", "/api/v1/vendors", params={"trade": "plumbing"})
    call("GET", "/api/v1/vendors/{vendor_id}", v)
    call("PATCH", "/api/v1/vendors/{vendor_id}", v, json_body={"phone": "+1 555 0142"})
    order = call(
        "POST",
        "/api/v1/maintenance-requests/{request_id}/work-orders",
        mr,
        json_body={"title": "Replace tap cartridge", "estimate": 15000, "vendorId": vendor["id"]},
    )
    wo = {"work_order_id": order["id"]}
    call("GET", "/api/v1/work-orders", params={"vendorId": vendor["id"]})
    call("GET", "/api/v1/work-orders/{work_order_id}", wo)
    start = f"{(today + timedelta(days=2)).isoformat()}T09:00:00Z"
    call(
        "PATCH",
        "/api/v1/work-orders/{work_order_id}",
        wo,
        json_body={"scheduledStart": start, "description": "Kitchen, under the sink"},
    )
    call(
        "POST", "/api/v1/work-orders/{work_order_id}/transition", wo, json_body={"to": "scheduled"}
    )
    bill = call(
        "POST",
        "/api/v1/bills",
        json_body={
            "vendorId": vendor["id"],
            "propertyId": prop["id"],
            "workOrderId": order["id"],
            "amount": 14250,
            "issuedOn": today.isoformat(),
            "dueOn": (today + timedelta(days=30)).isoformat(),
            "reference": "ACE-1042",
        },
    )
    b = {"bill_id": bill["id"]}
    call("GET", "/api/v1/bills", params={"status": "open"})
    call("GET", "/api/v1/bills/{bill_id}", b)
    call("PATCH", "/api/v1/bills/{bill_id}", b, json_body={"description": "Cartridge and labour"})
    paid = call(
        "POST",
        "/api/v1/bills/{bill_id}/payments",
        b,
        json_body={"amount": 5000, "method": "bank_transfer", "reference": "TX-889"},
    )
    call("GET", "/api/v1/bills/{bill_id}/payments", b)
    call(
        "POST",
        "/api/v1/bills/{bill_id}/payments/{payment_id}/reverse",
        {**b, "payment_id": paid["payment"]["id"]},
    )
    spare_bill = call(
        "POST",
        "/api/v1/bills",
        json_body={
            "vendorId": vendor["id"],
            "propertyId": prop["id"],
            "amount": 900,
            "issuedOn": today.isoformat(),
            "dueOn": today.isoformat(),
        },
    )
    call("POST", "/api/v1/bills/{bill_id}/void", {"bill_id": spare_bill["id"]})
    call(
        "GET",
        "/api/v1/reports/property-pl",
        params={"from": first.isoformat(), "to": today.isoformat()},
    )
    spare_vendor = call(
        "POST", "/api/v1/vendors", json_body={"name": "Spare Sparks", "trade": "electrical"}
    )
    call("DELETE", "/api/v1/vendors/{vendor_id}", {"vendor_id": spare_vendor["id"]})

    # -- webhooks, events, audit
    hook = call(
        "POST",
        "/api/v1/webhooks",
        # A literal public address: no name to resolve, and WEBHOOK_WORKER is off.
        json_body={"url": "https://93.184.215.14/haven", "types": ["lease.activated"]},
    )
    w = {"webhook_id": hook["id"]}
    call("GET", "/api/v1/webhooks")
    call("GET", "/api/v1/webhooks/{webhook_id}", w)
    call("PATCH", "/api/v1/webhooks/{webhook_id}", w, json_body={"description": "Accounting"})
    events = call("GET", "/api/v1/events", params={"limit": 5})
    call(
        "POST",
        "/api/v1/webhooks/{webhook_id}/redeliver",
        w,
        json_body={"eventId": events["items"][0]["id"]},
    )
    call("GET", "/api/v1/webhooks/{webhook_id}/deliveries", w)
    call("POST", "/api/v1/webhooks/{webhook_id}/rotate-secret", w)
    call("GET", "/api/v1/audit-events", params={"limit": 5})

    # -- a resident: the tenant is invited, accepts, and staff revoke the access again
    invitation = call(
        "POST",
        "/api/v1/tenants/{tenant_id}/invitations",
        t,
        json_body={"email": f"tom.{secrets.token_hex(3)}@example.com"},
    )
    call(
        "POST",
        "/api/v1/invitations/accept",
        json_body={"token": invitation["token"], "password": "tom's own passphrase"},
        auth=None,
    )
    call("DELETE", "/api/v1/tenants/{tenant_id}/access", t)

    # -- deletes, then the caller's own password and session
    call("DELETE", "/api/v1/webhooks/{webhook_id}", w)
    call("DELETE", "/api/v1/maintenance-requests/{request_id}", mr)
    spare = call(
        "POST",
        "/api/v1/properties",
        json_body={
            "name": "Birch House",
            "type": "commercial",
            "address": {"line1": "1 Birch Road", "city": "Springfield", "country": "US"},
        },
    )
    spare_unit = call(
        "POST",
        "/api/v1/properties/{property_id}/units",
        {"property_id": spare["id"]},
        json_body={"label": "G1"},
    )
    call("DELETE", "/api/v1/units/{unit_id}", {"unit_id": spare_unit["id"]})
    call("DELETE", "/api/v1/properties/{property_id}", {"property_id": spare["id"]})
    spare_tenant = call(
        "POST", "/api/v1/tenants", json_body={"firstName": "Sam", "lastName": "Spare"}
    )
    call("DELETE", "/api/v1/tenants/{tenant_id}", {"tenant_id": spare_tenant["id"]})
    call("DELETE", "/api/v1/members/{member_id}", m)
    call("DELETE", "/api/v1/api-keys/{key_id}", k)
    call(
        "POST",
        "/api/v1/auth/password",
        json_body={"currentPassword": password, "newPassword": "a brand new passphrase"},
    )
    call("POST", "/api/v1/auth/logout")
    call("POST", "/api/v1/load-balancer/drain", auth="operator")  # last: the instance drains
    return r.exchanges


@contextlib.contextmanager
def scenario_instance() -> Iterator[TestClient[Any]]:
    """A fresh SQLite database and Valkey for one in-process instance."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'haven.db'}"
        upgrade(load_settings({"DATABASE_URL": url}))
        valkey = EmbeddedValkey().start()
        try:
            with example_client(url, valkey.url) as client:
                yield client
        finally:
            valkey.cleanup()


SECRET_FIELDS = frozenset({"accessToken", "csrfToken", "key", "secret", "signingSecret", "token"})


def redact(value: Any) -> Any:
    """The exchange with its credentials replaced (they named a throwaway instance anyway)."""
    if isinstance(value, dict):
        return {
            k: "redacted" if k in SECRET_FIELDS and isinstance(v, str) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def record() -> None:
    with scenario_instance() as client:
        exchanges = redact(run_scenario(client))
    EXAMPLES_FILE.write_text(json.dumps(exchanges, indent=1, sort_keys=True) + "\n")
    bad = {k: v["status"] for k, v in exchanges.items() if v["status"] >= 400}
    print(f"recorded {len(exchanges)} operations to {EXAMPLES_FILE}; not 2xx/3xx: {bad}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    record()
