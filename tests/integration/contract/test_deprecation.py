"""A deprecated operation says so: in the document, and in `Deprecation`/`Sunset` on its answers."""

from __future__ import annotations

from datetime import date

import pytest
from litestar import Litestar, get
from litestar.testing import TestClient

from haven.deprecation import deprecated, deprecation_headers


@get(
    "/old", **deprecated(date(2027, 1, 1), date(2027, 7, 1), successor="/new"), sync_to_thread=False
)
def old() -> dict[str, str]:
    """A thing on its way out."""
    return {"ok": "yes"}


@get("/new", sync_to_thread=False)
def new() -> dict[str, str]:
    """Its successor."""
    return {"ok": "yes"}


def test_a_deprecated_operation_answers_with_deprecation_and_sunset() -> None:
    with TestClient(Litestar(route_handlers=[old, new])) as client:
        answer = client.get("/old")
        assert answer.status_code == 200
        assert answer.headers["Deprecation"] == "@1798761600"  # 2027-01-01T00:00:00Z
        assert answer.headers["Sunset"] == "Thu, 01 Jul 2027 00:00:00 GMT"
        assert answer.headers["Link"] == '</new>; rel="successor-version"'
        assert "Deprecation" not in client.get("/new").headers
        doc = client.get("/schema/openapi.json").json()
    operation = doc["paths"]["/old"]["get"]
    assert operation["deprecated"] is True
    assert {"Deprecation", "Sunset", "Link"} <= set(operation["responses"]["200"]["headers"])
    assert doc["paths"]["/new"]["get"]["deprecated"] is False


def test_a_sunset_before_the_deprecation_is_refused() -> None:
    with pytest.raises(ValueError, match="sunset"):
        deprecation_headers(date(2027, 7, 1), date(2027, 1, 1))
