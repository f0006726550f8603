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

from sqlalchemy import func, select, tuple_

from ledger.database import Database
from ledger.hashing import pairs_from_json
from ledger.queries import BalanceLine, account_id, balances_as_of, company_id
from ledger.records import E_INVALID, E_NOT_FOUND, LedgerError, Problem, show
from ledger.schema import accounts, companies, journal_entries, postings

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


def get_entry(db: Database, external_id: str, *, company: str | None = None) -> StoredEntry:
    """One entry with its postings and reversal links. With ``company``, only that
    company's postings, and not found unless it has some."""
    e = journal_entries.c
    with db.read() as conn:
        row = conn.execute(select(journal_entries).where(e.external_id == external_id)).first()
        stored = _stored_entries(conn, [row] if row is not None else [], company)
    if not stored:
        raise LedgerError(Problem(E_NOT_FOUND, "entry", f"no entry {show(external_id)}"))
    return stored[0]


def list_entries(
    db: Database,
    *,
    company: str | None = None,
    account: str | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    source_type: str | None = None,
    after_seq: int = 0,
    limit: int = 100,
    company_postings_only: bool = False,
) -> tuple[list[StoredEntry], int | None]:
    """Entries in journal order after position ``after_seq`` that match the filters, and
    the position to continue after (None on the last page). ``company`` and ``account``
    select entries with a posting there; ``company_postings_only`` shows only the
    company's own postings of each entry (what a partner may see)."""
    e, p = journal_entries.c, postings.c
    query = select(journal_entries).where(e.id > after_seq).order_by(e.id).limit(limit + 1)
    if date_from is not None:
        query = query.where(e.effective_date >= date_from)
    if date_to is not None:
        query = query.where(e.effective_date <= date_to)
    if source_type is not None:
        query = query.where(e.source_type == source_type)
    with db.read() as conn:
        if company is not None or account is not None:
            touching = select(p.entry_id).join(accounts, accounts.c.id == p.account_id).where(p.entry_id == e.id)
            if company is not None:
                touching = touching.where(accounts.c.company_id == company_id(conn, company))
            if account is not None:
                if company is None:
                    raise LedgerError(Problem(E_INVALID, "account", "filtering by account needs a company"))
                touching = touching.where(accounts.c.id == account_id(conn, company, account))
            query = query.where(touching.exists())
        rows = conn.execute(query).all()
        more = len(rows) > limit
        rows = rows[:limit]
        stored = _stored_entries(conn, rows, company if company_postings_only else None)
    return stored, (rows[-1].id if more else None)


def _stored_entries(conn, rows: list, company: str | None) -> list[StoredEntry]:
    """StoredEntry for each row, postings and reversal links read in three queries in all.
    With ``company``, only that company's postings; entries without any are left out."""
    if not rows:
        return []
    e = journal_entries.c
    seqs = [row.id for row in rows]
    lines_query = (
        select(postings.c.entry_id, companies.c.code, accounts.c.name, postings.c.amount_minor,
               postings.c.currency, postings.c.dimensions)
        .join(accounts, accounts.c.id == postings.c.account_id)
        .join(companies, companies.c.id == accounts.c.company_id)
        .where(postings.c.entry_id.in_(seqs))
        .order_by(postings.c.entry_id, postings.c.line_no)
    )
    if company is not None:
        lines_query = lines_query.where(companies.c.code == company)
    lines: dict[int, list[PostingDocument]] = {}
    for line in conn.execute(lines_query):
        lines.setdefault(line.entry_id, []).append(
            PostingDocument(line.code, line.name, line.amount_minor, line.currency, dict(pairs_from_json(line.dimensions)))
        )
    reversed_ids = {row.reverses_id for row in rows if row.reverses_id is not None}
    reverses = dict(conn.execute(select(e.id, e.external_id).where(e.id.in_(reversed_ids))).all()) if reversed_ids else {}
    reversed_by = dict(conn.execute(select(e.reverses_id, e.external_id).where(e.reverses_id.in_(seqs))).all())
    return [
        StoredEntry(
            row.id,
            row.external_id,
            row.effective_date,
            row.recorded_at,
            row.description,
            {"type": row.source_type, "id": row.source_id},
            dict(pairs_from_json(row.metadata_json)),
            lines[row.id],
            reverses.get(row.reverses_id),
            reversed_by.get(row.id),
            row.payload_hash,
            row.chain_hash,
        )
        for row in rows
        if row.id in lines
    ]


class StatementPage(NamedTuple):
    opening: dict[str, int]  # per currency, before the first line of this page
    lines: list[StatementLine]
    next_after: tuple[dt.date, int, int] | None  # (date, entry, line) to continue after


def statement_page(
    db: Database,
    company: str,
    account: str,
    *,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    after: tuple[dt.date, int, int] | None = None,
    limit: int = 500,
) -> StatementPage:
    """One page of an account statement, continuing after the line ``after``. The opening
    balance of a page is recomputed from the stored rows, never carried by the client."""
    if date_from and date_to and date_to < date_from:
        raise LedgerError(Problem(E_INVALID, "to", f"{date_to} is before {date_from}"))
    p, e = postings.c, journal_entries.c
    with db.read() as conn:
        the_account = account_id(conn, company, account)
        if after is None:
            opening = {}
            if date_from is not None:
                before = date_from - dt.timedelta(days=1)
                opening = {b.currency: b.balance_minor for b in balances_as_of(conn, before, account_id=the_account)}
        else:
            day, seq, line_no = after
            opening = {b.currency: b.balance_minor for b in balances_as_of(conn, day - dt.timedelta(days=1), account_id=the_account)}
            same_day = conn.execute(
                select(p.currency, func.sum(p.amount_minor))
                .where(p.account_id == the_account, p.effective_date == day,
                       tuple_(p.entry_id, p.line_no) <= tuple_(seq, line_no))
                .group_by(p.currency)
            ).all()
            for currency, amount in same_day:
                opening[currency] = opening.get(currency, 0) + int(amount)
        query = (
            select(p.effective_date, p.entry_id, e.external_id, e.description, p.line_no, p.currency,
                   p.amount_minor, p.dimensions)
            .join(journal_entries, e.id == p.entry_id)
            .where(p.account_id == the_account)
            .order_by(p.effective_date, p.entry_id, p.line_no)
            .limit(limit + 1)
        )
        if date_from is not None:
            query = query.where(p.effective_date >= date_from)
        if date_to is not None:
            query = query.where(p.effective_date <= date_to)
        if after is not None:
            query = query.where(tuple_(p.effective_date, p.entry_id, p.line_no) > tuple_(*after))
        rows = conn.execute(query).all()
    more = len(rows) > limit
    running = dict(opening)
    lines = []
    for row in rows[:limit]:
        running[row.currency] = running.get(row.currency, 0) + row.amount_minor
        lines.append(StatementLine(row.effective_date, row.entry_id, row.external_id, row.description,
                                   row.line_no, row.currency, row.amount_minor, running[row.currency], row.dimensions))
    next_after = (lines[-1].date, lines[-1].entry_seq, lines[-1].line_no) if more else None
    return StatementPage(opening, lines, next_after)
