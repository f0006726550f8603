"""Invoices as PDF documents, with reportlab.

The PDF is rendered from the stored invoice, so the same invoice always gives the same bytes
(reportlab's invariant mode leaves out creation dates and random document ids). Texts go
into table cells as plain strings, never as markup, so a hostile customer name prints as
written.

Fonts: the setting ``pdf_font`` names a TrueType font to embed (``pdf_font_bold`` its bold
face), which prints every script the font has. Without it, DejaVu Sans is embedded when the
system has it (Debian's fonts-dejavu-core), else the built-in Helvetica prints Latin-1 and
shows other characters as '?' instead of leaving silent gaps.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path
from typing import NamedTuple

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from billing.service import Invoice
from ledger.money import format_amount

DESCRIPTION_CHARS_SHOWN = 70
SYSTEM_FONTS = (  # DejaVu Sans where Debian, Ubuntu and Fedora put it
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
    ("/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf", "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans-Bold.ttf"),
)


class Fonts(NamedTuple):
    regular: str
    bold: str
    unicode: bool  # False: the built-in Helvetica, Latin-1 only
    glyphs: frozenset[int] = frozenset()  # the code points an embedded font draws


class FontError(ValueError):
    pass


@functools.cache
def fonts(path: str = "", bold_path: str = "") -> Fonts:
    """The fonts to print with: ``path`` (and ``bold_path``, default the same) embedded; with
    no path, DejaVu Sans if the system has it, else Helvetica."""
    if not path:
        found = next(((r, b) for r, b in SYSTEM_FONTS if Path(r).is_file()), None)
        if found is None:
            return Fonts("Helvetica", "Helvetica-Bold", False)
        path, bold_path = found[0], found[1] if Path(found[1]).is_file() else found[0]
    names, glyphs = [], frozenset()
    for face, file in (("regular", path), ("bold", bold_path or path)):
        name = f"ecoledger-{face}-{Path(file).stem}"
        try:
            embedded = TTFont(name, file)
        except Exception as exc:  # reportlab raises several kinds for a missing or broken file
            raise FontError(f"pdf_font: cannot embed {file}: {exc}") from None
        pdfmetrics.registerFont(embedded)
        names.append(name)
        glyphs = frozenset(embedded.face.charToGlyph) if face == "regular" else glyphs & set(embedded.face.charToGlyph)
    return Fonts(names[0], names[1], True, glyphs)


def printable(text: str, font: Fonts) -> str:
    """What the font can draw: other characters become '?' instead of silent gaps (Latin-1
    for Helvetica; the font's own glyphs for an embedded one)."""
    if not font.unicode:
        return text.encode("latin-1", errors="replace").decode("latin-1")
    return "".join(c if ord(c) in font.glyphs or c in "\n\t" else "?" for c in text)


def invoice_pdf(invoice: Invoice, font: Fonts | None = None) -> bytes:
    font = font or fonts()
    grid = TableStyle([
        ("FONT", (0, 0), (-1, -1), font.regular, 9),
        ("FONT", (0, 0), (-1, 0), font.bold, 9),
        ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black),
        ("ALIGN", (2, 0), (-1, -1), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ])
    field_style = TableStyle([("FONT", (0, 0), (-1, -1), font.regular, 9), ("FONT", (0, 0), (0, -1), font.bold, 9)])
    buffer = io.BytesIO()
    title = "Credit note" if invoice.document_type == "credit_note" else "Invoice"
    document = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=18 * mm,
                                 bottomMargin=18 * mm, title=f"{title} {invoice.number}", author=invoice.company,
                                 invariant=1)
    currency = invoice.currency
    fields = [
        (title, invoice.number),
        *([("Credits invoice", invoice.credits), ("Reason", printable(invoice.reason or "", font))]
          if invoice.document_type == "credit_note" else []),
        ("Billed by", invoice.company),
        ("Customer", printable(f"{invoice.customer_name} ({invoice.customer})", font)),
        *([("Cost centre", printable(invoice.cost_centre, font))] if invoice.cost_centre else []),
        ("Period", invoice.period),
        ("Issued", invoice.issue_date.isoformat()), ("Due", invoice.due_date.isoformat()),
    ]
    rows = [["#", "Description", "Quantity", "Unit", f"Amount ({currency})"]]
    for line in invoice.lines:
        description = line.description if len(line.description) <= DESCRIPTION_CHARS_SHOWN else (
            line.description[:DESCRIPTION_CHARS_SHOWN - 3] + "...")
        rows.append([str(line.line_no), printable(description, font), line.quantity, printable(line.unit, font),
                     format_amount(line.amount_minor, currency)])
    rows.append(["", "Total", "", "", format_amount(invoice.total_minor, currency)])
    lines = Table(rows, colWidths=[10 * mm, 95 * mm, 22 * mm, 18 * mm, 29 * mm], repeatRows=1)
    lines.setStyle(grid)
    lines.setStyle(TableStyle([("FONT", (0, -1), (-1, -1), font.bold, 9),
                               ("LINEABOVE", (0, -1), (-1, -1), 0.5, colors.black)]))
    header = Table([[name, value] for name, value in fields], colWidths=[30 * mm, 144 * mm])
    header.setStyle(field_style)
    styles = getSampleStyleSheet()
    footer = Paragraph(f"Document hash {invoice.document_hash}; journal entry {invoice.entry_seq or '-'}",
                       styles["Italic"])
    document.build([header, Spacer(1, 8 * mm), lines, Spacer(1, 8 * mm), footer])
    return buffer.getvalue()
