"""The leakage report of a billing company and period: where money was not billed, or billed
when it should not have been.

- **not billed**: usage posted up to the period's end that no invoice carries yet, per
  contract component (a billing run not made, or late lines since the last one), and
  recurring fees due in the period that no invoice charges, and contract events whose
  charges or credits are on no invoice yet.
- **no contract**: usage lines of the period refused because the contract or service was
  unknown or the contract not active, still open in the rejects store, per reason. Their
  amount is known when the line was pre-rated; otherwise their quantity is shown.
- **inactive service**: usage of the period posted for a contract on a day it is not active
  by the events recorded since (a termination or suspension recorded after the usage was
  imported), per contract component, with what of it is invoiced.

Every figure is recomputed from the stored rows; nothing is kept.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import func, select

from billing.schema import invoice_usage
from billing.service import held_back, uninvoiced_contract_lines, uninvoiced_events
from contracts.events import STATUS_EVENTS, status_on
from contracts.schema import contract_events, contracts
from ledger.database import Database
from ledger.periods import parse_period
from ledger.queries import company_id
from partners.schemas import canonical_decimal
from usage.queries import quantity_text
from usage.schema import usage_lines, usage_rejects

NO_CONTRACT_CODES = ("not_found", "unknown_service", "contract_not_active")


class NotBilled(NamedTuple):
    kind: str  # usage; disputed (usage held back); fee (a recurring fee's period due); true_up; prepayment;
    # event or credit (a contract event's)
    contract: str
    component: str
    lines: int  # usage lines (0 for a fee)
    quantity: str  # usage: units; fee: days
    amount_minor: int
    currency: str
    oldest_usage_date: dt.date  # fee: the start of its billing period; event, credit: its date


class NoContract(NamedTuple):
    reason: str  # the reject code
    contract: str | None  # as the line named it
    lines: int
    quantity: str
    pre_rated: dict[str, str]  # currency ("unknown": no such contract) -> pre-rated amount, major units


class InactiveService(NamedTuple):
    contract: str
    component: str
    lines: int
    amount_minor: int
    invoiced_minor: int
    currency: str
    first_date: dt.date
    last_date: dt.date


class LeakageReport(NamedTuple):
    company: str
    period: str
    not_billed: list[NotBilled]
    no_contract: list[NoContract]
    inactive_service: list[InactiveService]


def leakage_report(db: Database, company: str, period: str) -> LeakageReport:
    start, end = parse_period(period)
    with db.read() as conn:
        cid = company_id(conn, company)
        u, c = usage_lines.c, contracts.c
        invoiced = select(invoice_usage.c.usage_line_id).where(invoice_usage.c.usage_line_id == u.id).exists()
        not_billed = [NotBilled("usage", code, component, lines, quantity_text(int(quantity)), int(amount), currency,
                                oldest)
                      for code, component, lines, quantity, amount, currency, oldest in conn.execute(
                          select(c.code, u.component, func.count(), func.sum(u.quantity_micro), func.sum(u.amount_minor),
                                 u.currency, func.min(u.usage_date))
                          .join(contracts, c.id == u.contract_id)
                          .where(c.billing_company_id == cid, u.posted_date <= end, ~invoiced, ~held_back(u.id))
                          .group_by(c.code, u.component, u.currency).order_by(c.code, u.component))]
        # Open disputes hold usage back: not leakage yet, but money waiting on a decision.
        not_billed += [NotBilled("disputed", code, component, lines, quantity_text(int(quantity)), int(amount), currency,
                                 oldest)
                       for code, component, lines, quantity, amount, currency, oldest in conn.execute(
                           select(c.code, u.component, func.count(), func.sum(u.quantity_micro),
                                  func.sum(u.amount_minor), u.currency, func.min(u.usage_date))
                           .join(contracts, c.id == u.contract_id)
                           .where(c.billing_company_id == cid, u.posted_date <= end, ~invoiced,
                                  held_back(u.id, ("open",)))
                           .group_by(c.code, u.component, u.currency).order_by(c.code, u.component))]
        not_billed += [_contract_line(line, currency)
                       for (_, currency), line in uninvoiced_contract_lines(conn, cid, start, end)]
        not_billed += [NotBilled(line.event[1], line.contract, line.component, 0, "1", line.amount_minor, currency,
                                 line.event[2])
                       for (_, currency), line in uninvoiced_events(conn, cid, end)]
        codes = {row.code: row for row in conn.execute(select(c.code, c.billing_company_id, c.currency))}
        no_contract = _no_contract(conn, cid, codes, start, end)
        inactive = _inactive(conn, cid, start, end)
    return LeakageReport(company, period, not_billed, no_contract, inactive)


def _contract_line(line, currency: str) -> NotBilled:
    """A fee, a commitment's true-up or a prepayment due and on no invoice: its days (or 1
    for a prepayment) and the day it is dated from."""
    if line.fee is not None:
        return NotBilled("fee", line.contract, line.component, 0, str(line.fee.charged_days), line.amount_minor,
                         currency, line.fee.period_start)
    since = line.period[0] if line.period else line.key
    return NotBilled(line.kind, line.contract, line.component, 0, quantity_text(line.quantity_micro), line.amount_minor,
                     currency, since)


def _no_contract(conn, cid: int, codes: dict, start: dt.date, end: dt.date) -> list[NoContract]:
    """Open rejects for a missing or inactive contract or service, dated in the period, of
    this company's contracts or of contracts nobody knows. Pre-rated amounts (an ``amount``,
    or ``price`` times ``quantity``) are summed per currency: the contract's, or
    ``unknown`` for a contract that does not exist."""
    groups: dict[tuple, list] = defaultdict(lambda: [0, Decimal(0), defaultdict(Decimal)])
    r = usage_rejects.c
    for code, raw in conn.execute(select(r.code, r.raw).where(r.status == "open", r.code.in_(NO_CONTRACT_CODES))):
        try:
            record = json.loads(raw)
            day = dt.date.fromisoformat(str(record.get("timestamp", ""))[:10])
        except (ValueError, TypeError, AttributeError):
            continue
        contract = record.get("contract") if isinstance(record.get("contract"), str) else None
        known = codes.get(contract)
        if not start <= day <= end or (known is not None and known.billing_company_id != cid):
            continue
        group = groups[(code, contract)]
        group[0] += 1
        quantity = _decimal(record.get("quantity"))
        group[1] += quantity or 0
        amount = _decimal(record.get("amount"))
        if amount is None and quantity is not None and _decimal(record.get("price")) is not None:
            amount = quantity * _decimal(record.get("price"))
        if amount is not None:
            group[2][known.currency if known is not None else "unknown"] += amount
    return [NoContract(code, contract, lines, canonical_decimal(quantity),
                       {currency: canonical_decimal(total) for currency, total in sorted(amounts.items())})
            for (code, contract), (lines, quantity, amounts) in sorted(groups.items(), key=lambda g: (g[0][0], g[0][1] or ""))]


def _decimal(value: object) -> Decimal | None:
    """A number from a refused line, for showing only; None when it is not a finite number."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        return None
    return number if number.is_finite() else None


def _inactive(conn, cid: int, start: dt.date, end: dt.date) -> list[InactiveService]:
    """Usage of the period on days its contract is not active by the events recorded now."""
    c, u, e = contracts.c, usage_lines.c, contract_events.c
    terms = {row.id: row for row in conn.execute(select(c.id, c.code, c.start_date, c.end_date)
                                                 .where(c.billing_company_id == cid))}
    changes: dict[int, list[tuple[dt.date, str]]] = defaultdict(list)
    for contract_id, day, kind in conn.execute(
            select(e.contract_id, e.event_date, e.type).where(e.type.in_(STATUS_EVENTS), e.contract_id.in_(list(terms)))
            .order_by(e.event_date, e.recorded_at)):
        changes[contract_id].append((day, kind))
    invoiced = select(invoice_usage.c.usage_line_id).where(invoice_usage.c.usage_line_id == u.id).exists()
    groups: dict[tuple, list] = {}
    query = (select(u.contract_id, u.component, u.usage_date, u.amount_minor, u.currency, invoiced)
             .where(u.contract_id.in_(list(terms)), u.usage_date >= start, u.usage_date <= end)
             .order_by(u.contract_id, u.component, u.usage_date))
    for contract_id, component, day, amount, currency, is_invoiced in conn.execute(query):
        if _active(terms[contract_id], changes[contract_id], day):
            continue
        group = groups.setdefault((terms[contract_id].code, component, currency), [0, 0, 0, day, day])
        group[0] += 1
        group[1] += amount
        group[2] += amount if is_invoiced else 0
        group[4] = day
    return [InactiveService(code, component, lines, amount, billed, currency, first, last)
            for (code, component, currency), (lines, amount, billed, first, last) in sorted(groups.items())]


def _active(term, status_changes: list[tuple[dt.date, str]], day: dt.date) -> bool:
    """Active on ``day`` as usage mediation judges it: within its term, and activated and
    not suspended or terminated by then."""
    if day < term.start_date or (term.end_date is not None and day > term.end_date):
        return False
    return status_on(status_changes, day)[0] == "active"
