"""Bodies of /events."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from haven.schemas import ResponseBody


class EventOut(ResponseBody):
    id: uuid.UUID
    type: str
    position: int
    organization_id: uuid.UUID
    resource_type: str
    resource_id: uuid.UUID
    occurred_at: datetime
    data: dict[str, Any]


class FeedPage(ResponseBody):
    """A page of the feed. `nextCursor` is never null: pass it as `after` to read on."""

    items: list[EventOut]
    next_cursor: str
    has_more: bool
