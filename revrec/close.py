"""The controller's period close, per company and month, and its reopening.

A close run:

1. cuts off at the period's last day: entries dated after it play no part;
2. recomputes every contract's schedule (revrec/schedule.py) through the period;
3. runs the readiness checks: ``usage`` (no rejected usage line left unresolved),
   ``billing`` (a billing run for the period), ``clearing`` (a clearing run for the period,
   when partners have agreements with the company), ``verify`` (the ledger verifies clean),
   ``ssp`` (no allocation weighed an obligation at its contract price for want of a
   standalone selling price) and ``contract_costs`` (every contract with capitalised costs
   has a period to amortise them over, revrec/costs.py). A failed check blocks the close unless the controller accepts
   it with a reason; the run records who accepted what and why. A blocked run posts nothing;
4. posts the recognition batch: per contract, one entry dated the period's last day that
   brings the revenue the ledger holds for the schedule's obligations to what the schedule
   recognises through the period (deferral release, unbilled accrual, and any catch-up of a
   change: a change touching a closed period lands here, in the first open one), against
   the contract liability its fees billed in advance hold, or the contract asset (unbilled)
   when revenue runs ahead of billing; and the amortisation of its capitalised contract
   costs (revrec/costs.py) from ``Assets:ContractCosts`` to
   ``Expenses:ContractCostAmortisation``, and the change of its refund liability by the
   controller's estimates of variable consideration (revrec/estimates.py), against
   ``Income:Adjustments``. Entries have stable ids
   ``revrec:<company>:<period>:<run>:<contract>``; a run that finds nothing to change posts
   nothing;
5. locks the period (ledger.periods), in the same transaction as the batch.

Running the close of a closed period again changes nothing. Reopening the latest closed
period needs a reason: it records the reopening (the database lets a closed period go only
then), posts the delta batch of what changed since the close, and is audited; the next
close run locks it again.

What the close leaves alone: usage revenue (recognised as the usage posts: variable
consideration allocated to its period), charges and credits of other events, credit notes,
and prepayments (a contract liability released by drawdowns, not by time).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterator

from sqlalchemy import Connection, and_, func, insert, select

from billing.schema import billing_runs, invoice_lines, invoices
from clearing.schema import clearing_runs
from config.limits import BATCH_ENTRIES_MAX
from contracts.events import status_changes, status_changes_of
from contracts.schema import contract_events, contracts
from contracts.service import Contract, contracts_billed_by, customer_parents, load_contract
from ledger import audit
from ledger.database import Database
from ledger.periods import lock_period, parse_period, reopen_period
from ledger.posting import JournalWriter, PostingReport, audit_post
from ledger.queries import company_id
from ledger.records import ACCEPTED as ENTRY_ACCEPTED
from ledger.records import E_INVALID, EntryDraft, LedgerError, PostingDraft, Problem, show
from ledger.schema import accounts, closed_periods, companies, journal_entries, postings
from ledger.verify import verify
from partners.schema import agreements
from revrec.costs import AMORTISATION, CONTRACT_COSTS, MISSING, amortised_through, cost_policy
from revrec.estimates import (
    ADJUSTMENTS,
    REFUND_LIABILITY,
    Estimate,
    estimates_in_force,
    expected_reduction,
    refund_liability,
)
from revrec.schedule import (
    CONTRACT_PRICE,
    MODIFICATION,
    ONE_OFF,
    SUBSCRIPTIONS,
    Charge,
    Schedule,
    contract_schedule,
)
from revrec.schema import revrec_closes
from revrec.ssp import SspTable
from usage.schema import usage_rejects

CHECKS = ("usage", "billing", "clearing", "verify", "ssp", "contract_costs")
PASSED, FAILED, ACCEPTED = "passed", "failed", "accepted"
CLOSED, BLOCKED, REOPENED = "closed", "blocked", "reopened"
SOURCE_TYPE = "revrec_close"
LIABILITY = "Liabilities:ContractLiabilities"
CONTRACT_ASSET = "Assets:Receivables:Unbilled"
REVENUE_ACCOUNTS = (SUBSCRIPTIONS, ONE_OFF)
CHARGE_EVENTS = ("activated", "amended", "terminated")
REASON_CHARS_MAX = 2000


@dataclasses.dataclass
class Check:
    name: str
    status: str
    detail: str
    accepted_by: str | None = None
    reason: str | None = None


@dataclasses.dataclass
class Recognition:
    """What one contract's entry of a batch posts."""

    contract: str
    currency: str
    revenue_minor: int  # recognised by this entry (credit to revenue, as a positive amount)
    released_minor: int  # taken from the contract liability
    accrued_minor: int  # added to the contract asset
    entry: str
    amortised_minor: int = 0  # of capitalised contract costs, written off included
    refund_minor: int = 0  # added to the refund liability (negative: released), out of revenue


@dataclasses.dataclass
class CloseReport:
    company: str
    period: str
    run_no: int
    outcome: str  # closed, blocked, reopened, already_closed
    checks: list[Check]
    batch: str | None = None
    recognitions: list[Recognition] = dataclasses.field(default_factory=list)
    contracts: int = 0

    @property
    def recognised(self) -> dict[str, int]:
        totals: dict[str, int] = defaultdict(int)
        for item in self.recognitions:
            totals[item.currency] += item.revenue_minor
        return dict(sorted(totals.items()))


@dataclasses.dataclass
class CloseRun:
    run_no: int
    outcome: str
    checks: list[Check]
    batch: str | None
    entries: int
    recognised: dict[str, int]
    reason: str | None
    acted_at: dt.datetime
    acted_by: str


@dataclasses.dataclass
class CloseStatus:
    company: str
    period: str
    status: str  # open or closed
    closed_at: dt.datetime | None
    closed_by: str | None
    runs: list[CloseRun]


# -- the close -------------------------------------------------------------------------------


def run_close(db: Database, company: str, period: str, *, ssp: SspTable, day_count: str, actor: str,
              accept: dict[str, str] | None = None, verify_report=None, cost_expedient: bool = True) -> CloseReport:
    """Run the close of ``company``'s ``period``. ``accept`` maps a check's name to the
    reason the controller accepts it failing. ``verify_report`` lets a caller that has just
    verified the ledger pass its report instead of verifying again. ``cost_expedient``:
    contract costs amortised over a year or less are expensed when incurred."""
    _, end = parse_period(period)
    accept = _acceptances(accept or {})
    with db.read() as conn:
        cid = company_id(conn, company)
        if is_closed(conn, cid, period):
            return CloseReport(company, period, _runs(conn, cid, period), "already_closed", [])
    if verify_report is None:
        verify_report = verify(db)  # before the write transaction: it reads the whole ledger
    # Schedules, checks, batch and lock in one transaction: what is checked is what is posted.
    with db.write() as conn:
        if is_closed(conn, cid, period):  # closed meanwhile
            return CloseReport(company, period, _runs(conn, cid, period), "already_closed", [])
        report = CloseReport(company, period, _runs(conn, cid, period) + 1, CLOSED, [])
        batch = _recognise(conn, report, cid, end, ssp, day_count, cost_expedient)
        checks = _readiness(conn, cid, company, period, batch, verify_report)
        for check in checks:
            if check.status == FAILED and check.name in accept:
                check.status, check.accepted_by, check.reason = ACCEPTED, actor[:200], accept[check.name]
        report.checks = checks
        if any(check.status == FAILED for check in checks):
            report.outcome, report.batch, report.recognitions = BLOCKED, None, []
            _record(conn, cid, report, actor, None)
            audit.record(conn, actor=actor, action="close.blocked", target=f"{company} {period}",
                         details={"failed": [c.name for c in checks if c.status == FAILED]})
            return report
        _post_batch(conn, batch.drafts, actor)
        lock_period(conn, company, period, actor=actor)
        _record(conn, cid, report, actor, None)
        audit.record(conn, actor=actor, action="close.run", target=f"{company} {period}", details={
            "run": report.run_no, "entries": len(report.recognitions), "recognised": report.recognised,
            "accepted": {c.name: c.reason for c in checks if c.status == ACCEPTED}})
    return report


def is_closed(conn: Connection, cid: int, period: str) -> bool:
    return conn.execute(select(closed_periods.c.period).where(
        closed_periods.c.company_id == cid, closed_periods.c.period == period)).first() is not None


def reopen_close(db: Database, company: str, period: str, *, reason: str, ssp: SspTable, day_count: str,
                 actor: str, cost_expedient: bool = True) -> CloseReport:
    """Reopen the company's latest closed period and post the delta batch of what changed
    since its close (nothing, when nothing did). The next close run locks it again."""
    reason = _reason(reason, "reason", "reopening a closed period needs a reason")
    _, end = parse_period(period)
    with db.write() as conn:
        cid = company_id(conn, company)
        reopen_period(conn, company, period, reason=reason, actor=actor)
        report = CloseReport(company, period, _runs(conn, cid, period) + 1, REOPENED, [])
        _post_batch(conn, _recognise(conn, report, cid, end, ssp, day_count, cost_expedient).drafts, actor)
        _record(conn, cid, report, actor, reason)
        audit.record(conn, actor=actor, action="close.reopen", target=f"{company} {period}", details={
            "reason": reason, "run": report.run_no, "entries": len(report.recognitions),
            "recognised": report.recognised})
    return report


def close_status(db: Database, company: str, period: str) -> CloseStatus:
    parse_period(period)
    with db.read() as conn:
        cid = company_id(conn, company)
        closed = conn.execute(select(closed_periods.c.closed_at, closed_periods.c.closed_by).where(
            closed_periods.c.company_id == cid, closed_periods.c.period == period)).first()
        c = revrec_closes.c
        runs = [CloseRun(row.run_no, row.outcome, [Check(**check) for check in json.loads(row.checks)], row.batch,
                         row.entries, json.loads(row.recognised), row.reason, row.acted_at, row.acted_by)
                for row in conn.execute(select(revrec_closes).where(c.company_id == cid, c.period == period)
                                        .order_by(c.run_no))]
    return CloseStatus(company, period, "closed" if closed else "open", closed.closed_at if closed else None,
                       closed.closed_by if closed else None, runs)


def _acceptances(accept: dict[str, str]) -> dict[str, str]:
    cleaned = {}
    for name, reason in accept.items():
        if name not in CHECKS:
            raise LedgerError(Problem(E_INVALID, "accept", f"no readiness check {show(name)}; checks: {', '.join(CHECKS)}"))
        cleaned[name] = _reason(reason, f"accept.{name}", "accepting a failed check needs a reason")
    return cleaned


def _reason(text: str | None, field: str, missing: str) -> str:
    """A controller's reason: required, kept as written (trimmed), bounded."""
    text = (text or "").strip()
    if not text:
        raise LedgerError(Problem(E_INVALID, field, missing))
    if len(text) > REASON_CHARS_MAX:
        raise LedgerError(Problem(E_INVALID, field, f"longer than {REASON_CHARS_MAX} characters"))
    return text


def _runs(conn: Connection, cid: int, period: str) -> int:
    c = revrec_closes.c
    return conn.execute(select(func.coalesce(func.max(c.run_no), 0)).where(c.company_id == cid, c.period == period)
                        ).scalar()


def _record(conn: Connection, cid: int, report: CloseReport, actor: str, reason: str | None) -> None:
    conn.execute(insert(revrec_closes).values(
        company_id=cid, period=report.period, run_no=report.run_no, outcome=report.outcome,
        checks=json.dumps([dataclasses.asdict(c) for c in report.checks], sort_keys=True),
        batch=report.batch if report.recognitions else None, entries=len(report.recognitions),
        recognised=json.dumps(report.recognised, sort_keys=True), reason=reason,
        acted_at=dt.datetime.now(dt.UTC), acted_by=actor[:200]))


# -- readiness -------------------------------------------------------------------------------


def _readiness(conn: Connection, cid: int, company: str, period: str, batch: Batch, verify_report
               ) -> list[Check]:
    return [_usage_check(conn), _billing_check(conn, cid, period, batch.contracts), _clearing_check(conn, company, period),
            _verify_check(verify_report), _ssp_check(batch.weighed), _contract_costs_check(batch.uncosted)]


def _usage_check(conn: Connection) -> Check:
    count = conn.execute(select(func.count()).select_from(usage_rejects).where(usage_rejects.c.status == "open")
                         ).scalar()
    if count:
        return Check("usage", FAILED, f"{count} rejected usage line{'s' if count != 1 else ''} not resolved "
                                      "(ecoledger usage rejects): correct and re-import, or accept")
    return Check("usage", PASSED, "every usage line imported is posted, a duplicate, or resolved")


def _billing_check(conn: Connection, cid: int, period: str, contracts: int) -> Check:
    runs = conn.execute(select(func.count()).select_from(billing_runs).where(
        billing_runs.c.company_id == cid, billing_runs.c.period == period)).scalar()
    if runs:
        return Check("billing", PASSED, f"{runs} billing run{'s' if runs != 1 else ''} for {period}")
    if not contracts:
        return Check("billing", PASSED, "no contracts to bill")
    return Check("billing", FAILED, f"no billing run for {period} (ecoledger billing run)")


def _clearing_check(conn: Connection, company: str, period: str) -> Check:
    partners = set(conn.execute(select(agreements.c.company_id).distinct().join(
        companies, companies.c.id == agreements.c.counterparty_id).where(companies.c.code == company)).scalars())
    if not partners:
        return Check("clearing", PASSED, "no partner agreements with this company")
    r = clearing_runs.c
    cleared = set(conn.execute(select(r.partner_id).distinct().where(r.period == period)).scalars())
    if None in cleared or partners <= cleared:
        return Check("clearing", PASSED, f"cleared for {period}")
    if not cleared:
        return Check("clearing", FAILED, f"no clearing run for {period} (ecoledger clearing run)")
    missing = conn.execute(select(companies.c.code).where(companies.c.id.in_(partners - cleared))
                           .order_by(companies.c.code)).scalars().all()
    return Check("clearing", FAILED, f"{period} is not cleared for {', '.join(missing)} (ecoledger clearing run)")


def _verify_check(report) -> Check:
    if report.ok:
        return Check("verify", PASSED, f"{report.entries} entries verified")
    count = sum(report.counts.values())
    return Check("verify", FAILED, f"{count} violation{'s' if count != 1 else ''}: "
                                   f"{', '.join(sorted(report.counts))} (ecoledger verify)")


def _ssp_check(weighed: list[str]) -> Check:
    if weighed:
        shown = ", ".join(weighed[:10]) + (f" and {len(weighed) - 10} more" if len(weighed) > 10 else "")
        return Check("ssp", FAILED, f"{len(weighed)} contract{'s' if len(weighed) != 1 else ''} allocated at contract "
                                    f"prices for want of a standalone selling price: {shown} (config/ssp.yaml)")
    return Check("ssp", PASSED, "every allocation used the standalone selling price table")


def _contract_costs_check(uncosted: list[str]) -> Check:
    if uncosted:
        shown = ", ".join(uncosted[:10]) + (f" and {len(uncosted) - 10} more" if len(uncosted) > 10 else "")
        return Check("contract_costs", FAILED, f"{len(uncosted)} open-ended contract{'s' if len(uncosted) != 1 else ''} "
                                               f"with capitalised costs and no amortisation period: {shown} (record "
                                               "contract_costs.amortisation_months; accepted, the costs are expensed)")
    return Check("contract_costs", PASSED, "every capitalised contract cost has its amortisation period")


# -- schedules and the ledger ----------------------------------------------------------------


def iter_schedules(conn: Connection, cid: int, end: dt.date, ssp: SspTable, day_count: str
                   ) -> Iterator[tuple[Contract, Schedule]]:
    """Every contract the company bills that started by ``end``, with its schedule, one at
    a time (the contracts, their status events and the customers read in a few queries;
    each schedule computed when asked for, so callers hold only what they keep of it)."""
    charges = _charges(conn, cid, end)
    found_contracts = contracts_billed_by(conn, cid, end)
    changes = status_changes_of(conn, {c.id for c in found_contracts})
    parents = customer_parents(conn)
    for contract in found_contracts:
        segment = ssp.segment(_chain(parents, contract.customer))
        yield contract, contract_schedule(contract, changes.get(contract.id, []), charges.get(contract.code, []), ssp,
                                          segment, through=end, day_count=day_count)


def _chain(parents: dict[str, str | None], code: str) -> tuple[str, ...]:
    """A customer and the organisations above it, nearest first."""
    chain: list[str] = []
    while code is not None and code not in chain:
        chain.append(code)
        code = parents.get(code)
    return tuple(chain)


def schedule_of(db: Database, code: str, *, through: dt.date, ssp: SspTable, day_count: str) -> Schedule:
    """One contract's schedule, as the close would compute it through ``through``."""
    with db.read() as conn:
        contract = load_contract(conn, code)
        cid = conn.execute(select(contracts.c.billing_company_id).where(contracts.c.code == code)).scalar()
        segment = ssp.segment(_chain(customer_parents(conn), contract.customer))
        return contract_schedule(contract, status_changes(conn, contract.id),
                                 _charges(conn, cid, through, contract.id).get(code, []), ssp, segment, through=through,
                                 day_count=day_count)


def _charges(conn: Connection, cid: int, end: dt.date, contract_id: int | None = None) -> dict[str, list[Charge]]:
    """The fixed charges contract events posted up to ``end``, per contract (or of one):
    one-off fees of activations (revenue), and fee differences of amendments and
    terminations (deferred)."""
    p, e, a, ev = postings.c, journal_entries.c, accounts.c, contract_events.c
    query = (select(contracts.c.code, ev.type, p.effective_date, p.dimensions, p.amount_minor)
             .select_from(postings).join(journal_entries, e.id == p.entry_id).join(accounts, a.id == p.account_id)
             .join(contract_events, and_(ev.id == e.source_id, e.source_type == "contract_event"))
             .join(contracts, contracts.c.id == ev.contract_id)
             .where(a.company_id == cid, p.effective_date <= end, ev.type.in_(CHARGE_EVENTS),
                    a.name.in_((ONE_OFF, LIABILITY)))
             .order_by(e.id, p.line_no))
    if contract_id is not None:
        query = query.where(ev.contract_id == contract_id)
    found: dict[str, list[Charge]] = defaultdict(list)
    for code, kind, day, dimensions, amount in conn.execute(query):
        service = (json.loads(dimensions) if dimensions else {}).get("service") or ""
        found[code].append(Charge(kind, day, service, -amount))  # charges credit revenue or the liability
    return found


def _billed(conn: Connection, cid: int, end: dt.date) -> dict[str, list]:
    """Per contract: fees invoiced in advance (deferred) and in arrears (revenue per
    service), on invoices issued up to ``end``."""
    l, i = invoice_lines.c, invoices.c
    query = (select(contracts.c.code, l.component, l.service, l.period_start, l.amount_minor)
             .select_from(invoice_lines).join(invoices, i.id == l.invoice_id)
             .join(contracts, contracts.c.id == l.contract_id)
             .where(i.company_id == cid, i.document_type == "invoice", i.issue_date <= end, l.kind == "fee"))
    found: dict[str, dict] = {}
    for code, component, service, period_start, amount in conn.execute(query):
        found.setdefault(code, []).append((component, service, period_start, amount))
    return found


def _costs_incurred(conn: Connection, cid: int, end: dt.date) -> dict[str, list[tuple[dt.date, int]]]:
    """Per contract: the costs of obtaining it that were capitalised up to ``end``."""
    p, e, a = postings.c, journal_entries.c, accounts.c
    query = (select(p.dimensions, p.effective_date, p.amount_minor).select_from(postings)
             .join(journal_entries, e.id == p.entry_id).join(accounts, a.id == p.account_id)
             .where(a.company_id == cid, a.name == CONTRACT_COSTS, e.source_type != SOURCE_TYPE, p.effective_date <= end))
    found: dict[str, list[tuple[dt.date, int]]] = defaultdict(list)
    for dimensions, day, amount in conn.execute(query):
        found[(json.loads(dimensions) if dimensions else {}).get("contract", "")].append((day, amount))
    return found


def _variable_positions(conn: Connection, cid: int, end: dt.date) -> dict[str, tuple[dict[str, int], int]]:
    """Per contract, up to ``end``: its revenue per service (usage, subscriptions and one-off
    fees, whoever posted them) and what it was credited (credits, SLA credits and credit
    notes: Income:Adjustments, the close's own left out)."""
    p, e, a = postings.c, journal_entries.c, accounts.c
    query = (select(p.dimensions, a.name, e.source_type, p.amount_minor).select_from(postings)
             .join(journal_entries, e.id == p.entry_id).join(accounts, a.id == p.account_id)
             .where(a.company_id == cid, p.effective_date <= end,
                    a.name.in_(("Income:Usage", SUBSCRIPTIONS, ONE_OFF, ADJUSTMENTS))))
    revenue: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    credited: dict[str, int] = defaultdict(int)
    for dimensions, account, source_type, amount in conn.execute(query):
        dims = json.loads(dimensions) if dimensions else {}
        contract = dims.get("contract")
        if contract is None:
            continue
        if account != ADJUSTMENTS:
            revenue[contract][dims.get("service") or ""] -= amount
        elif source_type != SOURCE_TYPE:
            credited[contract] += amount
    return {code: (dict(revenue.get(code, {})), credited.get(code, 0)) for code in set(revenue) | set(credited)}


def _closed_positions(conn: Connection, cid: int) -> dict[str, dict]:
    """What earlier close batches posted, per contract: revenue per (service, account), the
    contract liability released, the contract asset accrued and the contract costs
    amortised."""
    p, e, a = postings.c, journal_entries.c, accounts.c
    query = (select(p.dimensions, a.name, p.amount_minor).select_from(postings)
             .join(journal_entries, e.id == p.entry_id).join(accounts, a.id == p.account_id)
             .where(a.company_id == cid, e.source_type == SOURCE_TYPE))
    found: dict[str, dict] = defaultdict(_no_position)
    for dimensions, account, amount in conn.execute(query):
        dims = json.loads(dimensions) if dimensions else {}
        position = found[dims.get("contract", "")]
        if account == LIABILITY:
            position["released"] += amount
        elif account == CONTRACT_ASSET:
            position["accrued"] += amount
        elif account == CONTRACT_COSTS:
            position["amortised"] -= amount
        elif account == REFUND_LIABILITY:
            position["refund"] -= amount
        elif account in (AMORTISATION, ADJUSTMENTS):
            continue
        else:
            position["revenue"][(dims.get("service", ""), account)] -= amount
    return found


def _no_position() -> dict:
    return {"revenue": defaultdict(int), "released": 0, "accrued": 0, "amortised": 0, "refund": 0}


@dataclasses.dataclass
class Batch:
    """A close's recognition entries, computed before anything is posted, and what the
    checks need to know of the schedules behind them."""

    drafts: list[EntryDraft]
    contracts: int  # schedules computed
    weighed: list[str]  # contracts allocated at contract prices for want of an SSP
    uncosted: list[str] = dataclasses.field(default_factory=list)  # capitalised costs, no period


def _recognise(conn: Connection, report: CloseReport, cid: int, end: dt.date, ssp: SspTable, day_count: str,
               cost_expedient: bool) -> Batch:
    """One pass over the contracts: each schedule is computed, turned into its entry (if
    anything changes) and dropped, so memory holds entries, not schedules."""
    report.batch = f"revrec:{report.company}:{report.period}:{report.run_no}"
    billed = _billed(conn, cid, end)
    closed = _closed_positions(conn, cid)
    incurred = _costs_incurred(conn, cid, end)
    estimates = estimates_in_force(conn, cid, report.period)
    variable = _variable_positions(conn, cid, end) if estimates or any(p["refund"] for p in closed.values()) else {}
    batch = Batch([], 0, [])
    for contract, schedule in iter_schedules(conn, cid, end, ssp, day_count):
        batch.contracts += 1
        if _weighed_at_contract_price(schedule):
            batch.weighed.append(contract.code)
        costs = incurred.get(contract.code, [])
        policy = cost_policy(contract, expedient=cost_expedient)
        if costs and policy.basis == MISSING:
            batch.uncosted.append(contract.code)
        ended = contract.status_since if contract.status == "terminated" and contract.status_since <= end else None
        amortised = amortised_through(costs, policy, end, ended)
        recognition = _recognition(contract, schedule, report, billed.get(contract.code, []), closed.get(contract.code),
                                   amortised, (estimates.get(contract.code, []), *variable.get(contract.code, ({}, 0))))
        if recognition is not None:
            batch.drafts.append(recognition[0])
            report.recognitions.append(recognition[1])
    report.contracts = batch.contracts
    return batch


def _weighed_at_contract_price(schedule: Schedule) -> bool:
    """Whether a window with several obligations weighed one at its contract price."""
    return any(len([o for o in window.obligations if o.ssp_method != MODIFICATION]) > 1
               and any(o.ssp_method == CONTRACT_PRICE for o in window.obligations) for window in schedule.windows)


def _post_batch(conn: Connection, drafts: list[EntryDraft], actor: str) -> None:
    writer = JournalWriter(conn)
    for first in range(0, len(drafts), BATCH_ENTRIES_MAX):
        _post(writer, drafts[first:first + BATCH_ENTRIES_MAX])
    if writer.first_seq is not None:
        audit_post(conn, actor, writer.last_seq - writer.first_seq + 1, writer.first_seq, writer.last_seq)


def _post(writer: JournalWriter, drafts: list[EntryDraft]) -> None:
    """Post the batch's entries so far (all or nothing with the close's transaction)."""
    if not drafts:
        return
    report = PostingReport(all_or_nothing=True, results=[])
    writer.post_batch(drafts, report)
    for draft, outcome in zip(drafts, report.results, strict=True):
        if outcome.status != ENTRY_ACCEPTED:
            contract = dict(draft.metadata)["contract"]
            raise LedgerError(*(p.under(f"the close of {contract}") for p in outcome.problems or (
                Problem(E_INVALID, "entry", f"entry {draft.external_id} exists already"),)))


def _recognition(contract: Contract, schedule: Schedule, report: CloseReport, billed: list, closed: dict | None,
                 amortised: int, variable: tuple[list[Estimate], dict[str, int], int]
                 ) -> tuple[EntryDraft, Recognition] | None:
    target = schedule.recognised(report.period)
    timing = {c["code"]: c.get("timing") for v in contract.versions for c in v.components}
    direct: dict[tuple[str, str], int] = defaultdict(int)  # revenue billing and events posted
    deferred = 0  # what fees billed in advance and fee differences hold in the contract liability
    for component, service, _, amount in billed:
        if timing.get(component) == "in_arrears":
            direct[(service, SUBSCRIPTIONS)] += amount
        else:
            deferred += amount
    for window in schedule.windows:
        for obligation in window.obligations:
            if obligation.ssp_method == MODIFICATION:
                deferred += obligation.stated_minor
            elif obligation.account == ONE_OFF:
                direct[(obligation.service, ONE_OFF)] += obligation.stated_minor
    earlier = closed or _no_position()
    changes = {}
    for key in sorted(set(target) | set(direct) | set(earlier["revenue"])):
        change = target.get(key, 0) - direct.get(key, 0) - earlier["revenue"].get(key, 0)
        if change:
            changes[key] = change
    total = sum(earlier["revenue"].values()) + sum(changes.values())  # all the close has recognised, after this
    accrued = max(total - deferred, 0)
    released = total - accrued
    release, accrue = released - earlier["released"], accrued - earlier["accrued"]
    amortise = amortised - earlier["amortised"]
    refund = _refund_change(variable, changes, earlier["refund"])
    if not changes and not release and not accrue and not amortise and not refund:
        return None
    company = report.company
    lines = [PostingDraft(company, account, -change, contract.currency,
                          (("contract", contract.code), ("service", service)))
             for (service, account), change in changes.items()]
    if release:
        lines.append(PostingDraft(company, LIABILITY, release, contract.currency, (("contract", contract.code),)))
    if accrue:
        lines.append(PostingDraft(company, CONTRACT_ASSET, accrue, contract.currency,
                                  (("contract", contract.code), ("customer", contract.customer))))
    if amortise:
        lines.append(PostingDraft(company, AMORTISATION, amortise, contract.currency, (("contract", contract.code),)))
        lines.append(PostingDraft(company, CONTRACT_COSTS, -amortise, contract.currency, (("contract", contract.code),)))
    if refund:
        lines.append(PostingDraft(company, ADJUSTMENTS, refund, contract.currency, (("contract", contract.code),)))
        lines.append(PostingDraft(company, REFUND_LIABILITY, -refund, contract.currency, (("contract", contract.code),)))
    entry = f"{report.batch}:{contract.code}"
    draft = EntryDraft(entry, report_day(report), tuple(lines),
                       f"Revenue recognition of {contract.code} for {report.period} (close run {report.run_no})"[:500],
                       SOURCE_TYPE, report.batch, (("contract", contract.code), ("period", report.period),
                                                   ("run", str(report.run_no))))
    return draft, Recognition(contract.code, contract.currency, sum(changes.values()), release, accrue, entry, amortise,
                              refund)


def _refund_change(variable: tuple[list[Estimate], dict[str, int], int], changes: dict[tuple[str, str], int],
                   earlier: int) -> int:
    """How much the contract's refund liability moves: to what its estimates expect of the
    revenue to date (this entry's included) less what was credited already."""
    estimates, revenue, credited = variable
    if not estimates and not earlier:
        return 0
    revenue = dict(revenue)
    for (service, _), change in changes.items():
        revenue[service] = revenue.get(service, 0) + change
    return refund_liability(expected_reduction(estimates, revenue), credited) - earlier


def report_day(report: CloseReport) -> dt.date:
    return parse_period(report.period)[1]
