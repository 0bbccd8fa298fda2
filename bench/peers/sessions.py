"""Sessions for the bench's peers, written to Redis the way each peer's stack stores them.

Neither peer has a sign-in route (Haven's seed signs in through its own API, the bench's
subject is the authenticated read and write, not password hashing): the bench and the
peer tests write a session for the seeded owner straight into Redis, exactly as the
stack would have after a sign-in, and send its cookie.

- Express (express-session + connect-redis): key `sess:<sid>`, the session's JSON with
  its `cookie` object plus `userId` and `organizationId`, TTL = the cookie's max age; the
  cookie is `connect.sid=` + URL-encoded `s:<sid>.<HMAC-SHA256(sid, secret), base64, no
  padding>` (the cookie-signature package's format).
- FastAPI: key `fastapi:session:<sid>`, JSON `{"user_id", "organization_id"}`, TTL one
  day; the cookie is `session_id=<sid>` (the peer reads it with FastAPI's `Cookie()`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import redis

EXPRESS_SECRET = "bench express session secret"  # noqa: S105 (a bench fixture, not a secret)
DAY_S = 24 * 3600


def express_session(client: redis.Redis, user_id: str, organization_id: str) -> str:
    """Store an express-session record; return the `Cookie` header value for it."""
    sid = secrets.token_urlsafe(24)
    expires = datetime.now(UTC) + timedelta(seconds=DAY_S)
    record = {
        "cookie": {
            "originalMaxAge": DAY_S * 1000,
            "expires": expires.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "httpOnly": True,
            "path": "/",
            "sameSite": "lax",
        },
        "userId": user_id,
        "organizationId": organization_id,
    }
    client.set(f"sess:{sid}", json.dumps(record), ex=DAY_S)
    mac = hmac.new(EXPRESS_SECRET.encode(), sid.encode(), hashlib.sha256).digest()
    signed = f"s:{sid}.{base64.b64encode(mac).decode().rstrip('=')}"
    return f"connect.sid={quote(signed, safe='')}"


def fastapi_session(client: redis.Redis, user_id: str, organization_id: str) -> str:
    """Store the FastAPI peer's session record; return the `Cookie` header value for it."""
    sid = secrets.token_urlsafe(24)
    record = {"user_id": user_id, "organization_id": organization_id}
    client.set(f"fastapi:session:{sid}", json.dumps(record), ex=DAY_S)
    return f"session_id={sid}"
