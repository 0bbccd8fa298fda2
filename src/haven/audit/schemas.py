"""Bodies of /audit-events."""

from __future__ import annotations

import uuid
from datetime import datetime

from haven.schemas import ResponseBody


class AuditEventOut(ResponseBody):
    id: uuid.UUID
    at: datetime
    actor_id: uuid.UUID | None
    actor_email: str | None
    system_actor: str | None  # a job that acted on its own, e.g. system:billing
    api_key_id: uuid.UUID | None  # the API key the write came through (actor: its creator)
    action: str
    entity_type: str
    entity_id: uuid.UUID
    instance_id: str | None
    request_id: str | None
    changes: list[str]
