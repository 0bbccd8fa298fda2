"""The authorization mirror's rules, without I/O: what a session may do given the mirror."""

from __future__ import annotations

import pytest

from haven.auth import authz
from haven.auth.sessions import SessionData


def _session(epoch: int) -> SessionData:
    return SessionData(uid="u", oid="o", csrf="c", pid="p", created=0.0, seen=0.0, epoch=epoch)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"3:7:manager", authz.Authz(3, 7, "manager")),
        ("0:1:owner", authz.Authz(0, 1, "owner")),
        (b"x", authz.REMOVED),
        (None, None),
        (b"", None),
        (b"3:7:admin", None),  # not a role
        (b"-1:7:owner", None),
        (b"3:owner", None),
        (b"a:b:viewer", None),
    ],
)
def test_parse(raw: bytes | str | None, expected: object) -> None:
    assert authz.parse(raw) == expected


@pytest.mark.parametrize(
    ("session_epoch", "mirror", "expected"),
    [
        (2, authz.Authz(2, 1, "viewer"), authz.OK),
        (1, authz.Authz(2, 1, "viewer"), authz.REVOKED),  # signed in before a password change
        (3, authz.Authz(2, 1, "viewer"), authz.RELOAD),  # the mirror lags a commit
        (2, authz.REMOVED, authz.REVOKED),
        (2, None, authz.RELOAD),  # evicted or deleted: ask the database
    ],
)
def test_verdict(session_epoch: int, mirror: authz.Authz | str | None, expected: str) -> None:
    assert authz.verdict(_session(session_epoch), mirror) == expected


def test_encode_round_trips() -> None:
    value = authz.Authz(12, 4, "staff")
    assert authz.parse(value.encode()) == value
