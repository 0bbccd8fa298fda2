"""Bodies of /tenants/{id}/invitations, /invitations/accept and /tenants/{id}/access."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from msgspec import Meta

from haven.schemas import Email, Name, Password, RequestBody, ResponseBody

# hvi_ and 43 URL-safe base64 characters (32 random bytes); anything else is refused unread.
InvitationToken = Annotated[str, Meta(min_length=1, max_length=200)]


class InvitationIn(RequestBody):
    """Invite the tenant; without `email` the tenant's own email is used."""

    email: Email | None = None


class InvitationOut(ResponseBody):
    id: uuid.UUID
    tenant_id: uuid.UUID
    email: str
    # Shown once, in this response only; Haven keeps its sha256.
    token: str
    expires_at: datetime
    created_at: datetime


class AcceptIn(RequestBody):
    token: InvitationToken
    password: Password
    name: Name | None = None
