"""`haven demo-data`: a small portfolio to click around in (development only)."""

from __future__ import annotations

from haven.auth import service as auth
from haven.auth.schemas import RegisterIn
from haven.config import Settings
from haven.db.engine import WRITE_OPTION, create_engine, create_sessionmaker
from haven.properties import service as properties
from haven.properties.schemas import Address, PropertyIn, PropertyType
from haven.tenants import service as tenants
from haven.tenants.schemas import TenantIn
from haven.units import service as units
from haven.units.schemas import UnitIn

DEMO_EMAIL = "test@example.com"
DEMO_PASSWORD = "password"  # noqa: S105 - the documented development login

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
                for n in range(1, count + 1):
                    await units.create(
                        session,
                        org_id,
                        prop,
                        UnitIn(label=f"{n:02d}", bedrooms=1 + n % 3, market_rent=rent),
                    )
            for first, last, email in TENANTS:
                await tenants.create(
                    session, org_id, TenantIn(first_name=first, last_name=last, email=email)
                )
        return True
    finally:
        await engine.dispose()
