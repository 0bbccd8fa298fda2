"""What the edge's one round trip leaves for the rest of the request, and how a route asks for it.

The edge (haven.cluster.gate) runs one Lua script per authenticated request: rate-limit
step, session touch and, for a cached view, the organization's cache version and cached
bytes. It leaves a `Prefetch` in the ASGI scope state; the `principal` dependency and the
cached routes read that instead of asking Redis again. A GET route declares itself a
cached view on its handler (`opt=cached_view(name)`). These values live here, below auth
and the domains, so both can read them; the script itself (composed from the session
store's fragment, which sits in auth/) lives with the edge in haven.cluster.gate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SCOPE_KEY = "haven_prefetch"

CACHED_VIEW = "cached_view"  # the handler `opt` key that declares a cached view


@dataclass(frozen=True, slots=True)
class CachedView:
    """A GET route the edge may answer from its cache entry, read in the gate's round trip.

    Declared on the handler, `@get("/", opt=cached_view(cache_name))`; the edge collects the
    declarations from the app's routes at start-up (haven.cluster.gate.cached_views), so the
    fast path follows the route wherever it is mounted. `name()` is the entry's name now.
    """

    name: Callable[[], str]


def cached_view(name: Callable[[], str]) -> dict[str, Any]:
    """Handler `opt` that declares a cached view (see CachedView)."""
    return {CACHED_VIEW: CachedView(name)}


@dataclass(frozen=True, slots=True)
class EdgeClaim:
    """What the gate did with a POST's Idempotency-Key (haven.store.idempotency.CLAIM_LUA):
    `cached` is the stored answer's copy when there was one; otherwise `token` is the
    in-flight marker's token when the gate took it, None when another request holds it."""

    cache_key: str
    cached: bytes | None
    token: str | None


@dataclass(slots=True)
class Prefetch:
    """What the gate read for this request; `session` None means revoked or expired.

    `authz` is the user's authorization mirror (haven.auth.authz), None when missing."""

    sid: str
    via_cookie: bool
    session: bytes | None
    authz: bytes | None
    version: int | None  # the organization's cache version (None: session unreadable)
    cache_name: str
    cached: bytes | None
    # A keyed POST's claim, until the unit of work takes it over (`take_claim`).
    claim: EdgeClaim | None = None

    def take_claim(self) -> EdgeClaim | None:
        """The gate's Idempotency-Key claim, handed over once (whoever takes it releases it)."""
        claim, self.claim = self.claim, None
        return claim


def prefetch_of(scope: Any) -> Prefetch | None:
    state = scope.get("state") if isinstance(scope, dict) else None
    if not state:
        return None
    value = state.get(SCOPE_KEY)
    return value if isinstance(value, Prefetch) else None
