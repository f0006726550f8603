"""Billing runs: invoices per customer of a billing company for a period, numbered without
gaps, posted, every line traceable to the usage it invoices.

This first part of billing invoices usage. A run for company C and period P invoices every
usage line of C's contracts that was posted on or before the end of P and is not invoiced
yet. Lines that arrive after a run (late lines, corrections) are invoiced by the next run,
so running a period again invoices only what is new and posts nothing when nothing is.

One invoice per customer and currency; one invoice line per contract component, with its
quantity and amount (included units appear with their zero amount). The invoice posts
through the ``invoice_usage`` posting rule: unbilled receivables become the customer's
receivables. The issue date is the period's last day or, when that day is closed for the
company, the first open day. A run is one transaction: numbers, invoices, their lines, the
usage they invoice and the entries commit together, so no number is ever skipped.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import Connection, and_, func, insert, literal, select, update

from billing.commitments import COMMITMENT, PREPAYMENT, codes_of, commitment_periods, prepayments_due
from billing.fees import FeeDue, fees_due
from billing.schema import (
    billing_runs,
    invoice_approvals,
    invoice_caps,
    invoice_events,
    invoice_fees,
    invoice_lines,
    invoice_sequences,
    invoice_true_ups,
    invoice_usage,
    invoices,
    usage_disputes,
)
from config import limits
from contracts.events import status_changes
from contracts.rules import Context, RuleError, RuleSet, posting_drafts
from contracts.schema import contract_events, contracts, customers
from contracts.service import RECEIVABLES, load_contract
from contracts.terms import AgreementTerms
from ledger import audit
from ledger.database import Database, rows_matching
from ledger.money import AmountError, format_amount, parse_amount
from ledger.periods import parse_period
from ledger.posting import JournalWriter, audit_post, post_single
from ledger.queries import company_id
from ledger.records import (
    E_INVALID,
    E_NOT_FOUND,
    EntryDraft,
    LedgerError,
    PostingDraft,
    Problem,
    show,
)
from ledger.schema import accounts, closed_periods, companies, postings
from usage.queries import quantity_text
from usage.rating import round_half_up
from usage.schema import usage_lines

RULE = "invoice_usage"
FEE_RULES = {"in_advance": "invoice_fee_in_advance", "in_arrears": "invoice_fee_in_arrears"}
CREDIT_RULE = "invoice_credit"
RULES = (RULE, *FEE_RULES.values(), CREDIT_RULE)
# Rules needed only by contracts and customers that use them: a rules file without them
# bills everything else.
KIND_RULES = {"true_up": "invoice_true_up", "prepayment": "invoice_prepayment", "drawdown": "invoice_prepaid_drawdown",
              "capped": "invoice_carry", "brought_forward": "invoice_carry", "rounding": "invoice_rounding",
              "credit_note": "credit_note"}
ROUNDING_POLICIES = ("line", "document")
CHARGE_KINDS = ("usage", "fee", "event", "credit", "true_up")  # what a prepayment is drawn down by
CUSTOMER_CREDITS = "Liabilities:CustomerCredits"
SOURCE_TYPE = "invoice"
ENTRY_ID_PREFIX = "invoice:"
_ONE_DAY = dt.timedelta(days=1)


@dataclasses.dataclass
class BillingReport:
    run_id: int
    company: str
    period: str
    issue_date: dt.date
    invoices: list[str] = dataclasses.field(default_factory=list)  # numbers, in order
    usage_lines: int = 0
    fees: int = 0  # billing periods of recurring fees charged
    totals: dict[str, int] = dataclasses.field(default_factory=dict)  # currency -> minor units
    # approval required: the customers whose open balance is not approved at its total
    awaiting_approval: list[dict] = dataclasses.field(default_factory=list)


class DraftLine(NamedTuple):
    """An invoice line to write: a contract component's uninvoiced usage, or a recurring
    fee's billing period (``fee``)."""

    customer_id: int
    customer: str
    cost_centre: str | None
    contract_id: int
    contract: str
    component: str
    service: str
    unit: str
    quantity_micro: int  # usage: units; fee: days charged
    amount_minor: int
    lines: int  # usage lines summed (0 for a fee)
    fee: FeeDue | None = None
    event: tuple[str, str, dt.date] | None = None  # (event id, "event" or "credit", its date)
    event_text: str = ""
    kind: str | None = None  # the kinds without a fee or event: true_up, prepayment, drawdown, capped, ...
    period: tuple[dt.date, dt.date] | None = None  # true_up: the commitment's billing period
    key: dt.date | None = None  # prepayment: the first day it is in force (its record's key)
    credits_line: int | None = None  # credit_note: the line of the credited invoice


class Planned(NamedTuple):
    """An invoice a run would issue: to whom, in what currency, with which lines."""

    customer_id: int
    customer: str
    currency: str
    lines: list[DraftLine]

    @property
    def total_minor(self) -> int:
        return sum(line.amount_minor for line in self.lines)


@dataclasses.dataclass
class BillingPlan:
    company_id: int
    issue_date: dt.date
    invoices: list[Planned]


def run_billing(db: Database, company: str, period: str, *, rules: RuleSet, actor: str,
                payment_terms_days: int = 30, consolidate: bool = False, rounding: str = "line",
                approval: bool = False) -> BillingReport:
    """Invoice what company ``company`` has not invoiced yet of usage posted up to the end
    of ``period`` (YYYY-MM): one invoice per customer, or with ``consolidate`` one per
    organisation (the top of each customer hierarchy), its lines naming the customer and
    cost centre below it. ``rounding``: ``line`` invoices usage as rated, each line rounded
    to the cent; ``document`` rounds the invoice's unrounded usage once, in a rounding line.
    With ``approval``, a customer is invoiced only when its open balance for the period was
    approved at exactly the total the run would invoice (billing/approvals); the others wait,
    listed in the report."""
    _check_options(rules, rounding)
    with db.write() as conn:
        plan = plan_billing(conn, company, period, consolidate=consolidate, rounding=rounding)
        waiting: list[Planned] = []
        if approval:
            plan.invoices, waiting = _approved(conn, period, plan.invoices)
        now = dt.datetime.now(dt.UTC)
        run_id = conn.execute(insert(billing_runs).values(
            company_id=plan.company_id, period=period, issue_date=plan.issue_date, invoices=len(plan.invoices),
            usage_lines=sum(line.lines for planned in plan.invoices for line in planned.lines),
            fees=sum(1 for planned in plan.invoices for line in planned.lines if line.fee is not None), started_at=now,
            started_by=actor[:200])).inserted_primary_key[0]
        report = BillingReport(run_id, company, period, plan.issue_date)
        report.awaiting_approval = [{"customer": p.customer, "currency": p.currency, "total_minor": p.total_minor}
                                    for p in waiting]
        writer = JournalWriter(conn)
        for planned in plan.invoices:
            number, invoice_id = _invoice(conn, writer, rules, plan.company_id, company, run_id, planned.customer_id,
                                          planned.customer, planned.currency, planned.lines, period,
                                          parse_period(period)[1], plan.issue_date, payment_terms_days, now)
            if approval:
                _use_approval(conn, planned, period, invoice_id)
            report.invoices.append(number)
            report.usage_lines += sum(line.lines for line in planned.lines)
            report.fees += sum(1 for line in planned.lines if line.fee is not None)
            report.totals[planned.currency] = report.totals.get(planned.currency, 0) + planned.total_minor
        if writer.first_seq is not None:
            audit_post(conn, actor, writer.last_seq - writer.first_seq + 1, writer.first_seq, writer.last_seq)
        audit.record(conn, actor=actor, action="billing.run", target=f"{company} {period}", details={
            "run": run_id, "invoices": report.invoices, "usage_lines": report.usage_lines, "fees": report.fees,
            "totals": report.totals, "awaiting_approval": report.awaiting_approval})
    return report


def preview_billing(db: Database, company: str, period: str, *, rules: RuleSet, consolidate: bool = False,
                    rounding: str = "line") -> BillingPlan:
    """What a run would invoice now, written nowhere: each customer's open balance for
    review (and approval) before the run."""
    _check_options(rules, rounding)
    with db.read() as conn:
        return plan_billing(conn, company, period, consolidate=consolidate, rounding=rounding)


def _check_options(rules: RuleSet, rounding: str) -> None:
    if rounding not in ROUNDING_POLICIES:
        raise LedgerError(Problem(E_INVALID, "rounding", f"{show(rounding)} is not a rounding policy (line, document)"))
    missing = [name for name in RULES if name not in rules.rules]
    if missing:
        raise LedgerError(Problem(E_INVALID, "rules", f"the posting rules ({rules.source}) have no "
                                  f"{', '.join(repr(m) for m in missing)} rule; billing runs post through them"))


def plan_billing(conn: Connection, company: str, period: str, *, consolidate: bool, rounding: str) -> BillingPlan:
    """The invoices a run for the period would issue, in customer order (reads only)."""
    start, end = parse_period(period)
    cid = company_id(conn, company)
    roles = conn.execute(select(companies.c.roles).where(companies.c.id == cid)).scalar()
    if "operator" not in roles:
        raise LedgerError(Problem(E_INVALID, "company", f"{company} is not an operator entity; only those bill"))
    closed = conn.execute(select(func.max(closed_periods.c.end_date))
                          .where(closed_periods.c.company_id == cid)).scalar()
    issue_date = end if closed is None or end > closed else closed + _ONE_DAY
    # Consolidating: who is below whom, read once for the usage and the fees.
    parents = dict(conn.execute(select(customers.c.id, customers.c.parent_id)).all()) if consolidate else None
    groups = _uninvoiced(conn, cid, end, parents)
    for (payer, currency), line in [*uninvoiced_contract_lines(conn, cid, start, end, parents),
                                    *uninvoiced_events(conn, cid, end, parents)]:
        groups.setdefault((payer, currency), []).append(line)
    carried = carried_balances(conn, cid)
    for payer_currency in carried:
        groups.setdefault(payer_currency, [])
    codes = dict(rows_matching(conn, "SELECT id, code FROM customers WHERE id",
                               sorted({customer for customer, _ in groups}), limits.SQL_IN_PARAMS_MAX))
    planned = []
    for (customer_id, currency), lines in sorted(groups.items(), key=lambda g: (codes[g[0][0]], g[0][1])):
        if rounding == "document":
            lines = lines + _rounding(conn, end, customer_id, codes[customer_id], lines)
        lines = lines + _drawdowns(conn, currency, lines)
        lines += _carry(conn, cid, customer_id, codes[customer_id], currency, period, lines,
                        carried.get((customer_id, currency), 0))
        planned.append(Planned(customer_id, codes[customer_id], currency, lines))
    return BillingPlan(cid, issue_date, planned)


def _approved(conn: Connection, period: str, planned: list[Planned]) -> tuple[list[Planned], list[Planned]]:
    """The planned invoices whose open balance was approved at exactly their total (and
    not used by an invoice yet), and the others."""
    a = invoice_approvals.c
    approved, waiting = [], []
    for invoice in planned:
        total = conn.execute(select(a.total_minor).where(
            a.customer_id == invoice.customer_id, a.currency == invoice.currency, a.period == period,
            a.invoice_id.is_(None))).scalar()
        (approved if total == invoice.total_minor else waiting).append(invoice)
    return approved, waiting


def _use_approval(conn: Connection, invoice: Planned, period: str, invoice_id: int) -> None:
    a = invoice_approvals.c
    conn.execute(update(invoice_approvals).where(a.customer_id == invoice.customer_id, a.currency == invoice.currency,
                                                 a.period == period).values(invoice_id=invoice_id))


def held_back(usage_id_column, statuses: tuple[str, ...] = ("open", "cancelled")):
    """A condition true for usage lines a dispute keeps off invoices (open or cancelled)."""
    d = usage_disputes.c
    return select(d.line_id).where(d.line_id == usage_id_column, d.status.in_(statuses)).exists()


def _uninvoiced(conn: Connection, cid: int, end: dt.date,
                parents: dict[int, int | None] | None) -> dict[tuple[int, str], list[DraftLine]]:
    """Usage not invoiced yet, summed per contract component, grouped into invoices per
    customer (or organisation) and currency."""
    u, c, cu = usage_lines.c, contracts.c, customers.c
    invoiced = select(invoice_usage.c.usage_line_id).where(invoice_usage.c.usage_line_id == u.id).exists()
    query = (select(c.customer_id, cu.code, cu.cost_centre, u.currency, u.contract_id, c.code, u.component, u.service,
                    u.unit, func.sum(u.quantity_micro), func.sum(u.amount_minor), func.count())
             .join(contracts, c.id == u.contract_id)
             .join(customers, cu.id == c.customer_id)
             .where(c.billing_company_id == cid, u.posted_date <= end, ~invoiced, ~held_back(u.id))
             .group_by(c.customer_id, cu.code, cu.cost_centre, u.currency, u.contract_id, c.code, u.component,
                       u.service, u.unit)
             .order_by(cu.code, c.code, u.component, u.unit))
    groups: dict[tuple[int, str], list[DraftLine]] = defaultdict(list)
    for (customer_id, customer, cost_centre, currency, contract_id, code, component, service, unit, quantity, amount,
         count) in conn.execute(query):
        payer = customer_id if parents is None else _organisation(customer_id, parents)
        groups[(payer, currency)].append(DraftLine(customer_id, customer, cost_centre, contract_id, code, component,
                                               service, unit, int(quantity), int(amount), count))
    return groups


def _contracts(conn: Connection, cid: int, end: dt.date, parents: dict[int, int | None] | None,
               wanted: tuple[str, ...]) -> Iterator[tuple[object, int, object, list]]:
    """The company's contracts started by ``end`` that have a component of a ``wanted``
    type: (row, payer, contract, status changes)."""
    c, cu = contracts.c, customers.c
    rows = conn.execute(select(c.code, c.customer_id, cu.code.label("customer"), cu.cost_centre)
                        .join(customers, cu.id == c.customer_id)
                        .where(c.billing_company_id == cid, c.start_date <= end).order_by(c.code)).all()
    for row in rows:
        contract = load_contract(conn, row.code)
        if not any(comp["type"] in wanted for v in contract.versions for comp in v.components):
            continue
        payer = row.customer_id if parents is None else _organisation(row.customer_id, parents)
        yield row, payer, contract, status_changes(conn, contract.id)


def uninvoiced_contract_lines(conn: Connection, cid: int, start: dt.date, end: dt.date,
                              parents: dict[int, int | None] | None = None) -> Iterator[tuple[tuple, DraftLine]]:
    """What the contracts themselves charge and no invoice has yet: recurring fees due in
    the month, minimum-commitment true-ups of the periods ended by ``end`` (or their
    corrections) and prepayments (billing/commitments.py)."""
    for row, payer, contract, changes in _contracts(conn, cid, end, parents,
                                                    ("recurring_fee", COMMITMENT, PREPAYMENT)):
        for line in [*_fee_lines(conn, row, contract, changes, start, end),
                     *_true_up_lines(conn, row, contract, changes, end),
                     *_prepayment_lines(conn, row, contract, changes, end)]:
            yield (payer, contract.currency), line


def _fee_lines(conn: Connection, row, contract, changes, start: dt.date, end: dt.date) -> list[DraftLine]:
    if not codes_of(contract, "recurring_fee"):
        return []
    f = invoice_fees.c
    billed = set(conn.execute(select(f.component, f.period_start).where(f.contract_id == contract.id)).all())
    return [DraftLine(row.customer_id, row.customer, row.cost_centre, contract.id, contract.code, due.component["code"],
                  due.component["service"], "days", due.charged_days * 1_000_000, due.amount_minor, 0, due)
            for due in fees_due(contract, changes, start, end)
            if (due.component["code"], due.period_start) not in billed]


def _true_up_lines(conn: Connection, row, contract, changes, end: dt.date) -> list[DraftLine]:
    """For each commitment period ended by ``end``: the shortfall of its usage (as posted up
    to ``end``) under the commitment, less the true-ups already invoiced for it."""
    periods = list(commitment_periods(contract, changes, end))
    if not periods:
        return []
    t, u = invoice_true_ups.c, usage_lines.c
    trued = {(code, start): int(total) for code, start, total in conn.execute(
        select(t.component, t.period_start, func.sum(t.amount_minor)).where(t.contract_id == contract.id)
        .group_by(t.component, t.period_start))}
    lines = []
    for found in periods:
        used = int(conn.execute(select(func.coalesce(func.sum(u.amount_minor), 0)).where(
            u.contract_id == contract.id, u.usage_date >= found.period_start, u.usage_date <= found.period_end,
            u.posted_date <= end, ~held_back(u.id, ("cancelled",)))).scalar())
        code = found.component["code"]
        change = max(0, found.committed_minor - used) - trued.get((code, found.period_start), 0)
        if change:
            text = (f"minimum commitment {format_amount(found.committed_minor, contract.currency)} for "
                    f"{found.period_start} to {found.period_end}, usage {format_amount(used, contract.currency)}"
                    f"{'' if (code, found.period_start) not in trued else ', correcting the earlier true-up'}")
            lines.append(DraftLine(row.customer_id, row.customer, row.cost_centre, contract.id, contract.code, code,
                               found.component["service"], "days", found.active_days * 1_000_000, change, 0,
                               event_text=text, kind="true_up", period=(found.period_start, found.period_end)))
    return lines


def _prepayment_lines(conn: Connection, row, contract, changes, end: dt.date) -> list[DraftLine]:
    f = invoice_fees.c
    lines = []
    for due in prepayments_due(contract, changes, end):
        code = due.component["code"]
        billed = conn.execute(select(f.invoice_id).where(f.contract_id == contract.id, f.component == code,
                                                         f.period_start == due.first_day)).first()
        if billed is None:
            lines.append(DraftLine(row.customer_id, row.customer, row.cost_centre, contract.id, contract.code, code,
                               due.component["service"], "prepayment", 1_000_000, due.component["amount_minor"], 0,
                               event_text=f"prepayment from {due.first_day}, drawn down by later charges",
                               kind="prepayment", key=due.first_day))
    return lines


def _drawdowns(conn: Connection, currency: str, lines: list[DraftLine]) -> list[DraftLine]:
    """Prepaid credit an invoice draws down: per contract, what is left of each prepayment
    (this invoice's included), in component order, up to what the invoice charges for the
    contract (credits applied count against it)."""
    contract_ids = sorted({line.contract_id for line in lines if line.contract_id is not None})
    if not contract_ids:
        return []
    il = invoice_lines.c
    left: dict[tuple[int, str, str], int] = defaultdict(int)
    for contract_id, component, service, amount in conn.execute(
            select(il.contract_id, il.component, il.service, func.sum(il.amount_minor))
            .where(il.contract_id.in_(contract_ids), il.kind.in_(["prepayment", "drawdown"]))
            .group_by(il.contract_id, il.component, il.service)):
        left[(contract_id, component, service)] += int(amount)
    for line in lines:
        if line.kind == "prepayment":
            left[(line.contract_id, line.component, line.service)] += line.amount_minor
    drawn = []
    for contract_id in contract_ids:
        mine = [line for line in lines if line.contract_id == contract_id]
        charged = sum(line.amount_minor for line in mine if line_kind(line) in CHARGE_KINDS)
        for (_, component, service), balance in sorted((k, v) for k, v in left.items() if k[0] == contract_id):
            amount = min(balance, charged)
            if amount <= 0:
                continue
            charged -= amount
            drawn.append(mine[0]._replace(
                component=component, service=service, unit="prepayment", quantity_micro=1_000_000,
                amount_minor=-amount, lines=0, fee=None, event=None, kind="drawdown", period=None, key=None,
                event_text=f"prepaid credit drawn down, {format_amount(balance - amount, currency)} left"))
    return drawn


def _rounding(conn: Connection, end: dt.date, payer: int, customer: str, lines: list[DraftLine]) -> list[DraftLine]:
    """Document rounding: the unrounded amounts of the usage this invoice takes, summed and
    rounded half-up once, less the sum of their rounded amounts (a few cents either way)."""
    usage = [line for line in lines if line_kind(line) == "usage"]
    if not usage:
        return []
    u = usage_lines.c
    invoiced = select(invoice_usage.c.usage_line_id).where(invoice_usage.c.usage_line_id == u.id).exists()
    exact = Decimal(0)
    keys = {(line.contract_id, line.component, line.service, line.unit) for line in usage}
    query = (select(u.contract_id, u.component, u.service, u.unit, u.amount_exact)
             .where(u.contract_id.in_(sorted({key[0] for key in keys})), u.posted_date <= end, ~invoiced,
                    ~held_back(u.id)))
    for contract_id, component, service, unit, amount_exact in conn.execute(query):
        if (contract_id, component, service, unit) in keys:
            exact += Decimal(amount_exact)
    difference = round_half_up(exact) - sum(line.amount_minor for line in usage)
    if not difference:
        return []
    return [DraftLine(payer, customer, None, None, "", "rounding", "invoice", "invoice", 1_000_000, difference, 0,
                  kind="rounding", event_text=f"usage rounded once for the invoice ({exact.normalize():f} "
                                              f"minor units unrounded)")]


def carried_balances(conn: Connection, cid: int) -> dict[tuple[int, str], int]:
    """What earlier invoices of the company carried to the next one (budget caps) and no
    invoice has brought forward yet, per invoiced customer and currency."""
    il, inv = invoice_lines.c, invoices.c
    rows = conn.execute(select(inv.customer_id, inv.currency, func.sum(il.amount_minor))
                        .join(invoices, inv.id == il.invoice_id)
                        .where(inv.company_id == cid, il.kind.in_(["capped", "brought_forward"]))
                        .group_by(inv.customer_id, inv.currency))
    return {(customer_id, currency): -int(total) for customer_id, currency, total in rows if total}


def _carry(conn: Connection, cid: int, customer_id: int, customer: str, currency: str, period: str,
           lines: list[DraftLine], carried: int) -> list[DraftLine]:
    """Budget caps: what an earlier invoice carried is brought forward, and what the
    period's invoices would charge above the customer's cap for the period is carried to
    the next invoice (from receivables back to unbilled: recognised revenue does not
    change)."""
    extra = []
    invoice_level = DraftLine(customer_id, customer, None, None, "", "budget_cap", "invoice", "invoice", 1_000_000, 0, 0)
    if carried:
        extra.append(invoice_level._replace(amount_minor=carried, kind="brought_forward",
                                            event_text="carried from an earlier invoice over the budget cap"))
    cap = conn.execute(select(invoice_caps.c.amount_minor).where(
        invoice_caps.c.customer_id == customer_id, invoice_caps.c.currency == currency,
        invoice_caps.c.period == period)).scalar()
    if cap is None:
        return extra
    inv = invoices.c
    earlier = int(conn.execute(select(func.coalesce(func.sum(inv.total_minor), 0)).where(
        inv.company_id == cid, inv.customer_id == customer_id, inv.currency == currency, inv.period == period)).scalar())
    total = earlier + sum(line.amount_minor for line in lines) + carried
    if total > cap:
        extra.append(invoice_level._replace(
            amount_minor=cap - total, kind="capped",
            event_text=f"over the budget cap of {format_amount(cap, currency)} for {period}, carried to the next invoice"))
    return extra


def uninvoiced_events(conn: Connection, cid: int, end: dt.date,
                      parents: dict[int, int | None] | None = None) -> Iterator[tuple[tuple, DraftLine]]:
    """Contract events up to the period's end whose entries moved the customer's
    receivables (charges, amendment differences, termination credits: already posted, the
    invoice shows them) or its credits (credit and SLA breach events: applied on this
    invoice), not invoiced yet.

    Each event's postings are found by its entry's position: ``account_id + 0`` keeps
    SQLite (without statistics) from reaching them through the account index instead, which
    scans every receivables posting once per event."""
    ev, c, cu, p, a = contract_events.c, contracts.c, customers.c, postings.c, accounts.c
    invoiced = select(invoice_events.c.event_id).where(invoice_events.c.event_id == ev.id).exists()
    query = (select(ev.id, ev.type, ev.event_date, ev.payload, c.id.label("contract_id"), c.code, c.customer_id,
                    cu.code.label("customer"), cu.cost_centre, c.currency, a.name, func.sum(p.amount_minor))
             .join(contracts, c.id == ev.contract_id).join(customers, cu.id == c.customer_id)
             .join(postings, p.entry_id == ev.entry_seq).join(accounts, a.id == p.account_id + 0)
             .where(c.billing_company_id == cid, ev.event_date <= end, ~invoiced, a.company_id == cid,
                    a.name.in_([RECEIVABLES, CUSTOMER_CREDITS]))
             .group_by(ev.id, ev.type, ev.event_date, ev.payload, c.id, c.code, c.customer_id, cu.code, cu.cost_centre,
                       c.currency, a.name)
             .order_by(ev.event_date, ev.id, a.name))
    for row in conn.execute(query):
        amount = int(row[-1])
        if not amount:
            continue
        payload = json.loads(row.payload)
        kind = "event" if row.name == RECEIVABLES else "credit"
        component = payload.get("component") or "contract"  # an event about the contract as a whole
        reason = f": {payload['reason']}" if payload.get("reason") else ""
        payer = row.customer_id if parents is None else _organisation(row.customer_id, parents)
        yield (payer, row.currency), DraftLine(
            row.customer_id, row.customer, row.cost_centre, row.contract_id, row.code, component, row.type,
            "event", 1_000_000, amount, 0, None, (row.id, kind, row.event_date),
            f"{'credit granted ' if kind == 'credit' else ''}{row.event_date}{reason}"
            f"{', applied' if kind == 'credit' else ''}")


def _organisation(customer_id: int, parents: dict[int, int | None]) -> int:
    """The top of a customer's organisation hierarchy (parents are loaded first, so the
    chain ends; the bound guards against a cycle written around the checks)."""
    for _ in range(1_000):
        parent = parents.get(customer_id)
        if parent is None:
            return customer_id
        customer_id = parent
    raise LedgerError(Problem(E_INVALID, "customer", f"customer #{customer_id}: the organisation hierarchy has a cycle"))


def next_sequence(conn: Connection, cid: int, document_type: str = "invoice") -> int:
    """The company's next invoice (or credit note) number, taken under the write lock (no
    gaps, no repeats)."""
    seq = invoice_sequences.c
    which = (seq.company_id == cid, seq.document_type == document_type)
    last = conn.execute(select(seq.last_sequence).where(*which)).scalar()
    if last is None:
        conn.execute(insert(invoice_sequences).values(company_id=cid, document_type=document_type, last_sequence=1))
        return 1
    conn.execute(update(invoice_sequences).where(*which).values(last_sequence=last + 1))
    return last + 1


def line_kind(line: DraftLine) -> str:
    if line.kind is not None:
        return line.kind
    if line.event is not None:
        return line.event[1]
    return "usage" if line.fee is None else "fee"


def describe(line: DraftLine, payer: int, currency: str) -> str:
    """An invoice line's text: whose (on a consolidated invoice), what and how much."""
    whose = "" if line.customer_id == payer else (
        f"{line.customer}{f' / cost centre {line.cost_centre}' if line.cost_centre else ''}: ")
    about = (f"{line.service} ({line.contract} {line.component})" if line.contract_id is not None
             else "Rounding" if line.kind == "rounding" else "Budget cap")
    fee = line.fee
    if line.event is not None or line.kind is not None:
        what = line.event_text
    elif fee is None:
        what = f"{quantity_text(line.quantity_micro)} {line.unit}"
    else:
        discounted = f", {format_amount(fee.discount_minor, currency)} discount" if fee.discount_minor else ""
        what = (f"{fee.timing.replace('_', ' ')}, {fee.period_start} to {fee.period_end}, "
                f"{fee.charged_days} of {fee.period_days} days{discounted}")
    return f"{whose}{about}: {what}"


def _period_of(line: DraftLine) -> tuple[dt.date, dt.date] | tuple[()]:
    if line.fee is not None:
        return line.fee.period_start, line.fee.period_end
    return line.period or ()


def invoice_number(company: str, sequence: int, document_type: str = "invoice") -> str:
    return f"{company}-{'CN-' if document_type == 'credit_note' else ''}{sequence:06d}"


def line_postings(conn: Connection, rules: RuleSet, terms: AgreementTerms, company: str, currency: str,
              line: DraftLine) -> list[PostingDraft]:
    """A line's postings through its rule: usage moves from unbilled to receivables (in the
    books of the customer whose usage it was); a fee is charged with the vendor's share and
    the reseller's commission of its component."""
    fee = line.fee
    if line.event is not None and line.event[1] == "event":
        return []  # the event's own entry moved the receivable
    if line.kind is not None:
        name = KIND_RULES[line.kind]
        if name not in rules.rules:
            raise LedgerError(Problem(E_INVALID, "rules", f"the posting rules ({rules.source}) have no {name!r} rule; "
                                      f"{line.kind.replace('_', ' ')} lines of invoices post through it"))
        rule = rules.rules[name]
        # A drawdown uses up prepaid credit: the rule sees the (positive) amount drawn.
        amount = -line.amount_minor if line.kind in ("drawdown", "credit_note") else line.amount_minor
    elif line.event is not None:
        rule = rules.rules[CREDIT_RULE]
        amount = -line.amount_minor  # the credit held (a credit balance) is used up
    else:
        rule = rules.rules[RULE if fee is None else FEE_RULES[fee.timing]]
        amount = line.amount_minor
    dimensions = {"customer": line.customer, "contract": line.contract, "service": line.service,
                  "component": line.component}
    parties = {"billing": company, "vendor": None, "reseller": None}
    functions: dict = {}
    if fee is not None:
        parties.update(vendor=fee.component.get("vendor"), reseller=fee.component.get("reseller"))
        functions = terms.functions(fee.contract, parties, fee.terms_day, Decimal(1))
    context = Context(amount, Decimal(line.quantity_micro) / 1_000_000, parties, dimensions, functions)
    try:
        return posting_drafts(rule, context, currency)
    except RuleError as exc:
        raise LedgerError(Problem(E_INVALID, "rules", str(exc))) from None


def post_document(writer: JournalWriter, number: str, issue_date: dt.date, postings: list[PostingDraft],
                  description: str, metadata: tuple) -> int | None:
    """Post an invoice's or credit note's entry (``invoice:<number>``); None when there is
    nothing to post."""
    if not postings:
        return None
    draft = EntryDraft(ENTRY_ID_PREFIX + number, issue_date, tuple(postings), description[:500], SOURCE_TYPE, number,
                       metadata)
    return post_single(writer, draft, number)


def _invoice(conn: Connection, writer: JournalWriter, rules: RuleSet, cid: int, company: str, run_id: int, customer_id: int,
             customer: str, currency: str, lines: list[DraftLine], period: str, end: dt.date, issue_date: dt.date,
             payment_terms_days: int, now: dt.datetime) -> tuple[str, int]:
    sequence = next_sequence(conn, cid)
    number = invoice_number(company, sequence)
    total = sum(line.amount_minor for line in lines)
    postings = []
    terms = AgreementTerms(conn)
    for line in lines:
        postings += line_postings(conn, rules, terms, company, currency, line)
    entry_seq = post_document(writer, number, issue_date, postings, f"Invoice {number} to {customer} for {period}",
                              (("customer", customer), ("period", period)))
    due_date = issue_date + dt.timedelta(days=payment_terms_days)
    document = {"number": number, "company": company, "customer": customer, "currency": currency, "period": period,
                "issue_date": issue_date.isoformat(), "due_date": due_date.isoformat(), "total_minor": total,
                "lines": [[line_kind(line), line.customer, line.cost_centre, line.contract, line.component, line.service,
                           line.unit, line.quantity_micro, line.amount_minor,
                           [day.isoformat() for day in _period_of(line)] or None]
                          for line in lines]}
    digest = hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    invoice_id = conn.execute(insert(invoices).values(
        company_id=cid, document_type="invoice", sequence=sequence, number=number, run_id=run_id, customer_id=customer_id, currency=currency,
        period=period, issue_date=issue_date, due_date=due_date, total_minor=total, entry_seq=entry_seq,
        document_hash=digest, created_at=now)).inserted_primary_key[0]
    u = usage_lines.c
    for line_no, line in enumerate(lines, start=1):
        period_of = _period_of(line)
        fee = line.fee
        conn.execute(insert(invoice_lines).values(
            invoice_id=invoice_id, line_no=line_no, kind=line_kind(line),
            contract_id=line.contract_id, customer_id=line.customer_id, cost_centre=line.cost_centre,
            component=line.component, service=line.service,
            description=describe(line, customer_id, currency),
            quantity_micro=line.quantity_micro, unit=line.unit, amount_minor=line.amount_minor,
            period_start=period_of[0] if period_of else None, period_end=period_of[1] if period_of else None))
        if line.kind == "true_up":
            conn.execute(insert(invoice_true_ups).values(contract_id=line.contract_id, component=line.component,
                                                         period_start=line.period[0], invoice_id=invoice_id,
                                                         line_no=line_no, amount_minor=line.amount_minor))
            continue
        if line.kind == "prepayment":
            conn.execute(insert(invoice_fees).values(contract_id=line.contract_id, component=line.component,
                                                     period_start=line.key, invoice_id=invoice_id, line_no=line_no))
            continue
        if line.kind is not None:
            continue
        if line.event is not None:
            conn.execute(insert(invoice_events).values(event_id=line.event[0], kind=line.event[1],
                                                       invoice_id=invoice_id, line_no=line_no))
            continue
        if fee is not None:
            conn.execute(insert(invoice_fees).values(contract_id=line.contract_id, component=line.component,
                                                     period_start=fee.period_start, invoice_id=invoice_id,
                                                     line_no=line_no))
            continue
        # The usage this line invoices, chosen by the same conditions as the sums above
        # (the write lock is held: nothing arrived in between).
        invoiced = select(invoice_usage.c.usage_line_id).where(invoice_usage.c.usage_line_id == u.id).exists()
        source = (select(u.id, literal(invoice_id), literal(line_no))
                  .where(u.contract_id == line.contract_id, u.component == line.component, u.service == line.service,
                         u.unit == line.unit, u.currency == currency, u.posted_date <= end, ~invoiced,
                         ~held_back(u.id)))
        conn.execute(insert(invoice_usage).from_select(["usage_line_id", "invoice_id", "line_no"], source))
        stored = conn.execute(select(func.count()).where(invoice_usage.c.invoice_id == invoice_id,
                                                         invoice_usage.c.line_no == line_no)).scalar()
        if stored != line.lines:  # both sides of the write agree, or nothing is written
            raise AssertionError(f"invoice {number} line {line_no}: {stored} usage lines stored, {line.lines} summed")
    return number, invoice_id


# --- approvals ---------------------------------------------------------------------------------


class Approval(NamedTuple):
    customer: str
    currency: str
    period: str
    total_minor: int
    approved_at: dt.datetime
    approved_by: str
    invoice: str | None  # the invoice that used it


def approve_balance(db: Database, customer: str, period: str, total: str, *, actor: str,
                    currency: str | None = None) -> Approval:
    """Approve the customer's open balance for ``period`` at ``total`` (major units, as the
    preview showed it). A run requiring approval invoices the customer only at exactly this
    total; a balance that changed since (late usage, a credit) waits for a new approval."""
    parse_period(period)
    with db.write() as conn:
        customer_id, currency, total_minor = _customer_amount(conn, customer, total, currency, "total")
        a = invoice_approvals.c
        key = (a.customer_id == customer_id, a.currency == currency, a.period == period)
        existing = conn.execute(select(a.invoice_id, a.total_minor).where(*key)).first()
        now = dt.datetime.now(dt.UTC)
        values = {"total_minor": total_minor, "approved_at": now, "approved_by": actor[:200], "invoice_id": None}
        if existing is None:
            conn.execute(insert(invoice_approvals).values(customer_id=customer_id, currency=currency, period=period,
                                                          **values))
        else:
            conn.execute(update(invoice_approvals).where(*key).values(**values))
        audit.record(conn, actor=actor, action="billing.approve", target=f"{customer} {period}", details={
            "currency": currency, "total_minor": total_minor,
            "replaced": None if existing is None else {"total_minor": existing.total_minor,
                                                       "used_by_invoice": existing.invoice_id}})
    return Approval(customer, currency, period, total_minor, now, actor[:200], None)


def _customer_amount(conn: Connection, customer: str, text: str, currency: str | None,
                     field: str) -> tuple[int, str, int]:
    """A customer's id, the currency (default the customer's) and ``text`` as an amount of
    it in minor units, for the controls set on a customer (approvals, caps)."""
    row = conn.execute(select(customers.c.id, customers.c.currency).where(customers.c.code == customer)).first()
    if row is None:
        raise LedgerError(Problem(E_NOT_FOUND, "customer", f"no customer {show(customer)}"))
    currency = currency or row.currency
    try:
        return row.id, currency, parse_amount(text, currency)
    except AmountError as exc:
        raise LedgerError(Problem(exc.code, field, str(exc))) from None


def list_approvals(db: Database, *, customer: str | None = None, period: str | None = None) -> list[Approval]:
    a, cu = invoice_approvals.c, customers.c
    query = (select(cu.code, a.currency, a.period, a.total_minor, a.approved_at, a.approved_by, invoices.c.number)
             .join(customers, cu.id == a.customer_id).outerjoin(invoices, invoices.c.id == a.invoice_id)
             .order_by(a.period, cu.code, a.currency))
    if customer is not None:
        query = query.where(cu.code == customer)
    if period is not None:
        query = query.where(a.period == period)
    with db.read() as conn:
        return [Approval(*row) for row in conn.execute(query)]


# --- budget caps -----------------------------------------------------------------------------


class BudgetCap(NamedTuple):
    customer: str
    currency: str
    period: str
    amount_minor: int
    set_at: dt.datetime
    set_by: str


def set_cap(db: Database, customer: str, period: str, amount: str, *, actor: str,
            currency: str | None = None) -> BudgetCap:
    """Cap what the customer's invoices for ``period`` charge in ``currency`` (default the
    customer's) at ``amount`` (major units). The rest is carried to the next invoice. Setting
    it again replaces it; invoices already issued keep what they charged, and the cap counts
    them in."""
    parse_period(period)
    with db.write() as conn:
        customer_id, currency, amount_minor = _customer_amount(conn, customer, amount, currency, "amount")
        if amount_minor < 0:
            raise LedgerError(Problem(E_INVALID, "amount", "a budget cap is not negative"))
        key = {"customer_id": customer_id, "currency": currency, "period": period}
        now = dt.datetime.now(dt.UTC)
        caps = invoice_caps.c
        exists = conn.execute(select(caps.amount_minor).where(*(caps[k] == v for k, v in key.items()))).first()
        if exists is None:
            conn.execute(insert(invoice_caps).values(**key, amount_minor=amount_minor, set_at=now, set_by=actor[:200]))
        else:
            conn.execute(update(invoice_caps).where(*(caps[k] == v for k, v in key.items()))
                         .values(amount_minor=amount_minor, set_at=now, set_by=actor[:200]))
        audit.record(conn, actor=actor, action="billing.cap", target=f"{customer} {period}", details={
            "currency": currency, "amount_minor": amount_minor,
            "replaced_minor": None if exists is None else exists.amount_minor})
    return BudgetCap(customer, currency, period, amount_minor, now, actor[:200])


def list_caps(db: Database, *, customer: str | None = None, period: str | None = None) -> list[BudgetCap]:
    caps, cu = invoice_caps.c, customers.c
    query = (select(cu.code, caps.currency, caps.period, caps.amount_minor, caps.set_at, caps.set_by)
             .join(customers, cu.id == caps.customer_id).order_by(caps.period, cu.code, caps.currency))
    if customer is not None:
        query = query.where(cu.code == customer)
    if period is not None:
        query = query.where(caps.period == period)
    with db.read() as conn:
        return [BudgetCap(*row) for row in conn.execute(query)]


# --- reading ----------------------------------------------------------------------------------


class InvoiceLine(NamedTuple):
    line_no: int
    kind: str
    customer: str
    cost_centre: str | None
    contract: str
    component: str
    service: str
    description: str
    quantity: str
    unit: str
    amount_minor: int
    currency: str
    usage_lines: int


class Invoice(NamedTuple):
    number: str
    document_type: str  # invoice or credit_note
    company: str
    customer: str
    customer_name: str
    currency: str
    period: str
    issue_date: dt.date
    due_date: dt.date
    total_minor: int
    entry_seq: int | None
    document_hash: str
    lines: list[InvoiceLine]
    credits: str | None = None  # a credit note: the number of the invoice it credits
    reason: str | None = None  # a credit note: why
    cost_centre: str | None = None  # the invoiced customer's


def _invoice_query():
    cu, credited = customers.alias("cu"), invoices.alias("credited")
    return (select(invoices, companies.c.code.label("company_code"), cu.c.code.label("customer_code"),
                   cu.c.name.label("customer_name"), cu.c.cost_centre.label("customer_cost_centre"),
                   credited.c.number.label("credits_number"))
            .join(companies, companies.c.id == invoices.c.company_id)
            .join(cu, cu.c.id == invoices.c.customer_id)
            .outerjoin(credited, credited.c.id == invoices.c.credits_invoice_id))


def list_invoices(db: Database, *, company: str | None = None, customer: str | None = None,
                  period: str | None = None, limit: int = 1_000) -> list[Invoice]:
    query = _invoice_query().order_by(invoices.c.id).limit(limit)
    if company is not None:
        query = query.where(companies.c.code == company)
    if customer is not None:
        query = query.where(query.selected_columns.customer_code == customer)
    if period is not None:
        query = query.where(invoices.c.period == period)
    with db.read() as conn:
        return [_with_lines(conn, row, with_lines=False) for row in conn.execute(query)]


def get_invoice(db: Database, number: str) -> Invoice:
    with db.read() as conn:
        row = conn.execute(_invoice_query().where(invoices.c.number == number)).first()
        if row is None:
            raise LedgerError(Problem("not_found", "invoice", f"no invoice {show(number)}"))
        return _with_lines(conn, row, with_lines=True)


def _with_lines(conn: Connection, row, *, with_lines: bool) -> Invoice:
    lines: list[InvoiceLine] = []
    if with_lines:
        il = invoice_lines.c
        counts = (select(func.count()).where(and_(invoice_usage.c.invoice_id == il.invoice_id,
                                                  invoice_usage.c.line_no == il.line_no)).scalar_subquery())
        owner = customers.alias("owner")
        query = (select(il.line_no, il.kind, owner.c.code, il.cost_centre, contracts.c.code, il.component, il.service,
                        il.description, il.quantity_micro, il.unit, il.amount_minor, counts)
                 .outerjoin(contracts, contracts.c.id == il.contract_id)
                 .join(owner, owner.c.id == il.customer_id)
                 .where(il.invoice_id == row.id).order_by(il.line_no))
        lines = [InvoiceLine(no, kind, customer, cost_centre, code or "", component, service, description,
                             quantity_text(quantity), unit, amount, row.currency, count)
                 for no, kind, customer, cost_centre, code, component, service, description, quantity, unit, amount, count
                 in conn.execute(query)]
    return Invoice(row.number, row.document_type, row.company_code, row.customer_code, row.customer_name, row.currency,
                   row.period, row.issue_date, row.due_date, row.total_minor, row.entry_seq, row.document_hash, lines,
                   row.credits_number, row.reason, row.customer_cost_centre)


CSV_COLUMNS = ("line", "customer", "cost_centre", "contract", "component", "description", "quantity", "unit", "amount",
               "currency", "usage_lines")


def csv_rows(invoice: Invoice) -> list[tuple]:
    """An invoice's lines in the order of CSV_COLUMNS (the CLI and the API write the same)."""
    return [(line.line_no, line.customer, line.cost_centre or "", line.contract, line.component, line.description,
             line.quantity, line.unit, format_amount(line.amount_minor, line.currency), line.currency, line.usage_lines)
            for line in invoice.lines]


def invoiced_usage(db: Database, number: str, line_no: int) -> list[str]:
    """The ids of the usage lines an invoice line invoices."""
    with db.read() as conn:
        invoice_id = conn.execute(select(invoices.c.id).where(invoices.c.number == number)).scalar()
        if invoice_id is None:
            raise LedgerError(Problem("not_found", "invoice", f"no invoice {show(number)}"))
        return list(conn.execute(select(invoice_usage.c.usage_line_id).where(
            invoice_usage.c.invoice_id == invoice_id, invoice_usage.c.line_no == line_no)
            .order_by(invoice_usage.c.usage_line_id)).scalars())
