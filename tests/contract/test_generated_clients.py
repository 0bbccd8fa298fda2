"""Clients generated from the document work: a Python client drives the main flow against a
running cluster, and the TypeScript types compile (and refuse an unknown field).

The Python client also creates an API key and reads the dashboard with it. Neither client
is committed: both are generated here from /openapi.json, as docs/clients.md
shows. openapi-python-client comes with the `contract` extra; openapi-typescript and
TypeScript come from the npm registry through npx (skipped, naming the package, without node).
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from support_contract import PASSWORD, Cluster, contract_cluster

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
OPENAPI_TYPESCRIPT = "openapi-typescript@7.13.0"
TYPESCRIPT = "typescript@5.9.3"
TS_CHECK = """
import type { components, paths } from "./haven";

type LoginIn = components["schemas"]["LoginIn"];
export const ok: LoginIn = { email: "olive@example.com", password: "correct horse" };
// @ts-expect-error the body is closed: an unknown field does not type-check
export const typo: LoginIn = { email: "olive@example.com", pasword: "x" };
type Created =
  paths["/api/v1/properties"]["post"]["responses"][201]["content"]["application/json"];
export const id: Created["id"] = "3f2b8c1e-6a4d-4e8b-9c7a-1d2e3f4a5b6c";
export const problem: components["schemas"]["Problem"] = {
  type: "https://haven.dev/problems/validation",
  title: "The request did not validate",
  status: 422,
};
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with contract_cluster("sqlite", tmp_path_factory.mktemp("clients")) as running:
        yield running


@pytest.fixture(scope="module")
def document(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("doc") / "openapi.json"
    path.write_bytes(httpx.get(f"{cluster.url}/openapi.json", timeout=10).content)
    return path


def _generate_python_client(document: Path, out: Path) -> Any:
    target = out / "haven_client"
    result = subprocess.run(
        [
            str(BIN / "openapi-python-client"),
            "generate",
            "--path",
            str(document),
            "--output-path",
            str(target),
            "--meta",
            "none",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Every operation and model made it: the generator warns about anything it dropped.
    assert "WARNING" not in result.stdout, result.stdout
    sys.path.insert(0, str(out))
    return importlib.import_module("haven_client")


def test_the_generated_python_client_drives_the_main_flow(
    cluster: Cluster, document: Path, tmp_path: Path
) -> None:
    _generate_python_client(document, tmp_path)
    from haven_client import AuthenticatedClient, Client
    from haven_client.api.api_keys import api_v1_api_keys_create as create_key
    from haven_client.api.api_keys import api_v1_api_keys_key_id_revoke as revoke_key
    from haven_client.api.api_keys import api_v1_api_keys_list_keys as list_keys
    from haven_client.api.auth import api_v1_auth_login_login as login
    from haven_client.api.insight import api_v1_dashboard_dashboard as dashboard
    from haven_client.api.leases import (
        api_v1_leases_create as create_lease,
    )
    from haven_client.api.leases import (
        api_v1_leases_lease_id_activate_activate as activate,
    )
    from haven_client.api.ledger import (
        api_v1_leases_lease_id_ledger_ledger as ledger,
    )
    from haven_client.api.ledger import (
        api_v1_leases_lease_id_payments_payment as payment,
    )
    from haven_client.api.properties import api_v1_properties_create as create_property
    from haven_client.api.tenants import api_v1_tenants_create as create_tenant
    from haven_client.api.units import (
        api_v1_properties_property_id_units_create as create_unit,
    )
    from haven_client.models import (
        Address,
        ApiKeyCreated,
        ApiKeyIn,
        ApiKeyInRole,
        LeaseIn,
        LoginIn,
        PaymentIn,
        PaymentInMethod,
        PropertyIn,
        PropertyInType,
        TenantIn,
        UnitIn,
    )

    with Client(base_url=cluster.url) as anonymous:
        signed_in = login.sync(
            client=anonymous, body=LoginIn(email="owner.owner@contract.example", password=PASSWORD)
        )
    assert signed_in is not None
    assert signed_in.access_token
    with AuthenticatedClient(base_url=cluster.url, token=signed_in.access_token) as client:
        prop = create_property.sync(
            client=client,
            body=PropertyIn(
                name="Client Court",
                type_=PropertyInType.RESIDENTIAL,
                address=Address(line1="1 Client Road", city="Springfield", country="US"),
            ),
        )
        assert prop is not None
        assert prop.name == "Client Court"
        unit = create_unit.sync(prop.id, client=client, body=UnitIn(label="C1", market_rent=90000))
        tenant = create_tenant.sync(
            client=client, body=TenantIn(first_name="Cleo", last_name="Client")
        )
        assert unit is not None
        assert tenant is not None
        first = date.today().replace(day=1)
        lease = create_lease.sync(
            client=client,
            body=LeaseIn(
                unit_id=unit.id,
                tenant_ids=[tenant.id],
                start_date=first - timedelta(days=31),
                rent=90000,
            ),
        )
        assert lease is not None
        assert lease.status == "draft"
        active = activate.sync(lease.id, client=client)
        assert active is not None
        assert active.status == "active"
        body = PaymentIn(amount=90000, method=PaymentInMethod.BANK_TRANSFER, received_on=first)
        paid = payment.sync_detailed(lease.id, client=client, body=body, idempotency_key="client-1")
        again = payment.sync_detailed(
            lease.id, client=client, body=body, idempotency_key="client-1"
        )
        assert paid.status_code == 201
        assert again.status_code == 201
        assert again.headers.get("Idempotent-Replayed") == "true"
        assert paid.parsed is not None
        assert again.parsed is not None
        assert again.parsed.id == paid.parsed.id  # the retry did not pay twice
        book = ledger.sync(lease.id, client=client)
        assert book is not None
        payments = [e for e in book.entries if e.type_ == "payment"]
        assert [p.amount for p in payments] == [-90000]  # payments lower the balance
        board = dashboard.sync(client=client)
        assert board is not None
        assert board.properties >= 1
        assert board.units >= 1

        # An integration: a viewer-role API key reads the same dashboard through the client.
        created = create_key.sync(
            client=client, body=ApiKeyIn(name="Client sync", role=ApiKeyInRole.VIEWER)
        )
        assert isinstance(created, ApiKeyCreated)
        assert created.key.startswith("hvn_test_")
        with AuthenticatedClient(base_url=cluster.url, token=created.key) as integration:
            seen = dashboard.sync(client=integration)
            assert seen is not None
            assert (seen.properties, seen.units) == (board.properties, board.units)
            assert list_keys.sync_detailed(client=integration).status_code == 403  # people only
            assert revoke_key.sync_detailed(created.id, client=client).status_code == 204
            assert dashboard.sync_detailed(client=integration).status_code == 401


def test_the_typescript_types_compile(document: Path, tmp_path: Path) -> None:
    npx = shutil.which("npx")
    if npx is None:
        pytest.skip(f"node/npm not installed: apt-get install nodejs npm ({OPENAPI_TYPESCRIPT})")
    types = tmp_path / "haven.d.ts"
    generated = subprocess.run(
        [npx, "--yes", OPENAPI_TYPESCRIPT, str(document), "-o", str(types)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    assert "/api/v1/leases/{lease_id}/payments" in types.read_text()
    (tmp_path / "check.ts").write_text(TS_CHECK)
    compiled = subprocess.run(
        [npx, "--yes", "-p", TYPESCRIPT, "tsc", "--noEmit", "--strict", "check.ts"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
