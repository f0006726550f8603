"""Read-side use cases: balances at a date, trial balance, account statement.

A balance at a date is read from ``daily_balances`` with one index seek per (account,
currency) pair, the pairs coming from ``balances``: the cost follows the number of accounts,
never the length of the history.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import NamedTuple

from sqlalchemy import select

from ledger.database import Database
from ledger.hashing import pairs_from_json
from ledger.queries import BalanceLine, account_id, balances_as_of, company_id, entry_lines
from ledger.records import E_INVALID, E_NOT_FOUND, LedgerError, Problem, show
from ledger.schema import journal_entries, postings

CONSOLIDATED = "(consolidated)"


class TrialBalance(NamedTuple):
    as_of: dt.date | None
    company: str | None  # None: all companies
    consolidated: bool
    lines: list[BalanceLine]

    def totals(self) -> dict[str, tuple[int, int]]:
        """Per currency: (debits, credits) as positive numbers. They are equal."""
        result: dict[str, tuple[int, int]] = {}
        for line in self.lines:
            debit, credit = result.get(line.currency, (0, 0))
            if line.balance_minor >= 0:
                debit += line.balance_minor
            else:
                credit -= line.balance_minor
            result[line.currency] = (debit, credit)
        return result


def trial_balance(
    db: Database,
    *,
    company: str | None = None,
    as_of: dt.date | None = None,
    consolidated: bool = False,
) -> TrialBalance:
    """Balances per account at the end of ``as_of``. ``consolidated`` sums the same account
    name across companies (no intercompany elimination: that is the clearing's consolidation).
    """
    with db.read() as conn:
        cid = company_id(conn, company) if company else None
        lines = balances_as_of(conn, as_of, company_id=cid)
    if consolidated:
        merged: dict[tuple[str, str], list] = {}
        for line in lines:
            key = (line.account, line.currency)
            if key in merged:
                merged[key][4] += line.balance_minor
            else:
                merged[key] = [CONSOLIDATED, line.account, line.type, line.currency, line.balance_minor]
        lines = [BalanceLine(*values) for _, values in sorted(merged.items())]
    return TrialBalance(as_of, company, consolidated, lines)


class StatementLine(NamedTuple):
    date: dt.date
    entry_seq: int
    entry_id: str
    description: str
    line_no: int
    currency: str
    amount_minor: int
    balance_minor: int  # running balance after this line
    dimensions: str | None


class AccountStatement(NamedTuple):
    company: str
    account: str
    date_from: dt.date | None
    date_to: dt.date | None
    opening: dict[str, int]  # per currency, at the end of the day before date_from
    lines: Iterator[StatementLine]  # streamed; closing balances are known once consumed


@contextlib.contextmanager
def account_statement(
    db: Database,
    company: str,
    account: str,
    *,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> Iterator[AccountStatement]:
    """Opening balance, every posting in the range with its running balance, in date order.
    Lines are streamed from one read transaction: use inside ``with``."""
    if date_from and date_to and date_to < date_from:
        raise LedgerError(Problem(E_INVALID, "to", f"{date_to} is before {date_from}"))
    with db.read() as conn:
        the_account = account_id(conn, company, account)
        opening: dict[str, int] = {}
        if date_from is not None:
            before = date_from - dt.timedelta(days=1)
            opening = {
                line.currency: line.balance_minor
                for line in balances_as_of(conn, before, account_id=the_account)
            }
        p, e = postings.c, journal_entries.c
        query = (
            select(
                p.effective_date, p.entry_id, e.external_id, e.description, p.line_no,
                p.currency, p.amount_minor, p.dimensions,
            )
            .join(journal_entries, e.id == p.entry_id)
            .where(p.account_id == the_account)
            .order_by(p.effective_date, p.entry_id, p.line_no)
        )
        if date_from is not None:
            query = query.where(p.effective_date >= date_from)
        if date_to is not None:
            query = query.where(p.effective_date <= date_to)

        def lines() -> Iterator[StatementLine]:
            running = dict(opening)
            result = conn.execution_options(stream_results=True, yield_per=5_000).execute(query)
            for row in result:
                running[row.currency] = running.get(row.currency, 0) + row.amount_minor
                yield StatementLine(
                    row.effective_date, row.entry_id, row.external_id, row.description,
                    row.line_no, row.currency, row.amount_minor, running[row.currency],
                    row.dimensions,
                )

        yield AccountStatement(company, account, date_from, date_to, opening, lines())


class PostingDocument(NamedTuple):
    company: str
    account: str
    amount_minor: int
    currency: str
    dimensions: dict[str, str]


class StoredEntry(NamedTuple):
    entry_seq: int
    external_id: str
    effective_date: dt.date
    recorded_at: dt.datetime
    description: str
    source: dict[str, str | None]
    metadata: dict[str, str]
    postings: list[PostingDocument]
    reverses: str | None
    reversed_by: str | None
    payload_hash: str
    chain_hash: str


def get_entry(db: Database, external_id: str) -> StoredEntry:
    """One entry with its postings and reversal links."""
    e = journal_entries.c
    with db.read() as conn:
        row = conn.execute(select(journal_entries).where(e.external_id == external_id)).first()
        if row is None:
            raise LedgerError(Problem(E_NOT_FOUND, "entry", f"no entry {show(external_id)}"))
        lines = entry_lines(conn, row.id)
        reverses = None
        if row.reverses_id is not None:
            reverses = conn.execute(select(e.external_id).where(e.id == row.reverses_id)).scalar()
        reversed_by = conn.execute(select(e.external_id).where(e.reverses_id == row.id)).scalar()
    return StoredEntry(
        row.id,
        row.external_id,
        row.effective_date,
        row.recorded_at,
        row.description,
        {"type": row.source_type, "id": row.source_id},
        dict(pairs_from_json(row.metadata_json)),
        [
            PostingDocument(l.code, l.name, l.amount_minor, l.currency, dict(pairs_from_json(l.dimensions)))
            for l in lines
        ],
        reverses,
        reversed_by,
        row.payload_hash,
        row.chain_hash,
    )
