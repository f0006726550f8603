"""Invariants of usage, checked by `ecoledger verify` (ledger/verify.py calls check()).

- every usage line that posted points at an entry of source usage_line made for it (its own
  entry, or the aggregate entry whose source id is its own external id);
- every usage_line entry in the journal has the lines it posted;
- every period counter equals the sums of the lines of its contract component and period,
  and every line is counted;
- every import's posted count equals the lines stored under it.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, and_, func, or_, select

from ledger.schema import journal_entries
from usage.schema import usage_counters, usage_imports, usage_lines

CHECK = "usage"
DESCRIPTION = "usage lines, their entries, period counters and import counts agree"
SOURCE_TYPE = "usage_line"


def check(conn: Connection, add: Callable[[str, str | None, str], None]) -> None:
    lines, entries, counters = usage_lines.c, journal_entries.c, usage_counters.c
    unposted = conn.execute(
        select(lines.id, lines.entry_seq, entries.external_id)
        .select_from(usage_lines.outerjoin(journal_entries, entries.id == lines.entry_seq))
        .where(lines.entry_seq.is_not(None),
               or_(entries.id.is_(None), entries.source_type != SOURCE_TYPE,
                   and_(entries.source_id != lines.id, entries.source_id != entries.external_id)))
    )
    for line_id, seq, external_id in unposted:
        add(CHECK, external_id, f"usage line {line_id!r} names entry #{seq}, which is not an entry made for it")
    has_lines = select(lines.id).where(lines.entry_seq == entries.id).exists()
    orphans = conn.execute(select(entries.external_id).where(entries.source_type == SOURCE_TYPE, ~has_lines))
    for (external_id,) in orphans:
        add(CHECK, external_id, "a usage entry without the usage lines it posted")
    wrong = _counter_mismatches(conn)
    for contract_id, component, start, quantity, amount, summed_quantity, summed_amount in wrong:
        add(CHECK, None, f"usage counter of contract #{contract_id} {component} from {start} holds "
            f"{quantity} millionths and {amount} minor units; its lines sum to {summed_quantity} and {summed_amount}")
    covered = (select(counters.contract_id)
               .where(counters.contract_id == lines.contract_id, counters.component == lines.component,
                      counters.period_start <= lines.usage_date, counters.period_end >= lines.usage_date).exists())
    for (line_id,) in conn.execute(select(lines.id).where(~covered)):
        add(CHECK, None, f"usage line {line_id!r} is in no period counter")
    imports = usage_imports.c
    stored = select(func.count()).where(lines.import_id == imports.id).scalar_subquery()
    for import_id, posted, count in conn.execute(select(imports.id, imports.posted, stored).where(imports.posted != stored)):
        add(CHECK, None, f"usage import {import_id} says {posted} lines posted; {count} are stored under it")


def _counter_mismatches(conn: Connection):
    """Counters whose quantity or amount differ from the sums of their lines."""
    lines, counters = usage_lines.c, usage_counters.c
    match = and_(lines.contract_id == counters.contract_id, lines.component == counters.component,
                 lines.usage_date >= counters.period_start, lines.usage_date <= counters.period_end)
    quantity = select(func.coalesce(func.sum(lines.quantity_micro), 0)).where(match).scalar_subquery()
    amount = select(func.coalesce(func.sum(lines.amount_minor), 0)).where(match).scalar_subquery()
    return conn.execute(
        select(counters.contract_id, counters.component, counters.period_start, counters.quantity_micro,
               counters.amount_minor, quantity, amount)
        .where(or_(counters.quantity_micro != quantity, counters.amount_minor != amount)))
