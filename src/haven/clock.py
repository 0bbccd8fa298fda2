"""What day it is where an organization is: the one place Haven reads the calendar.

Due dates, aging and billing count in the organization's own time zone; an unknown
zone counts in UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo


def zone_of(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def local_date(now: datetime, timezone: str) -> date:
    """The calendar date at `now` in the time zone (UTC for an unknown zone)."""
    return now.astimezone(zone_of(timezone)).date()


def today_in_zone(timezone: str) -> date:
    """Today's date in the time zone."""
    return local_date(datetime.now(UTC), timezone)
