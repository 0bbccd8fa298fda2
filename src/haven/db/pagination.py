"""Keyset (cursor) pagination: stable order, no duplicates or gaps, on any instance.

A cursor is an opaque base64url token holding the sort name and the last
row's (sort value, id). Any instance can continue a listing from it because
it holds no server state. A token that does not decode is a 422 on `cursor`.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import msgspec
from sqlalchemy import Select, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from haven.errors import FieldError, ValidationError

M = TypeVar("M")


@dataclass(frozen=True, slots=True)
class SortKey:
    """One sort order a list accepts, e.g. `name` or `-createdAt`."""

    column: InstrumentedAttribute[Any]
    python_type: type
    descending: bool = False


@dataclass(frozen=True, slots=True)
class Page(Generic[M]):
    items: Sequence[M]
    next_cursor: str | None


def sort_keys(
    fields: dict[str, tuple[InstrumentedAttribute[Any], type]],
) -> dict[str, SortKey]:
    """Both directions of each sortable field: `name` ascending, `-name` descending."""
    keys: dict[str, SortKey] = {}
    for name, (column, python_type) in fields.items():
        keys[name] = SortKey(column, python_type)
        keys[f"-{name}"] = SortKey(column, python_type, descending=True)
    return keys


def resolve_sort(keys: dict[str, SortKey], sort: str | None, default: str) -> tuple[str, SortKey]:
    name = sort or default
    key = keys.get(name)
    if key is None:
        raise ValidationError(
            errors=[FieldError("sort", f"must be one of {', '.join(sorted(keys))}")]
        )
    return name, key


def _encode(sort_name: str, value: Any, row_id: uuid.UUID) -> str:
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = msgspec.json.encode([sort_name, value, str(row_id)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


_INT64 = 2**63
_CURSOR_TEXT = re.compile(r"^[^\x00-\x1f\x7f]{0,1000}$")


def _bounded(value: Any) -> Any:
    """A cursor's sort value, refused (ValueError) unless every database can compare it.

    A forged cursor can hold an integer beyond 64 bits (SQLite raises OverflowError),
    a NUL byte (PostgreSQL refuses it in text) or a date at the edge of the calendar.
    """
    if isinstance(value, bool):
        raise ValueError("not a sort value")
    if isinstance(value, int) and not -_INT64 <= value < _INT64:
        raise ValueError("integer out of range")
    if isinstance(value, str) and not _CURSOR_TEXT.match(value):
        raise ValueError("text a list never sorts by")
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        value = aware.astimezone(UTC)  # OverflowError at the calendar's edges
    return value


def _decode(cursor: str, sort_name: str, key: SortKey) -> tuple[Any, uuid.UUID]:
    bad = ValidationError(errors=[FieldError("cursor", "is not a cursor this list issued")])
    if len(cursor) > 1024:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        name, value, row_id = msgspec.json.decode(raw)
        if name != sort_name:
            raise ValidationError(
                errors=[FieldError("cursor", "was issued for another sort order")]
            )
        return _bounded(msgspec.convert(value, key.python_type, strict=False)), uuid.UUID(row_id)
    except ValidationError:
        raise
    except (
        ValueError,
        TypeError,
        OverflowError,
        AttributeError,  # uuid.UUID(2): a number where the id belongs
        binascii.Error,
        msgspec.DecodeError,
        msgspec.ValidationError,
    ):
        raise bad from None


async def paginate(
    session: AsyncSession,
    stmt: Select[M],
    *,
    id_column: InstrumentedAttribute[Any],
    sort_name: str,
    key: SortKey,
    limit: int,
    cursor: str | None,
    value_of: Callable[[M], Any] | None = None,
) -> Page[M]:
    """Run `stmt` ordered by (key, id), starting after `cursor`, returning one page."""
    column = key.column
    if cursor:
        value, last_id = _decode(cursor, sort_name, key)
        if key.descending:
            after = or_(column < value, and_(column == value, id_column < last_id))
        else:
            after = or_(column > value, and_(column == value, id_column > last_id))
        stmt = stmt.where(after)
    order = (column.desc(), id_column.desc()) if key.descending else (column.asc(), id_column.asc())
    rows = list((await session.execute(stmt.order_by(*order).limit(limit + 1))).scalars().unique())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        value = value_of(last) if value_of else getattr(last, column.key)
        next_cursor = _encode(sort_name, value, last.id)  # type: ignore[attr-defined]
    return Page(rows, next_cursor)
