"""What an instance loads: only what serving needs (RSS is measured in bench/, not here).

Litestar invents response examples with polyfactory and Faker for a `ResponseSpec` unless
told not to (haven.web.answers); the two would sit in every instance's memory for examples
the document replaces with recorded ones. Migrations (Alembic, Mako) load only for
`haven migrate` or `haven serve --migrate`.
"""

from __future__ import annotations

import json
import subprocess
import sys

NOT_SERVED = ("faker", "polyfactory", "alembic", "mako", "hypothesis")

PROGRAM = """
import json, sys
from haven.app import create_app
from haven.config import load_settings
settings = load_settings({
    "HAVEN_ENV": "test",
    "DATABASE_URL": "sqlite+aiosqlite:///unused.db",
    "SECRET_KEY": "s" * 64,
    "REDIS_URL": "redis://127.0.0.1:1/0",
})
app = create_app(settings)
assert app.openapi_schema.paths  # the document is built at start, as in `haven serve`
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_a_built_app_has_not_loaded_example_factories_or_migrations() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert "litestar" in loaded  # the probe does see what is there
    assert sorted(loaded & set(NOT_SERVED)) == []
