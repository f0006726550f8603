"""Minimum commitments and prepayments of a contract, as a billing run sees them. Pure
functions of a contract, its status events and the run's month.

**Minimum commitment.** A ``minimum_commitment`` component promises a least spend on the
contract's usage per billing period. Its amount is due for each day of the period on which
the contract is active, at the version in force that day, over the days of the period (a
contract starting or ending inside a period commits to that part of it). When the period's
rated usage (every usage line of the contract dated in the period, net of discounts) is
below the commitment, the shortfall is trued up: charged at the period's end. The true-up of
a period is revisited by every later run, so that late usage of the period lowers it (a
negative true-up), and the sum of a period's true-ups is always the shortfall as the last
run saw it: usage and true-ups together are never below the commitment, never above the
usage.

**Prepayment.** A ``prepayment`` component is charged once, by the first run whose month
holds the first day it is in force (the contract's start, or the amendment adding it) once
the contract is active. The customer pays it up front; it is held as a contract liability
and drawn down by the contract's charges on this and later invoices until it is used up.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import NamedTuple

from contracts.billing_periods import billing_period
from contracts.events import status_on
from contracts.service import Contract
from usage.rating import round_half_up

_ONE_DAY = dt.timedelta(days=1)
COMMITMENT, PREPAYMENT = "minimum_commitment", "prepayment"


class CommitmentPeriod(NamedTuple):
    component: dict  # as in the version in force at the period's last active day
    period_start: dt.date
    period_end: dt.date
    active_days: int
    period_days: int
    committed_minor: int


class PrepaymentDue(NamedTuple):
    component: dict
    first_day: dt.date  # the first day it is in force: its record's key


def codes_of(contract: Contract, kind: str) -> list[str]:
    return sorted({c["code"] for v in contract.versions for c in v.components if c["type"] == kind})


def commitment_periods(contract: Contract, status_changes: Sequence[tuple[dt.date, str]],
                       until: dt.date) -> Iterator[CommitmentPeriod]:
    """Every billing period of every minimum commitment of ``contract`` that ended on or
    before ``until``, with what it commits (periods committing nothing are left out)."""
    codes = codes_of(contract, COMMITMENT)
    if not codes:
        return
    period = _period(contract, contract.start)
    while period[1] <= until and (contract.end is None or period[0] <= contract.end):
        for code in codes:
            found = _committed(contract, status_changes, period, code)
            if found is not None:
                yield found
        period = _period(contract, period[1] + _ONE_DAY)


def _committed(contract: Contract, changes, period: tuple[dt.date, dt.date], code: str) -> CommitmentPeriod | None:
    first, last = max(period[0], contract.start), min(period[1], contract.end or period[1])
    total, active, component = Decimal(0), 0, None
    day = first
    while day <= last:
        found = contract.version_at(day).component(code)
        if found is not None and found["type"] == COMMITMENT and status_on(changes, day)[0] == "active":
            total += found["amount_minor"]
            active += 1
            component = found
        day += _ONE_DAY
    if component is None:
        return None
    period_days = (period[1] - period[0]).days + 1
    return CommitmentPeriod(component, period[0], period[1], active, period_days, round_half_up(total / period_days))


def prepayments_due(contract: Contract, status_changes: Sequence[tuple[dt.date, str]],
                    until: dt.date) -> Iterator[PrepaymentDue]:
    """Every prepayment component of ``contract`` in force on or before ``until`` on a day
    the contract was active (charged ones included: the caller leaves them out)."""
    for code in codes_of(contract, PREPAYMENT):
        for version in contract.versions:
            component = version.component(code)
            if component is None or component["type"] != PREPAYMENT:
                continue
            first_day = max(version.effective_from, contract.start)
            if first_day <= until and _active_between(status_changes, first_day, until):
                yield PrepaymentDue(component, first_day)
            break  # a prepayment is charged once, at the version that first holds it


def _active_between(changes: Sequence[tuple[dt.date, str]], first: dt.date, last: dt.date) -> bool:
    """Whether the contract is active on ``first`` or becomes active by ``last``."""
    if status_on(changes, first)[0] == "active":
        return True
    return any(first <= day <= last and kind in ("activated", "resumed") for day, kind in changes)


def _period(contract: Contract, day: dt.date) -> tuple[dt.date, dt.date]:
    return billing_period(day, start=contract.start, frequency=contract.billing_frequency,
                          billing_day=contract.billing_day)
