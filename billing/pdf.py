"""Invoices as PDF documents, with reportlab.

The PDF is rendered from the stored invoice, so the same invoice always gives the same bytes
(reportlab's invariant mode leaves out creation dates and random document ids). Texts go
into table cells as plain strings, never as markup, so a hostile customer name prints as
written. The built-in Helvetica covers Latin-1. Other characters need an embedded font,
which is not configured yet (docs/billing.md).
"""

from __future__ import annotations

import io

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from billing.service import Invoice
from ledger.money import format_amount

_GRID = TableStyle([
    ("FONT", (0, 0), (-1, -1), "Helvetica", 9),
    ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 9),
    ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black),
    ("ALIGN", (2, 0), (-1, -1), "RIGHT"),
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
])
_FIELDS = TableStyle([
    ("FONT", (0, 0), (-1, -1), "Helvetica", 9),
    ("FONT", (0, 0), (0, -1), "Helvetica-Bold", 9),
])
DESCRIPTION_CHARS_SHOWN = 70


def _latin1(text: str) -> str:
    """What Helvetica can draw: other characters become '?' instead of silent gaps."""
    return text.encode("latin-1", errors="replace").decode("latin-1")


def invoice_pdf(invoice: Invoice) -> bytes:
    buffer = io.BytesIO()
    title = "Credit note" if invoice.document_type == "credit_note" else "Invoice"
    document = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=18 * mm,
                                 bottomMargin=18 * mm, title=f"{title} {invoice.number}", author=invoice.company,
                                 invariant=1)
    currency = invoice.currency
    fields = [
        (title, invoice.number),
        *([("Credits invoice", invoice.credits), ("Reason", _latin1(invoice.reason or ""))]
          if invoice.document_type == "credit_note" else []),
        ("Billed by", invoice.company),
        ("Customer", _latin1(f"{invoice.customer_name} ({invoice.customer})")),
        *([("Cost centre", _latin1(invoice.cost_centre))] if invoice.cost_centre else []),
        ("Period", invoice.period),
        ("Issued", invoice.issue_date.isoformat()), ("Due", invoice.due_date.isoformat()),
    ]
    rows = [["#", "Description", "Quantity", "Unit", f"Amount ({currency})"]]
    for line in invoice.lines:
        description = line.description if len(line.description) <= DESCRIPTION_CHARS_SHOWN else (
            line.description[:DESCRIPTION_CHARS_SHOWN - 3] + "...")
        rows.append([str(line.line_no), _latin1(description), line.quantity, _latin1(line.unit),
                     format_amount(line.amount_minor, currency)])
    rows.append(["", "Total", "", "", format_amount(invoice.total_minor, currency)])
    lines = Table(rows, colWidths=[10 * mm, 95 * mm, 22 * mm, 18 * mm, 29 * mm], repeatRows=1)
    lines.setStyle(_GRID)
    lines.setStyle(TableStyle([("FONT", (0, -1), (-1, -1), "Helvetica-Bold", 9),
                               ("LINEABOVE", (0, -1), (-1, -1), 0.5, colors.black)]))
    header = Table([[name, value] for name, value in fields], colWidths=[30 * mm, 144 * mm])
    header.setStyle(_FIELDS)
    styles = getSampleStyleSheet()
    footer = Paragraph(f"Document hash {invoice.document_hash}; journal entry {invoice.entry_seq or '-'}",
                       styles["Italic"])
    document.build([header, Spacer(1, 8 * mm), lines, Spacer(1, 8 * mm), footer])
    return buffer.getvalue()
