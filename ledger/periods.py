"""Accounting periods: monthly per company, closed in order.

A company's closed periods are always a prefix of its calendar: closing 2026-10 requires
every earlier month that has postings to be closed already, and once 2026-10 is closed
nothing can be posted on or before its last day (invariant 8). Reopening belongs to the
controller's close (revrec/close.py: it needs a reason and is audited); ``reopen_period``
is its step inside that transaction.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from typing import NamedTuple

from sqlalchemy import Connection, delete, func, insert, literal, select

from ledger import audit
from ledger.database import Database
from ledger.queries import company_id
from ledger.records import E_INVALID, LedgerError, Problem, show
from ledger.schema import accounts, closed_periods, daily_balances, journal_entries, period_reopenings

# A month as YYYY-MM, year 0001 or later. Schemas validate with the same pattern.
# (No look-ahead: schemathesis generates values from the OpenAPI patterns.)
PERIOD_PATTERN = r"([1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])-(0[1-9]|1[0-2])"
_PERIOD_RE = re.compile(PERIOD_PATTERN)

OPEN = "open"
CLOSED = "closed"


class Period(NamedTuple):
    company: str
    period: str
    start: dt.date
    end: dt.date
    status: str
    closed_at: dt.datetime | None = None
    closed_by: str | None = None
    already_closed: bool = False


def parse_period(text: str) -> tuple[dt.date, dt.date]:
    """'2026-10' -> (2026-10-01, 2026-10-31)."""
    match = _PERIOD_RE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise LedgerError(Problem(E_INVALID, "period", f"{show(text)} is not a month as YYYY-MM"))
    year, month = int(match.group(1)), int(match.group(2))
    return dt.date(year, month, 1), dt.date(year, month, calendar.monthrange(year, month)[1])


def period_of(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _next_month(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def close_period(db: Database, company: str, period: str, *, actor: str) -> Period:
    """Close ``period`` for ``company``. Closing a closed period changes nothing."""
    with db.write() as conn:
        return lock_period(conn, company, period, actor=actor)


def lock_period(conn: Connection, company: str, period: str, *, actor: str) -> Period:
    """``close_period`` in the caller's transaction (the controller's close locks the period
    in the transaction that posts its recognition batch)."""
    start, end = parse_period(period)
    cid = company_id(conn, company)
    existing = conn.execute(
        select(closed_periods).where(
            closed_periods.c.company_id == cid, closed_periods.c.period == period
        )
    ).first()
    if existing is not None:
        return Period(company, period, start, end, CLOSED, existing.closed_at, existing.closed_by, True)
    through = conn.execute(
        select(func.max(closed_periods.c.end_date)).where(closed_periods.c.company_id == cid)
    ).scalar()
    if through is not None and end <= through:
        raise LedgerError(
            Problem(E_INVALID, "period", f"{company} is closed through {through} already")
        )
    # The first day with postings after the closed prefix and before this period.
    db_ = daily_balances.c
    gap = select(func.min(db_.balance_date)).join(
        accounts, accounts.c.id == db_.account_id
    ).where(accounts.c.company_id == cid, db_.balance_date < start)
    if through is not None:
        gap = gap.where(db_.balance_date > through)
    open_day = conn.execute(gap).scalar()
    if open_day is not None:
        raise LedgerError(
            Problem(
                E_INVALID,
                "period",
                f"{company} has postings in {period_of(open_day)}, which is still open; "
                "close periods in order",
            )
        )
    last_entry = conn.execute(select(func.max(journal_entries.c.id))).scalar() or 0
    now = dt.datetime.now(dt.UTC)
    conn.execute(
        insert(closed_periods).values(
            company_id=cid,
            period=period,
            start_date=start,
            end_date=end,
            closed_at=now,
            closed_by=actor[:200],
            last_entry_id=last_entry,
        )
    )
    audit.record(
        conn,
        actor=actor,
        action="period.close",
        target=f"{company} {period}",
        details={"last_entry_seq": last_entry},
    )
    return Period(company, period, start, end, CLOSED, now, actor)


def list_periods(db: Database, company: str, today: dt.date | None = None) -> list[Period]:
    """Every month from the company's first posting or close to the later of its last
    posting and this month, with its status."""
    today = today or dt.date.today()
    with db.read() as conn:
        cid = company_id(conn, company)
        closed = {
            row.period: row
            for row in conn.execute(
                select(closed_periods).where(closed_periods.c.company_id == cid)
            )
        }
        db_ = daily_balances.c
        first, last = conn.execute(
            select(func.min(db_.balance_date), func.max(db_.balance_date))
            .join(accounts, accounts.c.id == db_.account_id)
            .where(accounts.c.company_id == cid)
        ).one()
    starts = [today.replace(day=1)]
    starts += [parse_period(p)[0] for p in closed]
    starts += [d.replace(day=1) for d in (first, last) if d is not None]
    month, stop = min(starts), max(starts)
    result: list[Period] = []
    while month <= stop:
        name = period_of(month)
        start, end = parse_period(name)
        row = closed.get(name)
        if row is not None:
            result.append(Period(company, name, start, end, CLOSED, row.closed_at, row.closed_by))
        else:
            result.append(Period(company, name, start, end, OPEN))
        month = _next_month(month)
    return result


def reopen_period(conn: Connection, company: str, period: str, *, reason: str, actor: str) -> Period:
    """Reopen the company's latest closed period, in the caller's transaction: the reopening
    is recorded (the database refuses to drop a closed period otherwise) and audited."""
    start, end = parse_period(period)
    cid = company_id(conn, company)
    row = conn.execute(select(closed_periods).where(closed_periods.c.company_id == cid,
                                                    closed_periods.c.period == period)).first()
    if row is None:
        raise LedgerError(Problem(E_INVALID, "period", f"{company} {period} is not closed"))
    later = conn.execute(select(func.min(closed_periods.c.period)).where(
        closed_periods.c.company_id == cid, closed_periods.c.end_date > end)).scalar()
    if later is not None:
        raise LedgerError(Problem(E_INVALID, "period", f"{company} has {later} closed after {period}; "
                                  "reopen the latest closed period first"))
    now = dt.datetime.now(dt.UTC)
    cp = closed_periods.c
    # copied in SQL, so that the stored closed_at matches the closed period's exactly
    conn.execute(insert(period_reopenings).from_select(
        ["company_id", "period", "closed_at", "closed_by", "reason", "reopened_at", "reopened_by"],
        select(cp.company_id, cp.period, cp.closed_at, cp.closed_by, literal(reason[:2000]),
               literal(now, period_reopenings.c.reopened_at.type), literal(actor[:200]))
        .where(cp.company_id == cid, cp.period == period)))
    conn.execute(delete(closed_periods).where(cp.company_id == cid, cp.period == period))
    audit.record(conn, actor=actor, action="period.reopen", target=f"{company} {period}",
                 details={"reason": reason[:2000], "closed_at": row.closed_at.isoformat(), "closed_by": row.closed_by})
    return Period(company, period, start, end, OPEN)
