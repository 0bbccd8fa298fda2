"""Shared request/response building blocks: constrained types and the list envelope.

Request structs forbid unknown fields (a typo is a 422, not a silently ignored
key) and use camelCase on the wire. Every string type refuses NUL and other
control characters, which PostgreSQL cannot store and no client means to send.
"""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

import msgspec
from msgspec import Meta

T = TypeVar("T")

_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"  # tabs and newlines allowed, other controls not
_LINE = r"^[^\x00-\x1f\x7f]*$"

Name = Annotated[str, Meta(min_length=1, max_length=200, pattern=_LINE)]
ShortText = Annotated[str, Meta(max_length=200, pattern=_LINE)]
Label = Annotated[str, Meta(min_length=1, max_length=50, pattern=_LINE)]
LongText = Annotated[str, Meta(max_length=10_000, pattern=_TEXT)]
Email = Annotated[
    str, Meta(min_length=3, max_length=254, pattern=r"^[^\s@\x00-\x1f\x7f]+@[^\s@\x00-\x1f\x7f]+$")
]
Phone = Annotated[str, Meta(max_length=40, pattern=r"^[0-9+()\-. x]*$")]
Password = Annotated[str, Meta(min_length=8, max_length=200, pattern=_TEXT)]
Country = Annotated[str, Meta(pattern=r"^[A-Z]{2}$")]
Currency = Annotated[str, Meta(pattern=r"^[A-Z]{3}$")]
Money = Annotated[int, Meta(ge=0, le=1_000_000_000_00)]
Count = Annotated[int, Meta(ge=0, le=100_000)]
Year = Annotated[int, Meta(ge=1000, le=2200)]
Limit = Annotated[int, Meta(ge=1, le=100)]


class RequestBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel", kw_only=True):
    """Base of every request body."""


class ResponseBody(msgspec.Struct, rename="camel", kw_only=True):
    """Base of every response body."""


class ListOf(msgspec.Struct, Generic[T], rename="camel"):
    items: list[T]
    next_cursor: str | None
