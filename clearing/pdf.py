"""Settlement statements as PDF documents (reportlab, reproducible bytes, the fonts of
billing/pdf.py: texts print as written, missing glyphs as '?')."""

from __future__ import annotations

import io

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from billing.pdf import Fonts, fonts, printable
from clearing.statements import SECTIONS, Statement
from ledger.money import format_amount


def statement_pdf(statement: Statement, font: Fonts | None = None) -> bytes:
    font = font or fonts()
    buffer = io.BytesIO()
    document = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=18 * mm,
                                 bottomMargin=18 * mm, title=f"Settlement statement {statement.number}",
                                 author=statement.counterparty, invariant=1)
    currency = statement.currency
    direction = ("to be paid to the partner" if statement.settle_minor > 0
                 else "to be paid by the partner" if statement.settle_minor < 0 else "nothing to settle")
    fields = [
        ("Statement", statement.number), ("Partner", statement.partner), ("With", statement.counterparty),
        ("Period", statement.period),
        ("Version", f"{statement.version}" + (f", corrects {statement.previous}" if statement.previous else "")
         + ("" if statement.latest else " (corrected by a later version)")),
        ("Issued", statement.issued_at.date().isoformat()), ("Due", statement.due_date.isoformat()),
        ("Status", statement.status.replace("_", " ")),
    ]
    rows = [["#", "Contract / service", "Kind", "Postings", f"Amount ({currency})"],
            ["", "Opening balance", "", "", format_amount(statement.opening_minor, currency)]]
    for section in SECTIONS:
        lines = [line for line in statement.lines if line.section == section]
        if not lines:
            continue
        rows.append(["", section.capitalize(), "", "", ""])
        for line in lines:
            rows.append([str(line.line_no), printable(" / ".join(filter(None, (line.contract, line.service))) or "-", font),
                         printable(line.kind, font), str(line.postings), format_amount(line.amount_minor, currency)])
        rows.append(["", "", f"{section} total", "", format_amount(sum(line.amount_minor for line in lines), currency)])
    rows.append(["", "Closing balance", "", "", format_amount(statement.closing_minor, currency)])
    if statement.withheld_minor:
        for item in statement.withheld:
            rows.append(["", printable(item.contract, font), printable(f"withheld: {item.usage_line}", font), "",
                         format_amount(item.amount_minor, currency)])
        rows.append(["", "Withheld (open disputes)", "", "", format_amount(statement.withheld_minor, currency)])
    rows.append(["", "To settle", direction, "", format_amount(statement.settle_minor, currency)])
    for payment in statement.payments:
        rows.append(["", f"Paid {payment.paid_on}", printable(payment.reference or "", font), "",
                     format_amount(payment.amount_minor, currency)])
    rows.append(["", "Left to settle", "", "", format_amount(max(statement.outstanding_minor, 0), currency)])
    table = Table(rows, colWidths=[10 * mm, 50 * mm, 62 * mm, 20 * mm, 32 * mm], repeatRows=1)
    table.setStyle(TableStyle([
        ("FONT", (0, 0), (-1, -1), font.regular, 9), ("FONT", (0, 0), (-1, 0), font.bold, 9),
        ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black), ("ALIGN", (3, 0), (-1, -1), "RIGHT"),
        ("FONT", (0, -1), (-1, -1), font.bold, 9), ("LINEABOVE", (0, -1), (-1, -1), 0.5, colors.black),
    ]))
    header = Table([[name, printable(value, font)] for name, value in fields], colWidths=[30 * mm, 144 * mm])
    header.setStyle(TableStyle([("FONT", (0, 0), (-1, -1), font.regular, 9), ("FONT", (0, 0), (0, -1), font.bold, 9)]))
    footer = Paragraph(f"Document hash {statement.document_hash}", getSampleStyleSheet()["Italic"])
    document.build([header, Spacer(1, 8 * mm), table, Spacer(1, 8 * mm), footer])
    return buffer.getvalue()

