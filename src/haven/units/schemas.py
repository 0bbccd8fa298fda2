"""Bodies of /properties/{id}/units and /units/{id}."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from msgspec import UNSET, Meta, UnsetType

from haven.schemas import Count, Label, Money, RequestBody, ResponseBody

# Set by people; `occupied` follows from an active lease and cannot be set by hand.
SettableStatus = Literal["vacant", "unavailable"]
Bedrooms = Annotated[int, Meta(ge=0, le=100)]
Bathrooms = Annotated[float, Meta(ge=0, le=100, multiple_of=0.5)]


class UnitIn(RequestBody):
    label: Label
    bedrooms: Bedrooms = 0
    bathrooms: Bathrooms = 1
    area_sqft: Count | None = None
    market_rent: Money = 0
    status: SettableStatus = "vacant"


class UnitPatch(RequestBody):
    label: Label | UnsetType = UNSET
    bedrooms: Bedrooms | UnsetType = UNSET
    bathrooms: Bathrooms | UnsetType = UNSET
    area_sqft: Count | UnsetType | None = UNSET
    market_rent: Money | UnsetType = UNSET
    status: SettableStatus | UnsetType = UNSET


class UnitOut(ResponseBody):
    id: uuid.UUID
    property_id: uuid.UUID
    label: str
    bedrooms: int
    bathrooms: float
    area_sqft: int | None
    market_rent: int
    status: str
    version: int
    created_at: datetime
    updated_at: datetime


def bathrooms_value(value: float) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.1"))
