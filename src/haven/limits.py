"""Bounds on what a client may send, shared by the layer that reads the request and the
layers below it.

`haven.web` refuses a longer cursor as a 422 before a handler runs; `haven.db.pagination`
refuses it again for any other caller. Neither imports the other: web sits beside db in
the layers (pyproject.toml, [tool.importlinter]).
"""

from __future__ import annotations

# The longest cursor a list issues: a 200-character name of 4-byte characters is ~1150
# base64 characters with its sort name and id; anything longer was never issued.
MAX_CURSOR = 2048
