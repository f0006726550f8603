"""Revenue reports as PDF documents (reportlab, reproducible bytes, the fonts of
billing/pdf.py) and the waterfall as a PNG chart (Pillow)."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageFont
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from billing.pdf import Fonts, fonts, printable
from config.currencies import minor_units
from revrec.reports import ReportTable, Waterfall

CHART_WIDTH_PX, CHART_HEIGHT_PX = 1000, 500


def report_pdf(table: ReportTable, company: str, period: str, font: Fonts | None = None) -> bytes:
    """One report as a landscape A4 document: title, the company and month, the table, notes."""
    font = font or fonts()
    buffer = io.BytesIO()
    page = landscape(A4)
    document = SimpleDocTemplate(buffer, pagesize=page, leftMargin=12 * mm, rightMargin=12 * mm, topMargin=12 * mm,
                                 bottomMargin=12 * mm, title=f"{table.title} {company} {period}", author=company,
                                 invariant=1)
    styles = getSampleStyleSheet()
    heading = Paragraph(printable(f"{table.title}: {company}, {period}", font), styles["Heading2"])
    rows = [[printable(c, font) for c in table.columns]] + [[printable(v, font) for v in row] for row in table.rows]
    width = (page[0] - 24 * mm) / max(len(table.columns), 1)
    grid = Table(rows, colWidths=[width] * len(table.columns), repeatRows=1)
    style = [("FONT", (0, 0), (-1, -1), font.regular, 7), ("FONT", (0, 0), (-1, 0), font.bold, 7),
             ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black), ("VALIGN", (0, 0), (-1, -1), "TOP")]
    for index, column in enumerate(table.columns):
        if column in table.right:
            style.append(("ALIGN", (index, 0), (index, -1), "RIGHT"))
    grid.setStyle(TableStyle(style))
    notes = [Paragraph(printable(note, font), styles["Italic"]) for note in table.notes]
    document.build([heading, Spacer(1, 4 * mm), grid, Spacer(1, 6 * mm), *notes])
    return buffer.getvalue()


def waterfall_png(falls: list[Waterfall]) -> bytes:
    """Revenue per month as bars, recognised (dark) and scheduled (light), the first
    currency's; an empty chart when there is no revenue."""
    image = Image.new("RGB", (CHART_WIDTH_PX, CHART_HEIGHT_PX), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    left, bottom, top, right = 90, CHART_HEIGHT_PX - 60, 40, CHART_WIDTH_PX - 20
    draw.line([(left, top), (left, bottom), (right, bottom)], fill="black")
    if not falls or not falls[0].months:
        draw.text((left + 10, top), "no revenue scheduled", fill="black", font=font)
        return _png(image)
    fall = falls[0]
    totals = fall.totals()
    peak = max(max(totals.values()), 1)
    draw.text((left, 10), f"Revenue waterfall {fall.company} {fall.period} ({fall.currency})", fill="black", font=font)
    slot = (right - left) / len(fall.months)
    for index, month in enumerate(fall.months):
        amount = max(totals[month], 0)
        height = (bottom - top) * amount / peak
        x0 = left + index * slot + slot * 0.15
        x1 = left + (index + 1) * slot - slot * 0.15
        colour = (40, 80, 160) if month <= fall.period else (160, 185, 225)
        draw.rectangle([x0, bottom - height, x1, bottom], fill=colour)
        draw.text((x0, bottom + 6), month, fill="black", font=font)
    for step in range(5):
        value = peak * step / 4
        y = bottom - (bottom - top) * step / 4
        draw.line([(left - 4, y), (left, y)], fill="black")
        draw.text((5, y - 6), f"{value / 10 ** _decimals(fall.currency):,.0f}", fill="black", font=font)
    draw.text((right - 260, 10), "dark: recognised   light: scheduled", fill="black", font=font)
    return _png(image)


def _decimals(currency: str) -> int:
    return minor_units(currency) or 0


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
