"""Every route's dependencies are resolved one at a time, each after what it needs
(haven.app.resolve_dependencies_in_order): no anyio task group per request."""

from __future__ import annotations

from pathlib import Path

from litestar.routes import HTTPRoute

from haven.app import create_app
from haven.config import load_settings


def test_every_route_resolves_one_dependency_at_a_time_after_its_own(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "HAVEN_ENV": "test",
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'haven.db'}",
            "REDIS_URL": "redis://127.0.0.1:1/0",  # never connected: the app is only built
            "SECRET_KEY": "k" * 48,
        }
    )
    app = create_app(settings)
    checked = 0
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler, model in route.route_handler_map.values():
            batches = model.dependency_batches
            assert all(len(batch) == 1 for batch in batches), (route.path, handler)
            order = [next(iter(batch)).key for batch in batches]
            seen: set[str] = set()
            for batch in batches:
                (dependency,) = batch
                needs = {d.key for d in dependency.dependencies}
                assert needs <= seen, (route.path, dependency.key, needs - seen, order)
                seen.add(dependency.key)
            checked += bool(batches)
    # The API's routes have dependencies (principal, db, reader, page...): checked, not skipped.
    assert checked > 50, checked
