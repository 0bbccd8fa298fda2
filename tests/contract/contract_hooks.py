"""schemathesis hooks for `make contract` (loaded through SCHEMATHESIS_HOOKS).

The document gives cursors the custom format `base64url` (unpadded, as lists issue them);
schemathesis draws values of it from this strategy instead of guessing at an unknown format.

`ast.parse` is serialized: with `--workers 2`, Hypothesis describes filter lambdas by parsing
their source in both worker threads at once, and CPython before 3.11.8 then fails with
"SystemError: AST constructor recursion depth mismatch" (python/cpython#106905), which
schemathesis reports as a runtime error of the run, not of Haven.
"""

from __future__ import annotations

import ast
import sys
import threading
from typing import Any

import schemathesis
from hypothesis import strategies as st

schemathesis.openapi.format("base64url", st.from_regex(r"\A[A-Za-z0-9_-]{0,64}\Z"))

if sys.version_info < (3, 11, 8):
    _parse = ast.parse
    _parsing = threading.Lock()

    def _serialized_parse(*args: Any, **kwargs: Any) -> Any:
        with _parsing:
            return _parse(*args, **kwargs)

    ast.parse = _serialized_parse
