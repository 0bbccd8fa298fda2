"""An owner statement as JSON, CSV rows and a PDF (fpdf2) an owner can be emailed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from haven.models import Owner
from haven.owners import statement as stmt
from haven.owners.schemas import (
    ManagementFeeOut,
    StatementOut,
    StatementPropertyOut,
    UnitRentOut,
)


def month_text(index: int) -> str:
    first, _ = stmt.month_bounds(index)
    return f"{first.year:04d}-{first.month:02d}"


def statement_out(owner: Owner, s: stmt.Statement, currency: str) -> StatementOut:
    first, last = stmt.month_bounds(s.month)
    properties: list[StatementPropertyOut] = []
    for line in s.properties:
        book, figures = line.book, line.figures
        labels: dict[uuid.UUID, str] = {r.unit_id: r.unit_label for r in book.receipts}
        units = sorted(
            (
                UnitRentOut(unit_id=u, unit_label=labels[u], rent_collected=amount)
                for u, amount in figures.units.items()
            ),
            key=lambda u: (u.unit_label, str(u.unit_id)),
        )
        fee = (
            ManagementFeeOut(kind=book.fee_kind, amount=book.fee_amount)
            if book.fee_kind and book.fee_amount is not None
            else None
        )
        properties.append(
            StatementPropertyOut(
                property_id=book.property_id,
                property_name=book.name,
                basis_points=line.basis_points,
                management_fee=fee,
                rent_collected=figures.rent,
                units=units,
                expenses=figures.expenses,
                fee=figures.fee,
                net=figures.net,
            )
        )
    return StatementOut(
        owner_id=owner.id,
        owner_name=owner.name,
        month=month_text(s.month),
        period_start=first,
        period_end=last,
        currency=currency,
        opening_balance=s.opening,
        rent_collected=s.rent,
        expenses=s.expenses,
        management_fee=s.fee,
        net=s.net,
        payouts=s.payouts,
        closing_balance=s.closing,
        properties=properties,
        generated_at=datetime.now(UTC),
    )


CSV_HEADER = ["section", "propertyId", "propertyName", "unitId", "unitLabel", "item", "amount"]


def csv_rows(body: StatementOut) -> list[list[object]]:
    """One row per figure: the summary, then each property and its units."""
    rows: list[list[object]] = [
        ["summary", "", "", "", "", "openingBalance", body.opening_balance],
    ]
    for p in body.properties:
        rows.extend(
            [
                "unit",
                p.property_id,
                p.property_name,
                u.unit_id,
                u.unit_label,
                "rentCollected",
                u.rent_collected,
            ]
            for u in p.units
        )
        rows.extend(
            ["property", p.property_id, p.property_name, "", "", item, amount]
            for item, amount in (
                ("rentCollected", p.rent_collected),
                ("expenses", p.expenses),
                ("managementFee", p.fee),
                ("net", p.net),
            )
        )
    for item, amount in (
        ("rentCollected", body.rent_collected),
        ("expenses", body.expenses),
        ("managementFee", body.management_fee),
        ("net", body.net),
        ("payouts", body.payouts),
        ("closingBalance", body.closing_balance),
    ):
        rows.append(["summary", "", "", "", "", item, amount])
    return rows


def money(amount: int) -> str:
    """Minor units as `-1,234.56` (two decimals)."""
    sign = "-" if amount < 0 else ""
    whole, cents = divmod(abs(amount), 100)
    return f"{sign}{whole:,}.{cents:02d}"


def _latin1(text: str) -> str:
    # The PDF's core font is Latin-1; other characters print as '?', never an error.
    return text.encode("latin-1", "replace").decode("latin-1")


def pdf_bytes(body: StatementOut, organization_name: str) -> bytes:
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_title(_latin1(f"Owner statement {body.month} - {body.owner_name}"))
    pdf.set_creator("Haven")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, _latin1(f"Owner statement {body.month}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    for line in (
        f"Owner: {body.owner_name}",
        f"From: {organization_name}",
        f"Period: {body.period_start.isoformat()} to {body.period_end.isoformat()}",
        f"Currency: {body.currency}",
    ):
        pdf.cell(0, 6, _latin1(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)

    def row(label: str, amount: int, *, bold: bool = False, indent: int = 0) -> None:
        pdf.set_font("Helvetica", "B" if bold else "", 10)
        pdf.cell(8 * indent)
        pdf.cell(120 - 8 * indent, 6, _latin1(label))
        pdf.cell(50, 6, money(amount), align="R", new_x="LMARGIN", new_y="NEXT")

    row("Opening balance", body.opening_balance, bold=True)
    for p in body.properties:
        pdf.ln(2)
        share = f"{p.basis_points / 100:g}%"
        pdf.set_font("Helvetica", "B", 11)
        pdf.cell(0, 7, _latin1(f"{p.property_name} (share {share})"), new_x="LMARGIN", new_y="NEXT")
        row("Rent collected", p.rent_collected, indent=1)
        for u in p.units:
            row(f"Unit {u.unit_label}", u.rent_collected, indent=2)
        row("Expenses", -p.expenses, indent=1)
        row("Management fee", -p.fee, indent=1)
        row("Net", p.net, bold=True, indent=1)
    pdf.ln(3)
    row("Rent collected", body.rent_collected)
    row("Expenses", -body.expenses)
    row("Management fee", -body.management_fee)
    row("Net owed", body.net, bold=True)
    row("Payouts", -body.payouts)
    row("Closing balance", body.closing_balance, bold=True)
    return bytes(pdf.output())
