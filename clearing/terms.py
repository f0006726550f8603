"""What an agreement gives for a period: pure functions of its terms and the period's figures.

Money is integer minor units; rates are percentages. Results are rounded half-up to the
minor unit once, at the end.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

_HUNDRED = Decimal(100)


def tiered_commission(volume_minor: int, tiers: list[dict], mode: str) -> int:
    """The commission on a period's volume. ``tiers`` are ``{from_minor, percent}``, the
    first from 0, a tier reached when the volume is at least its ``from``. ``marginal``:
    each part of the volume at its own tier's rate; ``retroactive``: all of it at the rate
    of the highest tier reached. A negative volume (more credited than sold) earns its
    first tier's rate, negative."""
    ordered = sorted(tiers, key=lambda tier: tier["from_minor"])
    if volume_minor <= 0:
        return _round(Decimal(volume_minor) * Decimal(ordered[0]["percent"]) / _HUNDRED)
    if mode == "retroactive":
        reached = [tier for tier in ordered if tier["from_minor"] <= volume_minor][-1]
        return _round(Decimal(volume_minor) * Decimal(reached["percent"]) / _HUNDRED)
    total = Decimal(0)
    for index, tier in enumerate(ordered):
        upper = ordered[index + 1]["from_minor"] if index + 1 < len(ordered) else None
        if volume_minor <= tier["from_minor"]:
            break
        part = (min(volume_minor, upper) if upper is not None else volume_minor) - tier["from_minor"]
        total += Decimal(part) * Decimal(tier["percent"]) / _HUNDRED
    return _round(total)


def guarantee_top_up(earned_minor: int, guarantee_minor: int) -> int:
    """What tops the period's earnings up to the minimum guarantee (never negative)."""
    return max(0, guarantee_minor - earned_minor)


def window(period_start: dt.date, period_end: dt.date, period: str | None) -> tuple[dt.date, dt.date] | None:
    """The agreement's window (calendar month, quarter or year) that ends with the month
    ``period_start``..``period_end``, or None when the month does not end one."""
    if period in (None, "month"):
        return period_start, period_end
    months = 3 if period == "quarter" else 12
    if period_end.month % months:
        return None
    first_month = period_end.month - months + 1
    return dt.date(period_end.year, first_month, 1), period_end


def _round(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))
