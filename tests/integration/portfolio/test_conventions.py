"""API conventions on the portfolio: paging across instances, search, ETags, headers, DELETE."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from support import Account, assert_problem, create_property, create_tenant, create_unit, register
from support_portfolio import app_client, list_all


@pytest.fixture(scope="module")
def pair(database: Any, valkey: Any, secret_key: str) -> Iterator[tuple[Any, Any]]:
    """Two instances on the same Valkey and database, like two pods behind a load balancer."""
    with (
        app_client(database, valkey, secret_key, "conv-a") as a,
        app_client(database, valkey, secret_key, "conv-b") as b,
    ):
        yield a, b


@pytest.fixture
def a(pair: tuple[Any, Any]) -> TestClient[Any]:
    return pair[0]


@pytest.fixture
def b(pair: tuple[Any, Any]) -> TestClient[Any]:
    return pair[1]


@pytest.fixture
def account(a: TestClient[Any]) -> Account:
    return register(a)


def _page_alternating(
    a: TestClient[Any], b: TestClient[Any], account: Account, path: str, sort: str, limit: int
) -> list[dict[str, Any]]:
    """Page 1 from instance A, page 2 from B, page 3 from A..."""
    items: list[dict[str, Any]] = []
    cursor = None
    served = set()
    for n in range(200):
        client = a if n % 2 == 0 else b
        params: dict[str, Any] = {"limit": limit, "sort": sort}
        if cursor:
            params["cursor"] = cursor
        response = client.get(path, headers=account.headers, params=params)
        assert response.status_code == 200, response.text
        served.add(response.headers["x-instance-id"])
        body = response.json()
        assert len(body["items"]) <= limit
        items.extend(body["items"])
        cursor = body["nextCursor"]
        if cursor is None:
            assert len(served) == (2 if n else 1)
            return items
    raise AssertionError("pagination did not end")


def _fill(a: TestClient[Any], account: Account) -> dict[str, Any]:
    """Rows with ties on every sort key: same names, same rents, same last names."""
    props = [create_property(a, account, name=n) for n in ["Tie", "Alpha", "Tie", "Tie", "Zulu"]]
    prop = props[0]
    for label, rent in [("A1", 1000), ("B2", 1000), ("C3", 500), ("D4", 1000), ("E5", 500)]:
        create_unit(a, account, prop["id"], label=label, marketRent=rent)
    for first, last in [("Ann", "Same"), ("Bob", "Same"), ("Cy", "Other"), ("Di", "Same")]:
        create_tenant(a, account, firstName=first, lastName=last)
    return prop


SORTS = [
    ("/api/v1/properties", ["name", "-name", "createdAt", "-createdAt"], 5, "name"),
    ("/api/v1/properties/{p}/units", ["label", "-label", "marketRent", "-marketRent"], 5, "label"),
    ("/api/v1/units", ["marketRent", "-marketRent", "createdAt", "-createdAt"], 5, "label"),
    ("/api/v1/tenants", ["lastName", "-lastName", "createdAt", "-createdAt"], 4, "lastName"),
]


@pytest.mark.parametrize(("template", "sorts", "count", "_key"), SORTS, ids=[s[0] for s in SORTS])
def test_cursor_paging_across_instances_has_no_duplicates_or_gaps(
    a: TestClient[Any],
    b: TestClient[Any],
    account: Account,
    template: str,
    sorts: list[str],
    count: int,
    _key: str,
) -> None:
    prop = _fill(a, account)
    path = template.format(p=prop["id"])
    field = {"marketRent": "marketRent", "createdAt": "createdAt"}
    for sort in sorts:
        whole = a.get(path, headers=account.headers, params={"limit": 100, "sort": sort}).json()
        assert whole["nextCursor"] is None
        assert len(whole["items"]) == count
        for limit in (1, 2, 3):
            paged = _page_alternating(a, b, account, path, sort, limit)
            ids = [item["id"] for item in paged]
            assert len(ids) == len(set(ids)), f"duplicates with sort={sort} limit={limit}"
            assert ids == [item["id"] for item in whole["items"]], f"sort={sort} limit={limit}"
        # The order really follows the key, ties broken by id.
        name = sort.lstrip("-")
        key = field.get(name, name)
        values = [(item[key], uuid.UUID(item["id"])) for item in whole["items"]]
        assert values == sorted(values, reverse=sort.startswith("-"))


def test_a_cursor_from_one_sort_is_refused_by_another(
    a: TestClient[Any], b: TestClient[Any], account: Account
) -> None:
    _fill(a, account)
    first = a.get("/api/v1/properties", headers=account.headers, params={"limit": 1}).json()
    response = b.get(
        "/api/v1/properties",
        headers=account.headers,
        params={"limit": 1, "sort": "-createdAt", "cursor": first["nextCursor"]},
    )
    assert_problem(response, 422, "validation")


def test_search_is_case_insensitive_and_literal(a: TestClient[Any], account: Account) -> None:
    create_property(a, account, name="Sunset Villas")
    create_property(a, account, name="100% Pure_Living")
    create_property(
        a, account, name="Harbor", address={"line1": "1 X", "city": "Sunnyvale", "country": "US"}
    )
    create_tenant(a, account, firstName="Mia", lastName="Wong", email="mia.w@example.org")

    def names(**params: Any) -> set[str]:
        return {p["name"] for p in list_all(a, account, "/api/v1/properties", **params)}

    assert names(search="sunset") == {"Sunset Villas"}
    assert names(search="SUNNY") == {"Harbor"}  # city
    assert names(search="100%") == {"100% Pure_Living"}
    assert names(search="%") == {"100% Pure_Living"}  # % is a character, not a wildcard
    assert names(search="_") == {"100% Pure_Living"}
    assert names(search="nothing like it") == set()
    tenants = list_all(a, account, "/api/v1/tenants", search="MIA.W@")
    assert [t["lastName"] for t in tenants] == ["Wong"]


def test_version_etag_if_match_and_if_none_match(
    a: TestClient[Any], b: TestClient[Any], account: Account
) -> None:
    prop = create_property(a, account)
    path = f"/api/v1/properties/{prop['id']}"
    first = a.get(path, headers=account.headers)
    assert first.json()["version"] == 1
    etag = first.headers["etag"]
    assert etag == '"1"'

    assert b.get(path, headers={**account.headers, "If-None-Match": etag}).status_code == 304
    changed = b.patch(path, headers={**account.headers, "If-Match": etag}, json={"name": "New"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 2
    assert changed.headers["etag"] == '"2"'

    stale = a.patch(path, headers={**account.headers, "If-Match": etag}, json={"name": "Lost"})
    assert_problem(stale, 412, "version-mismatch")
    now = a.get(path, headers={**account.headers, "If-None-Match": etag})
    assert now.status_code == 200
    assert now.json()["name"] == "New"
    assert now.json()["version"] == 2

    # Without If-Match the write applies.
    assert a.patch(path, headers=account.headers, json={"yearBuilt": 2001}).status_code == 200
    assert a.get(path, headers=account.headers).json()["version"] == 3


@pytest.mark.parametrize("kind", ["unit", "tenant", "organization"])
def test_every_resource_has_a_version_and_etag(
    a: TestClient[Any], account: Account, kind: str
) -> None:
    prop = create_property(a, account)
    path, patch = {
        "unit": (f"/api/v1/units/{create_unit(a, account, prop['id'])['id']}", {"bedrooms": 5}),
        "tenant": (f"/api/v1/tenants/{create_tenant(a, account)['id']}", {"phone": "555-1234"}),
        "organization": ("/api/v1/organization", {"currency": "EUR"}),
    }[kind]
    got = a.get(path, headers=account.headers)
    version = got.json()["version"]
    assert got.headers["etag"] == f'"{version}"'
    stale = a.patch(path, headers={**account.headers, "If-Match": '"999"'}, json=patch)
    assert_problem(stale, 412)
    assert a.get(path, headers=account.headers).json() == got.json()
    ok = a.patch(path, headers={**account.headers, "If-Match": got.headers["etag"]}, json=patch)
    assert ok.status_code == 200, ok.text
    assert ok.json()["version"] == version + 1


def test_authenticated_responses_are_private_no_store(a: TestClient[Any], account: Account) -> None:
    prop = create_property(a, account)
    unit = create_unit(a, account, prop["id"])
    tenant = create_tenant(a, account)
    h = account.headers
    responses = [
        a.get("/api/v1/properties", headers=h),
        a.get(f"/api/v1/properties/{prop['id']}", headers=h),
        a.get(f"/api/v1/properties/{prop['id']}/units", headers=h),
        a.get("/api/v1/units", headers=h),
        a.get(f"/api/v1/units/{unit['id']}", headers=h),
        a.get("/api/v1/tenants", headers=h),
        a.get(f"/api/v1/tenants/{tenant['id']}", headers=h),
        a.get("/api/v1/organization", headers=h),
        a.get("/api/v1/members", headers=h),
        a.get("/api/v1/auth/me", headers=h),
        a.get("/api/v1/auth/sessions", headers=h),
        a.post("/api/v1/tenants", headers=h, json={"firstName": "A", "lastName": "B"}),
        a.patch(f"/api/v1/tenants/{tenant['id']}", headers=h, json={"notes": "x"}),
        a.delete(f"/api/v1/tenants/{tenant['id']}", headers=h),
        a.get(f"/api/v1/tenants/{tenant['id']}", headers=h),  # 404 problem
    ]
    for response in responses:
        assert response.status_code < 500
        cache = response.headers.get("cache-control", "")
        assert "private" in cache, (response.request.url, response.status_code, cache)
        assert "no-store" in cache, (response.request.url, response.status_code, cache)


def test_request_id_is_echoed_or_generated(a: TestClient[Any], account: Account) -> None:
    sent = a.get("/api/v1/properties", headers={**account.headers, "X-Request-Id": "trace-42.a"})
    assert sent.headers["x-request-id"] == "trace-42.a"
    generated = a.get("/api/v1/properties", headers=account.headers)
    other = a.get("/api/v1/properties", headers=account.headers)
    assert generated.headers["x-request-id"]
    assert generated.headers["x-request-id"] != other.headers["x-request-id"]
    # Errors carry it too, and a hostile value is replaced rather than reflected.
    missing = a.get(
        "/api/v1/properties/00000000-0000-4000-8000-000000000000",
        headers={**account.headers, "X-Request-Id": "err-1"},
    )
    assert missing.status_code == 404
    assert missing.headers["x-request-id"] == "err-1"
    hostile = a.get("/api/v1/properties", headers={**account.headers, "X-Request-Id": "a b<c>"})
    assert hostile.headers["x-request-id"] not in ("", "a b<c>")


def test_unit_label_is_unique_within_a_property_only(a: TestClient[Any], account: Account) -> None:
    one = create_property(a, account)
    two = create_property(a, account)
    create_unit(a, account, one["id"], label="101")
    dup = a.post(
        f"/api/v1/properties/{one['id']}/units", headers=account.headers, json={"label": "101"}
    )
    assert_problem(dup, 409, "conflict")
    assert create_unit(a, account, two["id"], label="101")["label"] == "101"
    other = create_unit(a, account, one["id"], label="102")
    renamed = a.patch(
        f"/api/v1/units/{other['id']}", headers=account.headers, json={"label": "101"}
    )
    assert_problem(renamed, 409, "conflict")
    assert a.get(f"/api/v1/units/{other['id']}", headers=account.headers).json()["label"] == "102"
    labels = [u["label"] for u in list_all(a, account, f"/api/v1/properties/{one['id']}/units")]
    assert labels == ["101", "102"]
    assert (
        a.get(f"/api/v1/properties/{one['id']}", headers=account.headers).json()["unitCount"] == 2
    )


def test_unit_count_follows_unit_create_and_delete_on_any_instance(
    a: TestClient[Any], b: TestClient[Any], account: Account
) -> None:
    prop = create_property(a, account)
    path = f"/api/v1/properties/{prop['id']}"
    assert prop["unitCount"] == 0
    units = [create_unit(a if i % 2 else b, account, prop["id"]) for i in range(3)]
    assert b.get(path, headers=account.headers).json()["unitCount"] == 3
    assert a.delete(f"/api/v1/units/{units[0]['id']}", headers=account.headers).status_code == 204
    assert b.get(path, headers=account.headers).json()["unitCount"] == 2
    # A refused create does not count.
    dup = b.post(f"{path}/units", headers=account.headers, json={"label": units[1]["label"]})
    assert_problem(dup, 409)
    assert a.get(path, headers=account.headers).json()["unitCount"] == 2


@pytest.mark.parametrize("kind", ["property", "unit", "tenant"])
def test_delete_semantics(
    a: TestClient[Any], b: TestClient[Any], account: Account, kind: str
) -> None:
    prop = create_property(a, account)
    path = {
        "property": f"/api/v1/properties/{prop['id']}",
        "unit": f"/api/v1/units/{create_unit(a, account, prop['id'])['id']}",
        "tenant": f"/api/v1/tenants/{create_tenant(a, account)['id']}",
    }[kind]
    stale = a.delete(path, headers={**account.headers, "If-Match": '"99"'})
    assert_problem(stale, 412)
    assert b.get(path, headers=account.headers).status_code == 200

    gone = a.delete(path, headers=account.headers)
    assert gone.status_code == 204
    assert gone.content == b""
    assert_problem(b.get(path, headers=account.headers), 404, "not-found")
    assert_problem(b.delete(path, headers=account.headers), 404, "not-found")
    assert_problem(b.patch(path, headers=account.headers, json={}), 404, "not-found")


def test_deleting_a_property_removes_its_units(
    a: TestClient[Any], b: TestClient[Any], account: Account
) -> None:
    prop = create_property(a, account)
    keep = create_property(a, account)
    units = [create_unit(a, account, prop["id"]) for _ in range(2)]
    kept = create_unit(a, account, keep["id"])
    assert a.delete(f"/api/v1/properties/{prop['id']}", headers=account.headers).status_code == 204
    for unit in units:
        assert_problem(b.get(f"/api/v1/units/{unit['id']}", headers=account.headers), 404)
    remaining = list_all(b, account, "/api/v1/units")
    assert [u["id"] for u in remaining] == [kept["id"]]
    assert_problem(b.get(f"/api/v1/properties/{prop['id']}/units", headers=account.headers), 404)


def test_a_cached_property_is_refreshed_when_its_unit_count_changes(
    a: TestClient[Any], b: TestClient[Any], account: Account
) -> None:
    prop = create_property(a, account)
    path = f"/api/v1/properties/{prop['id']}"
    etag = a.get(path, headers=account.headers).headers["etag"]
    unit = create_unit(b, account, prop["id"])

    fresh = a.get(path, headers={**account.headers, "If-None-Match": etag})
    assert fresh.status_code == 200
    assert fresh.json()["unitCount"] == 1
    assert fresh.headers["etag"] != etag

    etag = fresh.headers["etag"]
    assert b.delete(f"/api/v1/units/{unit['id']}", headers=account.headers).status_code == 204
    after = a.get(path, headers={**account.headers, "If-None-Match": etag})
    assert after.status_code == 200
    assert after.json()["unitCount"] == 0


def test_if_none_match_never_turns_a_write_into_304(a: TestClient[Any], account: Account) -> None:
    tenant = create_tenant(a, account)
    path = f"/api/v1/tenants/{tenant['id']}"
    for inm in ('"1"', "*"):
        changed = a.patch(
            path, headers={**account.headers, "If-None-Match": inm}, json={"notes": inm}
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["notes"] == inm
    current = a.get(path, headers=account.headers)
    unchanged = a.patch(
        path, headers={**account.headers, "If-None-Match": current.headers["etag"]}, json={}
    )
    assert unchanged.status_code == 200
    assert unchanged.json() == current.json()


def test_the_largest_documented_values_are_stored_and_read_back(
    a: TestClient[Any], b: TestClient[Any], account: Account
) -> None:
    """The edges of every range the schemas allow: accepted, stored exactly, never a 500."""
    name = "Ω" * 200
    prop = create_property(
        a,
        account,
        name=name,
        yearBuilt=2200,
        address={
            "line1": "x" * 200,
            "line2": "y" * 200,
            "city": "z" * 100,
            "region": "r" * 100,
            "postalCode": "9" * 20,
            "country": "ZZ",
        },
    )
    assert prop["name"] == name
    unit = create_unit(
        a,
        account,
        prop["id"],
        label="L" * 50,
        bedrooms=100,
        bathrooms=99.5,
        areaSqft=100_000,
        marketRent=100_000_000_000,
    )
    got = b.get(f"/api/v1/units/{unit['id']}", headers=account.headers).json()
    assert (got["bedrooms"], got["bathrooms"], got["areaSqft"], got["marketRent"]) == (
        100,
        99.5,
        100_000,
        100_000_000_000,
    )
    top = b.get("/api/v1/units", headers=account.headers, params={"sort": "-marketRent"}).json()
    assert top["items"][0]["id"] == unit["id"]
    notes = "line one\n\tline two 🏠 " + "n" * 9_970
    tenant = create_tenant(a, account, notes=notes[:10_000], phone="+1 (555) 010-9999 x12")
    assert (
        b.get(f"/api/v1/tenants/{tenant['id']}", headers=account.headers).json()["notes"]
        == (notes[:10_000])
    )


def test_the_longest_name_a_client_can_store_still_pages(
    a: TestClient[Any], b: TestClient[Any], account: Account
) -> None:
    """200 four-byte characters make a cursor of ~1150 characters: it must be accepted."""
    ids = {create_property(a, account, name=emoji * 200)["id"] for emoji in ("🏠", "🏡")}
    first = a.get(
        "/api/v1/properties", headers=account.headers, params={"limit": 1, "sort": "-name"}
    ).json()
    cursor = first["nextCursor"]
    assert cursor is not None
    assert len(cursor) > 1024
    second = b.get(
        "/api/v1/properties",
        headers=account.headers,
        params={"limit": 1, "sort": "-name", "cursor": cursor},
    )
    assert second.status_code == 200, second.text
    assert {first["items"][0]["id"], second.json()["items"][0]["id"]} == ids
    assert second.json()["nextCursor"] is None
