"""Companies and their accounts: one service function per use case."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import Connection, exists, func, insert, select, update

from config.currencies import MINOR_UNITS
from ledger import audit
from ledger.chart import CONSTRAINTS, ROLES, ChartTemplate, account_type, load_template
from ledger.database import Database
from ledger.interchange import check_text
from ledger.money import format_amount
from ledger.queries import balances_as_of, company_id
from ledger.records import (
    E_DUPLICATE,
    E_INVALID,
    E_NOT_FOUND,
    E_UNKNOWN_COMPANY,
    E_UNKNOWN_CURRENCY,
    LedgerError,
    Problem,
    show,
)
from ledger.schema import accounts, companies, postings

# Upper-case letters and digits, optionally in '-'-joined groups: a valid beancount account
# component, so that exports can put the code into account names (Assets:OPFI:Bank).
COMPANY_CODE_RE = re.compile(r"[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)*")
COMPANY_CODE_CHARS_MAX = 32
COMPANY_NAME_CHARS_MAX = 200


class Company(NamedTuple):
    id: int
    code: str
    name: str
    functional_currency: str
    roles: tuple[str, ...]
    created_at: dt.datetime
    account_count: int


class Account(NamedTuple):
    id: int
    company: str
    name: str
    type: str
    currencies: tuple[str, ...]
    constraint: str | None
    open_date: dt.date
    close_date: dt.date | None
    description: str


def default_open_date(today: dt.date | None = None) -> dt.date:
    """Accounts open on the first day of the current month unless told otherwise."""
    return (today or dt.date.today()).replace(day=1)


def _check_currency(code: object, field: str) -> str:
    if type(code) is not str or code not in MINOR_UNITS:
        raise LedgerError(
            Problem(E_UNKNOWN_CURRENCY, field, f"{show(code)} is not an ISO 4217 currency code")
        )
    return code


def _check_company_fields(code: str, name: str, roles: Sequence[str]) -> None:
    problems: list[Problem] = []
    if type(code) is not str or len(code) > COMPANY_CODE_CHARS_MAX or not COMPANY_CODE_RE.fullmatch(code):
        problems.append(
            Problem(
                E_INVALID,
                "code",
                f"{show(code)} must be upper-case letters and digits (groups joined by '-'), "
                f"starting with a letter, at most {COMPANY_CODE_CHARS_MAX} characters",
            )
        )
    check_text(name, "name", COMPANY_NAME_CHARS_MAX, problems)
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        problems.append(
            Problem(E_INVALID, "roles", f"unknown role {show(unknown[0])}; roles: {', '.join(ROLES)}")
        )
    if problems:
        raise LedgerError(*problems)


def add_company(
    db: Database,
    code: str,
    name: str,
    currency: str,
    *,
    actor: str,
    roles: Sequence[str] = ("operator",),
    template: str | ChartTemplate | None = "default",
    extra_currencies: Sequence[str] = (),
    open_date: dt.date | None = None,
) -> Company:
    """Create a company with the accounts of a chart template: a shipped template's name,
    a loaded template, or None for no accounts."""
    with db.write() as conn:
        return create_company(conn, code, name, currency, actor=actor, roles=roles, template=template,
                              extra_currencies=extra_currencies, open_date=open_date)


def create_company(
    conn: Connection,
    code: str,
    name: str,
    currency: str,
    *,
    actor: str,
    roles: Sequence[str] = ("operator",),
    template: str | ChartTemplate | None = "default",
    extra_currencies: Sequence[str] = (),
    open_date: dt.date | None = None,
) -> Company:
    """add_company inside a caller's transaction (partner onboarding creates a company,
    its agreements and its key as one unit)."""
    _check_company_fields(code, name, roles)
    _check_currency(currency, "currency")
    for extra in extra_currencies:
        _check_currency(extra, "extra_currencies")
    roles = tuple(sorted(set(roles)))
    if isinstance(template, str):
        template = load_template(template)
    chart = template.accounts_for(roles) if template else []
    currencies = [currency] + sorted(set(extra_currencies) - {currency})
    open_date = open_date or default_open_date()
    now = dt.datetime.now(dt.UTC)
    if conn.execute(select(companies.c.id).where(companies.c.code == code)).first():
        raise LedgerError(Problem(E_DUPLICATE, "code", f"company {code} already exists"))
    company_id = conn.execute(
        insert(companies)
        .values(code=code, name=name, functional_currency=currency, roles=list(roles), created_at=now)
        .returning(companies.c.id)
    ).scalar_one()
    if chart:
        conn.execute(
            insert(accounts),
            [
                {
                    "company_id": company_id,
                    "name": entry.name,
                    "type": account_type(entry.name),
                    "currencies": currencies,
                    "balance_constraint": entry.constraint,
                    "open_date": open_date,
                    "close_date": None,
                    "description": entry.description,
                }
                for entry in chart
            ],
        )
    audit.record(
        conn,
        actor=actor,
        action="company.add",
        target=code,
        details={
            "name": name,
            "currency": currency,
            "roles": list(roles),
            "template": template.name if template else None,
            "accounts": len(chart),
        },
    )
    return Company(company_id, code, name, currency, roles, now, len(chart))


def list_companies(db: Database) -> list[Company]:
    count = (
        select(func.count())
        .where(accounts.c.company_id == companies.c.id)
        .correlate(companies)
        .scalar_subquery()
    )
    with db.read() as conn:
        rows = conn.execute(select(companies, count.label("n")).order_by(companies.c.code)).all()
    return [
        Company(r.id, r.code, r.name, r.functional_currency, tuple(r.roles), r.created_at, r.n)
        for r in rows
    ]


def add_account(
    db: Database,
    company: str,
    name: str,
    *,
    actor: str,
    currencies: Sequence[str] = (),
    constraint: str | None = None,
    open_date: dt.date | None = None,
    description: str = "",
) -> Account:
    """Open an account; its currencies default to the company's functional currency."""
    kind = account_type(name, "name")
    if constraint is not None and constraint not in CONSTRAINTS:
        raise LedgerError(
            Problem(E_INVALID, "constraint", f"must be one of {', '.join(CONSTRAINTS)}")
        )
    problems: list[Problem] = []
    check_text(description, "description", 500, problems, empty_ok=True)
    if problems:
        raise LedgerError(*problems)
    for code in currencies:
        _check_currency(code, "currencies")
    open_date = open_date or default_open_date()
    with db.write() as conn:
        row = conn.execute(
            select(companies.c.id, companies.c.functional_currency).where(companies.c.code == company)
        ).first()
        if row is None:
            raise LedgerError(Problem(E_UNKNOWN_COMPANY, "company", f"no company {show(company)}"))
        allowed = sorted(set(currencies)) or [row.functional_currency]
        taken = conn.execute(
            select(accounts.c.id).where(accounts.c.company_id == row.id, accounts.c.name == name)
        ).first()
        if taken:
            raise LedgerError(
                Problem(E_DUPLICATE, "name", f"company {company} already has account {name}")
            )
        account_id = conn.execute(
            insert(accounts)
            .values(
                company_id=row.id,
                name=name,
                type=kind,
                currencies=allowed,
                balance_constraint=constraint,
                open_date=open_date,
                close_date=None,
                description=description,
            )
            .returning(accounts.c.id)
        ).scalar_one()
        audit.record(
            conn,
            actor=actor,
            action="account.add",
            target=f"{company} {name}",
            details={"currencies": allowed, "constraint": constraint, "open_date": open_date},
        )
    return Account(account_id, company, name, kind, tuple(allowed), constraint, open_date, None, description)


def list_accounts(db: Database, company: str | None = None) -> list[Account]:
    query = select(accounts, companies.c.code).join(companies, companies.c.id == accounts.c.company_id)
    with db.read() as conn:
        if company is not None:
            query = query.where(accounts.c.company_id == company_id(conn, company))
        rows = conn.execute(query.order_by(companies.c.code, accounts.c.name)).all()
    return [
        Account(
            r.id,
            r.code,
            r.name,
            r.type,
            tuple(r.currencies),
            r.balance_constraint,
            r.open_date,
            r.close_date,
            r.description,
        )
        for r in rows
    ]


def close_account(db: Database, company: str, name: str, close_date: dt.date, *, actor: str) -> None:
    """Close an account from the day after ``close_date``. Refused while it holds a balance
    at that date or has postings after it: closing must not hide money."""
    with db.write() as conn:
        cid = company_id(conn, company)
        row = conn.execute(
            select(accounts.c.id, accounts.c.open_date, accounts.c.close_date).where(
                accounts.c.company_id == cid, accounts.c.name == name
            )
        ).first()
        if row is None:
            raise LedgerError(
                Problem(E_NOT_FOUND, "account", f"company {company} has no account {show(name)}")
            )
        if row.close_date is not None:
            raise LedgerError(
                Problem(E_INVALID, "account", f"{company} {name} is already closed on {row.close_date}")
            )
        if close_date <= row.open_date:
            raise LedgerError(
                Problem(E_INVALID, "date", f"must be after the open date {row.open_date}")
            )
        later = conn.execute(
            select(
                exists().where(postings.c.account_id == row.id, postings.c.effective_date > close_date)
            )
        ).scalar()
        if later:
            raise LedgerError(
                Problem(E_INVALID, "date", f"{company} {name} has postings after {close_date}")
            )
        held = [line for line in balances_as_of(conn, close_date, account_id=row.id) if line.balance_minor]
        if held:
            amounts = ", ".join(f"{format_amount(h.balance_minor, h.currency)} {h.currency}" for h in held)
            raise LedgerError(
                Problem(
                    E_INVALID,
                    "account",
                    f"{company} {name} still holds {amounts} on {close_date}; transfer it first",
                )
            )
        conn.execute(update(accounts).where(accounts.c.id == row.id).values(close_date=close_date))
        audit.record(
            conn,
            actor=actor,
            action="account.close",
            target=f"{company} {name}",
            details={"close_date": close_date},
        )
