"""Recurring fees due in a billing run. Pure functions of a contract, its status events and
the run's month.

A contract's billing periods start on its billing day, monthly, quarterly or yearly
(contracts/billing_periods.py). A run for month M bills:

- **in advance**: each period whose first billable day (its first day, or the contract's
  start when that is later) falls in M. The fee is that of the contract version in force on
  that day. With ``daily`` proration it is charged for the days from that day to the period's
  end on which the contract is active (activated, not suspended), over the days of the
  period. With ``none`` it is charged in full if the contract is active on that day.
  Terminations and amendments inside the period are not looked at: their events post the
  prorated difference themselves (contracts/events.py), assuming the period billed in full.
- **in arrears**: each period that ends in M. With ``daily`` proration, each day of the
  period on which the contract is active (within its term, activated, not suspended, not
  terminated) is charged at the fee of the version in force that day, over the days of the
  period: an amendment or a termination inside the period is prorated here. With ``none``,
  the fee in force on the period's last day is charged if the contract is active that day.

Amounts are rounded half-up once per period; discount components of the version used take
their percent of the fee.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import NamedTuple

from contracts.billing_periods import billing_period
from contracts.events import status_on
from contracts.service import Contract, ContractVersion
from usage.rating import discount, round_half_up

_ONE_DAY = dt.timedelta(days=1)
IN_ADVANCE, IN_ARREARS = "in_advance", "in_arrears"


class FeeDue(NamedTuple):
    contract: Contract
    component: dict  # as in the version charged
    timing: str
    period_start: dt.date
    period_end: dt.date
    charged_days: int
    period_days: int
    gross_minor: int
    discount_minor: int
    amount_minor: int
    terms_day: dt.date  # the day whose agreements (vendor share, commission) apply


def fees_due(contract: Contract, status_changes: Sequence[tuple[dt.date, str]], month_start: dt.date,
             month_end: dt.date) -> Iterator[FeeDue]:
    """Every recurring fee of ``contract`` that a run for the month bills (billed ones
    included: the caller leaves out what is already on an invoice)."""
    codes = sorted({c["code"] for v in contract.versions for c in v.components if c["type"] == "recurring_fee"})
    if not codes:
        return
    last_day = contract.end or month_end
    period = _period(contract, contract.start)
    while period[0] <= month_end and period[0] <= last_day:
        for code in codes:
            due = _in_advance(contract, status_changes, period, code, month_start, month_end)
            if due is None:
                due = _in_arrears(contract, status_changes, period, code, month_start, month_end)
            if due is not None and due.amount_minor:
                yield due
        period = _period(contract, period[1] + _ONE_DAY)


def _period(contract: Contract, day: dt.date) -> tuple[dt.date, dt.date]:
    return billing_period(day, start=contract.start, frequency=contract.billing_frequency,
                          billing_day=contract.billing_day)


def _fee(version: ContractVersion, code: str, timing: str) -> dict | None:
    component = version.component(code)
    if component is None or component["type"] != "recurring_fee" or component.get("timing") != timing:
        return None
    return component


def _days(first: dt.date, last: dt.date) -> Iterator[dt.date]:
    day = first
    while day <= last:
        yield day
        day += _ONE_DAY


def _active_days(changes, first: dt.date, last: dt.date) -> int:
    """The days first..last on which the contract is active. When no status event falls
    inside (a termination takes effect the day after its date), the status is the same
    every day and the days are counted, not walked."""
    if not any(first - _ONE_DAY <= day <= last for day, _ in changes):
        return (last - first).days + 1 if status_on(changes, first)[0] == "active" else 0
    return sum(1 for day in _days(first, last) if status_on(changes, day)[0] == "active")


def _in_advance(contract, changes, period, code, month_start, month_end) -> FeeDue | None:
    first = max(period[0], contract.start)
    if not month_start <= first <= month_end or (contract.end is not None and first > contract.end):
        return None
    version = contract.version_at(first)
    component = _fee(version, code, IN_ADVANCE)
    if component is None:
        return None
    # Terminations inside the period are the termination event's to credit.
    known = [(day, kind) for day, kind in changes if not (kind == "terminated" and day >= first)]
    period_days = (period[1] - period[0]).days + 1
    if component.get("proration") == "none":
        charged = period_days if status_on(known, first)[0] == "active" else 0
        gross = component["amount_minor"] if charged else 0
    else:
        charged = _active_days(known, first, period[1])
        gross = round_half_up(Decimal(component["amount_minor"]) * charged / period_days)
    return _due(contract, version, component, IN_ADVANCE, period, charged, period_days, gross, first)


def _in_arrears(contract, changes, period, code, month_start, month_end) -> FeeDue | None:
    if not month_start <= period[1] <= month_end or period[1] < contract.start:
        return None
    period_days = (period[1] - period[0]).days + 1
    first, last = max(period[0], contract.start), min(period[1], contract.end or period[1])
    end_version = contract.version_at(period[1])
    if all(_fee(v, code, IN_ARREARS) is None for v in contract.versions):
        return None
    proration = next(_fee(v, code, IN_ARREARS) for v in reversed(contract.versions)
                      if _fee(v, code, IN_ARREARS) is not None)["proration"]
    if proration == "none":
        component = _fee(end_version, code, IN_ARREARS)
        active = component is not None and last == period[1] and status_on(changes, period[1])[0] == "active"
        charged = period_days if active else 0
        gross = component["amount_minor"] if active else 0
        version = end_version
    else:
        total, charged, version, component = Decimal(0), 0, end_version, _fee(end_version, code, IN_ARREARS)
        for day in _days(first, last):
            day_version = contract.version_at(day)
            day_fee = _fee(day_version, code, IN_ARREARS)
            if day_fee is not None and status_on(changes, day)[0] == "active":
                total += day_fee["amount_minor"]
                charged += 1
                version, component = day_version, day_fee
        gross = round_half_up(total / period_days)
    if component is None:
        return None
    return _due(contract, version, component, IN_ARREARS, period, charged, period_days, gross, period[1])


def _due(contract, version, component, timing, period, charged, period_days, gross, terms_day) -> FeeDue:
    percents = tuple(Decimal(c["percent"]) for c in version.components
                     if c["type"] == "discount" and component["code"] in (c.get("applies_to") or (component["code"],)))
    off = discount(gross, percents) if percents else 0
    return FeeDue(contract, component, timing, period[0], period[1], charged, period_days, gross, off, gross - off,
                  terms_day)
