"""ORM models, one module per aggregate, all on one metadata for Alembic."""

from haven.db.base import Base
from haven.models.apikey import ApiKey
from haven.models.audit import AuditEvent
from haven.models.events import Event, EventCounter, WebhookDelivery, WebhookSubscription
from haven.models.invitation import TenantInvitation
from haven.models.lease import (
    IdempotencyRecord,
    JobRun,
    Lease,
    LeaseBalance,
    LeaseTenant,
    LedgerEntry,
    PaymentsByDay,
    RecurringCharge,
    RentChange,
)
from haven.models.maintenance import MaintenanceComment, MaintenanceRequest
from haven.models.organization import Membership, Organization, User
from haven.models.owner import Owner, OwnerPayout, PropertyOwnership
from haven.models.property import Property, Unit
from haven.models.tenant import Tenant
from haven.models.vendor import Bill, BillPayment, Vendor, WorkOrder

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Base",
    "Bill",
    "BillPayment",
    "Event",
    "EventCounter",
    "IdempotencyRecord",
    "JobRun",
    "Lease",
    "LeaseBalance",
    "LeaseTenant",
    "LedgerEntry",
    "MaintenanceComment",
    "MaintenanceRequest",
    "Membership",
    "Organization",
    "Owner",
    "OwnerPayout",
    "PaymentsByDay",
    "Property",
    "PropertyOwnership",
    "RecurringCharge",
    "RentChange",
    "Tenant",
    "TenantInvitation",
    "Unit",
    "User",
    "Vendor",
    "WebhookDelivery",
    "WebhookSubscription",
    "WorkOrder",
]
