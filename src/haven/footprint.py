"""What a serving process keeps out of its memory (issue 19: RSS per instance).

Each package below is imported by a library Haven uses only for a feature Haven does not
use, and that library imports it inside `try: ... except ImportError`. `haven serve` marks
them missing before it imports anything that would load them (structlog, redis-py, PyJWT,
Litestar); bench/RESULTS-memory.md has the measured megabytes and
tests/integration/perf/test_footprint.py pins the list.

- pydantic (and pydantic-core): installed for dev tools only; Litestar loads its pydantic
  plugins whenever it imports. Haven's schemas are msgspec Structs (~9.5 MB).
- rich (and pygments, attrs): structlog imports it to render exceptions when the exception
  is still `exc_info` at the renderer; Haven's chain formats it first (format_exc_info,
  plain text), so rich never renders a line of a serving process (~2.5 MB). The CLI's
  `haven lb-test` tables still use it: that is another process.
- cryptography: redis-py (OCSP stapling checks, which Haven does not enable) and PyJWT (RSA,
  EC and EdDSA keys; Haven signs HS256 only) import it; fpdf2 too when an owner statement is
  first rendered, for PDF signing and AES encryption Haven does not use (~7 MB). `haven up
  --tls` makes its certificates in the parent `haven up` process, not in an instance.
- attrs (`attr`, `attrs`): Litestar adds its attrs schema plugin whenever attrs imports;
  Haven's schemas are msgspec Structs, and the OpenAPI document is the same (~0.9 MB).
- watchfiles, python-dotenv, setproctitle: granian's reloader, env-file and process-title
  options, used by its own worker manager; Haven runs granian's embedded server (~0.7 MB).
- opentelemetry: redis-py's observability hooks and Litestar's tracing middleware patch,
  neither configured by Haven; installed by dev tools (~0.3 MB).
- starlette: Litestar registers a handler for Starlette's HTTPException when Starlette is
  installed (it is, for the bench's FastAPI peer); Haven raises none.
"""

from __future__ import annotations

import sys

NOT_IMPORTED = (
    "pydantic",
    "rich",
    "cryptography",
    "attr",
    "attrs",
    "watchfiles",
    "dotenv",
    "setproctitle",
    "opentelemetry",
    "starlette",
)


def keep_out_unused_packages() -> None:
    """Make the imports of NOT_IMPORTED fail in this process, as if those packages were not
    installed (the libraries above then skip what needs them). Only `haven serve` calls
    this, before it imports the server, the logging setup or the app."""
    for name in NOT_IMPORTED:
        if name not in sys.modules:
            sys.modules[name] = None  # type: ignore[assignment]
