"""Small read helpers shared by the services."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import NamedTuple

from sqlalchemy import Connection, Select, select

from config import limits
from ledger.records import E_NOT_FOUND, E_UNKNOWN_COMPANY, LedgerError, Problem, show
from ledger.schema import accounts, balances, companies, daily_balances, journal_entries, postings


def journal_head(conn: Connection) -> tuple[int, str | None]:
    """(journal position, chain hash) of the last entry; (0, None) for an empty journal."""
    row = conn.execute(
        select(journal_entries.c.id, journal_entries.c.chain_hash).order_by(journal_entries.c.id.desc()).limit(1)
    ).first()
    return (row.id, row.chain_hash) if row else (0, None)


def company_id(conn: Connection, code: str, field: str = "company") -> int:
    found = conn.execute(select(companies.c.id).where(companies.c.code == code)).scalar()
    if found is None:
        raise LedgerError(Problem(E_UNKNOWN_COMPANY, field, f"no company {show(code)}"))
    return found


def account_id(conn: Connection, company: str, name: str, field: str = "account") -> int:
    found = conn.execute(
        select(accounts.c.id).where(
            accounts.c.company_id == company_id(conn, company), accounts.c.name == name
        )
    ).scalar()
    if found is None:
        raise LedgerError(
            Problem(E_NOT_FOUND, field, f"company {company} has no account {show(name)}")
        )
    return found


class BalanceLine(NamedTuple):
    company: str
    account: str
    type: str
    currency: str
    balance_minor: int
    account_id: int | None = None  # None on consolidated lines


def _balance_query(day: dt.date | None) -> Select:
    if day is None:
        amount = balances.c.balance_minor
    else:
        ab = daily_balances.c
        amount = (
            select(ab.balance_minor)
            .where(
                ab.account_id == balances.c.account_id,
                ab.currency == balances.c.currency,
                ab.balance_date <= day,
            )
            .order_by(ab.balance_date.desc())
            .limit(1)
            .correlate(balances)
            .scalar_subquery()
        )
    return (
        select(
            companies.c.code,
            accounts.c.name,
            accounts.c.type,
            balances.c.currency,
            amount.label("amount"),
            accounts.c.id,
        )
        .select_from(balances)
        .join(accounts, accounts.c.id == balances.c.account_id)
        .join(companies, companies.c.id == accounts.c.company_id)
        .order_by(companies.c.code, accounts.c.name, balances.c.currency)
    )


def balances_as_of(
    conn: Connection,
    day: dt.date | None = None,
    *,
    company_id: int | None = None,
    account_id: int | None = None,
) -> list[BalanceLine]:
    """Closing balances at the end of ``day`` (None: over all postings) of every pair that
    had postings by then, zero balances included."""
    query = _balance_query(day)
    if company_id is not None:
        query = query.where(accounts.c.company_id == company_id)
    if account_id is not None:
        query = query.where(accounts.c.id == account_id)
    return [BalanceLine(*row) for row in conn.execute(query) if row.amount is not None]




def journal_stream(
    conn: Connection,
    *,
    company_id: int | None = None,
    on_orphan: Callable[[tuple], None] | None = None,
) -> Iterator[tuple[tuple, list[tuple]]]:
    """Every entry in journal order with its postings, in constant memory.

    Entry rows are the columns of journal_entries in table order; posting rows are (entry
    id, line no, account id, amount_minor, currency, dimensions, effective date). Two
    ordered streams merged on the journal position: each row is read and converted once.
    With ``company_id``, only that company's postings, and only entries that have some.
    ``on_orphan`` receives postings whose entry does not exist."""
    e, p = journal_entries.c, postings.c
    stream = conn.execution_options(stream_results=True, yield_per=limits.STREAM_ROWS_PER_FETCH)
    entry_query = select(*journal_entries.c).order_by(e.id)
    posting_query = select(
        p.entry_id, p.line_no, p.account_id, p.amount_minor, p.currency, p.dimensions, p.effective_date
    ).order_by(p.entry_id, p.line_no)
    if company_id is not None:
        posting_query = posting_query.join(accounts, accounts.c.id == p.account_id).where(
            accounts.c.company_id == company_id
        )
    posting_rows = iter(stream.execute(posting_query))
    pending = next(posting_rows, None)
    for entry in stream.execute(entry_query):
        seq = entry[0]
        lines = []
        while pending is not None and pending[0] <= seq:
            if pending[0] == seq:
                lines.append(pending)
            elif on_orphan is not None:
                on_orphan(pending)
            pending = next(posting_rows, None)
        if lines or company_id is None:
            yield entry, lines
    while pending is not None:
        if on_orphan is not None:
            on_orphan(pending)
        pending = next(posting_rows, None)


def entry_lines(conn: Connection, entry_seq: int) -> list:
    """An entry's postings in line order: (company code, account name, amount_minor,
    currency, dimensions JSON)."""
    return conn.execute(
        select(companies.c.code, accounts.c.name, postings.c.amount_minor, postings.c.currency, postings.c.dimensions)
        .join(accounts, accounts.c.id == postings.c.account_id)
        .join(companies, companies.c.id == accounts.c.company_id)
        .where(postings.c.entry_id == entry_seq)
        .order_by(postings.c.line_no)
    ).all()
