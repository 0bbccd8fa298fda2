"""Request and response bodies of /auth and /members."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from msgspec import Meta

from haven.schemas import Email, Name, Password, RequestBody, ResponseBody

# Any password length is accepted at login: a login must not reveal the password rules.
LoginPassword = Annotated[str, Meta(min_length=1, max_length=1024)]


class RegisterIn(RequestBody):
    organization_name: Name
    name: Name
    email: Email
    password: Password


class LoginIn(RequestBody):
    email: Email
    password: LoginPassword


class PasswordChangeIn(RequestBody):
    current_password: LoginPassword
    new_password: Password


class UserOut(ResponseBody):
    id: uuid.UUID
    email: str
    name: str
    created_at: datetime


class OrganizationOut(ResponseBody):
    id: uuid.UUID
    name: str
    currency: str
    timezone: str
    version: int
    created_at: datetime
    updated_at: datetime


class MeOut(ResponseBody):
    user: UserOut
    organization: OrganizationOut
    role: str
    csrf_token: str


class LoginOut(ResponseBody):
    user: UserOut
    organization: OrganizationOut
    role: str
    access_token: str
    token_type: str
    expires_at: datetime
    csrf_token: str


class TokenOut(ResponseBody):
    access_token: str
    token_type: str
    expires_at: datetime  # when the session ends at the latest (SESSION_MAX_AGE after sign-in)
