"""The revenue-recognition policies an installation sets: its standalone selling price
table and its day-count policy (settings ssp_table and revrec_day_count)."""

from __future__ import annotations

from typing import NamedTuple

from ledger.records import E_INVALID, LedgerError, Problem
from revrec.schedule import DAY_COUNTS
from revrec.ssp import SspTable, load_ssp_table


class Policies(NamedTuple):
    ssp: SspTable
    day_count: str


def policies(settings) -> Policies:
    if settings.revrec_day_count not in DAY_COUNTS:
        raise LedgerError(Problem(E_INVALID, "revrec_day_count", f"{settings.revrec_day_count!r} is not one of "
                                  f"{', '.join(DAY_COUNTS)}"))
    return Policies(load_ssp_table(settings.ssp_table or None), settings.revrec_day_count)
