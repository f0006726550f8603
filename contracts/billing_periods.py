"""Billing periods and proration. Pure functions.

A contract's billing periods start on its billing day (1 to 28) every month, quarter or
year, counted from the month it starts in. Proration policies, by name:

- ``daily``: a fee for part of a period is the fee times the days used over the days in the
  period, rounded half-up to the minor unit;
- ``none``: a period is charged in full or not at all (changes take effect next period).
"""

from __future__ import annotations

import calendar
import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

MONTHS_OF = {"monthly": 1, "quarterly": 3, "yearly": 12}


def _add_months(day: dt.date, months: int, billing_day: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return dt.date(year, month + 1, min(billing_day, calendar.monthrange(year, month + 1)[1]))


def billing_period(day: dt.date, *, start: dt.date, frequency: str, billing_day: int) -> tuple[dt.date, dt.date]:
    """The billing period (first and last day) that contains ``day``."""
    step = MONTHS_OF[frequency]
    anchor = dt.date(start.year, start.month, billing_day)
    months = (day.year - anchor.year) * 12 + day.month - anchor.month
    first = _add_months(anchor, months - months % step, billing_day)
    if first > day:
        first = _add_months(first, -step, billing_day)
    return first, _add_months(first, step, billing_day) - dt.timedelta(days=1)


def prorate(amount_minor: int, first_day: dt.date, last_day: dt.date, period: tuple[dt.date, dt.date], policy: str) -> int:
    """The part of a period's ``amount_minor`` for the days first_day..last_day (inclusive)."""
    if last_day < first_day:
        return 0
    if policy == "none":
        return 0 if (first_day, last_day) != period else amount_minor
    if policy != "daily":
        raise ValueError(f"unknown proration policy {policy!r}")
    used = (last_day - first_day).days + 1
    total = (period[1] - period[0]).days + 1
    return int((Decimal(amount_minor) * used / total).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def term_months(start: dt.date, end: dt.date) -> int:
    """A fixed term's length in months, a started month counting whole: 2026-01-01 to
    2026-12-31 is 12, 2026-01-15 to 2027-01-14 is 12, 2026-01-15 to 2027-01-15 is 13."""
    months = (end.year - start.year) * 12 + end.month - start.month
    return months + (1 if end.day >= start.day else 0)
