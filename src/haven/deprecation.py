"""Announce that an operation is going away: `Deprecation` and `Sunset` on every answer.

    @get("/old-thing", **deprecated(since=date(2027, 1, 1), sunset=date(2027, 7, 1),
                                    successor="/api/v1/new-thing"))

marks the operation `deprecated: true` in the OpenAPI document (with the headers
documented), and every response it gives carries `Deprecation: @<unix time>`
(RFC 9745), `Sunset: <HTTP-date>` (RFC 8594) and, with a successor,
`Link: <successor>; rel="successor-version"`. docs/api-versioning.md has the policy.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from email.utils import format_datetime
from typing import Any

from litestar.datastructures import ResponseHeader


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def deprecation_headers(since: date, sunset: date, successor: str | None = None) -> dict[str, str]:
    """The headers a deprecated operation answers with."""
    if sunset <= since:
        raise ValueError("the sunset must come after the deprecation")
    headers = {
        "Deprecation": f"@{int(_midnight(since).timestamp())}",
        "Sunset": format_datetime(_midnight(sunset), usegmt=True),
    }
    if successor is not None:
        headers["Link"] = f'<{successor}>; rel="successor-version"'
    return headers


def deprecated(since: date, sunset: date, successor: str | None = None) -> dict[str, Any]:
    """Route decorator arguments that deprecate an operation (see the module docstring)."""
    descriptions = {
        "Deprecation": "When this operation was deprecated (RFC 9745)",
        "Sunset": "After this date the operation may answer 410 Gone (RFC 8594)",
        "Link": "The operation that replaces this one (rel=successor-version)",
    }
    return {
        "deprecated": True,
        "response_headers": [
            ResponseHeader(name=name, value=value, description=descriptions[name])
            for name, value in deprecation_headers(since, sunset, successor).items()
        ],
    }
