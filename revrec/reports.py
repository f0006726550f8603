"""The controller's revenue reports for a company and month (IFRS 15.113-122), from the
ledger and the contracts' schedules:

- **waterfall**: revenue per month from the schedules, by the billing period (cohort) the
  revenue was allocated in: months up to the report's month as recognised, later months
  as scheduled;
- **rollforward**: each contract's balance (contract liability positive, contract asset
  negative) from the month's opening to its closing: billings, revenue recognised (of
  which from the opening contract liability, of which catch-ups of other months),
  prepaid credit drawn down; it reconciles to the ledger's balances to the cent and says
  so, or shows the difference;
- **disaggregation**: the month's revenue by service, partner (the component's vendor),
  region (the customer's, or its organisation's) and timing (point in time, over time),
  adding up to the revenue accounts' movements;
- **rpo**: the transaction price allocated to obligations not yet satisfied at the month's
  end, in time bands;
- **contract_costs**: each contract's capitalised costs of obtaining it (IFRS 15.128):
  opening, capitalised, amortised (write-offs at termination included) and closing, with
  the amortisation period and its basis; it reconciles to the ledger's
  ``Assets:ContractCosts`` balance.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterator

from sqlalchemy import Connection, select

from contracts.service import Contract, contracts_billed_by, customer_regions
from ledger.database import Database
from ledger.money import format_amount
from ledger.periods import parse_period, period_of
from ledger.queries import balances_as_of, company_id
from ledger.schema import accounts, journal_entries, postings
from revrec.close import CONTRACT_ASSET, LIABILITY, SOURCE_TYPE, is_closed, iter_schedules
from revrec.costs import CONTRACT_COSTS, cost_policy
from revrec.schedule import MODIFICATION, ONE_OFF, OVER_TIME, POINT_IN_TIME, SUBSCRIPTIONS, Schedule
from revrec.ssp import SspTable

REVENUE = ("Income:Usage", SUBSCRIPTIONS, ONE_OFF, "Income:Adjustments")
RPO_BANDS = (("within_12_months", 1, 12), ("13_to_24_months", 13, 24), ("after_24_months", 25, None))


# -- waterfall -------------------------------------------------------------------------------


@dataclasses.dataclass
class Waterfall:
    company: str
    period: str
    currency: str
    months: list[str]
    cohorts: dict[str, dict[str, int]]  # cohort (billing month) -> recognition month -> amount

    def totals(self) -> dict[str, int]:
        found: dict[str, int] = defaultdict(int)
        for row in self.cohorts.values():
            for month, amount in row.items():
                found[month] += amount
        return {month: found.get(month, 0) for month in self.months}


def _schedules_only(conn: Connection, cid: int, end: dt.date, ssp: SspTable, day_count: str) -> Iterator[Schedule]:
    for _, schedule in iter_schedules(conn, cid, end, ssp, day_count):
        yield schedule


def waterfall(db: Database, company: str, period: str, *, ssp: SspTable, day_count: str) -> list[Waterfall]:
    """One waterfall per currency."""
    _, end = parse_period(period)
    found: dict[str, Waterfall] = {}
    with db.read() as conn:
        for schedule in _schedules_only(conn, company_id(conn, company), end, ssp, day_count):
            fall = found.setdefault(schedule.currency, Waterfall(company, period, schedule.currency, [], {}))
            for line in schedule.lines:
                row = fall.cohorts.setdefault(period_of(line.window_start), defaultdict(int))
                row[line.month] += line.amount_minor
    for fall in found.values():
        fall.months = sorted({month for row in fall.cohorts.values() for month in row})
        fall.cohorts = {cohort: dict(row) for cohort, row in sorted(fall.cohorts.items())}
    return [found[currency] for currency in sorted(found)]


# -- roll-forward ----------------------------------------------------------------------------


@dataclasses.dataclass
class RollforwardLine:
    contract: str
    currency: str
    opening_minor: int
    billed_minor: int
    recognised_minor: int
    from_opening_liability_minor: int
    catch_up_minor: int
    drawn_minor: int
    closing_minor: int


@dataclasses.dataclass
class Rollforward:
    company: str
    period: str
    lines: list[RollforwardLine]
    # per currency: the ledger's contract liability (credit positive) less the close's
    # contract assets at the month's end, and the difference from the lines' closing
    ledger_minor: dict[str, int]
    difference_minor: dict[str, int]


def rollforward(db: Database, company: str, period: str, *, ssp: SspTable, day_count: str) -> Rollforward:
    start, end = parse_period(period)
    with db.read() as conn:
        cid = company_id(conn, company)
        # per contract, only what the lines need of its schedule: currency, the month's
        # scheduled revenue and the activation fees charged in it
        summary = {schedule.contract: (schedule.currency, sum(line.amount_minor for line in schedule.lines
                                                              if line.month == period),
                                       _activations(schedule, start, end))
                   for schedule in _schedules_only(conn, cid, end, ssp, day_count)}
        movements = _movements(conn, cid, end)
        ledger = _ledger_position(conn, cid, end, movements)
        month_closed = is_closed(conn, cid, period)
    lines = []
    for code in sorted(set(movements) | set(summary)):
        items = movements.get(code, [])
        currency = items[0][5] if items else summary[code][0]
        position = {"before": 0, "billed": 0, "recognised": 0, "released": 0, "closed": 0, "drawn": 0, "arrears": 0}
        for day, account, source_type, origin, amount, _ in items:
            before = day < start
            if account == LIABILITY:
                liability = -amount
                if before:
                    position["before"] += liability
                elif source_type == SOURCE_TYPE:
                    position["released"] += amount  # a release debits the liability
                elif origin == "drawdown":
                    position["drawn"] += amount
                else:
                    position["billed"] += liability
            elif account == CONTRACT_ASSET:
                if before:
                    position["before"] -= amount
            else:  # revenue: billed and recognised when posted directly; recognised by the close
                revenue = -amount
                if before:
                    continue
                position["recognised"] += revenue
                if source_type == SOURCE_TYPE:
                    position["closed"] += revenue
                else:
                    position["billed"] += revenue
                    if source_type == "invoice" and account == SUBSCRIPTIONS:
                        position["arrears"] += revenue  # fees invoiced in arrears: revenue when billed
        opening = position["before"]
        scheduled, activations = summary[code][1:] if code in summary else (0, 0)
        # what the month's schedule left for the close: its revenue less what billing and
        # activations recognised directly (other events' charges are not scheduled); what
        # the close recognised beyond it is other months' revenue caught up (known once the
        # month is closed)
        direct = position["arrears"] + activations
        catch_up = position["closed"] - (scheduled - direct) if code in summary and month_closed else 0
        closing = opening + position["billed"] - position["recognised"] - position["drawn"]
        if not any((opening, position["billed"], position["recognised"], position["drawn"], closing)):
            continue
        lines.append(RollforwardLine(code, currency, opening, position["billed"], position["recognised"],
                                     min(max(opening, 0), max(position["released"], 0)), catch_up,
                                     position["drawn"], closing))
    difference = defaultdict(int)
    for line in lines:
        difference[line.currency] -= line.closing_minor
    for currency, amount in ledger.items():
        difference[currency] += amount
    return Rollforward(company, period, lines, ledger, {c: v for c, v in sorted(difference.items())})


def _activations(schedule: Schedule, start: dt.date, end: dt.date) -> int:
    """One-off fees charged at activation in the month: revenue when posted."""
    return sum(o.stated_minor for w in schedule.windows for o in w.obligations
               if o.account == ONE_OFF and o.ssp_method != MODIFICATION and start <= o.first_day <= end)


def _movements(conn: Connection, cid: int, end: dt.date) -> dict[str, list[tuple]]:
    """Per contract, every posting up to ``end`` on the contract liability, the close's
    contract assets, and the revenue of the obligations the close manages: (day, account,
    source type, origin, amount, currency). ``origin`` marks a prepaid drawdown (an
    invoice's debit of the liability)."""
    p, e, a = postings.c, journal_entries.c, accounts.c
    query = (select(p.effective_date, a.name, e.source_type, p.amount_minor, p.currency, p.dimensions)
             .select_from(postings).join(journal_entries, e.id == p.entry_id).join(accounts, a.id == p.account_id)
             .where(a.company_id == cid, p.effective_date <= end,
                    a.name.in_((LIABILITY, CONTRACT_ASSET, SUBSCRIPTIONS, ONE_OFF)))
             .order_by(e.id, p.line_no))
    found: dict[str, list[tuple]] = defaultdict(list)
    for day, account, source_type, amount, currency, dimensions in conn.execute(query):
        contract = (json.loads(dimensions) if dimensions else {}).get("contract")
        if contract is None or (account == CONTRACT_ASSET and source_type != SOURCE_TYPE):
            continue  # usage's unbilled receivables are not the close's contract asset
        origin = "drawdown" if account == LIABILITY and source_type == "invoice" and amount > 0 else ""
        found[contract].append((day, account, source_type, origin, amount, currency))
    return found


def _ledger_position(conn: Connection, cid: int, end: dt.date, movements: dict[str, list[tuple]]) -> dict[str, int]:
    """The contract liability account's balance at ``end`` (from the stored balances, not
    the postings the lines sum: a posting without a contract shows as a difference) less
    the close's contract assets, per currency."""
    totals: dict[str, int] = defaultdict(int)
    liability = conn.execute(select(accounts.c.id).where(accounts.c.company_id == cid, accounts.c.name == LIABILITY)
                             ).scalar()
    if liability is not None:
        for line in balances_as_of(conn, end, company_id=cid, account_id=liability):
            totals[line.currency] -= line.balance_minor
    for items in movements.values():
        for _, account, _, _, amount, currency in items:
            if account == CONTRACT_ASSET:
                totals[currency] -= amount
    return dict(sorted(totals.items()))


# -- disaggregation --------------------------------------------------------------------------


@dataclasses.dataclass
class DisaggregationLine:
    service: str
    partner: str | None
    timing: str
    account: str
    currency: str
    amount_minor: int
    region: str | None = None  # the customer's (or its organisation's); None: none recorded


@dataclasses.dataclass
class Disaggregation:
    company: str
    period: str
    lines: list[DisaggregationLine]
    totals_minor: dict[str, int]  # per currency: the revenue accounts' movement in the month


def disaggregation(db: Database, company: str, period: str, *, ssp: SspTable, day_count: str) -> Disaggregation:
    start, end = parse_period(period)
    with db.read() as conn:
        cid = company_id(conn, company)
        regions = customer_regions(conn)
        contracts, region_of = {}, {}
        for contract, schedule in iter_schedules(conn, cid, end, ssp, day_count):
            contracts[schedule.contract] = _partners_and_timing(contract, schedule, end)
            region_of[contract.code] = regions.get(contract.customer)
        p, a = postings.c, accounts.c
        rows = conn.execute(select(a.name, p.amount_minor, p.currency, p.dimensions).select_from(postings)
                            .join(accounts, a.id == p.account_id)
                            .where(a.company_id == cid, a.name.in_(REVENUE), p.effective_date >= start,
                                   p.effective_date <= end)).all()
    grouped: dict[tuple, int] = defaultdict(int)
    totals: dict[str, int] = defaultdict(int)
    for account, amount, currency, dimensions in rows:
        dims = json.loads(dimensions) if dimensions else {}
        service = dims.get("service") or ""
        timing, partner = _classify(contracts.get(dims.get("contract") or ""), service, account)
        region = region_of.get(dims.get("contract") or "") or regions.get(dims.get("customer") or "")
        grouped[(service, partner, timing, account, currency, region)] -= amount
        totals[currency] -= amount
    lines = [DisaggregationLine(service, partner, timing, account, currency, amount, region)
             for (service, partner, timing, account, currency, region), amount in sorted(
                 grouped.items(), key=lambda i: tuple(map(str, i[0])))
             if amount]
    return Disaggregation(company, period, lines, dict(sorted(totals.items())))


def _partners_and_timing(contract: Contract, schedule: Schedule, end: dt.date) -> tuple[dict[str, str | None], set[str]]:
    """A contract's vendor per service (the version in force at ``end``) and the services
    whose one-off fees its schedule spreads over time."""
    vendors = {c["service"]: c.get("vendor") for c in reversed(contract.version_at(end).components)}
    spread = {o.service for w in schedule.windows for o in w.obligations if o.pattern == OVER_TIME}
    return vendors, spread


def _classify(found: tuple[dict[str, str | None], set[str]] | None, service: str, account: str
              ) -> tuple[str, str | None]:
    """(timing, vendor) of a revenue posting: usage and subscriptions are satisfied over
    time; a one-off fee at a point in time unless its schedule spreads it; adjustments are
    their own kind."""
    if account == "Income:Adjustments":
        timing = "adjustment"
    elif account in ("Income:Usage", SUBSCRIPTIONS) or (found is not None and service in found[1]):
        timing = OVER_TIME
    else:
        timing = POINT_IN_TIME
    return timing, (found[0].get(service) if found is not None else None)


# -- remaining performance obligations -------------------------------------------------------


@dataclasses.dataclass
class RpoLine:
    contract: str
    currency: str
    bands_minor: dict[str, int]

    @property
    def total_minor(self) -> int:
        return sum(self.bands_minor.values())


@dataclasses.dataclass
class Rpo:
    company: str
    period: str
    lines: list[RpoLine]

    def totals(self) -> dict[str, dict[str, int]]:
        found: dict[str, dict[str, int]] = {}
        for line in self.lines:
            row = found.setdefault(line.currency, {name: 0 for name, _, _ in RPO_BANDS})
            for band, amount in line.bands_minor.items():
                row[band] += amount
        return dict(sorted(found.items()))


def rpo(db: Database, company: str, period: str, *, ssp: SspTable, day_count: str) -> Rpo:
    """What the schedules recognise after the month: a fixed-term contract's rest of term;
    an open-ended one's rest of the billing periods started by the month's end (it can be
    ended at each period's end: 15.121's expedient does not hide it, it is all there is)."""
    _, end = parse_period(period)
    lines = []
    with db.read() as conn:
        for schedule in _schedules_only(conn, company_id(conn, company), end, ssp, day_count):
            bands = _bands(schedule, period)
            if any(bands.values()):
                lines.append(RpoLine(schedule.contract, schedule.currency, bands))
    return Rpo(company, period, lines)


def _bands(schedule: Schedule, period: str) -> dict[str, int]:
    """What the schedule recognises after ``period``, per band."""
    bands = {name: 0 for name, _, _ in RPO_BANDS}
    for line in schedule.lines:
        ahead = _months_between(period, line.month)
        if ahead <= 0:
            continue
        for name, low, high in RPO_BANDS:
            if ahead >= low and (high is None or ahead <= high):
                bands[name] += line.amount_minor
    return bands


def _months_between(first: str, second: str) -> int:
    y1, m1 = map(int, first.split("-"))
    y2, m2 = map(int, second.split("-"))
    return (y2 - y1) * 12 + m2 - m1


# -- contract costs --------------------------------------------------------------------------


@dataclasses.dataclass
class ContractCostLine:
    contract: str
    currency: str
    resellers: list[str]  # who obtained the contract (the costs' counterparties)
    basis: str  # judgement, term or missing (revrec/costs.py)
    months: int | None  # the amortisation period, before the practical expedient
    opening_minor: int
    capitalised_minor: int
    amortised_minor: int
    closing_minor: int


@dataclasses.dataclass
class ContractCosts:
    company: str
    period: str
    lines: list[ContractCostLine]
    ledger_minor: dict[str, int]  # per currency: the Assets:ContractCosts balance at the month's end
    difference_minor: dict[str, int]  # ledger less the lines' closing


def contract_costs(db: Database, company: str, period: str, *, ssp: SspTable, day_count: str) -> ContractCosts:
    """From the ledger alone (``ssp`` and ``day_count`` are the reports' common arguments)."""
    start, end = parse_period(period)
    p, e, a = postings.c, journal_entries.c, accounts.c
    lines: dict[tuple[str, str], ContractCostLine] = {}
    with db.read() as conn:
        cid = company_id(conn, company)
        known = {contract.code: contract for contract in contracts_billed_by(conn, cid, end)}
        query = (select(p.effective_date, p.amount_minor, p.currency, p.dimensions, e.source_type)
                 .select_from(postings).join(journal_entries, e.id == p.entry_id).join(accounts, a.id == p.account_id)
                 .where(a.company_id == cid, a.name == CONTRACT_COSTS, p.effective_date <= end).order_by(e.id, p.line_no))
        for day, amount, currency, dimensions, source_type in conn.execute(query):
            dims = json.loads(dimensions) if dimensions else {}
            code = dims.get("contract", "")
            line = lines.get((code, currency))
            if line is None:
                policy = cost_policy(known[code], expedient=False) if code in known else None
                line = lines[(code, currency)] = ContractCostLine(
                    code, currency, [], policy.basis if policy else "", policy.months if policy else None, 0, 0, 0, 0)
            if dims.get("counterparty") and dims["counterparty"] not in line.resellers:
                line.resellers.append(dims["counterparty"])
            if day < start:
                line.opening_minor += amount
            elif source_type == SOURCE_TYPE:
                line.amortised_minor -= amount
            else:
                line.capitalised_minor += amount
            line.closing_minor += amount
        ledger: dict[str, int] = defaultdict(int)
        account = conn.execute(select(a.id).where(a.company_id == cid, a.name == CONTRACT_COSTS)).scalar()
        if account is not None:
            for balance in balances_as_of(conn, end, company_id=cid, account_id=account):
                ledger[balance.currency] += balance.balance_minor
    found = [line for _, line in sorted(lines.items())
             if line.opening_minor or line.capitalised_minor or line.amortised_minor or line.closing_minor]
    closing: dict[str, int] = defaultdict(int)
    for line in found:
        closing[line.currency] += line.closing_minor
    currencies = sorted(set(ledger) | set(closing))
    return ContractCosts(company, period, found, {c: ledger.get(c, 0) for c in currencies},
                         {c: ledger.get(c, 0) - closing.get(c, 0) for c in currencies})


# -- the reports as tables (CSV, PDF, the CLI) ----------------------------------------------


@dataclasses.dataclass
class ReportTable:
    title: str
    columns: list[str]
    rows: list[list[str]]
    right: list[str]  # columns aligned right (amounts)
    notes: list[str] = dataclasses.field(default_factory=list)


def waterfall_table(falls: list[Waterfall]) -> ReportTable:
    months = sorted({m for fall in falls for m in fall.months})
    rows = []
    for fall in falls:
        for cohort, row in fall.cohorts.items():
            rows.append([fall.currency, cohort, *[format_amount(row.get(m, 0), fall.currency) for m in months],
                         format_amount(sum(row.values()), fall.currency)])
        totals = fall.totals()
        rows.append([fall.currency, "total", *[format_amount(totals.get(m, 0), fall.currency) for m in months],
                     format_amount(sum(totals.values()), fall.currency)])
    period = falls[0].period if falls else ""
    labels = [f"{m}{'' if m <= period else ' (scheduled)'}" for m in months]
    return ReportTable("Revenue waterfall", ["currency", "billing period", *labels, "total"], rows,
                       [*labels, "total"], ["Rows: the billing period whose price the revenue was allocated in. "
                                            "Months after the report's month are scheduled, not recognised."])


def rollforward_table(report: Rollforward) -> ReportTable:
    rows = [[line.contract, line.currency, *[format_amount(v, line.currency) for v in (
        line.opening_minor, line.billed_minor, line.recognised_minor, line.from_opening_liability_minor,
        line.catch_up_minor, line.drawn_minor, line.closing_minor)]] for line in report.lines]
    notes = [f"Ledger {currency}: contract liabilities less contract assets {format_amount(amount, currency)}; "
             f"difference from the lines {format_amount(report.difference_minor.get(currency, 0), currency)}"
             for currency, amount in report.ledger_minor.items()]
    amounts = ["opening", "billed", "recognised", "of which from opening liability", "of which catch-up", "drawn down",
               "closing"]
    return ReportTable("Contract balances roll-forward", ["contract", "currency", *amounts], rows, amounts,
                       ["Positive: contract liability; negative: contract asset.", *notes])


def disaggregation_table(report: Disaggregation) -> ReportTable:
    rows = [[line.service, line.partner or "", line.region or "", line.timing, line.account, line.currency,
             format_amount(line.amount_minor, line.currency)] for line in report.lines]
    notes = [f"Total {currency} {format_amount(amount, currency)}: the revenue accounts' movement in the month"
             for currency, amount in report.totals_minor.items()]
    return ReportTable("Disaggregation of revenue", ["service", "partner", "region", "timing", "account", "currency",
                                                     "amount"],
                       rows, ["amount"], notes)


def rpo_table(report: Rpo) -> ReportTable:
    bands = [name for name, _, _ in RPO_BANDS]
    rows = [[line.contract, line.currency, *[format_amount(line.bands_minor[b], line.currency) for b in bands],
             format_amount(line.total_minor, line.currency)] for line in report.lines]
    for currency, totals in report.totals().items():
        rows.append(["total", currency, *[format_amount(totals[b], currency) for b in bands],
                     format_amount(sum(totals.values()), currency)])
    labels = [b.replace("_", " ") for b in bands]
    return ReportTable("Remaining performance obligations", ["contract", "currency", *labels, "total"], rows,
                       [*labels, "total"], ["Transaction price allocated to obligations not satisfied at the "
                                            "month's end, by when the schedules recognise it."])


def contract_costs_table(report: ContractCosts) -> ReportTable:
    rows = [[line.contract, line.currency, ", ".join(line.resellers), line.basis,
             "" if line.months is None else str(line.months),
             *[format_amount(v, line.currency) for v in (line.opening_minor, line.capitalised_minor,
                                                         line.amortised_minor, line.closing_minor)]]
            for line in report.lines]
    for currency in report.ledger_minor:
        mine = [line for line in report.lines if line.currency == currency]
        rows.append(["total", currency, "", "", "", *[format_amount(sum(getattr(line, name) for line in mine), currency)
                                                      for name in ("opening_minor", "capitalised_minor",
                                                                   "amortised_minor", "closing_minor")]])
    notes = [f"Ledger {currency}: {CONTRACT_COSTS} {format_amount(amount, currency)}; difference from the lines "
             f"{format_amount(report.difference_minor.get(currency, 0), currency)}"
             for currency, amount in report.ledger_minor.items()]
    amounts = ["opening", "capitalised", "amortised", "closing"]
    return ReportTable("Contract cost assets", ["contract", "currency", "obtained by", "basis", "months", *amounts],
                       rows, amounts, ["Costs of obtaining contracts (IFRS 15.91): amortised on a straight line over "
                                       "the months shown; written off when a contract ends. Months are before the "
                                       "one-year practical expedient.", *notes])


REPORTS = {
    "waterfall": (waterfall, waterfall_table),
    "rollforward": (rollforward, rollforward_table),
    "disaggregation": (disaggregation, disaggregation_table),
    "rpo": (rpo, rpo_table),
    "contract_costs": (contract_costs, contract_costs_table),
}


def build_report(db: Database, kind: str, company: str, period: str, *, ssp: SspTable, day_count: str):
    """(the report, its table) for ``kind``: waterfall, rollforward, disaggregation, rpo or
    contract_costs."""
    compute, tabulate = REPORTS[kind]
    report = compute(db, company, period, ssp=ssp, day_count=day_count)
    return report, tabulate(report)
