"""Issue 16 across three real `haven serve` instances behind nginx, on SQLite and PostgreSQL:
the people around a property (a resident, two owners, a vendor) and the money between them,
each step sent through the load balancer or straight to a different instance than the last.

What a user notices: a resident invited on one instance signs in on another and sees only
their own lease and requests on every instance; revoking them ends their session everywhere
at once; a vendor bill paid on one instance shows up in the owner statement (JSON, CSV, PDF)
and the property P&L another instance renders, to the cent."""

from __future__ import annotations

import csv
import io
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from haven.devcluster.cluster import Cluster, ClusterSpec
from haven.devcluster.render import find_nginx
from support_cluster import clean_env, consecutive_free_ports, e2e_database

pytestmark = pytest.mark.slow

API = "/api/v1"
PASSWORD = "correct horse battery"


@pytest.fixture(params=["sqlite", "postgresql"])
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    if find_nginx() is None:
        pytest.skip("nginx not found: apt-get install nginx")
    if request.param == "sqlite":
        database_url, drop = f"sqlite+aiosqlite:///{tmp_path / 'haven.db'}", lambda: None
    else:
        import os

        if not os.environ.get("HAVEN_TEST_DATABASE_URL"):
            pytest.skip("PostgreSQL tests need HAVEN_TEST_DATABASE_URL")
        database_url, drop = e2e_database(tmp_path, "people")
    base = consecutive_free_ports(5)
    spec = ClusterSpec(
        instances=3,
        base_port=base + 2,
        lb="nginx",
        lb_port=base,
        stats_port=base + 1,
        runtime_dir=tmp_path / "run",
        drain_delay_ms=500,
        shutdown_timeout_ms=5000,
        demo_data=False,
        extra_env=clean_env(
            HAVEN_ENV="test",
            DATABASE_URL=database_url,
            LOG_LEVEL="warning",
            RATE_LIMIT_ENABLED="false",
            DB_POOL_MIN="1",
            DB_POOL_MAX="5",
        ),
    )
    c = Cluster(spec, log=lambda _line: None)
    try:
        c.start()
        yield c
    finally:
        c.stop()
        for child in [*c.instances, c.balancer]:
            if child is not None and child.alive():
                child.stop(signal.SIGKILL, 5)
        if c.valkey is not None:
            c.valkey.cleanup()
        drop()


def _ok(response: httpx.Response, *statuses: int) -> Any:
    assert response.status_code in statuses, f"{response.status_code}: {response.text[:500]}"
    return response.json() if response.content else None


def _key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


class People:
    """The clients: `lb` through nginx, `direct[i]` straight to instance i."""

    def __init__(self, cluster: Cluster) -> None:
        self.lb = httpx.Client(base_url=f"http://127.0.0.1:{cluster.spec.lb_port}", timeout=20.0)
        self.direct = [
            httpx.Client(base_url=f"http://127.0.0.1:{cluster.instance_port(i)}", timeout=20.0)
            for i in range(3)
        ]

    def all(self) -> list[httpx.Client]:
        return [self.lb, *self.direct]

    def close(self) -> None:
        for http in self.all():
            http.close()


def _bearer(body: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {body['accessToken']}"}


def test_residents_owners_and_vendors_across_three_instances(cluster: Cluster) -> None:
    p = People(cluster)
    try:
        one, two, three = p.direct
        registered = p.lb.post(
            f"{API}/auth/register",
            json={
                "organizationName": "Harbor Homes",
                "name": "Olive",
                "email": f"owner-{uuid.uuid4().hex[:8]}@example.com",
                "password": PASSWORD,
            },
        )
        staff = _bearer(_ok(registered, 201))
        p.lb.cookies.clear()

        prop = _ok(
            one.post(
                f"{API}/properties",
                headers=staff,
                json={
                    "name": "Harbor Court",
                    "type": "residential",
                    "address": {"line1": "1 Quay St", "city": "Portland", "country": "US"},
                    "managementFee": {"kind": "percent", "amount": 1000},
                },
            ),
            201,
        )
        unit = _ok(
            two.post(
                f"{API}/properties/{prop['id']}/units",
                headers=staff,
                json={"label": "1A", "bedrooms": 2, "marketRent": 150000},
            ),
            201,
        )
        tenants = [
            _ok(
                three.post(
                    f"{API}/tenants",
                    headers=staff,
                    json={
                        "firstName": name,
                        "lastName": "Quay",
                        "email": f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.com",
                    },
                ),
                201,
            )
            for name in ("Ada", "Bo")
        ]
        other_unit = _ok(
            one.post(
                f"{API}/properties/{prop['id']}/units",
                headers=staff,
                json={"label": "1B", "bedrooms": 1, "marketRent": 100000},
            ),
            201,
        )
        leases = []
        for tenant, on in ((tenants[0], unit), (tenants[1], other_unit)):
            lease = _ok(
                p.lb.post(
                    f"{API}/leases",
                    headers=staff,
                    json={
                        "unitId": on["id"],
                        "tenantIds": [tenant["id"]],
                        "startDate": "2026-01-01",
                        "endDate": None,
                        "rent": 150000,
                        "deposit": 0,
                        "dueDay": 1,
                    },
                ),
                201,
            )
            _ok(p.lb.post(f"{API}/leases/{lease['id']}/activate", headers=staff), 200)
            leases.append(lease)

        # Owners: 60/40 from January; October's rent paid on two instances.
        owners = [
            _ok(
                http.post(f"{API}/owners", headers=staff, json={"kind": "person", "name": name}),
                201,
            )
            for http, name in ((one, "Rhea"), (two, "Sol"))
        ]
        _ok(
            three.put(
                f"{API}/properties/{prop['id']}/ownership",
                headers=staff,
                json={
                    "effectiveFrom": "2026-01-01",
                    "shares": [
                        {"ownerId": owners[0]["id"], "basisPoints": 6000},
                        {"ownerId": owners[1]["id"], "basisPoints": 4000},
                    ],
                },
            ),
            200,
        )
        for http, lease in zip((one, two), leases, strict=True):
            _ok(
                http.post(
                    f"{API}/leases/{lease['id']}/payments",
                    headers={**staff, **_key()},
                    json={"amount": 150000, "receivedOn": "2026-10-02", "method": "bank_transfer"},
                ),
                201,
            )

        # A resident: invited on one instance, signed in through nginx, scoped everywhere.
        invited = _ok(
            one.post(
                f"{API}/tenants/{tenants[0]['id']}/invitations",
                headers={**staff, **_key()},
                json={},
            ),
            201,
        )
        accepted = _ok(
            p.lb.post(
                f"{API}/invitations/accept", json={"token": invited["token"], "password": PASSWORD}
            ),
            201,
        )
        p.lb.cookies.clear()
        resident = _bearer(accepted)
        request = _ok(
            two.post(
                f"{API}/maintenance-requests",
                headers={**resident, **_key()},
                json={"propertyId": prop["id"], "unitId": unit["id"], "title": "Leaking tap"},
            ),
            201,
        )
        for http in p.all():
            mine = _ok(http.get(f"{API}/leases", headers=resident), 200)
            assert [lease["id"] for lease in mine["items"]] == [leases[0]["id"]]
            assert http.get(f"{API}/leases/{leases[1]['id']}", headers=resident).status_code == 404
            assert http.get(f"{API}/owners", headers=resident).status_code == 404
            seen = _ok(http.get(f"{API}/maintenance-requests/{request['id']}", headers=staff), 200)
            assert seen["createdByResident"] is True

        # Revoked on one instance: the resident is signed out on every instance at once.
        assert (
            three.delete(f"{API}/tenants/{tenants[0]['id']}/access", headers=staff).status_code
            == 204
        )
        for http in p.all():
            assert http.get(f"{API}/auth/me", headers=resident).status_code == 401

        # A vendor: insured, sent by a work order spawned from the resident's request, billed
        # for it (the order is then invoiced), and paid in October on another instance.
        vendor = _ok(
            one.post(
                f"{API}/vendors",
                headers=staff,
                json={
                    "name": "Ace Plumbing",
                    "trade": "plumbing",
                    "insuranceExpiresOn": "2099-12-31",
                },
            ),
            201,
        )
        lapsed = _ok(
            two.post(
                f"{API}/vendors",
                headers=staff,
                json={
                    "name": "Lapsed Ltd",
                    "trade": "plumbing",
                    "insuranceExpiresOn": "2026-01-31",
                },
            ),
            201,
        )
        refused = three.post(
            f"{API}/maintenance-requests/{request['id']}/work-orders",
            headers={**staff, **_key()},
            json={"title": "Fix the tap", "vendorId": lapsed["id"]},
        )
        assert refused.status_code == 409, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        order = _ok(
            p.lb.post(
                f"{API}/maintenance-requests/{request['id']}/work-orders",
                headers={**staff, **_key()},
                json={"title": "Fix the tap", "estimate": 32000, "vendorId": vendor["id"]},
            ),
            201,
        )
        for http, body in (
            (one, {"to": "scheduled", "scheduledStart": "2026-10-10T09:00:00Z"}),
            (two, {"to": "done"}),
        ):
            _ok(
                http.post(f"{API}/work-orders/{order['id']}/transition", headers=staff, json=body),
                200,
            )
        bill = _ok(
            three.post(
                f"{API}/bills",
                headers={**staff, **_key()},
                json={
                    "vendorId": vendor["id"],
                    "propertyId": prop["id"],
                    "workOrderId": order["id"],
                    "amount": 30000,
                    "issuedOn": "2026-10-12",
                    "dueOn": "2026-11-11",
                },
            ),
            201,
        )
        invoiced = _ok(p.lb.get(f"{API}/work-orders/{order['id']}", headers=staff), 200)
        assert invoiced["status"] == "invoiced"
        paid_key = _key()
        for http in (one, two):  # the same payment sent twice, to two instances: paid once
            _ok(
                http.post(
                    f"{API}/bills/{bill['id']}/payments",
                    headers={**staff, **paid_key},
                    json={"amount": 30000, "paidOn": "2026-10-15", "method": "check"},
                ),
                201,
            )
        settled = _ok(three.get(f"{API}/bills/{bill['id']}", headers=staff), 200)
        assert (settled["status"], settled["amountPaid"]) == ("paid", 30000)

        # The statement of each owner, read on different instances, adds up to the property.
        month = "2026-10"
        statements = [
            _ok(http.get(f"{API}/owners/{o['id']}/statements/{month}", headers=staff), 200)
            for http, o in zip((one, two), owners, strict=True)
        ]
        collected = [s["rentCollected"] for s in statements]
        assert collected == [180000, 120000]
        fees = [s["managementFee"] for s in statements]
        assert fees == [18000, 12000]  # 10 % of 3,000.00 collected, split 60/40
        assert [s["expenses"] for s in statements] == [18000, 12000]  # the 300.00 bill, 60/40
        assert [s["net"] for s in statements] == [144000, 96000]
        assert [s["closingBalance"] for s in statements] == [144000, 96000]
        pl = _ok(
            p.lb.get(
                f"{API}/reports/property-pl",
                headers=staff,
                params={"from": "2026-10-01", "to": "2026-10-31"},
            ),
            200,
        )
        assert (pl["totals"]["income"], pl["totals"]["expenses"], pl["totals"]["net"]) == (
            300000,
            30000,
            270000,
        )
        csv_body = three.get(
            f"{API}/owners/{owners[0]['id']}/statements/{month}",
            headers={**staff, "Accept": "text/csv"},
        )
        assert csv_body.status_code == 200
        assert csv_body.headers["content-type"].startswith("text/csv")
        assert "1800.00" in csv_body.text or "180000" in csv_body.text
        assert "1440.00" in csv_body.text or "144000" in csv_body.text
        assert list(csv.reader(io.StringIO(csv_body.text)))
        pdf = p.lb.get(
            f"{API}/owners/{owners[0]['id']}/statements/{month}",
            headers={**staff, "Accept": "application/pdf"},
        )
        assert pdf.status_code == 200
        assert pdf.content.startswith(b"%PDF")
        from pypdf import PdfReader

        text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
        assert "1,800.00" in text or "1800.00" in text
        assert "1,440.00" in text or "1440.00" in text
    finally:
        p.close()
