"""Bodies of /properties."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from msgspec import UNSET, Meta, UnsetType

from haven.schemas import Country, Name, RequestBody, ResponseBody, ShortText, Year

PropertyType = Literal["residential", "commercial", "mixed"]
City = Annotated[str, Meta(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$")]
Region = Annotated[str, Meta(max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$")]
PostalCode = Annotated[str, Meta(max_length=20, pattern=r"^[A-Za-z0-9 \-]*$")]


class ManagementFee(RequestBody):
    """The manager's fee: `percent` = basis points (1..10000) of the rent collected,
    `flat` = minor units a month."""

    kind: Literal["percent", "flat"]
    amount: Annotated[int, Meta(ge=1, le=1_000_000_000_00)]


class ManagementFeeOut(ResponseBody):
    kind: str
    amount: int


class Address(RequestBody):
    line1: Name
    city: City
    country: Country
    line2: ShortText | None = None
    region: Region | None = None
    postal_code: PostalCode | None = None


class PropertyIn(RequestBody):
    name: Name
    type: PropertyType
    address: Address
    year_built: Year | None = None
    management_fee: ManagementFee | None = None


class PropertyPatch(RequestBody):
    name: Name | UnsetType = UNSET
    type: PropertyType | UnsetType = UNSET
    address: Address | UnsetType = UNSET
    year_built: Year | UnsetType | None = UNSET
    # null removes the fee.
    management_fee: ManagementFee | UnsetType | None = UNSET


class AddressOut(ResponseBody):
    line1: str
    line2: str | None
    city: str
    region: str | None
    postal_code: str | None
    country: str


class PropertyOut(ResponseBody):
    id: uuid.UUID
    name: str
    type: str
    address: AddressOut
    year_built: int | None
    unit_count: int
    management_fee: ManagementFeeOut | None
    version: int
    created_at: datetime
    updated_at: datetime
