"""The cursor codec of haven.db.pagination, without HTTP or a database.

A cursor is base64url(JSON [sort name, last value, last id]), unsigned: it holds a
position, not a permission (every list query is scoped to the caller's organization
whatever the cursor says, so a cursor from another organization only positions the
caller's own rows). What must hold: every value a list sorts by comes back exactly,
and anything else a client can send is a ValidationError on `cursor` (a 422 problem),
never another exception (which would be a 500).
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from haven.audit.service import SORTS as AUDIT_SORTS
from haven.db.pagination import MAX_CURSOR, SortKey, _decode, _encode, sort_keys
from haven.errors import ValidationError
from haven.leases.service import SORTS as LEASE_SORTS
from haven.maintenance.service import COMMENT_SORTS
from haven.maintenance.service import SORTS as MAINTENANCE_SORTS
from haven.models import Lease, Property, Unit
from haven.properties.service import LIST as PROPERTY_LIST
from haven.tenants.service import LIST as TENANT_LIST
from haven.units.service import LIST as UNIT_LIST

PROPERTY = settings(deadline=None, max_examples=150)

KEYS = sort_keys(
    {
        "name": (Property.name, str),
        "createdAt": (Unit.created_at, datetime),
        "marketRent": (Unit.market_rent, int),
        "startDate": (Lease.start_date, date),
    }
)

EVERY_LIST_SORT: dict[str, dict[str, SortKey]] = {
    "properties": PROPERTY_LIST.sorts,
    "units": UNIT_LIST.sorts,
    "tenants": TENANT_LIST.sorts,
    "leases": LEASE_SORTS,
    "maintenance": MAINTENANCE_SORTS,
    "comments": COMMENT_SORTS,
    "audit": AUDIT_SORTS,
}

# What the schemas let a client store in a sortable text column: up to 200 characters
# (Name), no C0 control characters or DEL; any other Unicode, including 4-byte emoji.
stored_text = st.text(
    st.characters(
        blacklist_categories=("Cs",),  # lone surrogates: no database stores them
        blacklist_characters=[chr(c) for c in (*range(0x20), 0x7F)],
    ),
    min_size=1,
    max_size=200,
)
# What the database hands back for a timestamp column (UTCDateTime): aware, in UTC.
stored_datetimes = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(9000, 1, 1), timezones=st.just(UTC)
)
stored_ints = st.integers(-(2**63), 2**63 - 1)
stored_dates = st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31))


def roundtrip(sort: str, value: Any, row_id: uuid.UUID) -> tuple[Any, uuid.UUID]:
    return _decode(_encode(sort, value, row_id), sort, KEYS[sort])


def refused(cursor: str, sort: str = "name") -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        _decode(cursor, sort, KEYS[sort])
    error = caught.value
    assert error.status == 422
    assert [e.field for e in error.errors] == ["cursor"]
    return error


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def forged(*parts: Any) -> str:
    return b64(msgspec.json.encode(list(parts)))


# -- round trips ----------------------------------------------------------------------------


def test_every_list_sorts_only_by_types_the_codec_round_trips() -> None:
    """A new sort key of another type would need its own round-trip tests here."""
    for name, sorts in EVERY_LIST_SORT.items():
        for key in sorts.values():
            assert key.python_type in (str, int, date, datetime), (name, key)


@PROPERTY
@given(value=stored_text, row_id=st.uuids(), descending=st.booleans())
@example(value="🏠" * 200, row_id=uuid.UUID(int=2**128 - 1), descending=True)
@example(value='"\\' * 100, row_id=uuid.UUID(int=0), descending=False)
@example(value="\u2028\u2029\x80\x9f\ufeff", row_id=uuid.UUID(int=1), descending=False)
def test_any_stored_name_round_trips(value: str, row_id: uuid.UUID, descending: bool) -> None:
    """Up to 200 four-byte characters: the longest name a client can store still pages."""
    sort = "-name" if descending else "name"
    assert roundtrip(sort, value, row_id) == (value, row_id)


@PROPERTY
@given(value=stored_ints, row_id=st.uuids())
def test_any_64_bit_integer_round_trips(value: int, row_id: uuid.UUID) -> None:
    got, got_id = roundtrip("-marketRent", value, row_id)
    assert (got, got_id) == (value, row_id)
    assert type(got) is int


@PROPERTY
@given(value=stored_datetimes, row_id=st.uuids())
@example(value=datetime(2026, 3, 29, 1, 59, 59, 999_999, tzinfo=UTC), row_id=uuid.UUID(int=7))
def test_any_stored_timestamp_round_trips_to_the_microsecond(
    value: datetime, row_id: uuid.UUID
) -> None:
    got, got_id = roundtrip("createdAt", value, row_id)
    assert (got, got_id) == (value, row_id)
    assert got.utcoffset() == timedelta(0)


@PROPERTY
@given(value=stored_dates, row_id=st.uuids())
def test_any_date_round_trips(value: date, row_id: uuid.UUID) -> None:
    got, got_id = roundtrip("startDate", value, row_id)
    assert (got, got_id) == (value, row_id)
    assert type(got) is date


def test_a_timestamp_with_another_offset_is_the_same_instant_in_utc() -> None:
    local = datetime(2026, 1, 1, 8, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    got, _ = roundtrip("createdAt", local, uuid.UUID(int=3))
    assert got == local
    assert got.tzinfo is not None
    assert got.utcoffset() == timedelta(0)
    assert got.hour == 3


@given(value=stored_text, ids=st.lists(st.uuids(), min_size=2, max_size=5, unique=True))
@settings(deadline=None, max_examples=50)
def test_ties_on_the_sort_value_are_told_apart_by_the_id(value: str, ids: list[uuid.UUID]) -> None:
    cursors = [_encode("name", value, row_id) for row_id in ids]
    assert len(set(cursors)) == len(ids)
    assert [_decode(c, "name", KEYS["name"]) for c in cursors] == [(value, i) for i in ids]


def test_a_cursor_carries_only_url_safe_characters() -> None:
    cursor = _encode("name", "?&=/+ 🏠 %2F", uuid.UUID(int=9))
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


# -- forgeries ------------------------------------------------------------------------------


def test_a_cursor_of_another_sort_order_is_refused_and_says_so() -> None:
    row_id = uuid.UUID(int=5)
    for issued, used in [("name", "-name"), ("-name", "name"), ("createdAt", "name")]:
        cursor = _encode(issued, "x" if issued.endswith("name") else datetime.now(UTC), row_id)
        error = refused(cursor, used)
        assert error.errors[0].message == "was issued for another sort order"


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "=",
        "garbage!",
        "é",  # not ASCII: base64 refuses it
        "W10",  # []
        "bnVsbA",  # null
        "eyJhIjoxfQ",  # {"a": 1}
        "IiJhYmMiIg",  # the JSON string "abc": three characters, not three fields
        "x" * 1025,
        "A" * 2049,  # longer than any cursor a list issues
        "x" * 100_000,
        "A",  # one base64 character is not a byte
    ],
)
def test_undecodable_cursors_are_refused(cursor: str) -> None:
    refused(cursor)


@pytest.mark.parametrize(
    ("sort", "parts"),
    [
        ("name", ["name", "ok", "not-a-uuid"]),
        ("name", ["name", "ok", 42]),  # a number where the id belongs
        ("name", ["name", "ok", None]),
        ("name", ["name", "ok", ["0" * 32]]),
        ("name", ["name", "ok", {"hex": "0" * 32}]),
        ("name", ["name", "ok", str(uuid.UUID(int=1)), "extra"]),
        ("name", ["name", "ok"]),
        ("name", ["name", "a\x00b", str(uuid.UUID(int=1))]),  # PostgreSQL refuses NUL in text
        ("name", ["name", "a" * 1001, str(uuid.UUID(int=1))]),
        ("name", ["name", None, str(uuid.UUID(int=1))]),
        ("name", ["name", ["a"], str(uuid.UUID(int=1))]),
        ("marketRent", ["marketRent", 2**63, str(uuid.UUID(int=1))]),  # SQLite: OverflowError
        ("marketRent", ["marketRent", -(2**63) - 1, str(uuid.UUID(int=1))]),
        ("marketRent", ["marketRent", 10**400, str(uuid.UUID(int=1))]),
        ("marketRent", ["marketRent", True, str(uuid.UUID(int=1))]),
        ("marketRent", ["marketRent", 1.5, str(uuid.UUID(int=1))]),
        ("marketRent", ["marketRent", 1e300, str(uuid.UUID(int=1))]),
        ("createdAt", ["createdAt", "0001-01-01T00:00:00+14:00", str(uuid.UUID(int=1))]),
        ("createdAt", ["createdAt", "9999-12-31T23:59:59-14:00", str(uuid.UUID(int=1))]),
        ("createdAt", ["createdAt", "yesterday", str(uuid.UUID(int=1))]),
        ("createdAt", ["createdAt", 1e300, str(uuid.UUID(int=1))]),
        ("startDate", ["startDate", "2026-02-30", str(uuid.UUID(int=1))]),
        ("startDate", ["startDate", "0000-01-01", str(uuid.UUID(int=1))]),
    ],
)
def test_well_formed_cursors_with_forged_contents_are_refused(sort: str, parts: list[Any]) -> None:
    refused(forged(*parts), sort)


def test_a_deeply_nested_value_is_refused() -> None:
    refused(b64(b'["name",' + b"[" * 700 + b"]" * 700 + b',"x"]'))


def test_every_truncation_of_a_real_cursor_is_refused() -> None:
    cursor = _encode("createdAt", datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), uuid.uuid4())
    for end in range(len(cursor)):
        refused(cursor[:end], "createdAt")


def _decodes_or_is_refused(cursor: str, sort: str) -> None:
    key = KEYS[sort]
    try:
        value, row_id = _decode(cursor, sort, key)
    except ValidationError as error:
        refusal = error
    else:
        refusal = None
    if refusal is not None:
        assert refusal.status == 422
        assert [e.field for e in refusal.errors] == ["cursor"]
        return
    # Unsigned, so a tampered cursor may still name a position: then it is a well-typed one.
    assert isinstance(row_id, uuid.UUID)
    assert isinstance(value, key.python_type)
    assert not isinstance(value, bool)


@PROPERTY
@given(
    value=stored_text,
    row_id=st.uuids(),
    position=st.integers(0, 10_000),
    replacement=st.characters(max_codepoint=0x2FF),
)
def test_any_tampered_character_is_a_422_or_a_well_typed_position(
    value: str, row_id: uuid.UUID, position: int, replacement: str
) -> None:
    cursor = _encode("name", value, row_id)
    i = position % len(cursor)
    _decodes_or_is_refused(cursor[:i] + replacement + cursor[i + 1 :], "name")


@PROPERTY
@given(cursor=st.text(max_size=MAX_CURSOR + 10), sort=st.sampled_from(sorted(KEYS)))
def test_any_text_is_a_422_or_a_well_typed_position(cursor: str, sort: str) -> None:
    _decodes_or_is_refused(cursor, sort)


@PROPERTY
@given(raw=st.binary(max_size=800), sort=st.sampled_from(sorted(KEYS)))
def test_valid_base64_of_any_bytes_is_a_422_or_a_well_typed_position(raw: bytes, sort: str) -> None:
    _decodes_or_is_refused(b64(raw), sort)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=10,
)


@PROPERTY
@given(
    value=json_values, row_id=json_values | st.uuids().map(str), sort=st.sampled_from(sorted(KEYS))
)
def test_any_json_in_the_right_shape_is_a_422_or_a_well_typed_position(
    value: Any, row_id: Any, sort: str
) -> None:
    cursor = forged(sort, value, row_id)
    if len(cursor) <= MAX_CURSOR:
        _decodes_or_is_refused(cursor, sort)
