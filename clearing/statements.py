"""Settlement statements: what each partner earned and owes, and why, per period.

A statement is drawn from the partner's own books, for one counterparty (an operator entity
it has a position with: by its agreements, or a netting centre), one period (YYYY-MM) and
one currency. The partner's *position*
with the counterparty is the sum of its ``Assets:Ecosystem:DueFrom`` and
``Liabilities:Ecosystem:DueTo`` postings whose ``counterparty`` dimension names it: positive
when the counterparty owes the partner. Every posting rule that accrues a share, a
commission or an SLA recovery writes those mirror postings, so the statement needs nothing
but the ledger:

- the opening balance: the position at the end of the day before the period;
- one line per contract, service and kind (the posting rule, or the source of the entry)
  summing the period's position postings, each line knowing the postings it sums
  (drill-down). Lines fall in sections by their kind: ``activity`` (what events, usage and
  invoices accrued), ``adjustments`` (the clearing run's true-ups, clawbacks and transfer
  prices, and SLA recoveries), ``netting`` (positions moved to or from a netting centre)
  and ``settlement`` (payments);
- the closing balance: opening plus the lines, to the cent;
- the withheld items: what of the closing balance comes from usage lines under an open
  dispute, item by item; it is not settled until the dispute is resolved;
- the amount to settle: the closing balance less what is withheld, payable by its sign, on
  the period's end plus the partner's payment terms.

Issuing is idempotent: issuing a period again writes nothing when nothing changed, and a new
version referring to the previous one when something did (a late event dated in the period).
Statements never change (database triggers). Payments recorded against a statement post a
settlement entry in both books (clearing/payments.py), and the statement's status follows:
open, partially settled, settled.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections import defaultdict
from typing import NamedTuple

from sqlalchemy import Connection, func, insert, select

from billing.schema import usage_disputes
from clearing.schema import settlement_statements, statement_lines, statement_payments, statement_postings
from contracts.schema import contracts
from ledger import audit
from ledger.database import Database
from ledger.money import format_amount
from ledger.periods import parse_period
from ledger.records import E_NOT_FOUND, E_UNKNOWN_COMPANY, LedgerError, Problem, show
from ledger.schema import accounts, companies, journal_entries, postings
from partners.schema import partners
from usage.schema import usage_lines

DUE_FROM, DUE_TO = "Assets:Ecosystem:DueFrom", "Liabilities:Ecosystem:DueTo"
POSITION_ACCOUNTS = (DUE_FROM, DUE_TO)
OPEN, PARTIALLY_SETTLED, SETTLED = "open", "partially_settled", "settled"
ACTIVITY, ADJUSTMENTS, NETTING, SETTLEMENT = "activity", "adjustments", "netting", "settlement"
SECTIONS = (ACTIVITY, ADJUSTMENTS, NETTING, SETTLEMENT)
ADJUSTMENT_KINDS = ("sla_breach", "credit", "credit_note")
WITHHELD_ITEMS_MAX = 1_000  # items listed on a statement; the amount always counts them all


def section_of(kind: str) -> str:
    if kind == NETTING:
        return NETTING
    if kind == "settlement_payment":
        return SETTLEMENT
    if kind.startswith("clearing") or kind in ADJUSTMENT_KINDS:
        return ADJUSTMENTS
    return ACTIVITY


class StatementLine(NamedTuple):
    line_no: int
    contract: str
    kind: str
    postings: int
    amount_minor: int
    service: str = ""

    @property
    def section(self) -> str:
        return section_of(self.kind)


class WithheldItem(NamedTuple):
    usage_line: str
    contract: str
    amount_minor: int


class Payment(NamedTuple):
    amount_minor: int
    paid_on: dt.date
    reference: str | None
    entry_seq: int


class Statement(NamedTuple):
    number: str
    partner: str
    counterparty: str
    period: str
    currency: str
    version: int
    previous: str | None  # the version this one corrects
    latest: bool  # no later version corrects it
    opening_minor: int
    closing_minor: int  # > 0: the counterparty pays the partner; < 0: the partner pays
    due_date: dt.date
    issued_at: dt.datetime
    issued_by: str
    document_hash: str
    paid_minor: int  # payments recorded against every version of the period
    status: str
    lines: list[StatementLine]
    payments: list[Payment]
    withheld_minor: int = 0
    withheld: list[WithheldItem] = []

    @property
    def settle_minor(self) -> int:
        """What is settled: the closing balance less what disputes withhold (> 0: the
        counterparty pays the partner)."""
        return self.closing_minor - self.withheld_minor

    @property
    def outstanding_minor(self) -> int:
        return abs(self.settle_minor) - self.paid_minor


@dataclasses.dataclass
class IssueReport:
    period: str
    issued: list[str] = dataclasses.field(default_factory=list)  # new statements and new versions
    unchanged: list[str] = dataclasses.field(default_factory=list)


def statement_number(partner: str, counterparty: str, period: str, currency: str, version: int) -> str:
    return f"ST-{partner}-{counterparty}-{period}-{currency}-{version}"


def issue_statements(db: Database, period: str, *, actor: str, partner: str | None = None) -> IssueReport:
    """Issue the period's statements of every partner (or of ``partner``), with every
    counterparty and currency it has a position in."""
    start, end = parse_period(period)
    report = IssueReport(period)
    with db.write() as conn:
        for partner_id, code, terms_days in partner_rows(conn, partner):
            accounts_of = position_accounts(conn, code)
            if not accounts_of:
                continue
            for counterparty_id, counterparty in _counterparties(conn, partner_id):
                for currency in _currencies(conn, accounts_of, counterparty, end):
                    number, created = _issue(conn, partner_id, code, counterparty_id, counterparty, currency, period,
                                             start, end, end + dt.timedelta(days=terms_days), accounts_of, actor)
                    (report.issued if created else report.unchanged).append(number)
        audit.record(conn, actor=actor, action="clearing.statements", target=f"{partner or '*'} {period}",
                     details={"issued": report.issued, "unchanged": len(report.unchanged)})
    return report


def partner_rows(conn: Connection, code: str | None) -> list[tuple[int, str, int]]:
    """(company id, code, payment terms in days) of every partner, or of ``code`` (a
    LedgerError when it is no partner)."""
    query = (select(companies.c.id, companies.c.code, partners.c.payment_terms_days)
             .join(partners, partners.c.company_id == companies.c.id).order_by(companies.c.code))
    if code is not None:
        query = query.where(companies.c.code == code)
    rows = conn.execute(query).all()
    if code is not None and not rows:
        raise LedgerError(Problem(E_UNKNOWN_COMPANY, "partner", f"no partner {show(code)}"))
    return [tuple(row) for row in rows]


def position_accounts(conn: Connection, company: str) -> list[int]:
    """The ids of a company's position accounts (due from, due to)."""
    return list(conn.execute(select(accounts.c.id).join(companies, companies.c.id == accounts.c.company_id)
                             .where(companies.c.code == company, accounts.c.name.in_(POSITION_ACCOUNTS))).scalars())


def _counterparties(conn: Connection, partner_id: int) -> list[tuple[int, str]]:
    """The operator entities the partner may have a position with: those of its agreements,
    and any other (a netting centre takes positions over); only those with postings get a
    statement."""
    return [(cid, code) for cid, code, roles in conn.execute(
        select(companies.c.id, companies.c.code, companies.c.roles).order_by(companies.c.code))
            if "operator" in (roles or []) and cid != partner_id]


def with_counterparty(counterparty: str):
    """Postings naming ``counterparty``: dimensions are canonical JSON, so the pair is a
    fixed substring (company codes hold no quotes or escapes)."""
    return postings.c.dimensions.contains(f'"counterparty":"{counterparty}"', autoescape=True)


def _currencies(conn: Connection, account_ids: list[int], counterparty: str, end: dt.date) -> list[str]:
    p = postings.c
    return list(conn.execute(select(p.currency).where(p.account_id.in_(account_ids), p.effective_date <= end,
                                                      with_counterparty(counterparty)).distinct().order_by(p.currency)).scalars())


def _issue(conn: Connection, partner_id: int, partner: str, counterparty_id: int, counterparty: str, currency: str,
           period: str, start: dt.date, end: dt.date, due_date: dt.date, account_ids: list[int],
           actor: str) -> tuple[str, bool]:
    p, e = postings.c, journal_entries.c
    where = (p.account_id.in_(account_ids), p.currency == currency, with_counterparty(counterparty))
    opening = int(conn.execute(select(func.coalesce(func.sum(p.amount_minor), 0))
                               .where(*where, p.effective_date < start)).scalar())
    groups: dict[tuple[str, str, str], list] = defaultdict(list)
    for entry_id, line_no, amount, dimensions, source_type, metadata in conn.execute(
            select(p.entry_id, p.line_no, p.amount_minor, p.dimensions, e.source_type, e.metadata_json)
            .join(journal_entries, e.id == p.entry_id)
            .where(*where, p.effective_date >= start, p.effective_date <= end).order_by(p.entry_id, p.line_no)):
        dims = json.loads(dimensions) if dimensions else {}
        kind = (json.loads(metadata).get("rule") if metadata else None) or source_type
        groups[(dims.get("contract", ""), dims.get("service", ""), kind)].append((entry_id, line_no, amount))
    lines = [StatementLine(n, contract, kind, len(items), sum(a for _, _, a in items), service)
             for n, ((contract, service, kind), items) in enumerate(sorted(groups.items()), start=1)]
    closing = opening + sum(line.amount_minor for line in lines)
    withheld = withheld_items(conn, account_ids, counterparty, currency, end)
    withheld_minor = sum(item.amount_minor for item in withheld)
    # A service or a withheld amount joins the hashed document only when there is one, so
    # that a statement issued before either existed hashes as it did.
    document = {"partner": partner, "counterparty": counterparty, "period": period, "currency": currency,
                "opening_minor": opening, "closing_minor": closing, "due_date": due_date.isoformat(),
                "lines": [list(line[:5]) + ([line.service] if line.service else []) for line in lines]}
    if withheld:
        document["withheld"] = [list(item) for item in withheld]
    digest = hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    s = settlement_statements.c
    latest = conn.execute(select(s.id, s.number, s.version, s.document_hash).where(
        s.company_id == partner_id, s.counterparty_id == counterparty_id, s.period == period, s.currency == currency)
        .order_by(s.version.desc()).limit(1)).first()
    if latest is not None and latest.document_hash == digest:
        return latest.number, False
    version = 1 if latest is None else latest.version + 1
    number = statement_number(partner, counterparty, period, currency, version)
    statement_id = conn.execute(insert(settlement_statements).values(
        number=number, company_id=partner_id, counterparty_id=counterparty_id, period=period, currency=currency,
        version=version, previous_id=None if latest is None else latest.id, opening_minor=opening,
        closing_minor=closing, due_date=due_date, issued_at=dt.datetime.now(dt.UTC), issued_by=actor[:200],
        document_hash=digest, withheld_minor=withheld_minor,
        withheld_items=json.dumps([list(item) for item in withheld[:WITHHELD_ITEMS_MAX]]) if withheld else None,
    )).inserted_primary_key[0]
    if lines:
        conn.execute(insert(statement_lines), [{"statement_id": statement_id, **line._asdict()} for line in lines])
        rows = [{"statement_id": statement_id, "line_no": line.line_no, "entry_id": entry_id, "posting_line_no": n}
                for line, items in zip(lines, (groups[key] for key in sorted(groups)), strict=True)
                for entry_id, n, _ in items]
        for chunk in range(0, len(rows), 10_000):
            conn.execute(insert(statement_postings), rows[chunk:chunk + 10_000])
    return number, True


def withheld_items(conn: Connection, account_ids: list[int], counterparty: str, currency: str, end: dt.date
                   ) -> list[WithheldItem]:
    """The position postings up to ``end`` from usage lines under an open dispute, per line
    (lines posted one entry each: a line inside an aggregated entry cannot be told apart)."""
    p, ul, d, c = postings.c, usage_lines.c, usage_disputes.c, contracts.c
    alone = select(ul.entry_seq).where(ul.entry_seq.is_not(None)).group_by(ul.entry_seq).having(func.count() == 1)
    rows = conn.execute(
        select(ul.id, c.code, func.sum(p.amount_minor))
        .select_from(usage_lines).join(usage_disputes, d.line_id == ul.id).join(contracts, c.id == ul.contract_id)
        .join(postings, p.entry_id == ul.entry_seq)
        .where(d.status == "open", ul.entry_seq.in_(alone), p.account_id.in_(account_ids), p.currency == currency,
               with_counterparty(counterparty), p.effective_date <= end)
        .group_by(ul.id, c.code).order_by(ul.id))
    return [WithheldItem(line, contract, int(amount)) for line, contract, amount in rows if amount]


# --- reading ----------------------------------------------------------------------------------


def _query():
    s, partner, counterparty = settlement_statements.c, companies.alias("partner"), companies.alias("counterparty")
    previous, newer = settlement_statements.alias("previous"), settlement_statements.alias("newer")
    later = select(newer.c.id).where(newer.c.previous_id == s.id).exists()
    return (select(settlement_statements, partner.c.code.label("partner_code"),
                   counterparty.c.code.label("counterparty_code"), previous.c.number.label("previous_number"),
                   (~later).label("is_latest"))
            .join(partner, partner.c.id == s.company_id).join(counterparty, counterparty.c.id == s.counterparty_id)
            .outerjoin(previous, previous.c.id == s.previous_id))


def list_statements(db: Database, *, partner: str | None = None, period: str | None = None,
                    latest_only: bool = True, limit: int = 1_000) -> list[Statement]:
    query = _query().order_by(settlement_statements.c.period, settlement_statements.c.number).limit(limit)
    if partner is not None:
        query = query.where(query.selected_columns.partner_code == partner)
    if period is not None:
        query = query.where(settlement_statements.c.period == period)
    with db.read() as conn:
        found = [_statement(conn, row, with_lines=False) for row in conn.execute(query)]
    return [s for s in found if s.latest or not latest_only]


def get_statement(db: Database, number: str) -> Statement:
    with db.read() as conn:
        return statement_in(conn, number)


def statement_in(conn: Connection, number: str) -> Statement:
    row = conn.execute(_query().where(settlement_statements.c.number == number)).first()
    if row is None:
        raise LedgerError(Problem(E_NOT_FOUND, "statement", f"no statement {show(number)}"))
    return _statement(conn, row, with_lines=True)


def _statement(conn: Connection, row, *, with_lines: bool) -> Statement:
    s, pay = settlement_statements.c, statement_payments.c
    versions = select(s.id).where(s.company_id == row.company_id, s.counterparty_id == row.counterparty_id,
                                  s.period == row.period, s.currency == row.currency)
    payments = [Payment(*p) for p in conn.execute(
        select(pay.amount_minor, pay.paid_on, pay.reference, pay.entry_seq)
        .where(pay.statement_id.in_(versions)).order_by(pay.id))]
    paid = sum(p.amount_minor for p in payments)
    status = SETTLED if paid >= abs(row.closing_minor - row.withheld_minor) else PARTIALLY_SETTLED if paid else OPEN
    lines, withheld = [], []
    if with_lines:
        sl = statement_lines.c
        lines = [StatementLine(*line) for line in conn.execute(
            select(sl.line_no, sl.contract, sl.kind, sl.postings, sl.amount_minor, sl.service)
            .where(sl.statement_id == row.id).order_by(sl.line_no))]
        withheld = [WithheldItem(*item) for item in json.loads(row.withheld_items or "[]")]
    return Statement(row.number, row.partner_code, row.counterparty_code, row.period, row.currency, row.version,
                     row.previous_number, bool(row.is_latest), row.opening_minor, row.closing_minor, row.due_date,
                     row.issued_at, row.issued_by, row.document_hash, paid, status, lines, payments,
                     row.withheld_minor, withheld)


def statement_entries(db: Database, number: str, line_no: int) -> list[str]:
    """The external ids of the entries a statement line sums (its drill-down)."""
    sp, e = statement_postings.c, journal_entries.c
    with db.read() as conn:
        statement_id = conn.execute(select(settlement_statements.c.id)
                                    .where(settlement_statements.c.number == number)).scalar()
        if statement_id is None:
            raise LedgerError(Problem(E_NOT_FOUND, "statement", f"no statement {show(number)}"))
        return list(conn.execute(select(e.external_id).join(statement_postings, sp.entry_id == e.id)
                                 .where(sp.statement_id == statement_id, sp.line_no == line_no)
                                 .distinct().order_by(e.external_id)).scalars())


CSV_COLUMNS = ("line", "contract", "kind", "postings", "amount", "currency", "service", "section")


def csv_rows(statement: Statement) -> list[tuple]:
    """A statement's lines in the order of CSV_COLUMNS (the CLI and the API write the same),
    then its withheld items as lines of section ``withheld`` (no line number; their amounts
    are part of the lines above)."""
    rows = [(line.line_no, line.contract, line.kind, line.postings, format_amount(line.amount_minor, statement.currency),
             statement.currency, line.service, line.section) for line in statement.lines]
    rows += [("", item.contract, f"withheld {item.usage_line}", 1, format_amount(item.amount_minor, statement.currency),
              statement.currency, "", "withheld") for item in statement.withheld]
    return rows
