"""The demo ecosystem: one month of a field-service operator with two legal entities, a
vendor, a reseller and three customers, posted through the same paths as real input.

Every later capability extends this story (billing, clearing, statements, the close), so
that ``ecoledger demo`` always shows the whole of ecoledger working end to end.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from billing.credit_notes import issue_credit_note
from billing.disputes import open_dispute, resolve_dispute
from billing.service import get_invoice, run_billing
from clearing.consolidation import consolidate
from clearing.payments import record_payment
from clearing.run import run_clearing
from clearing.statements import get_statement, issue_statements
from contracts.ecosystem import SECTIONS, load_ecosystem
from contracts.events import import_events
from contracts.rules import load_rules
from ecoledger.documents import parse_document
from ledger import periods, posting, reversal
from ledger.database import Database
from ledger.interchange import read_json_lines
from ledger.money import format_amount
from revrec.close import run_close
from revrec.reports import rollforward
from revrec.ssp import load_ssp_table
from usage.lines import RawLine
from usage.queries import list_lines
from usage.schema import usage_rejects
from usage.service import Options, import_usage

MONTH_START = dt.date(2026, 10, 1)
MONTH_END = dt.date(2026, 10, 31)
PERIOD = "2026-10"

ECOSYSTEM_FILE = Path(__file__).with_name("demo_ecosystem.yaml")

# Contract events of October, in the order they happened.
EVENTS = [
    {"id": "SD-C-17-activated", "type": "activated", "contract": "SD-C-17", "date": "2026-10-01"},
    {"id": "SD-C-23-activated", "type": "activated", "contract": "SD-C-23", "date": "2026-10-01"},
    {"id": "SD-C-42-activated", "type": "activated", "contract": "SD-C-42", "date": "2026-10-01"},
    {"id": "SD-C-23-upgrade", "type": "amended", "contract": "SD-C-23", "date": "2026-10-16", "version": 2},
    {"id": "SD-C-42-sla-2026-10-21", "type": "sla_breach", "contract": "SD-C-42", "date": "2026-10-21",
     "amount": "50.00", "component": "FIELD", "reason": "technician arrived 6 hours late"},
    {"id": "SD-C-17-part-2026-10-22", "type": "one_off_charge", "contract": "SD-C-17", "date": "2026-10-22",
     "amount": "80.00", "component": "FIELD", "reason": "replacement card reader"},
]

# The companies the ecosystem file creates, in the order the trial balances are shown.
COMPANIES = [
    # code, name, roles
    ("OPFI", "Northwind Services Oy (operator, billing entity)", ("operator",)),
    ("OPEE", "Northwind Services OÜ (operator, service desk)", ("operator",)),
    ("FIXR", "FieldFix Oy (vendor: field technicians)", ("vendor",)),
    ("CHNL", "ChannelOne AB (reseller)", ("reseller",)),
]
CUSTOMERS = {"C-17": "Contoso Retail", "C-23": "Fabrikam Clinics", "C-42": "Tailspin Logistics"}
COORDINATION_COST_EUR = Decimal("1200.00")
SERVICE_DESK_COST_EUR = Decimal("5000.00")


def _eur(amount: Decimal) -> str:
    return str(amount.quantize(Decimal("0.01")))


def _line(company: str, account: str, amount: Decimal, **dimensions: str) -> dict[str, Any]:
    line: dict[str, Any] = {"company": company, "account": account, "amount": _eur(amount), "currency": "EUR"}
    if dimensions:
        line["dimensions"] = dimensions
    return line


def _accept_open_rejects(db: Database) -> dict[str, str]:
    """The demo's usage file has lines rejected on purpose (step 7): the controller accepts
    them with a reason rather than leave the close blocked."""
    with db.read() as conn:
        open_rejects = conn.execute(select(func.count()).select_from(usage_rejects)
                                    .where(usage_rejects.c.status == "open")).scalar()
    return {"usage": "rejected demo lines are test data, explained in step 7"} if open_rejects else {}


def _entry(entry_id: str, day: dt.date, description: str, source: str, *lines: dict) -> dict[str, Any]:
    return {
        "id": entry_id,
        "date": day.isoformat(),
        "description": description,
        "source": {"type": source, "id": entry_id},
        "postings": list(lines),
    }


def _hours(customer: str, day: dt.date) -> Decimal:
    """Deterministic technician hours per customer and working day (0 to 4.5 hours)."""
    seed = (sum(map(ord, customer)) * 31 + day.toordinal() * 17) % 10
    return Decimal(seed) / 2


CONTRACT_OF = {"C-17": "SD-C-17", "C-23": "SD-C-23", "C-42": "SD-C-42"}
LEVELS = ("technician", "technician", "specialist", "apprentice")


def month_of_usage() -> list[dict[str, Any]]:
    """October's field-service hours as the technicians' app reports them: one usage line
    per visit, rated by ecoledger from the FS-HOURLY price plan (level, shift, weekend)."""
    lines = []
    day = MONTH_START
    while day <= MONTH_END:
        if day.weekday() < 5:
            for customer, contract in CONTRACT_OF.items():
                hours = _hours(customer, day)
                if not hours:
                    continue
                late_shift = day.day % 7 == 3
                lines.append({"id": f"visit-{customer}-{day}", "contract": contract, "service": "field-service",
                              "timestamp": f"{day}T{'21' if late_shift else '09'}:00:00+03:00", "quantity": str(hours),
                              "unit": "hour", "attributes": {"employee_level": LEVELS[day.day % 4],
                                                             "shift": "night" if late_shift else "day"}})
        day += dt.timedelta(days=1)
    return lines


def month_of_entries() -> list[dict[str, Any]]:
    """October 2026's entries that come from outside ecoledger's own runs, in the
    interchange format: the payroll of the service desk (OPEE) and of field coordination (OPFI). Subscriptions
    and usage are invoiced by the billing run (step 8), the service desk's transfer price is
    charged by the clearing run (step 9), and revenue is recognised by the close (step 10)."""
    return [
        _entry(
            "payroll-OPEE-2026-10", MONTH_END, "Service desk staff costs October", "payroll",
            _line("OPEE", "Expenses:CostOfServices", SERVICE_DESK_COST_EUR),
            _line("OPEE", "Assets:Bank", -SERVICE_DESK_COST_EUR),
        ),
        _entry(
            "payroll-OPFI-2026-10", MONTH_END, "Field coordination staff costs October", "payroll",
            _line("OPFI", "Expenses:CostOfServices", COORDINATION_COST_EUR),
            _line("OPFI", "Assets:Bank", -COORDINATION_COST_EUR),
        ),
    ]


MISTAKE = _entry(
    "usage-C-23-2026-10-14-dup", dt.date(2026, 10, 14), "Field service 2.0 h (rated twice by mistake)", "usage",
    _line("OPFI", "Assets:Receivables:Unbilled", Decimal("190.00"), customer="C-23"),
    _line("OPFI", "Income:Usage", Decimal("-190.00"), customer="C-23"),
)

UNBALANCED = _entry(
    "manual-typo-1", dt.date(2026, 10, 31), "A manual entry with a typo", "manual",
    _line("OPFI", "Expenses:CostOfServices", Decimal("100.00")),
    _line("OPFI", "Assets:Bank", Decimal("-10.00")),
)


def _usage_lines(records: list[dict[str, Any]]) -> list[RawLine]:
    return [RawLine(str(n), "", record) for n, record in enumerate(records, start=1)]


def _jsonl(entries: list[dict[str, Any]]) -> io.BytesIO:
    return io.BytesIO("".join(json.dumps(e) + "\n" for e in entries).encode())


def run(db: Database, say: Callable[[str], None], actor: str = "demo") -> None:
    """Build the demo ecosystem in an empty database, narrating each step through ``say``."""
    say(f"1. Loading the ecosystem file ({ECOSYSTEM_FILE.name}): an operator with two legal entities,")
    say("   a vendor and a reseller with their agreements, a price plan, customers and contracts, in one step")
    document = parse_document(ECOSYSTEM_FILE.read_bytes(), str(ECOSYSTEM_FILE))
    loaded = load_ecosystem(db, document, actor=actor)
    for section in SECTIONS:
        say(f"   {section}: {getattr(loaded, section).created} created")
    say(f"   partner API keys issued for {', '.join(k['company'] for k in loaded.api_keys)} (ecoledger api-key list)")
    again = load_ecosystem(db, document, actor=actor)
    say(f"   the same file again: {'changes nothing' if not again.changed else 'CHANGED SOMETHING'}")

    entries = month_of_entries()
    say(f"\n2. Posting October 2026 from outside systems: {len(entries)} payroll entries (the service")
    say("   desk's staff at OPEE, field coordination at OPFI)")
    report = posting.post_entries(db, read_json_lines(_jsonl(entries)), actor=actor)
    say(f"   {report.accepted} accepted, {report.duplicates} duplicate, {report.rejected} rejected")

    say("\n3. The same file again: idempotent, nothing is posted twice")
    report = posting.post_entries(db, read_json_lines(_jsonl(entries)), actor=actor)
    say(f"   {report.accepted} accepted, {report.duplicates} duplicate, {report.rejected} rejected")

    say("\n4. An unbalanced manual entry is refused, naming the field; nothing is written")
    report = posting.post_entries(db, read_json_lines(_jsonl([UNBALANCED])), actor=actor)
    for outcome in report.rejections:
        for problem in outcome.problems:
            say(f"   line {outcome.ref} ({outcome.external_id}): {problem} [{problem.code}]")

    say("\n5. A usage line rated twice is corrected by a reversal, never by an edit")
    posting.post_entries(db, read_json_lines(_jsonl([MISTAKE])), actor=actor)
    undone = reversal.reverse_entry(db, MISTAKE["id"], dt.date(2026, 10, 15), actor=actor)
    say(f"   {undone.original_id} reversed by {undone.reversal_id} on {undone.effective_date}")

    say("\n6. Contract events through the posting rules (config/posting_rules.yaml): activations,")
    say("   an upgrade prorated for the rest of the month, an SLA breach shared with the vendor, a charge")
    events = import_events(db, enumerate(EVENTS, start=1), rules=load_rules(), actor=actor)
    say(f"   {events.accepted} events accepted, {events.entries_posted} entries posted, {events.rejected} rejected")
    for outcome in events.outcomes:
        for problem in outcome.problems:
            say(f"   {outcome.external_id}: {problem} [{problem.code}]")

    usage_file = month_of_usage()
    say(f"\n7. Usage: {len(usage_file)} technician visits imported as usage lines (ecoledger import usage),")
    say("   rated from price plan FS-HOURLY (employee level, night shift, weekend) and posted with the")
    say("   vendor's 60% share; one line has a shift the plan does not know and is kept as a reject")
    options = Options(load_rules(), actor)
    bad = {**usage_file[0], "id": "visit-C-17-typo", "attributes": {"employee_level": "technician", "shift": "evening"}}
    imported = import_usage(db, _usage_lines([*usage_file, bad]), options=options, source="october-visits.jsonl",
                            file_format="jsonl")
    say(f"   {imported.lines_read} lines: {imported.posted} posted, {imported.rejected} rejected; "
        f"{imported.entries_posted} entries, EUR {format_amount(imported.amounts.get('EUR', 0), 'EUR')} rated")
    for outcome in imported.outcomes:
        for problem in outcome.problems:
            say(f"   {outcome.external_id}: {problem} [{problem.code}] (ecoledger usage rejects)")
    again = import_usage(db, _usage_lines(usage_file), options=options, source="october-visits.jsonl",
                         file_format="jsonl")
    say(f"   the same file again: {again.duplicates} duplicates, {again.posted} posted")

    disputed = usage_file[1]["id"]
    dispute = open_dispute(db, disputed, "the technician arrived two hours late", actor=actor)
    say(f"   {dispute.contract}'s customer disputes visit {disputed} (EUR "
        f"{format_amount(dispute.amount_minor, 'EUR')}): billing holds it back (ecoledger usage dispute)")

    say(f"\n8. Billing run for {PERIOD}: service-desk fees (in advance, deferred; C-42's with the reseller's")
    say("   commission), the month's usage (from unbilled to receivables), the contract events' charges and the")
    say("   SLA credit applied, per customer, numbered without gaps (ecoledger billing run; ecoledger invoice show)")
    billed = run_billing(db, "OPFI", PERIOD, rules=load_rules(), actor=actor)
    for number in billed.invoices:
        invoice = get_invoice(db, number)
        by_kind = {kind: sum(line.amount_minor for line in invoice.lines if line.kind == kind)
                   for kind in ("fee", "event", "credit")}
        say(f"   {number} to {invoice.customer_name}: EUR {format_amount(invoice.total_minor, 'EUR')} (fees "
            f"{format_amount(by_kind['fee'], 'EUR')}, events {format_amount(by_kind['event'], 'EUR')}, credits "
            f"{format_amount(by_kind['credit'], 'EUR')}), {sum(line.usage_lines for line in invoice.lines)} usage "
            f"lines, due {invoice.due_date}")
    again = run_billing(db, "OPFI", PERIOD, rules=load_rules(), actor=actor)
    say(f"   the same run again: {len(again.invoices)} invoices (nothing new to invoice)")
    resolved = resolve_dispute(db, disputed, "credit", rules=load_rules(), actor=actor, day=dt.date(2026, 11, 2),
                               resolution="visit kept, its price credited")
    say(f"   the dispute is settled: the visit is invoiced next time and credited on the same invoice "
        f"(event {resolved.event_id}; ecoledger usage resolve --outcome credit)")
    first = get_invoice(db, billed.invoices[0])
    note = issue_credit_note(db, first.number, amount="20.00", reason="goodwill for a rescheduled visit",
                             rules=load_rules(), actor=actor, day=dt.date(2026, 11, 2))
    say(f"   credit note {note.number} takes EUR {format_amount(-note.total_minor, 'EUR')} off {first.number} "
        f"(ecoledger invoice credit); invoices keep their numbers, credit notes have their own")

    cleared = run_clearing(db, PERIOD, rules=load_rules(), actor=actor)
    say(f"\n9. Clearing run for {PERIOD} (ecoledger clearing run): what only the whole month tells, posted with")
    say("   mirror entries: the service desk's transfer price (OPEE's costs plus 8%, charged to OPFI); FIXR's 60% share")
    say("   is above its EUR 2,000.00 monthly guarantee, and CHNL's commission tiers run over the quarter")
    for item in cleared.items:
        say(f"   {item.partner} {item.kind.replace('_', ' ')}: EUR {format_amount(item.amount_minor, item.currency)} "
            f"on {format_amount(item.basis_minor, item.currency)} ({item.entry})")
    again_cleared = run_clearing(db, PERIOD, rules=load_rules(), actor=actor)
    say(f"   the same run again: {len(again_cleared.items)} items (nothing new)")

    say(f"\n10. The controller's close of {PERIOD} for OPFI (ecoledger close run): readiness checks, the IFRS 15")
    say("   recognition batch and the lock, in one transaction; the other companies' books are locked too")
    closed = run_close(db, "OPFI", PERIOD, ssp=load_ssp_table(), day_count="actual_days", actor=actor,
                       accept=_accept_open_rejects(db))
    for check in closed.checks:
        accepted = f" (accepted by {check.accepted_by}: {check.reason})" if check.accepted_by else ""
        say(f"   {check.name}: {check.status}, {check.detail}{accepted}")
    for item in closed.recognitions:
        say(f"   {item.contract}: revenue EUR {format_amount(item.revenue_minor, item.currency)} recognised, "
            f"{format_amount(item.released_minor, item.currency)} released from the contract liability, "
            f"{format_amount(item.accrued_minor, item.currency)} accrued as a contract asset"
            + (f", contract costs amortised {format_amount(item.amortised_minor, item.currency)}"
               if item.amortised_minor else ""))
    say(f"   batch {closed.batch}: {len(closed.recognitions)} entries (ecoledger revrec schedule --contract SD-C-17 "
        "shows the allocation: the set-up fee's share by standalone selling price)")
    rolled = rollforward(db, "OPFI", PERIOD, ssp=load_ssp_table(), day_count="actual_days")
    say(f"   the contract balances roll forward to EUR {format_amount(rolled.ledger_minor.get('EUR', 0), 'EUR')} in "
        f"the ledger, difference {format_amount(rolled.difference_minor.get('EUR', 0), 'EUR')} (ecoledger report "
        "rollforward; also waterfall, disaggregation, rpo, contract_costs)")
    for code, _, _ in COMPANIES:
        if code != "OPFI":
            periods.close_period(db, code, PERIOD, actor=actor)
    late = _entry(
        "usage-late-1", dt.date(2026, 10, 30), "Late usage line", "usage",
        _line("OPFI", "Assets:Receivables:Unbilled", Decimal("95.00"), customer="C-17"),
        _line("OPFI", "Income:Usage", Decimal("-95.00"), customer="C-17"),
    )
    report = posting.post_entries(db, read_json_lines(_jsonl([late])), actor=actor)
    for outcome in report.rejections:
        for problem in outcome.problems:
            say(f"   {outcome.external_id}: {problem} [{problem.code}]")
    late_visit = {**usage_file[-1], "id": "visit-C-42-late", "timestamp": "2026-10-30T15:00:00+02:00"}
    imported = import_usage(db, _usage_lines([late_visit]), options=options, source="late-visit.jsonl",
                            file_format="jsonl")
    [line] = [r for r in list_lines(db, import_id=imported.import_id)]
    say(f"   a usage line of {line.usage_date} arriving now is posted on {line.posted_date}, marked late "
        "(usage_late_policy first_open_period)")

    say(f"\n11. Settlement statements for {PERIOD}, from each partner's own books (ecoledger statement issue|show):")
    say("   opening position, the month's shares and commissions per contract and rule, closing and amount due")
    issued = issue_statements(db, PERIOD, actor=actor)
    for number in issued.issued:
        statement = get_statement(db, number)
        lines = ", ".join(f"{line.contract or '-'} {(line.service + ' ') if line.service else ''}{line.kind} "
                          f"{format_amount(line.amount_minor, statement.currency)}" for line in statement.lines)
        direction = ("paid to" if statement.closing_minor > 0 else "owed by") + f" {statement.partner}"
        say(f"   {number}: opening {format_amount(statement.opening_minor, statement.currency)}; {lines}; closing "
            f"{statement.currency} {format_amount(statement.closing_minor, statement.currency)} {direction} by "
            f"{statement.due_date}")
    again = issue_statements(db, PERIOD, actor=actor)
    say(f"   issued again: {len(again.issued)} new, {len(again.unchanged)} unchanged")
    vendor = next(number for number in issued.issued if number.startswith("ST-FIXR-"))
    paid = record_payment(db, vendor, format_amount(get_statement(db, vendor).settle_minor, "EUR"),
                          day=dt.date(2026, 11, 20), actor=actor, reference="SEPA payout 2026-11")
    say(f"   the payout to FIXR is recorded (ecoledger payment record): {vendor} is {paid.status}")
    group = consolidate(db, as_of=MONTH_END)
    eliminated = sum(abs(item.amount_minor) for item in group.eliminations) // 2
    say(f"   the group ({', '.join(group.group)}) consolidated (ecoledger consolidate): EUR "
        f"{format_amount(eliminated, 'EUR')} of intercompany positions and transfer prices eliminated, "
        f"{len(group.differences)} differences")
