"""Small read helpers shared by the services."""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from sqlalchemy import Connection, Select, select

from ledger.records import E_NOT_FOUND, E_UNKNOWN_COMPANY, LedgerError, Problem, show
from ledger.schema import accounts, balances, companies, daily_balances


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


