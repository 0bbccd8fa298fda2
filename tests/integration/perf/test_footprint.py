"""What an instance loads: only what serving needs (RSS is measured in bench/, not here;
bench/memory.py prints it, bench/RESULTS-memory.md has the figures).

Litestar invents response examples with polyfactory and Faker for a `ResponseSpec` unless
told not to (haven.web.answers); the two would sit in every instance's memory for examples
the document replaces with recorded ones. Migrations (Alembic, Mako) load only for
`haven migrate` or `haven serve --migrate`.

`haven serve` also keeps out, by counting modules rather than megabytes:
- pydantic (and pydantic-core): installed for dev tools, never used by Haven, yet Litestar
  loads its pydantic plugins whenever it imports (haven.footprint.keep_out_unused_packages);
  the OpenAPI document is the same without them;
- rich (structlog's exception renderer, never reached: Haven formats exceptions first) and
  cryptography (redis-py's OCSP checks, PyJWT's public-key algorithms, fpdf2's signing and
  AES): marked missing before the server imports them; HS256 tokens and the statement PDF
  still work;
- attrs (Litestar's attrs schema plugin), granian's reloader and env-file helpers
  (watchfiles, python-dotenv), opentelemetry (redis-py's and Litestar's hooks) and
  Starlette (a handler Litestar registers for it): none used by Haven, the document the same;
- the cluster commands' modules (`haven up`, `render-config`, `lb-test`: httpx, rich, the
  TLS helpers): the CLI imports them only when one of them runs;
- Jinja2: the Swagger UI package is only located for its static files, not imported;
- httpx and its TLS context: the webhook worker makes its HTTP client on its first
  delivery, not at start.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

NOT_SERVED = ("faker", "polyfactory", "alembic", "mako", "hypothesis")
# Kept out of a serving instance (see the module docstring); `haven serve` builds the app
# after haven.footprint.keep_out_unused_packages(), which `haven serve` calls first thing.
NOT_LOADED_BY_SERVE = (
    *NOT_SERVED,
    "pydantic",
    "pydantic_core",
    "jinja2",
    "swagger_ui",
    "httpx",
    "rich",
    "pygments",
    "cryptography",
    "attr",
    "attrs",
    "watchfiles",
    "dotenv",
    "opentelemetry",
    "starlette",
)

PROGRAM = """
import asyncio, hashlib, json, sys
SERVE = sys.argv[1] == "serve"
if SERVE:
    import haven.cli  # what `python -m haven serve` has loaded before it runs the command
    from haven.footprint import keep_out_unused_packages
    keep_out_unused_packages()
    import haven.server
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
document = json.dumps(app.openapi_schema.to_schema(), sort_keys=True, default=str)
if SERVE:
    # Every instance starts a webhook worker (its engine and poll loop; no delivery due).
    from prometheus_client import CollectorRegistry
    from haven.webhooks.worker import DeliveryWorker, WebhookMetrics

    async def worker() -> None:
        w = DeliveryWorker(settings, WebhookMetrics(CollectorRegistry()))
        await w.start()
        await asyncio.sleep(0)
        await w.stop()

    asyncio.run(worker())
    # What needs none of the packages kept out still works: HS256 tokens, the statement PDF.
    from haven.auth import tokens
    token, _ = tokens.issue("k" * 64, sid="s1", user_id="u1", ttl=60)
    assert tokens.session_id("k" * 64, token) == "s1"
    from fpdf import FPDF
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=10)
    pdf.cell(text="Owner statement")
    assert bytes(pdf.output()).startswith(b"%PDF")
print(json.dumps({
    "modules": sorted({name.split(".")[0] for name, m in sys.modules.items() if m is not None}),
    "document": hashlib.sha256(document.encode()).hexdigest(),
}))
"""


def _run(mode: str, cwd: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, mode],
        cwd=cwd,  # the worker's engine may create unused.db there
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def test_a_built_app_has_not_loaded_example_factories_or_migrations(tmp_path: Path) -> None:
    loaded = set(_run("app", tmp_path)["modules"])  # type: ignore[call-overload]
    assert "litestar" in loaded  # the probe does see what is there
    assert sorted(loaded & set(NOT_SERVED)) == []


def test_a_serving_instance_loads_none_of_the_packages_it_keeps_out(tmp_path: Path) -> None:
    served = _run("serve", tmp_path)
    loaded = set(served["modules"])  # type: ignore[call-overload]
    assert "litestar" in loaded
    assert "sqlalchemy" in loaded
    assert sorted(loaded & set(NOT_LOADED_BY_SERVE)) == []
    # Litestar without its pydantic plugins documents the API exactly as with them.
    assert served["document"] == _run("app", tmp_path)["document"]


def test_the_cluster_commands_load_when_run() -> None:
    """`haven up`, `render-config` and `lb-test` are imported on demand, and listed as before."""
    done = subprocess.run(
        [sys.executable, "-m", "haven", "--help"], capture_output=True, text=True, check=True
    )
    for name in ("up", "render-config", "lb-test", "serve", "jobs"):
        assert f"  {name} " in done.stdout
    for name in ("up", "render-config", "lb-test"):
        done = subprocess.run(
            [sys.executable, "-m", "haven", name, "--help"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "Usage: python -m haven " + name in done.stdout
