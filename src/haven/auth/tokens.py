"""Bearer access tokens: HS256 JWTs whose `sid` claim names the Redis session."""

from __future__ import annotations

import time

import jwt

ISSUER = "haven"


def issue(
    secret: str, *, sid: str, user_id: str, ttl: int, not_after: float | None = None
) -> tuple[str, int]:
    """Return (token, expires-at epoch seconds): `ttl` from now, never past `not_after`."""
    now = int(time.time())
    exp = now + ttl if not_after is None else min(now + ttl, int(not_after))
    claims = {"sid": sid, "sub": user_id, "iat": now, "exp": exp, "iss": ISSUER}
    return jwt.encode(claims, secret, algorithm="HS256"), exp


def session_id(secret: str, token: str) -> str | None:
    """The session a token names, or None when it is forged, expired or malformed."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            issuer=ISSUER,
            options={"require": ["sid", "sub", "exp", "iat"]},
        )
    except jwt.PyJWTError:
        return None
    sid = claims.get("sid")
    return sid if isinstance(sid, str) and 0 < len(sid) <= 128 else None
