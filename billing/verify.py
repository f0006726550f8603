"""Invariants of billing, checked by `ecoledger verify` (ledger/verify.py calls check()).

- an invoice's total equals the sum of its lines; each usage line's amount and quantity equal
  the sums of the usage lines it invoices, and each fee line charges exactly one recorded
  billing period (and each recorded period has its line);
- an event or credit line is recorded for one event and shows what its entry moved;
- a prepayment line charges one recorded prepayment; a true-up line is recorded with its
  amount; no contract draws down more prepaid credit than it was invoiced, and no customer
  gets more brought forward than was carried over a budget cap;
- an invoice with a non-zero line of its own (not an event's) was posted, by an entry made
  for it;
- a usage line whose dispute cancelled it is on no invoice, and its posting was reversed by
  the cancellation's entry; a credited dispute names its credit event or credit note;
- a rounding line is the invoice's unrounded usage rounded once, less its usage lines;
- numbers run without gaps per billing company and document type, up to its sequence;
- credit notes credit no more than the invoice they name charged.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from sqlalchemy import Connection, and_, func, or_, select

from billing.schema import (
    invoice_events,
    invoice_fees,
    invoice_lines,
    invoice_sequences,
    invoice_true_ups,
    invoice_usage,
    invoices,
    usage_disputes,
)
from billing.service import CUSTOMER_CREDITS
from contracts.schema import contract_events
from contracts.service import RECEIVABLES
from ledger.schema import accounts, journal_entries, postings
from usage.rating import round_half_up
from usage.schema import usage_lines

CHECK = "billing"


def _check_event_lines(conn: Connection, add: Callable[[str, str | None, str], None]) -> None:
    """Each event or credit line is recorded for one event, and its amount is what the
    event's entry moved on the customer's receivables (event) or credits (credit)."""
    inv, lines, links = invoices.c, invoice_lines.c, invoice_events.c
    ev, p, a = contract_events.c, postings.c, accounts.c
    recorded = (select(func.count()).where(links.invoice_id == lines.invoice_id, links.line_no == lines.line_no)
                .scalar_subquery())
    for number, line_no, count in conn.execute(select(inv.number, lines.line_no, recorded)
                                               .join(invoices, inv.id == lines.invoice_id)
                                               .where(lines.kind.in_(["event", "credit"]), recorded != 1)):
        add(CHECK, f"invoice:{number}", f"invoice {number} line {line_no} is recorded for {count} events")
    # What each invoiced event's entry moved on receivables and customer credits, per
    # company: one pass driven by the events (each entry found by its position), not a
    # correlated sum per line (which SQLite answers by scanning every receivables posting).
    moved: dict[tuple[int, int, str], int] = {}
    sums = (select(p.entry_id, a.company_id, a.name, func.sum(p.amount_minor))
            .select_from(invoice_events.join(contract_events, ev.id == links.event_id)
                         .join(postings, p.entry_id == ev.entry_seq).join(accounts, a.id == p.account_id + 0))
            .where(a.name.in_((RECEIVABLES, CUSTOMER_CREDITS)))
            .group_by(p.entry_id, a.company_id, a.name))
    for entry_id, company, name, amount in conn.execute(sums):
        moved[(entry_id, company, name)] = int(amount)
    query = (select(inv.number, lines.line_no, lines.amount_minor, ev.entry_seq, inv.company_id, links.kind)
             .select_from(invoice_events.join(contract_events, ev.id == links.event_id)
                          .join(invoices, inv.id == links.invoice_id)
                          .join(invoice_lines, and_(lines.invoice_id == links.invoice_id, lines.line_no == links.line_no))))
    for number, line_no, stated, entry_seq, company, kind in conn.execute(query):
        posted = moved.get((entry_seq, company, RECEIVABLES if kind == "event" else CUSTOMER_CREDITS), 0)
        if stated != posted:
            add(CHECK, f"invoice:{number}", f"invoice {number} line {line_no} says {stated}; its event's entry moved "
                f"{posted}")


def _check_commitments(conn: Connection, add: Callable[[str, str | None, str], None]) -> None:
    inv, lines, trued = invoices.c, invoice_lines.c, invoice_true_ups.c
    recorded = (select(func.count()).where(trued.invoice_id == lines.invoice_id, trued.line_no == lines.line_no,
                                           trued.amount_minor == lines.amount_minor).scalar_subquery())
    for number, line_no in conn.execute(select(inv.number, lines.line_no).join(invoices, inv.id == lines.invoice_id)
                                        .where(lines.kind == "true_up", recorded != 1)):
        add(CHECK, f"invoice:{number}", f"invoice {number} line {line_no} is a true-up not recorded with its amount")
    line_of = select(lines.line_no).where(lines.invoice_id == trued.invoice_id, lines.line_no == trued.line_no,
                                          lines.kind == "true_up").exists()
    for contract_id, component, start in conn.execute(select(trued.contract_id, trued.component, trued.period_start)
                                                      .where(~line_of)):
        add(CHECK, None, f"a true-up of the {component} commitment of contract #{contract_id} for the period from "
            f"{start} is on no invoice line")
    prepaid = (select(lines.contract_id, lines.component, func.sum(lines.amount_minor))
               .where(lines.kind.in_(["prepayment", "drawdown"])).group_by(lines.contract_id, lines.component)
               .having(func.sum(lines.amount_minor) < 0))
    for contract_id, component, left in conn.execute(prepaid):
        add(CHECK, None, f"contract #{contract_id} drew down {-left} more of its {component} prepayment than was invoiced")
    carried = (select(inv.customer_id, inv.currency, func.sum(lines.amount_minor)).join(invoices, inv.id == lines.invoice_id)
               .where(lines.kind.in_(["capped", "brought_forward"])).group_by(inv.customer_id, inv.currency)
               .having(func.sum(lines.amount_minor) > 0))
    for customer_id, currency, extra in conn.execute(carried):
        add(CHECK, None, f"customer #{customer_id} had {extra} {currency} brought forward that no budget cap carried")


def _check_disputes(conn: Connection, add: Callable[[str, str | None, str], None]) -> None:
    d, links, u, entries = usage_disputes.c, invoice_usage.c, usage_lines.c, journal_entries.c
    invoiced = select(links.usage_line_id).where(links.usage_line_id == d.line_id).exists()
    for (line_id,) in conn.execute(select(d.line_id).where(d.status == "cancelled", invoiced)):
        add(CHECK, None, f"usage line {line_id} was cancelled by its dispute but is invoiced")
    reversal = (select(entries.id).where(entries.id == d.entry_seq, entries.source_type == "usage_dispute",
                                         entries.source_id == func.substr(d.line_id, 1, 200)).exists())
    query = (select(d.line_id).join(usage_lines, u.id == d.line_id)
             .where(d.status == "cancelled", u.entry_seq.is_not(None), ~reversal))
    for (line_id,) in conn.execute(query):
        add(CHECK, None, f"usage line {line_id} was cancelled by its dispute but no entry of the dispute reverses it")
    credit = select(contract_events.c.id).where(contract_events.c.id == d.event_id, contract_events.c.type == "credit")
    note = select(invoices.c.id).where(invoices.c.number == d.event_id, invoices.c.document_type == "credit_note")
    query = (select(d.line_id).join(usage_lines, u.id == d.line_id)
             .where(d.status == "credited", u.amount_minor != 0, ~credit.exists(), ~note.exists()))
    for (line_id,) in conn.execute(query):
        add(CHECK, None, f"usage line {line_id} was credited after its dispute but no credit event or credit note "
            f"gives it back")


def _check_rounding(conn: Connection, add: Callable[[str, str | None, str], None]) -> None:
    inv, lines, links, usage = invoices.c, invoice_lines.c, invoice_usage.c, usage_lines.c
    rounded = conn.execute(select(inv.id, inv.number, lines.line_no, lines.amount_minor)
                           .join(invoices, inv.id == lines.invoice_id).where(lines.kind == "rounding")).all()
    for invoice_id, number, line_no, stated in rounded:
        exact, amounts = Decimal(0), 0
        for amount_exact, amount in conn.execute(select(usage.amount_exact, usage.amount_minor)
                                                 .join(invoice_usage, links.usage_line_id == usage.id)
                                                 .where(links.invoice_id == invoice_id)):
            exact += Decimal(amount_exact)
            amounts += amount
        if stated != round_half_up(exact) - amounts:
            add(CHECK, f"invoice:{number}", f"invoice {number} line {line_no} rounds by {stated}; its usage rounded "
                f"once differs from its lines by {round_half_up(exact) - amounts}")


def _check_credit_notes(conn: Connection, add: Callable[[str, str | None, str], None]) -> None:
    """A credit note credits no more than its invoice charged, nor a line more than the
    line; its lines are credit_note lines, and an invoice has none."""
    inv, lines = invoices.c, invoice_lines.c
    credited = invoices.alias("credited")
    notes = (select(credited.c.number, credited.c.total_minor, func.sum(inv.total_minor))
             .join(credited, credited.c.id == inv.credits_invoice_id)
             .group_by(credited.c.number, credited.c.total_minor))
    for number, total, credit in conn.execute(notes):
        if -credit > max(total, 0) or credit > 0:
            add(CHECK, f"invoice:{number}", f"invoice {number} of {total} is credited {-credit} by its credit notes")
    wrong = (select(inv.number, lines.line_no).join(invoices, inv.id == lines.invoice_id)
             .where(or_(and_(inv.document_type == "credit_note", lines.kind != "credit_note"),
                        and_(inv.document_type == "invoice", lines.kind == "credit_note"))))
    for number, line_no in conn.execute(wrong):
        add(CHECK, f"invoice:{number}", f"{number} line {line_no} is of a kind its document does not have")


def check(conn: Connection, add: Callable[[str, str | None, str], None]) -> None:
    inv, lines, usage, links = invoices.c, invoice_lines.c, usage_lines.c, invoice_usage.c
    line_sum = select(func.coalesce(func.sum(lines.amount_minor), 0)).where(lines.invoice_id == inv.id).scalar_subquery()
    for number, total, summed in conn.execute(select(inv.number, inv.total_minor, line_sum).where(inv.total_minor != line_sum)):
        add(CHECK, f"invoice:{number}", f"invoice {number} totals {total}; its lines sum to {summed}")
    match = and_(links.invoice_id == lines.invoice_id, links.line_no == lines.line_no, usage.id == links.usage_line_id)
    amount = select(func.coalesce(func.sum(usage.amount_minor), 0)).where(match).scalar_subquery()
    quantity = select(func.coalesce(func.sum(usage.quantity_micro), 0)).where(match).scalar_subquery()
    wrong = conn.execute(select(inv.number, lines.line_no, lines.amount_minor, amount)
                         .join(invoices, inv.id == lines.invoice_id)
                         .where(lines.kind == "usage", or_(lines.amount_minor != amount, lines.quantity_micro != quantity)))
    for number, line_no, stated, summed in wrong:
        add(CHECK, f"invoice:{number}", f"invoice {number} line {line_no} says {stated}; the usage it invoices "
            f"sums to {summed}")
    fees = invoice_fees.c
    charged = (select(func.count()).where(fees.invoice_id == lines.invoice_id, fees.line_no == lines.line_no)
               .scalar_subquery())
    for number, line_no, count in conn.execute(select(inv.number, lines.line_no, charged)
                                               .join(invoices, inv.id == lines.invoice_id)
                                               .where(lines.kind.in_(["fee", "prepayment"]), charged != 1)):
        add(CHECK, f"invoice:{number}", f"invoice {number} line {line_no} is a fee recorded for {count} billing periods")
    line_of = select(lines.line_no).where(lines.invoice_id == fees.invoice_id, lines.line_no == fees.line_no,
                                          lines.kind.in_(["fee", "prepayment"])).exists()
    for contract_id, component, start in conn.execute(select(fees.contract_id, fees.component, fees.period_start)
                                                      .where(~line_of)):
        add(CHECK, None, f"the {component} fee of contract #{contract_id} from {start} is billed by no fee line")
    _check_event_lines(conn, add)
    _check_commitments(conn, add)
    _check_disputes(conn, add)
    _check_rounding(conn, add)
    # Event lines show what the event's own entry posted; every other line is posted by the invoice.
    nonzero = select(lines.invoice_id).where(lines.invoice_id == inv.id, lines.amount_minor != 0,
                                             lines.kind != "event").exists()
    entries = journal_entries.c
    unposted = conn.execute(
        select(inv.number).select_from(invoices.outerjoin(journal_entries, entries.id == inv.entry_seq))
        .where(or_(and_(inv.entry_seq.is_(None), nonzero),
                   and_(inv.entry_seq.is_not(None),
                        or_(entries.id.is_(None), entries.external_id != "invoice:" + inv.number)))))
    for (number,) in unposted:
        add(CHECK, f"invoice:{number}", f"invoice {number} is not posted by an entry made for it")
    counts = conn.execute(select(inv.company_id, inv.document_type, func.count(), func.max(inv.sequence))
                          .group_by(inv.company_id, inv.document_type)).all()
    seq = invoice_sequences.c
    sequences = {(company_id, kind): last for company_id, kind, last in conn.execute(
        select(seq.company_id, seq.document_type, seq.last_sequence))}
    for company_id, kind, count, highest in counts:
        if count != highest or sequences.get((company_id, kind)) != highest:
            add(CHECK, None, f"{kind.replace('_', ' ')} numbers of company #{company_id} have gaps: {count} documents, "
                f"highest number {highest}, sequence at {sequences.get((company_id, kind))}")
    _check_credit_notes(conn, add)
