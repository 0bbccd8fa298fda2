"""Helpers for the event feed tests: read a whole feed, follow it page by page."""

from __future__ import annotations

from typing import Any

from litestar.testing import TestClient

from support import Account


def feed_page(
    client: TestClient[Any], account: Account, after: str | None = None, **params: Any
) -> dict[str, Any]:
    query = dict(params)
    if after is not None:
        query["after"] = after
    response = client.get("/api/v1/events", headers=account.headers, params=query)
    assert response.status_code == 200, response.text
    return dict(response.json())


def read_all(
    client: TestClient[Any], account: Account, after: str | None = None, **params: Any
) -> tuple[list[dict[str, Any]], str]:
    """Every event after `after`, following nextCursor until the feed is drained (bounded)."""
    items: list[dict[str, Any]] = []
    cursor = after
    for _ in range(1000):
        page = feed_page(client, account, cursor, **params)
        items.extend(page["items"])
        cursor = page["nextCursor"]
        if not page["hasMore"]:
            return items, cursor
    raise AssertionError("the feed did not end within 1000 pages")
