"""/docs works offline: every script, stylesheet and icon comes from Haven itself."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from litestar.testing import TestClient


def test_docs_assets_are_all_local_and_served(client: TestClient[Any]) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    urls = re.findall(r"""<(?:script|link)\b[^>]*?(?:src|href)=["']([^"']+)["']""", html)
    assert any(u.endswith(".js") for u in urls), urls
    assert any(u.endswith(".css") for u in urls), urls
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme, f"{url} is loaded from another host"
        assert not parts.netloc, f"{url} is loaded from another host"
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.content, url
    # Nothing else on the page points off-host either.
    assert not re.search(r"https?://(?!testserver)", html.split("spec:")[0])


def test_openapi_json_is_valid_json_with_the_problem_schema(client: TestClient[Any]) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.")
    assert doc["info"]["title"] == "Haven API"
    problem = doc["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status"}
    post = doc["paths"]["/api/v1/properties"]["post"]
    assert {"201", "400", "401", "403", "413", "415", "422"} <= set(post["responses"])
    assert post["description"]
    # Litestar's own error shape is gone: every documented error is problem+json.
    for path, item in doc["paths"].items():
        for method, op in item.items():
            for status, answer in op.get("responses", {}).items():
                if path.startswith("/api/v1/") and status.startswith("4"):
                    assert "application/problem+json" in answer.get("content", {}), (
                        method,
                        path,
                        status,
                    )
