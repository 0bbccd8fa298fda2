"""Who a write is done by: the one value the audit trail names.

An `Actor` is built once, where the caller is known (the request's principal, a
job's name), and handed to the unit of work; nothing reads it from request state.

| kind       | who                             | audit_events columns                         |
|------------|---------------------------------|----------------------------------------------|
| `user`     | a signed-in member              | actor_id = user id                           |
| `api_key`  | a request signed with an API key| actor_id = the key's creator, api_key_id     |
| `system`   | a job, e.g. "system:billing"    | system_actor = the job's name                |
| `anonymous`| sign-up, sign-in                | none (a sign-up names the user it created)   |
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

ActorKind = Literal["user", "api_key", "system", "anonymous"]


@dataclass(frozen=True, slots=True)
class Actor:
    kind: ActorKind
    organization_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    api_key_id: uuid.UUID | None = None
    name: str | None = None  # a system actor's name

    @classmethod
    def user(cls, user_id: uuid.UUID, organization_id: uuid.UUID) -> Actor:
        return cls("user", organization_id=organization_id, user_id=user_id)

    @classmethod
    def api_key(
        cls,
        api_key_id: uuid.UUID,
        organization_id: uuid.UUID,
        creator_id: uuid.UUID | None = None,
    ) -> Actor:
        return cls(
            "api_key", organization_id=organization_id, user_id=creator_id, api_key_id=api_key_id
        )

    @classmethod
    def system(cls, name: str) -> Actor:
        return cls("system", name=name)

    @classmethod
    def anonymous(cls) -> Actor:
        return cls("anonymous")

    @property
    def scope_id(self) -> str:
        """Who an Idempotency-Key belongs to (with the organization)."""
        if self.kind == "api_key":
            return f"key:{self.api_key_id}"  # as haven.auth.principal.Principal.actor
        return str(self.user_id)

    def audit_columns(self) -> tuple[uuid.UUID | None, str | None]:
        """(actor_id, system_actor) of the audit rows this actor's writes produce."""
        if self.kind == "user":
            return self.user_id, None
        if self.kind == "api_key":
            return self.user_id, None  # the key itself is the row's api_key_id
        if self.kind == "system":
            return None, self.name
        return None, None


ANONYMOUS = Actor.anonymous()
