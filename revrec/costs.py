"""Contract costs (IFRS 15.91-104): the incremental costs of obtaining a contract, capitalised
and amortised. Pure domain code.

What is capitalised: a reseller's acquisition commission, which the contract's activation
posts to ``Assets:ContractCosts`` (contracts/events.py). Commissions that accrue on each
charge relate to that charge's revenue and are expensed with it.

Over how long (15.99, "consistent with the transfer of the services to which the asset
relates"): the contract's judgement ``contract_costs: {amortisation_months, reason}``, the
expected duration with the renewals anticipated; without one, a fixed-term contract's term.
An open-ended contract without the judgement has no period to amortise over: the close's
``contract_costs`` check fails and names it, since a judgement is never guessed. Accepted,
its costs are expensed in the month they are incurred.

How: on a straight line by month, from the month a cost is incurred (that month counting
as the first), each month's cumulative figure rounded half-up, so that the last month
leaves exactly nothing. A contract that terminates has nothing left to amortise over: what
remains is written off in the month of its last day of service.

The practical expedient (15.94, setting ``contract_costs_expedient``): when the amortisation
period is twelve months or less, the cost is expensed in the month it is incurred.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

from contracts.billing_periods import term_months
from contracts.service import Contract

CONTRACT_COSTS = "Assets:ContractCosts"
AMORTISATION = "Expenses:ContractCostAmortisation"
EXPEDIENT_MONTHS = 12  # IFRS 15.94: "one year or less"
# How a contract's amortisation period was set
JUDGEMENT, TERM, EXPEDIENT, MISSING = "judgement", "term", "expedient", "missing"


class CostPolicy(NamedTuple):
    """The amortisation period of one contract's costs and where it came from."""

    months: int | None  # None: expensed when incurred (expedient, or no period to amortise over)
    basis: str  # judgement, term, expedient or missing
    reason: str


def cost_policy(contract: Contract, *, expedient: bool) -> CostPolicy:
    judgement = contract.contract_costs
    if judgement:
        months, basis, reason = judgement["amortisation_months"], JUDGEMENT, judgement["reason"]
    elif contract.end is not None:
        months, basis = term_months(contract.start, contract.end), TERM
        reason = f"the contract's fixed term, {contract.start} to {contract.end}"
    else:
        return CostPolicy(None, MISSING, "open-ended, and no amortisation period recorded (contract_costs)")
    if expedient and months <= EXPEDIENT_MONTHS:
        return CostPolicy(None, EXPEDIENT, f"{months} months ({basis}): expensed when incurred (IFRS 15.94)")
    return CostPolicy(months, basis, reason)


def amortised_through(costs: Iterable[tuple[dt.date, int]], policy: CostPolicy, through: dt.date,
                      ended: dt.date | None = None) -> int:
    """What of ``costs`` (each incurred on a day, in minor units) is amortised by the end of
    the month of ``through``; ``ended`` is the contract's last day of service, if it has
    ended."""
    total = 0
    for day, amount in costs:
        elapsed = _months_between(day, through) + 1  # the month incurred counts as the first
        if elapsed <= 0:
            continue
        if policy.months is None or (ended is not None and ended <= _month_end(through)) or elapsed >= policy.months:
            total += amount
        else:
            total += int((Decimal(amount) * elapsed / policy.months).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return total


def _months_between(start: dt.date, end: dt.date) -> int:
    return (end.year - start.year) * 12 + end.month - start.month


def _month_end(day: dt.date) -> dt.date:
    following = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return following - dt.timedelta(days=1)
