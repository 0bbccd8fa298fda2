"""schemathesis hooks for `make contract` (loaded through SCHEMATHESIS_HOOKS).

The document gives cursors the custom format `base64url` (unpadded, as lists issue them);
schemathesis draws values of it from this strategy instead of guessing at an unknown format.
"""

from __future__ import annotations

import schemathesis
from hypothesis import strategies as st

schemathesis.openapi.format("base64url", st.from_regex(r"\A[A-Za-z0-9_-]{0,64}\Z"))
