"""Who may do what, now: membership, role and credential epoch, from the database.

The database is the one source of truth. Each user's committed state is mirrored in
Redis as `<prefix>:user:<uid>:authz` = "epoch:version:role" (version is the membership
row's) or "x" when the user was removed, written after the commit that changed it and
read by the gate in the same round trip as the session. A session stores only the
credential epoch it was created under:

- mirror missing (evicted, deleted, Redis restarted) -> read the database, re-publish;
- removed, or the session's epoch is older than the user's -> revoked (401), deleted;
- the session's epoch is newer than the mirror's -> the mirror lags a commit: re-read;
- otherwise the role used for authorization is the mirror's, never a session copy.

Publishing is compare-and-set on (epoch, version), so a reader that loaded an older
state cannot overwrite a newer one, and nothing ever writes a role into a session.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from haven.auth.service import credentials_of
from haven.auth.sessions import SessionData
from haven.models.organization import MEMBER_ROLES
from haven.services import Services

REMOVED = "x"


@dataclass(frozen=True, slots=True)
class Authz:
    """A user's committed authorization state."""

    epoch: int
    version: int
    role: str

    def encode(self) -> str:
        return f"{self.epoch}:{self.version}:{self.role}"


_parsed: dict[bytes | str, Authz | str | None] = {}


def parse(raw: bytes | str | None) -> Authz | str | None:
    """The mirror's value: an Authz, REMOVED, or None when missing or unreadable.

    Every request of a user reads the same few values: each is parsed once (a bounded memo)."""
    if raw is None:
        return None
    if raw in _parsed:
        return _parsed[raw]
    if len(_parsed) >= 4096:
        _parsed.clear()
    found = _parsed[raw] = _parse(raw)
    return found


def _parse(raw: bytes | str) -> Authz | str | None:
    text = raw.decode() if isinstance(raw, bytes) else raw
    if text == REMOVED:
        return REMOVED
    epoch, _, rest = text.partition(":")
    version, _, role = rest.partition(":")
    if not (epoch.isdigit() and version.isdigit()) or role not in MEMBER_ROLES:
        return None
    return Authz(int(epoch), int(version), role)


OK, REVOKED, RELOAD = "ok", "revoked", "reload"


def verdict(data: SessionData, authz: Authz | str | None) -> str:
    """OK, REVOKED, or RELOAD (ask the database: the mirror is missing or behind)."""
    if authz is None:
        return RELOAD
    if not isinstance(authz, Authz):
        return REVOKED
    if data.epoch < authz.epoch:
        return REVOKED
    if data.epoch > authz.epoch:
        return RELOAD
    return OK


async def load(services: Services, user_id: uuid.UUID, organization_id: uuid.UUID) -> Authz | str:
    """The state from the database (only on a mirror miss), re-published for the next read."""
    async with services.sessionmaker(bind=services.read_engine) as db:
        row = await credentials_of(db, user_id, organization_id)
    value: Authz | str = Authz(*row) if row is not None else REMOVED
    await services.sessions.publish_authz(
        str(user_id), value.encode() if isinstance(value, Authz) else REMOVED
    )
    return value


async def propagate(
    services: Services,
    user_id: str,
    value: Authz | str,
    *,
    end_sessions: bool,
    keep_sid: str | None = None,
) -> Callable[[], Awaitable[None]]:
    """Make a change to the user's membership, role or credentials apply on every instance:
    the mirror is dropped now, so the change commits only once Redis has let go of the old
    state; the returned callback publishes it and must run after the commit
    (`haven.uow.after_commit`); with `end_sessions` their sessions are deleted then too,
    all but `keep_sid`, which is re-stamped first."""
    sessions = services.sessions
    await sessions.forget_authz(user_id)
    encoded = value.encode() if isinstance(value, Authz) else value

    async def apply() -> None:
        if keep_sid is not None and isinstance(value, Authz):
            # Before the mirror moves on, so this session is never older than the mirror.
            await sessions.stamp_epoch(keep_sid, value.epoch)
        await sessions.publish_authz(user_id, encoded)
        if end_sessions:
            await sessions.revoke_all(user_id, keep_sid=keep_sid)

    return apply
