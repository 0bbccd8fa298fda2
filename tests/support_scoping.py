"""What one caller must never see of someone else's records: by id, in lists, through filters
and search. For organization isolation and, with residents, for one tenant's records kept from
another tenant.

`Private` names the records (a lease with its ledger entries, a maintenance request with its
comment); `unseen_failures` asks for them every way the API offers and returns what leaked,
so a test asserts `== []` and prints every leak at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from litestar.testing import TestClient

from support import Account

API = "/api/v1"


@dataclass(frozen=True)
class Private:
    """Records that belong to someone else: never returned, never acknowledged (404)."""

    lease_id: str
    request_id: str
    comment_id: str
    entry_ids: tuple[str, ...] = ()
    tenant_id: str | None = None
    unit_id: str | None = None
    property_id: str | None = None
    # A word found in the lease's tenant name and in the request's title, for `search`.
    search_terms: tuple[str, ...] = field(default_factory=tuple)

    def ids(self) -> set[str]:
        found = {self.lease_id, self.request_id, self.comment_id, *self.entry_ids}
        return {i for i in found if i}


def by_id_paths(p: Private) -> list[str]:
    """Every read that names one of the records in its path."""
    return [
        f"{API}/leases/{p.lease_id}",
        f"{API}/leases/{p.lease_id}/ledger",
        f"{API}/leases/{p.lease_id}/deposit-statement",
        f"{API}/leases/{p.lease_id}/recurring-charges",
        f"{API}/leases/{p.lease_id}/rent-changes",
        f"{API}/maintenance-requests/{p.request_id}",
        f"{API}/maintenance-requests/{p.request_id}/comments",
    ]


def list_queries(p: Private) -> list[tuple[str, dict[str, str]]]:
    """Every list (with each filter and search that could reach the records)."""
    queries: list[tuple[str, dict[str, str]]] = [
        (f"{API}/leases", {}),
        (f"{API}/maintenance-requests", {}),
    ]
    for name, value in (
        ("tenantId", p.tenant_id),
        ("unitId", p.unit_id),
        ("propertyId", p.property_id),
    ):
        if value:
            queries.append((f"{API}/leases", {name: value}))
            if name != "tenantId":
                queries.append((f"{API}/maintenance-requests", {name: value}))
    for term in p.search_terms:
        queries.append((f"{API}/leases", {"search": term}))
        queries.append((f"{API}/maintenance-requests", {"search": term}))
    return queries


def _pages(client: TestClient[Any], account: Account, path: str, params: dict[str, str]) -> Any:
    """Each page's (status, text), following nextCursor (bounded); stops at a non-200."""
    cursor = None
    for _ in range(100):
        query = {**params, "limit": "100", **({"cursor": cursor} if cursor else {})}
        response = client.get(path, headers=account.headers, params=query)
        yield response.status_code, response.text
        if response.status_code != 200:
            return
        cursor = response.json().get("nextCursor")
        if not cursor:
            return
    raise AssertionError(f"{path} did not stop paging")


def unseen_failures(client: TestClient[Any], account: Account, private: Private) -> list[str]:
    """What `account` got to see of `private`: [] when every read by id is a 404 and no list,
    filter or search (a 200, or a 404 for a caller the list is closed to) names a record."""
    failures: list[str] = []
    secret = private.ids()
    for path in by_id_paths(private):
        response = client.get(path, headers=account.headers)
        if response.status_code != 404:
            failures.append(f"GET {path}: {response.status_code}, not 404")
    for path, params in list_queries(private):
        for status, text in _pages(client, account, path, params):
            if status not in (200, 404):
                failures.append(f"GET {path} {params}: {status}")
            leaked = sorted(i for i in secret if i in text)
            if leaked:
                failures.append(f"GET {path} {params} shows {leaked}")
    return failures
