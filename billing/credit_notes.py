"""Credit notes: documents that credit part or all of an issued invoice.

An issued invoice never changes; a credit note corrects it. It names the invoice it credits,
and optionally the line. It is numbered in its own gapless sequence per billing company
(``OPFI-CN-000001``) and posted through the ``credit_note`` rule: the customer's receivables
go down against revenue adjustments. A line is never credited beyond its amount, nor an
invoice beyond its total. The vendor's share and the reseller's commission are not touched
here: clawbacks of credits are the clearing run's (issue 6).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

from sqlalchemy import Connection, func, insert, select

from billing.schema import invoice_lines, invoices
from billing.service import (
    DraftLine,
    Invoice,
    get_invoice,
    invoice_number,
    line_postings,
    next_sequence,
    post_document,
)
from contracts.rules import RuleSet
from contracts.schema import contracts, customers
from contracts.terms import AgreementTerms
from ledger import audit
from ledger.database import Database
from ledger.money import AmountError, format_amount, parse_amount
from ledger.posting import JournalWriter, audit_post
from ledger.records import E_CONFLICT, E_INVALID, E_NOT_FOUND, LedgerError, Problem, show
from ledger.schema import companies

RULE = "credit_note"
DOCUMENT_TYPE = "credit_note"


def issue_credit_note(db: Database, number: str, *, reason: str, rules: RuleSet, actor: str,
                      amount: str | None = None, line_no: int | None = None, day: dt.date | None = None) -> Invoice:
    """Credit invoice ``number``: ``amount`` (major units) of it, or of its line ``line_no``
    (default: what is left of that line). Returns the credit note."""
    reason = (reason or "").strip()
    if not reason or len(reason) > 500 or "\x00" in reason:
        raise LedgerError(Problem(E_INVALID, "reason", "a reason of 1 to 500 characters, without NUL, is required"))
    if amount is None and line_no is None:
        raise LedgerError(Problem(E_INVALID, "amount", "give the amount to credit, or the line to credit in full"))
    if RULE not in rules.rules:
        raise LedgerError(Problem(E_INVALID, "rules", f"the posting rules ({rules.source}) have no {RULE!r} rule"))
    with db.write() as conn:
        invoice = _invoice_row(conn, number)
        note_number = credit_in(conn, number, reason=reason, rules=rules, actor=actor,
                                amount_minor=None if amount is None else _parse(amount, invoice.currency),
                                line_no=line_no, day=day)
    return get_invoice(db, note_number)


def credit_in(conn: Connection, number: str, *, reason: str, rules: RuleSet, actor: str, amount_minor: int | None,
              line_no: int | None, day: dt.date | None) -> str:
    """Issue a credit note inside the caller's transaction (a dispute resolved by one);
    returns its number."""
    day = day or dt.date.today()
    invoice = _invoice_row(conn, number)
    if day < invoice.issue_date:
        raise LedgerError(Problem(E_INVALID, "date", f"a credit note cannot precede the invoice it credits "
                                  f"({invoice.issue_date})"))
    credit = _amount_to_credit(conn, invoice, amount_minor, line_no)
    line = _credit_line(conn, invoice, line_no, credit, reason)
    note_number = _write(conn, invoice, line, reason, day, rules, actor)
    audit.record(conn, actor=actor, action="billing.credit_note", target=note_number, details={
        "invoice": number, "line": line_no, "amount_minor": credit, "reason": reason})
    return note_number


def _parse(amount: str, currency: str) -> int:
    try:
        credit = parse_amount(amount, currency)
    except AmountError as exc:
        raise LedgerError(Problem(exc.code, "amount", str(exc))) from None
    if credit <= 0:
        raise LedgerError(Problem(E_INVALID, "amount", "a credit note credits a positive amount"))
    return credit


def _invoice_row(conn: Connection, number: str):
    inv = invoices.c
    row = conn.execute(select(invoices, companies.c.code.label("company_code"))
                       .join(companies, companies.c.id == inv.company_id).where(inv.number == number)).first()
    if row is None:
        raise LedgerError(Problem(E_NOT_FOUND, "invoice", f"no invoice {show(number)}"))
    if row.document_type != "invoice":
        raise LedgerError(Problem(E_INVALID, "invoice", f"{number} is a credit note; credit the invoice it credits"))
    return row


def _credited(conn: Connection, invoice_id: int, line_no: int | None = None) -> int:
    """What credit notes took off the invoice (or off one of its lines) so far, positive."""
    inv, il = invoices.c, invoice_lines.c
    query = (select(func.coalesce(func.sum(il.amount_minor), 0)).join(invoices, inv.id == il.invoice_id)
             .where(inv.credits_invoice_id == invoice_id))
    if line_no is not None:
        query = query.where(il.credits_line_no == line_no)
    return -int(conn.execute(query).scalar())


def _amount_to_credit(conn: Connection, invoice, amount: int | None, line_no: int | None) -> int:
    room = invoice.total_minor - _credited(conn, invoice.id)
    if line_no is not None:
        il = invoice_lines.c
        line_amount = conn.execute(select(il.amount_minor).where(il.invoice_id == invoice.id,
                                                                 il.line_no == line_no)).scalar()
        if line_amount is None:
            raise LedgerError(Problem(E_NOT_FOUND, "line", f"invoice {invoice.number} has no line {line_no}"))
        room = min(room, line_amount - _credited(conn, invoice.id, line_no))
    credit = room if amount is None else amount
    if room <= 0 or credit > room:
        what = f"line {line_no} of {invoice.number}" if line_no is not None else invoice.number
        raise LedgerError(Problem(E_CONFLICT, "amount", f"{what} has {format_amount(max(room, 0), invoice.currency)} "
                                  f"{invoice.currency} left to credit"))
    return credit


def _credit_line(conn: Connection, invoice, line_no: int | None, credit: int, reason: str) -> DraftLine:
    cu = customers.c
    customer = conn.execute(select(cu.code, cu.cost_centre).where(cu.id == invoice.customer_id)).first()
    if line_no is None:
        return DraftLine(invoice.customer_id, customer.code, None, None, "", "invoice", "credit", "credit", 1_000_000,
                     -credit, 0, kind="credit_note", event_text=f"credit of {invoice.number}: {reason}")
    il, owner = invoice_lines.c, customers.alias("owner")
    row = conn.execute(select(il.customer_id, owner.c.code, il.cost_centre, il.contract_id, contracts.c.code,
                              il.component, il.service)
                       .join(owner, owner.c.id == il.customer_id).outerjoin(contracts, contracts.c.id == il.contract_id)
                       .where(il.invoice_id == invoice.id, il.line_no == line_no)).first()
    return DraftLine(row[0], row[1], row[2], row[3], row[4] or "", row[5], row[6], "credit", 1_000_000, -credit, 0,
                 kind="credit_note", event_text=f"credit of {invoice.number} line {line_no}: {reason}",
                 credits_line=line_no)


def _write(conn: Connection, invoice, line: DraftLine, reason: str, day: dt.date, rules: RuleSet, actor: str) -> str:
    cid, company = invoice.company_id, invoice.company_code
    sequence = next_sequence(conn, cid, DOCUMENT_TYPE)
    number = invoice_number(company, sequence, DOCUMENT_TYPE)
    customer = conn.execute(select(customers.c.code).where(customers.c.id == invoice.customer_id)).scalar()
    writer = JournalWriter(conn)
    postings = line_postings(conn, rules, AgreementTerms(conn), company, invoice.currency, line)
    entry_seq = post_document(writer, number, day, postings, f"Credit note {number} to {customer} for {invoice.number}",
                              (("credits", invoice.number), ("customer", customer)))
    if entry_seq is not None:
        audit_post(conn, actor, 1, entry_seq, entry_seq)
    document = {"number": number, "company": company, "customer": customer, "currency": invoice.currency,
                "credits": invoice.number, "reason": reason, "issue_date": day.isoformat(),
                "total_minor": line.amount_minor, "line": [line.contract, line.component, line.credits_line, line.amount_minor]}
    digest = hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    note_id = conn.execute(insert(invoices).values(
        company_id=cid, document_type=DOCUMENT_TYPE, sequence=sequence, number=number, run_id=None,
        credits_invoice_id=invoice.id, reason=reason, customer_id=invoice.customer_id, currency=invoice.currency,
        period=invoice.period, issue_date=day, due_date=day, total_minor=line.amount_minor, entry_seq=entry_seq,
        document_hash=digest, created_at=dt.datetime.now(dt.UTC))).inserted_primary_key[0]
    about = f"{line.service} ({line.contract} {line.component})" if line.contract_id is not None else "Credit"
    conn.execute(insert(invoice_lines).values(
        invoice_id=note_id, line_no=1, kind="credit_note", contract_id=line.contract_id, customer_id=line.customer_id,
        cost_centre=line.cost_centre, component=line.component, service=line.service,
        description=f"{about}: {line.event_text}"[:2000], quantity_micro=line.quantity_micro, unit=line.unit,
        amount_minor=line.amount_minor, credits_line_no=line.credits_line))
    return number
