"""Every list endpoint's one path: `ListQuery`, keyset (cursor) pages of typed rows.

A list declares its row type (a `typing.NamedTuple` of the table's columns it shows),
its sort orders, its filters and the text columns `?search=` matches; `ListQuery.page`
runs the page through a `Reader`. Order is stable and a page never repeats or skips a
row, on any instance: a cursor is an opaque base64url token holding the sort name and
the last row's (sort value, id), no server state. A token that does not decode is a 422
on `cursor`. Search matches anywhere, case-folded, with `%` and `_` taken literally
(`contains_pattern`, the one LIKE escaping).
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, NamedTuple, TypeVar

import msgspec
from sqlalchemy import ColumnElement, Select, bindparam, func, or_, select, tuple_
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import BindParameter

from haven.db.reader import Reader
from haven.errors import FieldError, ValidationError
from haven.limits import MAX_CURSOR

M = TypeVar("M")
R = TypeVar("R", bound=NamedTuple)


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
    if len(cursor) > MAX_CURSOR:
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


def _after(key: SortKey, id_column: Any, value: Any, last_id: Any) -> ColumnElement[bool]:
    """Rows strictly after (value, last_id) in the (key, id) order, as one row-value
    comparison: the planner turns it into an index range (the (organization, key, id)
    index), so a page deep in a long list reads only its own rows; `a > v OR (a = v AND
    id > i)` is the same set but makes PostgreSQL filter every row before the cursor."""
    row = tuple_(key.column, id_column)
    if key.descending:
        return row < tuple_(value, last_id)
    return row > tuple_(value, last_id)


def _order(key: SortKey, id_column: Any) -> tuple[Any, Any]:
    if key.descending:
        return key.column.desc(), id_column.desc()
    return key.column.asc(), id_column.asc()


def _next_page(
    rows: list[Any], limit: int, sort_name: str, value_of: Callable[[Any], Any]
) -> Page[Any]:
    if len(rows) <= limit:
        return Page(rows, None)
    rows = rows[:limit]
    last = rows[-1]
    return Page(rows, _encode(sort_name, value_of(last), last.id))


Filter = Callable[[BindParameter[Any]], ColumnElement[bool]]


LIKE_ESCAPE = "/"


def contains_pattern(term: str) -> str:
    """A LIKE pattern matching `term` anywhere, case-folded, with % and _ taken literally.

    Use with `.like(param, escape=LIKE_ESCAPE)` on a lower()-ed column.
    """
    escaped = (
        term.strip()
        .lower()
        .replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", f"{LIKE_ESCAPE}%")
        .replace("_", f"{LIKE_ESCAPE}_")
    )
    return f"%{escaped}%"


class ListQuery(Generic[R]):
    """One list endpoint's SELECT, built once per shape and run with bind parameters.

    A shape is the sort order, whether a cursor continues the listing, and which
    filters are set. Building a SELECT and computing its cache key costs more than
    running a prepared one, so each shape is built on first use and kept; a request
    only supplies values (organization, filters, cursor position, limit). The rows are
    `row` tuples: the model table's columns named by `row`'s fields, in that order.
    """

    def __init__(
        self,
        model: type[Any],
        row: type[R],
        sorts: dict[str, SortKey],
        default_sort: str,
        *,
        search: tuple[Any, ...] = (),
        filters: dict[str, Filter] | None = None,
        computed: dict[str, Any] | None = None,
    ) -> None:
        """`search`: the text columns `?search=` matches (anywhere, case-folded, any of them);
        `filters`: name -> the condition it adds, given its bind parameter; `computed`:
        row fields that are no column of the table -> the expression that gives them."""
        self._table = model.__table__
        computed = computed or {}
        self._columns = tuple(
            computed[name].label(name) if name in computed else self._table.c[name]
            for name in row._fields  # KeyError: a field that is no column
        )
        self._row = row
        self._id = model.id
        missing = {key.column.key for key in sorts.values()} - set(row._fields)
        if "id" not in row._fields or missing:
            raise ValueError(f"{row} needs the id and sort columns ({missing or 'id'})")
        self.sorts = sorts
        self.default_sort = default_sort
        self._filters = dict(filters or {})
        if search:
            self._filters["search"] = lambda term: or_(
                *(func.lower(column).like(term, escape=LIKE_ESCAPE) for column in search)
            )
        self._built: dict[tuple[str, bool, tuple[str, ...]], Select[Any]] = {}

    def statement(self, sort_name: str, after: bool, filters: tuple[str, ...]) -> Select[Any]:
        shape = (sort_name, after, filters)
        stmt = self._built.get(shape)
        if stmt is None:
            key = self.sorts[sort_name]
            table = self._table
            stmt = select(*self._columns).where(
                table.c.organization_id == bindparam("organization_id")
            )
            for name in filters:
                stmt = stmt.where(self._filters[name](bindparam(name)))
            if after:
                value = bindparam("after_value", type_=key.column.type)
                after_id = bindparam("after_id", type_=self._id.type)
                stmt = stmt.where(_after(key, self._id, value, after_id))
            stmt = stmt.order_by(*_order(key, self._id)).limit(bindparam("limit"))
            self._built[shape] = stmt
        return stmt

    async def page(
        self,
        reader: Reader,
        organization_id: uuid.UUID,
        *,
        limit: int,
        cursor: str | None,
        sort: str | None,
        search: str | None = None,
        **filters: Any,
    ) -> Page[R]:
        """One page; `filters` left None are not applied, nor an empty `search`."""
        if search:
            filters["search"] = contains_pattern(search)
        sort_name, key = resolve_sort(self.sorts, sort, self.default_sort)
        active = tuple(sorted(name for name, value in filters.items() if value is not None))
        params: dict[str, Any] = {"organization_id": organization_id, "limit": limit + 1}
        params.update((name, filters[name]) for name in active)
        if cursor:
            params["after_value"], params["after_id"] = _decode(cursor, sort_name, key)
        rows = await reader.rows(self.statement(sort_name, bool(cursor), active), params, self._row)
        column = key.column.key
        return _next_page(rows, limit, sort_name, lambda row: getattr(row, column))
