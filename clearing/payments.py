"""Payments against settlement statements: payouts to partners and receipts from them.

A payment settles part or all of a statement's amount due, in the direction its sign says:
a positive closing balance is paid out by the counterparty to the partner, a negative one is
received from the partner. It posts one settlement entry with the mirror postings in both
books: the payer's bank and its due-to position, the payee's bank and its due-from position,
each naming the other as counterparty. So the position the next statement opens with is net
of what was paid. A payment is never more than what is left to settle, and only the latest
version of a statement is paid (earlier payments count towards it).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, insert, select

from clearing.schema import settlement_statements, statement_payments
from clearing.statements import DUE_FROM, DUE_TO, Statement, statement_in
from ledger import audit
from ledger.database import Database
from ledger.money import AmountError, format_amount, parse_amount
from ledger.posting import JournalWriter, audit_post, post_single
from ledger.records import E_CONFLICT, E_INVALID, EntryDraft, LedgerError, PostingDraft, Problem

BANK = "Assets:Bank"
SOURCE_TYPE = "settlement_payment"


def record_payment(db: Database, number: str, amount: str, *, day: dt.date, actor: str,
                   reference: str | None = None) -> Statement:
    """Record ``amount`` (major units) paid on ``day`` against statement ``number``; returns
    the statement with its new status."""
    if reference is not None and (len(reference) > 200 or "\x00" in reference):
        raise LedgerError(Problem(E_INVALID, "reference", "at most 200 characters, without NUL"))
    with db.write() as conn:
        statement = statement_in(conn, number)
        if not statement.latest:
            raise LedgerError(Problem(E_CONFLICT, "statement", f"{number} was corrected by a later version; pay that"))
        try:
            paid = parse_amount(amount, statement.currency)
        except AmountError as exc:
            raise LedgerError(Problem(exc.code, "amount", str(exc))) from None
        if paid <= 0:
            raise LedgerError(Problem(E_INVALID, "amount", "a payment is a positive amount; its direction follows "
                                      "the statement"))
        if paid > statement.outstanding_minor:
            raise LedgerError(Problem(E_CONFLICT, "amount", f"{number} has "
                                      f"{format_amount(max(statement.outstanding_minor, 0), statement.currency)} "
                                      f"{statement.currency} left to settle"))
        statement_id = conn.execute(select(settlement_statements.c.id)
                                    .where(settlement_statements.c.number == number)).scalar()
        count = conn.execute(select(func.count()).select_from(statement_payments)
                             .where(statement_payments.c.statement_id == statement_id)).scalar()
        external_id = f"payment:{number}:{count + 1}"
        entry_seq = _post(conn, statement, paid, day, external_id, reference, actor)
        conn.execute(insert(statement_payments).values(
            statement_id=statement_id, amount_minor=paid, paid_on=day, reference=reference, entry_seq=entry_seq,
            recorded_at=dt.datetime.now(dt.UTC), recorded_by=actor[:200]))
        audit.record(conn, actor=actor, action="clearing.payment", target=number,
                     details={"amount_minor": paid, "paid_on": day.isoformat(), "entry_seq": entry_seq})
        return statement_in(conn, number)


def _post(conn, statement: Statement, amount: int, day: dt.date, external_id: str, reference: str | None,
          actor: str) -> int:
    partner, counterparty, currency = statement.partner, statement.counterparty, statement.currency
    payout = statement.closing_minor > 0  # the counterparty pays the partner
    payer, payee = (counterparty, partner) if payout else (partner, counterparty)
    postings = (
        PostingDraft(payer, DUE_TO, amount, currency, (("counterparty", payee),)),
        PostingDraft(payer, BANK, -amount, currency, ()),
        PostingDraft(payee, BANK, amount, currency, ()),
        PostingDraft(payee, DUE_FROM, -amount, currency, (("counterparty", payer),)),
    )
    what = "Payout to" if payout else "Receipt from"
    draft = EntryDraft(external_id, day, postings,
                       f"{what} {partner} against {statement.number}{f' ({reference})' if reference else ''}"[:500],
                       SOURCE_TYPE, statement.number, (("statement", statement.number),))
    entry_seq = post_single(JournalWriter(conn), draft, f"the payment against {statement.number}")
    audit_post(conn, actor, 1, entry_seq, entry_seq)
    return entry_seq
