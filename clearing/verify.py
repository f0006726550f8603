"""Invariants of settlement statements, checked by `ecoledger verify` (ledger/verify.py
calls check()).

- a statement's closing balance is its opening balance plus its lines;
- each line sums exactly the postings it records, and those are position postings of the
  statement's partner, currency and period;
- each payment is posted by its own settlement entry.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, and_, func, select

from clearing.schema import settlement_statements, statement_lines, statement_payments, statement_postings
from ledger.schema import accounts, journal_entries, postings

CHECK = "clearing"


def check(conn: Connection, add: Callable[[str, str | None, str], None]) -> None:
    s, sl, sp, p = settlement_statements.c, statement_lines.c, statement_postings.c, postings.c
    summed = select(func.coalesce(func.sum(sl.amount_minor), 0)).where(sl.statement_id == s.id).scalar_subquery()
    for number, opening, closing, lines in conn.execute(
            select(s.number, s.opening_minor, s.closing_minor, summed).where(s.closing_minor != s.opening_minor + summed)):
        add(CHECK, None, f"statement {number} closes at {closing}; its opening {opening} and lines {lines} do not")
    match = and_(sp.statement_id == sl.statement_id, sp.line_no == sl.line_no, p.entry_id == sp.entry_id,
                 p.line_no == sp.posting_line_no)
    amount = select(func.coalesce(func.sum(p.amount_minor), 0)).where(match).scalar_subquery()
    count = select(func.count()).where(match).scalar_subquery()
    query = (select(s.number, sl.line_no, sl.amount_minor, amount).join(settlement_statements, s.id == sl.statement_id)
             .where((sl.amount_minor != amount) | (sl.postings != count)))
    for number, line_no, stated, found in conn.execute(query):
        add(CHECK, None, f"statement {number} line {line_no} says {stated}; the postings it records sum to {found}")
    foreign = (select(s.number).select_from(statement_postings)
               .join(settlement_statements, s.id == sp.statement_id)
               .join(postings, and_(p.entry_id == sp.entry_id, p.line_no == sp.posting_line_no))
               .join(accounts, accounts.c.id == p.account_id)
               .where((accounts.c.company_id != s.company_id) | (p.currency != s.currency)).distinct())
    for (number,) in conn.execute(foreign):
        add(CHECK, None, f"statement {number} records postings of another company or currency")
    pay, e = statement_payments.c, journal_entries.c
    unposted = (select(s.number, pay.id).join(settlement_statements, s.id == pay.statement_id)
                .outerjoin(journal_entries, e.id == pay.entry_seq)
                .where((e.id.is_(None)) | (e.source_type != "settlement_payment") | (e.source_id != s.number)))
    for number, payment_id in conn.execute(unposted):
        add(CHECK, None, f"payment #{payment_id} against {number} is not posted by a settlement entry of it")
