"""/api/v1/api-keys: create (shown once), list, show and revoke the organization's keys.

Owners and managers manage keys; a key's role is at most its creator's, and keys
themselves cannot manage keys (docs/api-keys.md).
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Response, delete, get, post
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from haven.apikeys import service
from haven.apikeys.schemas import ApiKeyCreated, ApiKeyIn, ApiKeyOut
from haven.apikeys.service import ApiKeyRow
from haven.auth.principal import MANAGERS, Principal, roles
from haven.config import Settings
from haven.db.reader import Reader
from haven.models import ApiKey
from haven.schemas import ListOf
from haven.services import Services
from haven.web import NO_STORE, ListParams

_MANAGE = roles(*MANAGERS, people_only=True)


def _fields(row: ApiKey | ApiKeyRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "role": row.role,
        "prefix": row.prefix,
        "created_by": row.created_by,
        "created_at": row.created_at,
        "expires_at": row.expires_at,
        "last_used_at": row.last_used_at,
        "revoked_at": row.revoked_at,
    }


def api_key_out(row: ApiKey | ApiKeyRow) -> ApiKeyOut:
    return ApiKeyOut(**_fields(row))


class ApiKeysController(Controller):
    path = "/api-keys"
    tags = ["api-keys"]

    @post("/", status_code=HTTP_201_CREATED, opt=_MANAGE)
    async def create(
        self,
        settings: Settings,
        db: AsyncSession,
        principal: Principal,
        data: ApiKeyIn,
    ) -> Response[ApiKeyCreated]:
        """Create an API key for an integration. The `key` is in this response only: store
        it now (Haven keeps only its hash). Its role is at most yours."""
        row, key = await service.create(
            db,
            organization_id=principal.organization_id,
            creator_id=principal.user_id,
            creator_role=principal.role,
            data=data,
            production=settings.is_production,
        )
        return Response(
            ApiKeyCreated(**_fields(row), key=key), status_code=HTTP_201_CREATED, headers=NO_STORE
        )

    @get("/", opt=_MANAGE)
    async def list_keys(
        self, reader: Reader, principal: Principal, page: ListParams
    ) -> Response[ListOf[ApiKeyOut]]:
        """The organization's API keys, newest first (revoked ones included), never the key."""
        result = await service.list_keys(
            reader, principal.organization_id, limit=page.limit, cursor=page.cursor
        )
        return Response(ListOf([api_key_out(r) for r in result.items], result.next_cursor))

    @get("/{key_id:uuid}", opt=_MANAGE)
    async def show(self, db: AsyncSession, principal: Principal, key_id: uuid.UUID) -> ApiKeyOut:
        """One API key: name, role, prefix, creator, expiry, last use, revocation."""
        return api_key_out(await service.get(db, principal.organization_id, key_id))

    @delete("/{key_id:uuid}", status_code=HTTP_204_NO_CONTENT, opt=_MANAGE)
    async def revoke(
        self, services: Services, db: AsyncSession, principal: Principal, key_id: uuid.UUID
    ) -> None:
        """Revoke a key: every instance refuses it (401) within a second. Owners revoke any
        key, managers the keys they created."""
        await service.revoke(
            db,
            services,
            organization_id=principal.organization_id,
            key_id=key_id,
            caller_id=principal.user_id,
            caller_role=principal.role,
        )


_EXAMPLE_KEY = "hvn_live_3kTq9ZbXw2LmR8vYc4NpQ7sJd1HfG6tKe5UaB0nzA1b2C3"


def document(openapi: Any) -> None:
    """Request and response examples for POST /api-keys."""
    from litestar.openapi.spec import Example

    item = (openapi.paths or {}).get("/api/v1/api-keys")
    operation = getattr(item, "post", None)
    if operation is None:
        return
    body = getattr(operation.request_body, "content", None) or {}
    if "application/json" in body:
        body["application/json"].examples = {
            "accounting": Example(
                summary="A read-only key for an accounting system, valid for a year",
                value={
                    "name": "Accounting sync",
                    "role": "viewer",
                    "expiresAt": "2027-11-27T00:00:00Z",
                },
            ),
            "payments": Example(
                summary="A key that posts payments, valid until revoked",
                value={"name": "Payment processor", "role": "manager"},
            ),
        }
    created = (operation.responses or {}).get("201")
    content = getattr(created, "content", None) or {}
    if "application/json" in content:
        content["application/json"].examples = {
            "created": Example(
                summary="The key is in this response only",
                value={
                    "id": "0b7c6f1e-6d2a-4d8e-9a51-3f1c2b7d9e40",
                    "name": "Accounting sync",
                    "role": "viewer",
                    "prefix": _EXAMPLE_KEY[:17],
                    "createdBy": "5d0e3c1a-2b4f-4a6e-8c9d-1e2f3a4b5c6d",
                    "createdAt": "2026-11-27T10:00:00Z",
                    "expiresAt": "2027-11-27T00:00:00Z",
                    "lastUsedAt": None,
                    "revokedAt": None,
                    "key": _EXAMPLE_KEY,
                },
            )
        }
