"""Disputes of usage lines: a customer questions an activity before (or after) it is
invoiced, and the operator resolves it.

- **open**: billing runs hold the line back; the leakage report shows it as disputed.
- **cancelled**: the activity is void. The line's posting is reversed and it is never
  invoiced. When the line was posted alone, its entry is reversed exactly (a reversal
  entry). When it was posted aggregated with others, the usage rule is applied to the
  line's amount negated, on the line's agreements: the vendor's share and the reseller's
  commission of that one line, rounded on their own, so they can differ by a cent from the
  line's part of the aggregated entry.
- **credited**: the activity stands and is invoiced, and a ``credit`` contract event of its
  amount gives it back on the next invoice ("credited to the next term").
- **credit_note** (recorded as credited): for a line already invoiced, a credit note against
  the invoice line that invoiced it, for the line's amount, issued now.
- **accepted**: the dispute is dropped; the line is invoiced as it is.

A line already invoiced can still be disputed, but only credited, credited by a credit note
or accepted: an issued invoice never changes. Cancelling does not rate the period's other lines again (an
allowance the cancelled line used stays used).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import Connection, func, insert, select, update

from billing.credit_notes import credit_in
from billing.schema import invoice_usage, usage_disputes
from contracts.events import apply_event
from contracts.rules import Context, RuleError, RuleSet, posting_drafts
from contracts.service import load_contract
from contracts.terms import AgreementTerms
from ledger import audit
from ledger.database import Database
from ledger.hashing import pairs_from_json
from ledger.money import format_amount
from ledger.posting import JournalWriter, audit_post, post_single
from ledger.queries import entry_lines
from ledger.records import (
    E_CONFLICT,
    E_INVALID,
    E_NOT_FOUND,
    EntryDraft,
    LedgerError,
    PostingDraft,
    Problem,
    show,
)
from ledger.schema import journal_entries
from usage.schema import usage_lines

OPEN, CANCELLED, CREDITED, ACCEPTED_AS_IS = "open", "cancelled", "credited", "accepted"
OUTCOMES = {"cancel": CANCELLED, "credit": CREDITED, "credit_note": CREDITED, "accept": ACCEPTED_AS_IS}
HELD = (OPEN, CANCELLED)  # statuses that keep a line off invoices
USAGE_RULE = "usage"
SOURCE_TYPE = "usage_dispute"
_EVENT_ID = re.compile(r"^[!-~]{1,192}$")


class Dispute(NamedTuple):
    line_id: str
    contract: str
    component: str
    usage_date: dt.date
    amount_minor: int
    currency: str
    reason: str
    status: str
    opened_at: dt.datetime
    opened_by: str
    resolved_at: dt.datetime | None
    resolved_by: str | None
    resolution: str | None
    entry_seq: int | None
    event_id: str | None
    invoice: str | None  # the invoice that invoiced the line, if any


def open_dispute(db: Database, line_id: str, reason: str, *, actor: str) -> Dispute:
    """Record the customer's dispute of a usage line; billing runs hold it back until it is
    resolved. A line is disputed once."""
    reason = _text(reason, "reason")
    with db.write() as conn:
        _line(conn, line_id)
        if conn.execute(select(usage_disputes.c.status).where(usage_disputes.c.line_id == line_id)).first():
            raise LedgerError(Problem(E_CONFLICT, "line_id", f"usage line {show(line_id)} is disputed already"))
        conn.execute(insert(usage_disputes).values(line_id=line_id, reason=reason, status=OPEN,
                                                   opened_at=dt.datetime.now(dt.UTC), opened_by=actor[:200]))
        audit.record(conn, actor=actor, action="usage.dispute", target=line_id, details={"reason": reason})
        return _dispute(conn, line_id)


def resolve_dispute(db: Database, line_id: str, outcome: str, *, rules: RuleSet, actor: str,
                    resolution: str = "", day: dt.date | None = None) -> Dispute:
    """Resolve an open dispute: ``cancel``, ``credit`` or ``accept`` (see the module's
    docstring). ``day`` dates the reversal or the credit (default: today)."""
    if outcome not in OUTCOMES:
        raise LedgerError(Problem(E_INVALID, "outcome", f"{show(outcome)} is not one of cancel, credit, credit_note, "
                                  f"accept"))
    resolution = _text(resolution, "resolution", optional=True)
    day = day or dt.date.today()
    with db.write() as conn:
        line = _line(conn, line_id)
        current = _dispute(conn, line_id, missing_ok=True)
        if current is None:
            raise LedgerError(Problem(E_NOT_FOUND, "line_id", f"usage line {show(line_id)} is not disputed"))
        if current.status != OPEN:
            raise LedgerError(Problem(E_CONFLICT, "line_id", f"the dispute of {show(line_id)} was resolved already "
                                      f"({current.status} on {current.resolved_at:%Y-%m-%d})"))
        if outcome == "cancel" and current.invoice is not None:
            raise LedgerError(Problem(E_CONFLICT, "outcome", f"usage line {show(line_id)} is invoiced on "
                                      f"{current.invoice}: credit it instead"))
        if outcome == "credit_note" and current.invoice is None:
            raise LedgerError(Problem(E_CONFLICT, "outcome", f"usage line {show(line_id)} is not invoiced yet: cancel or "
                                      f"credit it"))
        entry_seq = event_id = None
        if outcome == "credit_note" and line.amount_minor:
            event_id = _credit_note(conn, line, current, rules, actor, day)
        elif outcome == "cancel":
            entry_seq = _cancel(conn, line, rules, actor, day)
        elif outcome == "credit" and line.amount_minor:
            event_id = _credit(conn, line, current.reason, rules, actor, day)
        conn.execute(update(usage_disputes).where(usage_disputes.c.line_id == line_id).values(
            status=OUTCOMES[outcome], resolved_at=dt.datetime.now(dt.UTC), resolved_by=actor[:200],
            resolution=resolution or None, entry_seq=entry_seq, event_id=event_id))
        audit.record(conn, actor=actor, action=f"usage.dispute.{outcome}", target=line_id,
                     details={"entry_seq": entry_seq, "event_id": event_id, "resolution": resolution})
        return _dispute(conn, line_id)


def list_disputes(db: Database, *, status: str | None = None, contract: str | None = None,
                  limit: int = 1_000) -> list[Dispute]:
    with db.read() as conn:
        query = _query().order_by(usage_disputes.c.opened_at, usage_disputes.c.line_id).limit(limit)
        if status is not None:
            query = query.where(usage_disputes.c.status == status)
        if contract is not None:
            query = query.where(query.selected_columns.contract == contract)
        return [Dispute(*row) for row in conn.execute(query)]


def _text(value: str, field: str, *, optional: bool = False) -> str:
    value = (value or "").strip()
    if not value and not optional:
        raise LedgerError(Problem(E_INVALID, field, f"a {field} is required"))
    if len(value) > 500 or "\x00" in value:
        raise LedgerError(Problem(E_INVALID, field, f"the {field} must be at most 500 characters, without NUL"))
    return value


def _line(conn: Connection, line_id: str):
    u = usage_lines.c
    from contracts.schema import contracts

    row = conn.execute(select(u.id, u.contract_id, contracts.c.code.label("contract"), u.component, u.service,
                              u.quantity_micro, u.amount_minor, u.currency, u.entry_seq, u.posted_date, u.usage_date)
                       .join(contracts, contracts.c.id == u.contract_id).where(u.id == line_id)).first()
    if row is None:
        raise LedgerError(Problem(E_NOT_FOUND, "line_id", f"no usage line {show(line_id)}"))
    return row


def _query():
    from billing.schema import invoice_usage, invoices
    from contracts.schema import contracts

    d, u = usage_disputes.c, usage_lines.c
    invoice = (select(invoices.c.number).join(invoice_usage, invoice_usage.c.invoice_id == invoices.c.id)
               .where(invoice_usage.c.usage_line_id == d.line_id).scalar_subquery())
    return (select(d.line_id, contracts.c.code.label("contract"), u.component, u.usage_date, u.amount_minor, u.currency,
                   d.reason, d.status, d.opened_at, d.opened_by, d.resolved_at, d.resolved_by, d.resolution,
                   d.entry_seq, d.event_id, invoice.label("invoice"))
            .join(usage_lines, u.id == d.line_id).join(contracts, contracts.c.id == u.contract_id))


def _dispute(conn: Connection, line_id: str, *, missing_ok: bool = False) -> Dispute | None:
    row = conn.execute(_query().where(usage_disputes.c.line_id == line_id)).first()
    if row is None and not missing_ok:
        raise LedgerError(Problem(E_NOT_FOUND, "line_id", f"usage line {show(line_id)} is not disputed"))
    return None if row is None else Dispute(*row)


def _cancel(conn: Connection, line, rules: RuleSet, actor: str, day: dt.date) -> int | None:
    """Reverse the line's posting; returns the reversing entry (None: the line posted
    nothing, an included unit)."""
    if line.entry_seq is None:
        return None
    if day < line.posted_date:
        raise LedgerError(Problem(E_INVALID, "date", f"a cancellation cannot precede the line's posting "
                                  f"({line.posted_date})"))
    alone = conn.execute(select(func.count()).where(usage_lines.c.entry_seq == line.entry_seq)).scalar() == 1
    original = conn.execute(select(journal_entries.c.external_id).where(journal_entries.c.id == line.entry_seq)).scalar()
    if alone:
        postings = tuple(PostingDraft(p.code, p.name, -p.amount_minor, p.currency, pairs_from_json(p.dimensions))
                         for p in entry_lines(conn, line.entry_seq))
        reverses = line.entry_seq
    else:
        postings, reverses = _negated(conn, line, rules), None
    draft = EntryDraft(f"dispute:{_key(line.id)}:cancel", day, postings,
                       f"Usage line {line.id} cancelled after a dispute (posted by {original})"[:500], SOURCE_TYPE,
                       line.id[:200], (("usage_line", line.id[:200]),), reverses_seq=reverses)
    entry_seq = post_single(JournalWriter(conn), draft, f"the cancellation of {line.id}")
    audit_post(conn, actor, 1, entry_seq, entry_seq)
    return entry_seq


def _negated(conn: Connection, line, rules: RuleSet) -> tuple[PostingDraft, ...]:
    """The usage rule applied to the line's amount negated, on its agreements."""
    if USAGE_RULE not in rules.rules:
        raise LedgerError(Problem(E_INVALID, "rules", f"the posting rules ({rules.source}) have no 'usage' rule"))
    rule = rules.rules[USAGE_RULE]
    contract = load_contract(conn, line.contract)
    component = contract.version_at(line.usage_date).component(line.component) or {}
    parties = {"billing": contract.billing_company, "vendor": component.get("vendor"),
               "reseller": component.get("reseller")}
    quantity = Decimal(line.quantity_micro) / 1_000_000
    functions = AgreementTerms(conn).functions(contract, parties, line.posted_date, quantity)
    dimensions = {"customer": contract.customer, "contract": contract.code, "service": line.service,
                  "component": line.component}
    try:
        return tuple(posting_drafts(rule, Context(-line.amount_minor, -quantity, parties, dimensions, functions),
                                    line.currency))
    except RuleError as exc:
        raise LedgerError(Problem(E_INVALID, "rules", str(exc))) from None


def _credit(conn: Connection, line, reason: str, rules: RuleSet, actor: str, day: dt.date) -> str:
    event_id = f"dispute:{_key(line.id)}"
    apply_event(conn, {"id": event_id, "type": "credit", "contract": line.contract, "date": day.isoformat(),
                       "amount": format_amount(line.amount_minor, line.currency),
                       "reason": f"disputed usage {line.id}: {reason}"[:500]}, rules=rules, actor=actor)
    return event_id


def _credit_note(conn: Connection, line, dispute: Dispute, rules: RuleSet, actor: str, day: dt.date) -> str:
    """A credit note for the line's amount against the invoice line that invoiced it;
    returns its number (kept in the dispute's event_id: what credited it)."""
    links = invoice_usage.c
    line_no = conn.execute(select(links.line_no).where(links.usage_line_id == line.id)).scalar()
    return credit_in(conn, dispute.invoice, reason=f"disputed usage {line.id}: {dispute.reason}"[:500], rules=rules,
                     actor=actor, amount_minor=line.amount_minor, line_no=line_no, day=day)


def _key(line_id: str) -> str:
    """The line's id in the ids of entries and events it leads to (a digest when the id is
    long or not printable ASCII)."""
    return line_id if _EVENT_ID.match(line_id) else hashlib.sha256(line_id.encode()).hexdigest()[:32]
