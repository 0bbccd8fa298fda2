"""`haven demo-data`: a small portfolio to click around in (development only)."""

from __future__ import annotations

from typing import Any

from haven.auth import service as auth
from haven.auth.schemas import RegisterIn
from haven.config import Settings
from haven.db.engine import WRITE_OPTION, create_engine
from haven.db.reader import Reader
from haven.properties import service as properties
from haven.properties.schemas import Address, PropertyIn, PropertyType
from haven.tenants import service as tenants
from haven.tenants.schemas import TenantIn
from haven.units import service as units
from haven.units.schemas import UnitIn
from haven.uow import create_sessionmaker

DEMO_EMAIL = "test@example.com"
DEMO_PASSWORD = "password"  # noqa: S105 - the documented development login
# The first demo tenant signs in as a resident with the same password (docs/residents.md).
DEMO_RESIDENT_EMAIL = "ada@example.com"

PORTFOLIO: list[tuple[str, PropertyType, str, str, str, int, int, int]] = [
    ("Maple Court", "residential", "12 Maple Street", "Springfield", "US", 1998, 6, 125000),
    ("Harbor Lofts", "mixed", "400 Harbor Way", "Portland", "US", 2012, 4, 185000),
    ("Elm Office Park", "commercial", "9 Elm Road", "Austin", "US", 2005, 2, 320000),
]
TENANTS = [
    ("Ada", "Lovelace", "ada@example.com"),
    ("Grace", "Hopper", "grace@example.com"),
    ("Alan", "Turing", "alan@example.com"),
    ("Katherine", "Johnson", "katherine@example.com"),
]


async def load_demo_data(settings: Settings) -> bool:
    """Create the demo organization unless it exists; True when it was created now."""
    engine = create_engine(settings.with_overrides(db_pool_min=1, db_pool_max=2))
    maker = create_sessionmaker(engine)
    try:
        write_engine = engine.execution_options(**{WRITE_OPTION: True})
        async with maker(bind=write_engine) as session, session.begin():
            if await auth.email_taken(session, DEMO_EMAIL):
                return False
            account = await auth.register(
                session,
                RegisterIn(
                    organization_name="Demo Property Co",
                    name="Demo Owner",
                    email=DEMO_EMAIL,
                    password=DEMO_PASSWORD,
                ),
            )
            org_id = account.organization.id
            created = []
            for name, kind, line1, city, country, year, count, rent in PORTFOLIO:
                prop = await properties.create(
                    session,
                    org_id,
                    PropertyIn(
                        name=name,
                        type=kind,
                        address=Address(line1=line1, city=city, country=country),
                        year_built=year,
                    ),
                )
                created.append(prop)
                for n in range(1, count + 1):
                    await units.create(
                        session,
                        Reader.inside(session),  # its property is not committed yet
                        org_id,
                        prop.id,
                        UnitIn(label=f"{n:02d}", bedrooms=1 + n % 3, market_rent=rent),
                    )
            for first, last, email in TENANTS:
                await tenants.create(
                    session, org_id, TenantIn(first_name=first, last_name=last, email=email)
                )
            await _demo_leases(session, org_id)
            await _demo_owner(session, org_id, created[0])
            await _demo_resident(session, settings, org_id, account.user.id)
            await _demo_vendors(session, org_id, account.user.id)
        return True
    finally:
        await engine.dispose()


async def _demo_owner(session: Any, org_id: Any, prop: Any) -> None:
    """Maple Court is owned 100% by one owner, with an 8% management fee on rent collected."""
    from datetime import UTC, datetime

    from haven.owners import service as owners
    from haven.owners.schemas import OwnerIn, OwnershipIn, ShareIn
    from haven.properties.schemas import ManagementFee, PropertyPatch

    owner = await owners.create(
        session,
        org_id,
        OwnerIn(
            kind="person",
            name="Rhea Landlord",
            email="rhea@example.com",
            payout_reference="payee_demo_0001",
        ),
    )
    await properties.update(
        session, prop, PropertyPatch(management_fee=ManagementFee(kind="percent", amount=800))
    )
    since = datetime.now(UTC).date().replace(month=1, day=1)
    await owners.put_ownership(
        session,
        org_id,
        prop,
        OwnershipIn(
            effective_from=since.replace(year=since.year - 1),
            shares=[ShareIn(owner_id=owner.id, basis_points=10_000)],
        ),
    )


async def _demo_leases(session: Any, org_id: Any) -> None:
    """A few active leases with three months of billed rent and payments; one tenant is behind."""
    from datetime import UTC, datetime

    from sqlalchemy import select

    from haven.billing import service as billing
    from haven.leases import service as leases
    from haven.leases.schemas import LateFee, LeaseIn
    from haven.ledger import service as ledger
    from haven.ledger.schemas import PaymentIn
    from haven.models import Tenant, Unit

    today = datetime.now(UTC).date()
    months = [today.year * 12 + today.month - 1 - back for back in (2, 1, 0)]
    firsts = [today.replace(year=m // 12, month=m % 12 + 1, day=1) for m in months]
    demo_units = (
        (
            await session.execute(
                select(Unit).where(Unit.organization_id == org_id).order_by(Unit.label)
            )
        )
        .scalars()
        .all()
    )
    demo_tenants = (
        (
            await session.execute(
                select(Tenant).where(Tenant.organization_id == org_id).order_by(Tenant.created_at)
            )
        )
        .scalars()
        .all()
    )
    demo_leases = []
    for index, tenant in enumerate(demo_tenants[:3]):
        unit = demo_units[index]
        drafted = await leases.create(
            session,
            Reader.inside(session),  # its unit and tenant are not committed yet
            org_id,
            LeaseIn(
                unit_id=unit.id,
                tenant_ids=[tenant.id],
                start_date=firsts[0],
                end_date=None if index else firsts[0].replace(year=firsts[0].year + 1),
                rent=unit.market_rent,
                deposit=unit.market_rent * 2,
                grace_days=5,
                late_fee=LateFee(kind="flat", amount=5000),
            ),
        )
        demo_leases.append(await leases.activate(session, drafted.lease))
    for n, first in enumerate(firsts):
        # Billed as `haven jobs billing` would, so a later run does not bill these months again.
        await billing.run(session, org_id, first, dry_run=False)
        for index, lease in enumerate(demo_leases):
            if index == 2 and n == len(firsts) - 1:
                continue  # the third tenant has not paid this month yet
            await ledger.post_payment(
                session,
                lease.organization_id,
                lease.id,
                PaymentIn(amount=lease.rent, received_on=first, method="bank_transfer"),
                None,
            )


async def _demo_resident(session: Any, settings: Settings, org_id: Any, owner_id: Any) -> None:
    """Ada, on the first lease, is invited and accepts: a resident login to try."""
    from sqlalchemy import select

    from haven.models import Tenant
    from haven.residents import service as residents
    from haven.residents.schemas import AcceptIn, InvitationIn

    tenant = await session.scalar(
        select(Tenant).where(Tenant.organization_id == org_id, Tenant.email == DEMO_RESIDENT_EMAIL)
    )
    _, token = await residents.invite(
        session,
        org_id,
        tenant.id,
        owner_id,
        InvitationIn(),
        ttl_days=settings.invitation_ttl_days,
        grace_days=settings.resident_grace_days,
    )
    await residents.accept(
        session,
        AcceptIn(token=token, password=DEMO_PASSWORD),
        grace_days=settings.resident_grace_days,
    )


async def _demo_vendors(session: Any, org_id: Any, user_id: Any) -> None:
    """An insured plumber, a leak they fixed (a work order, done and invoiced) and their bill,
    paid in part: something for /vendors, /work-orders, /bills and the property P&L to show."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import select

    from haven.bills import service as bills
    from haven.bills.schemas import BillIn, BillPaymentIn
    from haven.maintenance import service as maintenance
    from haven.maintenance.schemas import MaintenanceIn
    from haven.models import Organization, Property
    from haven.organizations.service import today_in
    from haven.vendors import service as vendors
    from haven.vendors.schemas import VendorIn
    from haven.work_orders import service as work_orders
    from haven.work_orders.schemas import WorkOrderIn, WorkOrderTransitionIn

    org = await session.get(Organization, org_id)
    today = today_in(org)
    prop = (
        (
            await session.execute(
                select(Property).where(Property.organization_id == org_id).order_by(Property.name)
            )
        )
        .scalars()
        .first()
    )
    plumber = await vendors.create(
        session,
        org_id,
        VendorIn(
            name="Ace Plumbing",
            trade="plumbing",
            contact_name="Pat Piper",
            email="pat@aceplumbing.example",
            phone="+1 555 0142",
            insurance_expires_on=today.replace(year=today.year + 1, day=1),
        ),
    )
    request = await maintenance.create(
        session,
        Reader.inside(session),  # its property is not committed yet
        org_id,
        user_id,
        MaintenanceIn(property_id=prop.id, title="Leaking kitchen tap"),
    )
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    order = await work_orders.create(
        session,
        Reader.inside(session),  # its request and vendor are not committed yet
        org_id,
        request.id,
        WorkOrderIn(
            title="Replace tap cartridge",
            estimate=15000,
            vendor_id=plumber.id,
            scheduled_start=start,
            scheduled_end=start + timedelta(hours=2),
        ),
    )
    for step in ("scheduled", "done"):
        await work_orders.transition(session, order, WorkOrderTransitionIn(to=step), today)
    bill = await bills.create(
        session,
        Reader.inside(session),  # its vendor is not committed yet
        org_id,
        BillIn(
            vendor_id=plumber.id,
            property_id=prop.id,
            work_order_id=order.id,
            amount=14250,
            issued_on=today - timedelta(days=2),
            due_on=today + timedelta(days=28),
            description="Tap cartridge and labour",
            reference="ACE-1042",
        ),
    )
    await bills.pay(
        session, bill, BillPaymentIn(amount=5000, method="bank_transfer"), user_id, today
    )
