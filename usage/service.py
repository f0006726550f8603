"""Usage import: mediation, rating and posting of usage lines, in batches, nothing lost.

Every line read ends as exactly one of: posted (rated, stored, its entry in the journal),
duplicate (its id was posted before with the same content) or rejected (kept in the rejects
store with the reason). The import's counts add up to the lines read.

Mediation checks, in order: the line's fields (usage/lines.py); its id (a posted id with
other content is a conflict); the contract (known, active on the line's date: activated,
not suspended, not terminated, within its start and end); the usage component (the
contract version in force has a usage component for the service, or the one named); the
unit (the plan's); the period (a line whose date is in a closed period of any company it
posts to follows the late policy: ``first_open_period`` posts it on the first open day,
marked late, its rating period still the one it was used in; ``reject`` refuses it).

Lines are rated (usage/rating.py) against the period counter of their contract component,
discounted by the contract's discount components, and posted through the ``usage`` posting
rule: one entry per line (``usage:<line id>``), or with aggregated posting one entry per
contract component and day within each batch (``usage:<import>:<batch>:<contract>:
<component>:<day>``), every line keeping the position of the entry that posted it.

A batch is one transaction: lines, rejects, counters, alerts, entries and the import's
counts commit together. An interrupted import is marked so; running the same file again
posts the rest (what was posted is a duplicate).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import Connection, bindparam, func, insert, select, update

from config import limits
from contracts.billing_periods import billing_period
from contracts.events import status_changes, status_on
from contracts.rules import Rule, RuleError, RuleSet, evaluate_amounts
from contracts.schema import contract_events, contract_versions, contracts, price_plans
from contracts.service import Contract, load_contract
from contracts.terms import AgreementTerms
from ledger import audit
from ledger.database import BulkWriter, Database, rows_matching
from ledger.money import AmountError, format_amount, parse_amount
from ledger.posting import JournalWriter, PostingReport, audit_post
from ledger.records import (
    ACCEPTED,
    DUPLICATE,
    E_CLOSED_PERIOD,
    E_CONFLICT,
    E_INVALID,
    E_MALFORMED,
    E_NOT_FOUND,
    EntryDraft,
    LedgerError,
    Outcome,
    PostingDraft,
    Problem,
    show,
)
from ledger.schema import closed_periods, companies
from partners.schema import agreement_versions
from partners.schemas import canonical_decimal
from usage.calendars import CalendarError, holiday_checker
from usage.lines import LineError, RawLine, UsageLine, canonical, check_line
from usage.rating import PLAN_PERIOD_FREQUENCY, Plan, RatingError, discount, factor, prepare_plan, rate, round_half_up
from usage.schema import usage_alerts, usage_counters, usage_imports, usage_lines, usage_rejects

RULE = "usage"
SOURCE_TYPE = "usage_line"
ENTRY_ID_PREFIX = "usage:"
POSTING_MODES = ("line", "aggregated")
LATE_POLICIES = ("first_open_period", "reject")
# Lines mediated, rated and written per transaction. Per-line posting writes ~10 postings a
# line, so 5,000 lines are ~50,000 rows: a few MB in memory, one commit per second or so.
# Aggregated posting keeps more lines per batch so that a day's lines share one entry.
LINES_PER_BATCH = {"line": 5_000, "aggregated": 20_000}
LINES_PER_IMPORT_MAX = 100_000_000

E_CONTRACT_NOT_ACTIVE = "contract_not_active"
E_UNKNOWN_SERVICE = "unknown_service"
E_UNIT_MISMATCH = "unit_mismatch"
E_NOT_RATED = "not_rated"

_MICRO = Decimal(1_000_000)
_ONE_DAY = dt.timedelta(days=1)
_USABLE_ID = re.compile(r"[!-~]{1,200}")  # as usage.lines checks ids


@dataclasses.dataclass
class ImportReport:
    """What became of the lines read. lines_read = posted + duplicates + rejected."""

    import_id: int
    source: str
    file_format: str
    posting: str
    status: str = "running"
    lines_read: int = 0
    posted: int = 0
    duplicates: int = 0
    rejected: int = 0
    late: int = 0
    entries_posted: int = 0
    alerts_raised: int = 0
    amounts: dict[str, int] = dataclasses.field(default_factory=dict)  # currency -> posted minor units
    outcomes: list[Outcome] = dataclasses.field(default_factory=list)  # duplicates and rejections, the first ones
    outcomes_omitted: int = 0

    def note(self, outcome: Outcome) -> None:
        if len(self.outcomes) < limits.REJECTIONS_REPORTED_MAX:
            self.outcomes.append(outcome)
        else:
            self.outcomes_omitted += 1

    @property
    def ok(self) -> bool:
        return self.rejected == 0


class Options(NamedTuple):
    rules: RuleSet
    actor: str
    posting: str = "line"
    late_policy: str = "first_open_period"
    alert_percents: tuple[int, ...] = (80, 100)
    is_holiday: Callable[[dt.date], bool] = lambda day: False


class ImportError_(LedgerError):  # noqa: N801 (ImportError is a builtin)
    """The import cannot start (no usage rule, an unknown option)."""


def import_usage(db: Database, lines: Iterable[RawLine], *, options: Options, source: str, file_format: str,
                 progress: Callable[[int], None] | None = None) -> ImportReport:
    """Mediate, rate and post ``lines`` in batches; return the import's report."""
    rule = _usage_rule(options)
    if options.posting not in POSTING_MODES:
        raise ImportError_(Problem(E_INVALID, "posting", f"{show(options.posting)}: one of {', '.join(POSTING_MODES)}"))
    if options.late_policy not in LATE_POLICIES:
        raise ImportError_(Problem(E_INVALID, "late_policy", f"{show(options.late_policy)}: one of "
                                   f"{', '.join(LATE_POLICIES)}"))
    iterator = iter(lines)
    # Read the first line before recording the import: a file whose header cannot be read
    # (HeaderError) leaves no trace.
    iterator = itertools.chain(list(itertools.islice(iterator, 1)), iterator)
    report = _start(db, source[:500], file_format, options)
    batch_size = LINES_PER_BATCH[options.posting]
    cache = _Cache()
    try:
        for number in itertools.count(1):
            batch = list(itertools.islice(iterator, batch_size))
            if not batch:
                break
            if report.lines_read + len(batch) > LINES_PER_IMPORT_MAX:
                raise ImportError_(Problem(E_INVALID, None, f"more than {LINES_PER_IMPORT_MAX} lines in one import; "
                                           "split the file"))
            _import_batch(db, batch, number, rule, options, report, cache)
            if progress:
                progress(report.lines_read)
    except BaseException:
        _finish(db, report, "interrupted", options.actor)
        raise
    _finish(db, report, "complete", options.actor)
    return report


def _usage_rule(options: Options) -> Rule:
    rule = options.rules.rules.get(RULE)
    if rule is None:
        raise ImportError_(Problem(E_INVALID, "rules", f"the posting rules ({options.rules.source}) have no "
                                   f"{RULE!r} rule; usage lines post through it"))
    return rule


def _start(db: Database, source: str, file_format: str, options: Options) -> ImportReport:
    with db.write(ledger_lock=False) as conn:
        import_id = conn.execute(insert(usage_imports).values(
            source=source, format=file_format, posting=options.posting, status="running", lines_read=0, posted=0,
            duplicates=0, rejected=0, late=0, entries_posted=0, started_at=dt.datetime.now(dt.UTC),
            started_by=options.actor[:200])).inserted_primary_key[0]
    return ImportReport(import_id, source, file_format, options.posting)


def _finish(db: Database, report: ImportReport, status: str, actor: str) -> None:
    report.status = status
    with db.write(ledger_lock=False) as conn:
        conn.execute(update(usage_imports).where(usage_imports.c.id == report.import_id)
                     .values(status=status, finished_at=dt.datetime.now(dt.UTC)))
        audit.record(conn, actor=actor, action="usage.import", target=f"usage import {report.import_id}", details={
            "source": report.source, "status": status, "lines_read": report.lines_read, "posted": report.posted,
            "duplicates": report.duplicates, "rejected": report.rejected, "late": report.late,
            "entries_posted": report.entries_posted})


class _Retry(Exception):
    """The journal refused some entries of a batch: roll it back and mediate it again with
    their lines rejected for the journal's reasons."""

    def __init__(self, refused: dict[str, tuple[Problem, ...]]) -> None:
        self.refused = refused


def _import_batch(db: Database, batch: list[RawLine], number: int, rule: Rule, options: Options,
                  report: ImportReport, cache: _Cache) -> None:
    refused: dict[str, tuple[Problem, ...]] = {}
    for _attempt in range(3):
        counts = dataclasses.replace(report, outcomes=[], amounts={})
        try:
            with db.write() as conn:
                _Batch(conn, number, rule, options, counts, refused, cache).run(batch)
        except _Retry as retry:
            refused.update(retry.refused)
            continue
        for name in ("lines_read", "posted", "duplicates", "rejected", "late", "entries_posted", "alerts_raised"):
            setattr(report, name, getattr(counts, name))
        for currency, amount in counts.amounts.items():
            report.amounts[currency] = report.amounts.get(currency, 0) + amount
        for outcome in counts.outcomes:
            report.note(outcome)
        return
    raise AssertionError("the journal kept refusing entries that mediation accepted")


class _Cache:
    """What batches of one import read from the registers (contracts with their status
    changes, plans, closed periods, agreements) and derive from them (mediation per
    contract and day, posting templates). Kept from batch to batch while the registers are
    unchanged: each batch, inside its transaction, compares their row counts with the last
    batch's (rows there are only ever added, by database triggers, and a status changes only
    with an event), and starts afresh when another writer changed them in between."""

    def __init__(self) -> None:
        self.fingerprint: tuple | None = None
        self.terms: AgreementTerms | None = None

    def refresh(self, conn: Connection) -> None:
        fingerprint = tuple(conn.execute(select(*_REGISTER_COUNTS)).one())
        if fingerprint != self.fingerprint or self.terms is None or len(self.mediation) > 200_000:
            self.fingerprint = fingerprint
            self.contracts: dict[str, _ContractState | LedgerError] = {}
            self.plans: dict[str, Plan] = {}
            self.closed_through: dict[str, dt.date | None] = {}
            self.terms = AgreementTerms(conn)
            self.mediation: dict[tuple, tuple | LedgerError] = {}
            self.factors: dict[tuple, Decimal | RatingError] = {}
            self.attributes_json: dict[tuple, str] = {}
            self.templates: dict[tuple, tuple] = {}
            self.bound: dict[tuple, tuple[list, dict]] = {}
        self.terms.conn = conn


def _count(table, column=None):
    return select(func.count(column) if column is not None else func.count()).select_from(table).scalar_subquery()


_REGISTER_COUNTS = (
    _count(contracts), _count(contract_versions), _count(contract_events), _count(price_plans), _count(closed_periods),
    _count(agreement_versions), _count(agreement_versions, agreement_versions.c.effective_to),
)


class _Mediated(NamedTuple):
    """A line that passed mediation, with everything rating and posting need."""

    raw: RawLine
    line: UsageLine
    contract: Contract
    component: dict
    plan: Plan
    counter_key: tuple[int, str, dt.date]
    counter_end: dt.date
    posted_date: dt.date
    late: bool
    pre_rated_minor: int | None
    discounts: tuple[Decimal, ...]


@dataclasses.dataclass
class _Counter:
    quantity_micro: int
    amount_minor: int
    period_end: dt.date
    changed: bool = False
    stored: bool = False  # read from usage_counters (updated), or new (inserted)


# Positions in a usage_lines row (the table's column order).
_CURRENCY, _AMOUNT, _ENTRY_SEQ, _LATE = 10, 13, 17, 19


class _ContractState(NamedTuple):
    contract: Contract
    status_changes: tuple[tuple[dt.date, str], ...]  # (date, event type) in date order


class _Batch:
    """One transaction's worth of lines."""

    def __init__(self, conn: Connection, number: int, rule: Rule, options: Options, report: ImportReport,
                 refused: dict[str, tuple[Problem, ...]], cache: _Cache) -> None:
        self.conn, self.number, self.rule, self.options, self.report = conn, number, rule, options, report
        self.refused = refused
        cache.refresh(conn)
        self.contracts, self.plans, self.closed_through = cache.contracts, cache.plans, cache.closed_through
        self.terms = cache.terms
        self._mediation, self._factors, self._attributes_json = cache.mediation, cache.factors, cache.attributes_json
        self._templates, self._bound = cache.templates, cache.bound
        self.reject_rows: list[tuple] = []
        self.alerted: set[tuple] = set()
        self._open_rejects: bool | None = None  # whether any reject is open (asked once)
        self._rated: list[tuple[_Mediated, list]] = []
        self.now = dt.datetime.now(dt.UTC)

    # -- the batch, start to end ------------------------------------------------------------

    def run(self, batch: list[RawLine]) -> None:
        report = self.report
        report.lines_read += len(batch)
        checked = self._checked(batch)
        stored = self._stored_hashes([line.id for _, line in checked])
        mediated: list[_Mediated] = []
        seen: dict[str, str] = {}
        for raw, line in checked:
            known = seen.get(line.id) or stored.get(line.id)
            if known is not None:
                if known == line.payload_hash:
                    report.duplicates += 1
                    report.note(Outcome(raw.ref, line.id, DUPLICATE))
                else:
                    self._reject(raw, line.id, Problem(E_CONFLICT, "id", f"usage line {show(line.id)} was posted "
                                                       "with other content"))
                continue
            if line.id in self.refused:
                self._reject(raw, line.id, *self.refused[line.id])
                continue
            try:
                mediated.append(self._mediate(raw, line))
            except LedgerError as error:
                self._reject(raw, line.id, *error.problems)
                continue
            seen[line.id] = line.payload_hash
        self._rate_and_post(mediated)

    def _checked(self, batch: list[RawLine]) -> list[tuple[RawLine, UsageLine]]:
        checked = []
        for raw in batch:
            if raw.record is None:
                self._reject(raw, None, raw.problem)
                continue
            try:
                checked.append((raw, check_line(raw.record)))
            except LineError as error:
                line_id = raw.record.get("id")
                self._reject(raw, line_id if isinstance(line_id, str) and _USABLE_ID.fullmatch(line_id) else None,
                             *error.problems)
        return checked

    def _reject(self, raw: RawLine, line_id: str | None, *problems: Problem) -> None:
        report = self.report
        report.rejected += 1
        report.note(Outcome(raw.ref, line_id, "rejected", None, problems))
        # Kept as read, except what no database can store as text (NUL; a line of invalid
        # UTF-8 arrives with replacement characters already).
        text = (raw.text or canonical(raw.record or {})).replace("\x00", "\\u0000")
        first = problems[0]
        self.reject_rows.append((report.import_id, raw.ref[:64], line_id, text, first.code, first.field,
                                 "; ".join(str(p) for p in problems)[:4000], "open", None, self.now))

    def _stored_hashes(self, ids: list[str]) -> dict[str, str]:
        """Payload hashes of the ids already posted."""
        rows = rows_matching(self.conn, "SELECT id, payload_hash FROM usage_lines WHERE id", ids,
                             limits.SQL_IN_PARAMS_MAX)
        return dict(rows)

    # -- mediation --------------------------------------------------------------------------

    def _mediate(self, raw: RawLine, line: UsageLine) -> _Mediated:
        """Lines of one contract, day, service and unit share their mediation: it is done
        once per batch for them (the contract's state is read once per batch)."""
        key = (line.contract, line.usage_date, line.service, line.component, line.unit)
        found = self._mediation.get(key)
        if found is None:
            try:
                found = self._mediate_day(line)
            except LedgerError as error:
                found = error
            self._mediation[key] = found
        if isinstance(found, LedgerError):
            raise found
        contract, component, plan, counter_key, counter_end, posted_date, late, discounts = found
        return _Mediated(raw, line, contract, component, plan, counter_key, counter_end, posted_date, late,
                         self._pre_rated(line, contract.currency), discounts)

    def _mediate_day(self, line: UsageLine) -> tuple:
        state = self._contract(line.contract)
        contract, day = state.contract, line.usage_date
        self._check_active(state, day)
        version = contract.version_at(day)
        component = self._component(contract, version, line)
        plan = self._plan(component["price_plan"])
        if line.unit is not None and line.unit != plan.unit:
            raise LedgerError(Problem(E_UNIT_MISMATCH, "unit", f"{show(line.unit)}: price plan {plan.code} is "
                                      f"priced per {plan.unit}"))
        frequency = PLAN_PERIOD_FREQUENCY.get(plan.period or "", contract.billing_frequency)
        period = billing_period(day, start=contract.start, frequency=frequency, billing_day=contract.billing_day)
        posted_date, late = self._posting_date(contract, component, day)
        discounts = tuple(Decimal(c["percent"]) for c in version.components
                          if c["type"] == "discount" and component["code"] in (c.get("applies_to") or (component["code"],)))
        return (contract, component, plan, (contract.id, component["code"], period[0]), period[1], posted_date, late,
                discounts)

    def _contract(self, code: str) -> _ContractState:
        found = self.contracts.get(code)
        if found is None:
            try:
                contract = load_contract(self.conn, code)
            except LedgerError as error:
                found = error
            else:
                found = _ContractState(contract, tuple(status_changes(self.conn, contract.id)))
            self.contracts[code] = found
        if isinstance(found, LedgerError):
            raise found
        return found

    @staticmethod
    def _check_active(state: _ContractState, day: dt.date) -> None:
        contract = state.contract
        if day < contract.start or (contract.end is not None and day > contract.end):
            raise LedgerError(Problem(E_CONTRACT_NOT_ACTIVE, "timestamp", f"{day} is outside contract {contract.code} "
                                      f"({contract.start} to {contract.end or 'open-ended'})"))
        status, since = status_on(state.status_changes, day)
        if status != "active":
            when = f" since {since}" if since else " (never activated)"
            raise LedgerError(Problem(E_CONTRACT_NOT_ACTIVE, "timestamp", f"contract {contract.code} was {status}{when} "
                                      f"on {day}"))

    @staticmethod
    def _component(contract: Contract, version, line: UsageLine) -> dict:
        candidates = [c for c in version.components if c["type"] == "usage" and c["service"] == line.service]
        if line.component is not None:
            candidates = [c for c in candidates if c["code"] == line.component]
        if not candidates:
            services = sorted({c["service"] for c in version.components if c["type"] == "usage"})
            what = f"component {line.component} for " if line.component else ""
            raise LedgerError(Problem(E_UNKNOWN_SERVICE, "component" if line.component else "service",
                                      f"contract {contract.code} (version {version.version}) has no usage {what}"
                                      f"service {show(line.service)}; its usage services: {', '.join(services) or 'none'}"))
        if len(candidates) > 1:
            raise LedgerError(Problem(E_INVALID, "component", f"contract {contract.code} has several usage components "
                                      f"for {line.service} ({', '.join(c['code'] for c in candidates)}): name one"))
        return candidates[0]

    def _plan(self, code: str) -> Plan:
        plan = self.plans.get(code)
        if plan is None:
            document = self.conn.execute(select(price_plans.c.document).where(price_plans.c.code == code)).scalar()
            if document is None:
                raise LedgerError(Problem(E_NOT_FOUND, "contract", f"price plan {code} of the contract is not loaded"))
            plan = self.plans[code] = prepare_plan(json.loads(document))
        return plan

    @staticmethod
    def _pre_rated(line: UsageLine, currency: str) -> int | None:
        if line.amount is not None:
            try:
                amount = parse_amount(line.amount, currency)
            except AmountError as exc:
                raise LedgerError(Problem(exc.code, "amount", str(exc))) from None
            if amount < 0:
                raise LedgerError(Problem(E_INVALID, "amount", "a usage line is not negative; credit the customer "
                                          "with a credit event"))
            return amount
        if line.price is not None:
            price = Decimal(line.price)
            if price < 0:
                raise LedgerError(Problem(E_INVALID, "price", "a usage line is not negative; credit the customer "
                                          "with a credit event"))
            amount = parse_amount("1", currency) * price * line.quantity
            return round_half_up(amount)
        return None

    def _posting_date(self, contract: Contract, component: dict, day: dt.date) -> tuple[dt.date, bool]:
        through = None
        for company in (contract.billing_company, component.get("vendor"), component.get("reseller")):
            if company is not None:
                closed = self._closed_through(company)
                if closed is not None and (through is None or closed > through):
                    through = closed
        if through is None or day > through:
            return day, False
        if self.options.late_policy == "reject":
            raise LedgerError(Problem(E_CLOSED_PERIOD, "timestamp", f"{day} is in a closed period (closed through "
                                      f"{through}); the late policy is reject"))
        return through + _ONE_DAY, True

    def _closed_through(self, company: str) -> dt.date | None:
        if company not in self.closed_through:
            self.closed_through[company] = self.conn.execute(
                select(func.max(closed_periods.c.end_date)).join(companies, companies.c.id == closed_periods.c.company_id)
                .where(companies.c.code == company)).scalar()
        return self.closed_through[company]

    # -- rating and posting -----------------------------------------------------------------

    def _rate_and_post(self, mediated: list[_Mediated]) -> None:
        counters = self._counters({m.counter_key for m in mediated})
        rated: list[tuple[_Mediated, list]] = []  # each line with its usage_lines row
        alert_rows: list[dict] = []
        for item in mediated:
            row = self._rate(item, counters, alert_rows)
            if row is not None:
                rated.append((item, row))
        self._rated = rated
        drafts = self._drafts(rated)
        self._post(drafts, rated)
        self._write([row for _, row in rated], counters, alert_rows)

    def _rate(self, item: _Mediated, counters: dict[tuple, _Counter], alert_rows: list[dict]) -> list | None:
        line, plan = item.line, item.plan
        counter = counters.get(item.counter_key)
        if counter is None:
            counter = counters[item.counter_key] = _Counter(0, 0, item.counter_end)
        try:
            line_factor = self._factor(plan, line)
            if item.pre_rated_minor is not None and plan.model != "percentage":
                gross, exact, line_factor = item.pre_rated_minor, Decimal(item.pre_rated_minor), Decimal(1)
            else:
                gross, exact, line_factor = rate(plan, before=Decimal(counter.quantity_micro) / _MICRO,
                                                 quantity=line.quantity, factor_=line_factor,
                                                 pre_rated_minor=item.pre_rated_minor)
        except RatingError as error:
            self._reject(item.raw, line.id, Problem(E_NOT_RATED, error.field, str(error)))
            return None
        off = discount(gross, item.discounts) if item.discounts else 0
        amount = gross - off
        before_micro, before_amount = counter.quantity_micro, counter.amount_minor
        counter.quantity_micro += line.quantity_micro
        counter.amount_minor += amount
        counter.changed = True
        alert_rows.extend(self._alerts(item, before_micro, counter.quantity_micro, before_amount, counter.amount_minor))
        contract = item.contract
        return [line.id, self.report.import_id, contract.id, item.component["code"], line.service, line.used_at,
                line.usage_date, line.quantity_micro, line.unit or plan.unit, self._attributes_text(line.attributes),
                contract.currency, gross, off, amount, str(exact - off),
                _rating_text(plan, before_micro, line_factor, item.discounts, item.pre_rated_minor is not None),
                line.payload_hash, None, item.posted_date, item.late]

    def _factor(self, plan: Plan, line: UsageLine) -> Decimal:
        key = (plan.code, line.attributes, line.usage_date)
        found = self._factors.get(key)
        if found is None:
            try:
                found = factor(plan, dict(line.attributes), line.usage_date, self.options.is_holiday)
            except RatingError as error:
                found = error
            self._factors[key] = found
        if isinstance(found, RatingError):
            raise found
        return found

    def _attributes_text(self, attributes: tuple) -> str | None:
        if not attributes:
            return None
        found = self._attributes_json.get(attributes)
        if found is None:
            found = self._attributes_json[attributes] = canonical(dict(attributes))
        return found

    def _drafts(self, rated: list[tuple[_Mediated, list]]) -> list[EntryDraft]:
        """One entry per line, or per contract component and posting day (aggregated).
        Each draft's ref is the list of indexes of its lines in ``rated``."""
        if self.options.posting == "line":
            drafts = (self._draft(item, row[_AMOUNT], item.line.quantity, ENTRY_ID_PREFIX + item.line.id, item.line.id,
                                  f"usage {item.line.id}", [index]) for index, (item, row) in enumerate(rated))
            return [d for d in drafts if d is not None]
        groups: dict[tuple, list[int]] = defaultdict(list)
        for index, (item, _) in enumerate(rated):
            # Late lines get entries of their own: the entry says whether its lines are late.
            groups[(item.contract.code, item.component["code"], item.posted_date, item.late)].append(index)
        drafts = []
        for (contract_code, component_code, day, late), indexes in groups.items():
            amount = sum(rated[i][1][_AMOUNT] for i in indexes)
            quantity = sum(rated[i][0].line.quantity for i in indexes)
            external_id = (f"{ENTRY_ID_PREFIX}{self.report.import_id}:{self.number}:{contract_code}:{component_code}:"
                           f"{day.isoformat()}{':late' if late else ''}")
            draft = self._draft(rated[indexes[0]][0], amount, quantity, external_id, external_id,
                                f"usage {contract_code} {component_code} {day} ({len(indexes)} lines)", indexes)
            if draft is not None:
                drafts.append(draft)
        return drafts

    def _alerts(self, item: _Mediated, before_micro: int, after_micro: int, before_amount: int,
                after_amount: int) -> Iterator[dict]:
        contract_id, component, period_start = item.counter_key
        base = {"contract_id": contract_id, "component": component, "period_start": period_start,
                "line_id": item.line.id, "raised_at": self.now}
        marks = []
        if item.plan.included:
            included_micro = int(item.plan.included * _MICRO)
            marks += [("allowance", p, included_micro * p / 100, before_micro, after_micro, str(item.plan.included),
                       str(Decimal(after_micro) / _MICRO)) for p in self.options.alert_percents]
        budget = item.component.get("budget_minor")
        if budget:
            currency = item.contract.currency
            marks += [("budget", p, budget * p / 100, before_amount, after_amount, format_amount(budget, currency),
                       format_amount(after_amount, currency)) for p in self.options.alert_percents]
        for kind, percent, mark, before, after, limit_text, used_text in marks:
            if before < mark <= after and self._first_alert((*item.counter_key, kind, percent)):
                yield {**base, "kind": kind, "threshold_percent": percent, "limit_text": limit_text,
                       "used_text": used_text}

    def _first_alert(self, key: tuple) -> bool:
        """Whether this alert was never raised: a volume tier crossing lowers a period's
        amount, and the budget mark can be crossed again; it is raised once."""
        if key in self.alerted:
            return False
        self.alerted.add(key)
        a = usage_alerts.c
        contract_id, component, period_start, kind, percent = key
        return self.conn.execute(select(a.id).where(
            a.contract_id == contract_id, a.component == component, a.period_start == period_start, a.kind == kind,
            a.threshold_percent == percent)).first() is None

    def _draft(self, item: _Mediated, amount: int, quantity: Decimal, external_id: str, source_id: str,
               description: str, indexes: list[int]) -> EntryDraft | None:
        contract, component = item.contract, item.component
        template, parties, metadata = self._template(contract, component)
        try:
            amounts = evaluate_amounts(self.rule, amount, quantity, self._functions(contract, component, parties,
                                                                                  item.posted_date, quantity))
        except (RuleError, LedgerError) as error:
            problems = (Problem(E_INVALID, None, str(error)),) if isinstance(error, RuleError) else error.problems
            raise _Retry({self._rated[i][0].line.id: problems for i in indexes}) from None
        currency = contract.currency
        postings = []
        for company, account, name, sign, dimensions in template:
            value = int(amounts[name]) * sign
            if value:
                postings.append(PostingDraft(company, account, value, currency, dimensions))
        if not postings:
            return None  # nothing to post (an included unit): the line is stored with no entry
        lines = len(indexes)
        if lines != 1 or item.late:
            metadata = tuple(sorted({**dict(metadata), "lines": str(lines), **({"late": "true"} if item.late else {})}
                                    .items()))
        return EntryDraft(external_id, item.posted_date, tuple(postings), description[:500], SOURCE_TYPE, source_id,
                          metadata, indexes)

    def _functions(self, contract: Contract, component: dict, parties: dict, day: dt.date, quantity: Decimal) -> dict:
        """The agreement functions of a contract component and day, built once and fed each
        line's quantity (per-unit vendor costs)."""
        key = (contract.code, component["code"], day)
        found = self._bound.get(key)
        if found is None:
            holder = [quantity]
            found = self._bound[key] = (holder, self.terms.functions(contract, parties, day, lambda: holder[0]))
        found[0][0] = quantity
        return found[1]

    def _template(self, contract: Contract, component: dict) -> tuple[list[tuple], dict, tuple]:
        """The usage rule's postings for a contract component: companies, accounts and
        dimensions resolved once (they are the same for every line), with the entry's
        metadata for one line."""
        key = (contract.code, component["code"])
        found = self._templates.get(key)
        if found is None:
            parties = {"billing": contract.billing_company, "vendor": component.get("vendor"),
                       "reseller": component.get("reseller")}
            dimensions = {"customer": contract.customer, "contract": contract.code, "service": component["service"],
                          "component": component["code"]}
            template = []
            for posting in self.rule.postings:
                condition = self.rule.condition(posting)
                if condition is not None and parties.get(condition) is None:
                    continue
                pairs = {name: dimensions[name] for name in posting.dimensions}
                if posting.counterparty:
                    pairs["counterparty"] = parties[posting.counterparty]
                template.append((parties[posting.company], posting.account, posting.amount, posting.sign,
                                 tuple(sorted(pairs.items()))))
            metadata = (("component", component["code"]), ("contract", contract.code), ("lines", "1"),
                        ("rule", self.rule.event_type), ("rule_hash", self.rule.content_hash),
                        ("rule_version", str(self.rule.version)), ("usage_import", str(self.report.import_id)))
            found = self._templates[key] = (template, parties, metadata)
        return found

    def _post(self, drafts: list[EntryDraft], rated: list[tuple[_Mediated, list]]) -> None:
        if not drafts:
            return
        writer = JournalWriter(self.conn)
        posting_report = PostingReport(all_or_nothing=False, results=[])
        by_entry = {draft.external_id: draft.ref for draft in drafts}
        for start in range(0, len(drafts), limits.BATCH_ENTRIES_MAX):
            writer.post_batch(drafts[start:start + limits.BATCH_ENTRIES_MAX], posting_report)
        refused: dict[str, tuple[Problem, ...]] = {}
        for outcome in posting_report.results:
            indexes = by_entry[outcome.external_id]
            if outcome.status == ACCEPTED:
                for index in indexes:
                    rated[index][1][_ENTRY_SEQ] = outcome.entry_seq
                continue
            problems = outcome.problems if outcome.status != DUPLICATE else (
                Problem(E_CONFLICT, "id", f"an entry {outcome.external_id} exists that no usage line recorded"),)
            for index in indexes:
                refused[rated[index][0].line.id] = tuple(p.under("entry") for p in problems)
        if refused:
            raise _Retry(refused)
        self.report.entries_posted += posting_report.accepted
        if posting_report.accepted:
            audit_post(self.conn, self.options.actor, posting_report.accepted, writer.first_seq, writer.last_seq)

    # -- state ------------------------------------------------------------------------------

    def _counters(self, keys: set[tuple[int, str, dt.date]]) -> dict[tuple, _Counter]:
        """The stored counters the batch moves (others start at zero)."""
        found: dict[tuple, _Counter] = {}
        if not keys:
            return found
        contract_ids = sorted({k[0] for k in keys})
        starts = sorted({k[2] for k in keys})
        c = usage_counters.c
        for start in range(0, len(contract_ids), limits.SQL_IN_PARAMS_MAX // 2):
            query = select(c.contract_id, c.component, c.period_start, c.quantity_micro, c.amount_minor, c.period_end).where(
                c.contract_id.in_(contract_ids[start:start + limits.SQL_IN_PARAMS_MAX // 2]), c.period_start.in_(starts))
            for row in self.conn.execute(query):
                key = (row.contract_id, row.component, row.period_start)
                if key in keys:
                    found[key] = _Counter(row.quantity_micro, row.amount_minor, row.period_end, stored=True)
        return found

    def _write(self, line_rows: list[list], counters: dict[tuple, _Counter], alert_rows: list[dict]) -> None:
        report, conn = self.report, self.conn
        posted = [tuple(row) for row in line_rows]
        if posted:
            BulkWriter(conn, usage_lines, [col.name for col in usage_lines.columns]).write(posted)
            report.posted += len(posted)
            report.late += sum(1 for row in posted if row[_LATE])
            for row in posted:
                report.amounts[row[_CURRENCY]] = report.amounts.get(row[_CURRENCY], 0) + row[_AMOUNT]
            self._close_open_rejects([row[0] for row in posted], "resolved")
        if self.reject_rows:
            self._close_open_rejects([row[2] for row in self.reject_rows if row[2] is not None], "resubmitted")
            self.reject_rows.sort(key=lambda row: _ref_order(row[1]))  # in the order of the file
            columns = ["import_id", "line_ref", "line_id", "raw", "code", "field", "message", "status",
                       "resolved_by_import", "recorded_at"]
            BulkWriter(conn, usage_rejects, columns).write(self.reject_rows)
        updates, inserts = [], []
        for (contract_id, component, period_start), counter in counters.items():
            if not counter.changed:
                continue
            if counter.stored:
                updates.append({"k_contract": contract_id, "k_component": component, "k_start": period_start,
                                "q": counter.quantity_micro, "a": counter.amount_minor})
            else:
                inserts.append({"contract_id": contract_id, "component": component, "period_start": period_start,
                                "period_end": counter.period_end, "quantity_micro": counter.quantity_micro,
                                "amount_minor": counter.amount_minor})
        c = usage_counters.c
        if updates:
            conn.execute(update(usage_counters).where(c.contract_id == bindparam("k_contract"),
                                                      c.component == bindparam("k_component"),
                                                      c.period_start == bindparam("k_start"))
                         .values(quantity_micro=bindparam("q"), amount_minor=bindparam("a")), updates)
        if inserts:
            conn.execute(insert(usage_counters), inserts)
        if alert_rows:
            conn.execute(insert(usage_alerts), alert_rows)
            report.alerts_raised += len(alert_rows)
        conn.execute(update(usage_imports).where(usage_imports.c.id == report.import_id).values(
            lines_read=report.lines_read, posted=report.posted, duplicates=report.duplicates, rejected=report.rejected,
            late=report.late, entries_posted=report.entries_posted))

    def _close_open_rejects(self, line_ids: list[str], status: str) -> None:
        """Open rejects of these line ids, closed by this import: ``resolved`` (a corrected
        line with the id has posted) or ``resubmitted`` (the line was rejected again, and its
        new reject row is the open one). Usually no reject is open: one query says so."""
        r = usage_rejects.c
        if self._open_rejects is None:
            self._open_rejects = self.conn.execute(select(r.id).where(r.status == "open").limit(1)).first() is not None
        if not self._open_rejects:
            return
        for start in range(0, len(line_ids), limits.SQL_IN_PARAMS_MAX):
            chunk = line_ids[start:start + limits.SQL_IN_PARAMS_MAX]
            self.conn.execute(update(usage_rejects).where(r.status == "open", r.line_id.in_(chunk))
                              .values(status=status, resolved_by_import=self.report.import_id))


def _ref_order(ref: str) -> tuple[int, str]:
    number = ref.rpartition(" ")[2]
    return (int(number), ref) if number.isdigit() else (0, ref)


def _rating_text(plan: Plan, before_micro: int, line_factor: Decimal, discounts: tuple, pre_rated: bool) -> str:
    """How a line was rated, as canonical JSON (keys sorted), written directly: it is
    stored for every line. Plan codes and models are plain ASCII codes."""
    parts = [f'"counter_before":"{canonical_decimal(Decimal(before_micro) / _MICRO)}"']
    if discounts:
        parts.append('"discount_percents":[' + ",".join(f'"{p}"' for p in discounts) + "]")
    parts += [f'"factor":"{canonical_decimal(line_factor)}"', f'"model":"{plan.model}"', f'"plan":"{plan.code}"']
    if pre_rated:
        parts.append('"pre_rated":true')
    return "{" + ",".join(parts) + "}"


def options_from(settings, rules: RuleSet, actor: str, *, posting: str | None = None,
                 late_policy: str | None = None) -> Options:
    """Import options from the settings (config/settings.py), overridden per import."""
    try:
        percents = tuple(sorted({int(p) for p in settings.usage_alert_percents.split(",") if p.strip()}))
    except ValueError:
        percents = ()
    if not percents or not all(0 < p <= 1000 for p in percents):
        raise ImportError_(Problem(E_INVALID, "usage_alert_percents", f"{show(settings.usage_alert_percents)}: "
                                   "comma-separated whole percentages, like 80,100"))
    try:
        is_holiday = holiday_checker(settings.holiday_calendar)
    except CalendarError as exc:
        raise ImportError_(Problem(E_INVALID, "holiday_calendar", str(exc))) from None
    return Options(rules, actor, posting or settings.usage_posting, late_policy or settings.usage_late_policy,
                   percents, is_holiday)


def resubmit_rejects(db: Database, *, options: Options, import_id: int | None = None,
                     progress: Callable[[int], None] | None = None) -> ImportReport:
    """Run the open rejects (of one import, or all) through mediation again, as they were:
    for lines refused for the state of the ledger (a contract not loaded yet, a period not
    open yet). Each becomes posted or is rejected again under the new import; the old
    reject is marked resubmitted either way. Corrected lines are imported as a file instead."""
    r = usage_rejects.c
    query = select(r.id, r.line_ref, r.raw).where(r.status == "open").order_by(r.id)
    if import_id is not None:
        query = query.where(r.import_id == import_id)
    with db.read() as conn:
        rejects = conn.execute(query).all()
    source = f"resubmitted rejects of import {import_id}" if import_id is not None else "resubmitted rejects"

    def lines() -> Iterator[RawLine]:
        for reject in rejects:
            try:
                record = json.loads(reject.raw)
            except ValueError:
                record = None
            ref = f"reject {reject.id}"
            if isinstance(record, dict):
                yield RawLine(ref, reject.raw, record)
            else:
                yield RawLine(ref, reject.raw, None, Problem(E_MALFORMED, None, "not a JSON object: correct the line "
                                                             "and import it in a file"))

    report = import_usage(db, lines(), options=options, source=source, file_format="jsonl", progress=progress)
    ids = [reject.id for reject in rejects]
    with db.write(ledger_lock=False) as conn:
        for start in range(0, len(ids), limits.SQL_IN_PARAMS_MAX):
            conn.execute(update(usage_rejects).where(r.id.in_(ids[start:start + limits.SQL_IN_PARAMS_MAX]),
                                                     r.status == "open")
                         .values(status="resubmitted", resolved_by_import=report.import_id))
    return report
