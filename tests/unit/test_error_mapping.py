"""Database errors raised by asyncpg itself (haven.db.reader sends reads to the driver) map
like their SQLAlchemy-wrapped forms: an outage is 503 dependency-unavailable, a bug is 500."""

from __future__ import annotations

import asyncpg
import pytest

from haven.errors import map_exception


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.exceptions.AdminShutdownError(
            "terminating connection due to administrator command"
        ),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.InterfaceError(
            "cannot call PreparedStatement.fetch(): the underlying connection is closed"
        ),
    ],
    ids=lambda e: type(e).__name__,
)
def test_driver_outage_is_503(exc: Exception) -> None:
    error = map_exception(exc)
    assert error.status == 503
    assert error.slug == "dependency-unavailable"


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.exceptions.UndefinedColumnError('column "nope" does not exist'),
        asyncpg.InterfaceError("the server expects 2 arguments for this query, 1 was passed"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_driver_bug_is_500(exc: Exception) -> None:
    assert map_exception(exc).status == 500
