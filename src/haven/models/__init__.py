"""ORM models, one module per aggregate, all on one metadata for Alembic."""

from haven.db.base import Base
from haven.models.apikey import ApiKey
from haven.models.audit import AuditEvent
from haven.models.events import Event, EventCounter, WebhookDelivery, WebhookSubscription
from haven.models.lease import (
    IdempotencyRecord,
    JobRun,
    Lease,
    LeaseTenant,
    LedgerEntry,
    RecurringCharge,
    RentChange,
)
from haven.models.maintenance import MaintenanceComment, MaintenanceRequest
from haven.models.organization import Membership, Organization, User
from haven.models.property import Property, Unit
from haven.models.tenant import Tenant

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Base",
    "Event",
    "EventCounter",
    "IdempotencyRecord",
    "JobRun",
    "Lease",
    "LeaseTenant",
    "LedgerEntry",
    "MaintenanceComment",
    "MaintenanceRequest",
    "Membership",
    "Organization",
    "Property",
    "RecurringCharge",
    "RentChange",
    "Tenant",
    "Unit",
    "User",
    "WebhookDelivery",
    "WebhookSubscription",
]
