"""The revenue-recognition policies an installation sets: its standalone selling price
table, its day-count policy and whether contract costs take the one-year practical
expedient (settings ssp_table, revrec_day_count and contract_costs_expedient)."""

from __future__ import annotations

from typing import NamedTuple

from ledger.records import E_INVALID, LedgerError, Problem
from revrec.schedule import DAY_COUNTS
from revrec.ssp import SspTable, load_ssp_table


class Policies(NamedTuple):
    ssp: SspTable
    day_count: str
    cost_expedient: bool


def policies(settings) -> Policies:
    if settings.revrec_day_count not in DAY_COUNTS:
        raise LedgerError(Problem(E_INVALID, "revrec_day_count", f"{settings.revrec_day_count!r} is not one of "
                                  f"{', '.join(DAY_COUNTS)}"))
    return Policies(load_ssp_table(settings.ssp_table or None), settings.revrec_day_count,
                    bool(settings.contract_costs_expedient))
