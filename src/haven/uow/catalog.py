"""Every event type Haven emits, with the resource it describes (the feed and OpenAPI use it).

Types are `<resource>.<verb>`. Row changes are named by haven.events.outbox: created,
updated, deleted, or a verb for a status change (lease.activated, maintenance_request.resolved);
a ledger entry is `posted`, or `reversed` when it is the reversal of another entry.
"""

from __future__ import annotations

from typing import Any

# Status changes worth a name: (resource type, new status) -> verb; a few read the old status.
STATUS_VERBS: dict[str, dict[str, str]] = {
    "lease": {"active": "activated", "terminated": "terminated", "ended": "ended"},
    "maintenance_request": {
        "in_progress": "started",
        "on_hold": "put_on_hold",
        "resolved": "resolved",
        "closed": "closed",
        "cancelled": "cancelled",
    },
    "work_order": {
        "scheduled": "scheduled",
        "done": "completed",
        "invoiced": "invoiced",
        "cancelled": "cancelled",
    },
    "bill": {"paid": "paid", "void": "voided"},
}
OLD_STATUS_VERBS: dict[tuple[str, str, str], str] = {
    ("maintenance_request", "resolved", "in_progress"): "reopened",
    ("maintenance_request", "on_hold", "in_progress"): "resumed",
    ("bill", "paid", "open"): "reopened",
    ("work_order", "invoiced", "done"): "uninvoiced",
}

_CRUD = ("created", "updated", "deleted")
RESOURCES: dict[str, tuple[str, ...]] = {
    "organization": ("created", "updated"),
    "membership": _CRUD,
    "property": _CRUD,
    "unit": _CRUD,
    "tenant": _CRUD,
    "lease": (*_CRUD, "activated", "terminated", "ended"),
    "ledger_entry": ("posted", "reversed"),
    "maintenance_request": (
        *_CRUD,
        "started",
        "put_on_hold",
        "resumed",
        "resolved",
        "reopened",
        "closed",
        "cancelled",
    ),
    "maintenance_comment": _CRUD,
    "rent_change": ("created", "deleted"),
    "recurring_charge": _CRUD,
    # One per organization and billing date on which a real run posted anything
    # (emitted by haven.billing.service.run; its id is stable for that date).
    "billing_run": ("completed",),
    # Owners (docs/owners.md): a share set is written as one row per owner; putting a set on a
    # date that had one deletes that set's rows. A payout reversal is a payout too.
    "owner": _CRUD,
    "property_ownership": ("created", "deleted"),
    "owner_payout": ("created",),
    # Resident invitations (haven.residents): created, then updated when accepted or revoked.
    "tenant_invitation": ("created", "updated"),
    "vendor": _CRUD,
    "work_order": (*_CRUD, "scheduled", "completed", "invoiced", "uninvoiced", "cancelled"),
    "bill": (*_CRUD, "paid", "reopened", "voided"),
    # Append-only: a reversal is a new row (negative amount, `reversesId` set).
    "bill_payment": ("created",),
}

EVENT_TYPES: frozenset[str] = frozenset(
    f"{resource}.{verb}" for resource, verbs in RESOURCES.items() for verb in verbs
)

_ORG = "6f1c1a52-3d0e-4f59-9a53-2f3c8b1d7e01"
_ID = "0b6a8c4e-7f0d-4c83-a7b1-5d2e9f3a6c10"
_AT = "2026-11-27T10:00:00Z"

# One representative snapshot per resource (the `data` of its events), for the OpenAPI document.
SAMPLE_DATA: dict[str, dict[str, Any]] = {
    "organization": {"name": "Acme Homes", "currency": "USD", "timezone": "UTC"},
    "membership": {"userId": _ID, "role": "manager"},
    "property": {
        "name": "Maple Court",
        "type": "residential",
        "addressLine1": "12 Maple Street",
        "city": "Springfield",
        "country": "US",
        "yearBuilt": 1998,
        "unitCount": 4,
    },
    "unit": {"propertyId": _ID, "label": "1A", "bedrooms": 2, "marketRent": 125000},
    "tenant": {"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com"},
    "lease": {
        "unitId": _ID,
        "startDate": "2026-12-01",
        "endDate": None,
        "rent": 125000,
        "deposit": 125000,
        "dueDay": 1,
        "status": "active",
    },
    "ledger_entry": {
        "leaseId": _ID,
        "type": "charge",
        "kind": "rent",
        "amount": 125000,
        "date": "2026-12-01",
        "reversesId": None,
    },
    "maintenance_request": {
        "propertyId": _ID,
        "title": "Leaking tap",
        "priority": "normal",
        "status": "in_progress",
    },
    "maintenance_comment": {"requestId": _ID, "body": "Plumber booked for Tuesday"},
    "rent_change": {
        "leaseId": _ID,
        "effectiveDate": "2027-12-01",
        "rent": 130000,
        "source": "manual",
    },
    "recurring_charge": {
        "leaseId": _ID,
        "kind": "parking",
        "description": "Parking space 7",
        "amount": 7500,
        "startDate": "2026-12-01",
        "endDate": None,
    },
    "tenant_invitation": {
        "tenantId": _ID,
        "email": "ada@example.com",
        "expiresAt": "2026-12-04T10:00:00Z",
        "acceptedAt": None,
        "revokedAt": None,
    },
    "vendor": {
        "name": "Ace Plumbing",
        "trade": "plumbing",
        "insuranceExpiresOn": "2027-06-30",
    },
    "work_order": {
        "requestId": _ID,
        "propertyId": _ID,
        "vendorId": _ID,
        "title": "Replace tap washer",
        "status": "scheduled",
        "estimate": 12000,
    },
    "bill": {
        "vendorId": _ID,
        "propertyId": _ID,
        "workOrderId": _ID,
        "amount": 11500,
        "amountPaid": 0,
        "issuedOn": "2026-11-20",
        "dueOn": "2026-12-20",
        "status": "open",
    },
    "bill_payment": {
        "billId": _ID,
        "propertyId": _ID,
        "amount": 11500,
        "paidOn": "2026-11-27",
        "method": "bank_transfer",
        "reversesId": None,
    },
    "billing_run": {"date": "2026-12-01", "period": "2026-12", "posted": 12, "entryIds": [_ID]},
    "owner": {"kind": "person", "name": "Rhea Landlord", "payoutReference": "payee_8f2c1a"},
    "property_ownership": {
        "propertyId": _ID,
        "ownerId": _ID,
        "effectiveFrom": "2026-01-01",
        "basisPoints": 10000,
    },
    "owner_payout": {"ownerId": _ID, "amount": 100000, "paidOn": "2026-12-01", "reversesId": None},
}


def example(event_type: str) -> dict[str, Any]:
    """A complete example event of this type, as the feed and webhooks send it."""
    resource = event_type.split(".", 1)[0]
    data = dict(SAMPLE_DATA.get(resource, {}))
    data["id"] = _ID if resource != "organization" else _ORG
    return {
        "id": "3f9d2c4b-1e8a-4b7c-9d6e-0a1b2c3d4e5f",
        "type": event_type,
        "position": 42,
        "organizationId": _ORG,
        "resourceType": resource,
        "resourceId": data["id"],
        "occurredAt": _AT,
        "data": data,
    }
