"""Contract events: each one changes the contract's state and posts through its posting rule.

Built-in semantics by type (a type without built-in semantics, added by adding a rule, is
applied once with the event's amount, quantity and component):

- ``activated``: a draft contract starts; its one-off fees are charged, one application per
  one-off component.
- ``amended``: contract version ``version`` takes effect on the event's date (which must be
  the version's effective_from); for each recurring fee billed in advance, the difference
  between the new and old fee, prorated for the rest of the billing period by the
  component's proration policy (negative for a downgrade).
- ``suspended`` / ``resumed``: a service freeze and its end; status only.
- ``terminated``: the event's date is the last day of service; for each recurring fee
  billed in advance, the unused rest of the billing period is credited (negative amount).
- ``one_off_charge``, ``credit``, ``sla_breach``: the event's amount, for the component it
  names (whose vendor and reseller take part) or for the contract as a whole.

Each event with postings becomes one journal entry with the external id ``event:<id>``,
source ``contract_event``, and metadata naming the rule, its version and its content hash.
The event and its entry are written together or not at all. Events are idempotent by id:
the same id and content again is a duplicate; the same id with other content is refused.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

from sqlalchemy import Connection, insert, select, update

from config import limits
from contracts.billing_periods import MONTHS_OF, billing_period, prorate, term_months
from contracts.rules import Context, Rule, RuleError, RuleSet, posting_drafts
from contracts.schema import contract_events, contracts
from contracts.schemas import EventSchema
from contracts.service import Contract, load_contract
from contracts.terms import AgreementTerms
from ledger.database import Database
from ledger.hashing import document_hash, document_json
from ledger.interchange import decode_json
from ledger.money import AmountError, parse_amount
from ledger.posting import JournalWriter, PostingReport, audit_post
from ledger.records import (
    ACCEPTED,
    DUPLICATE,
    E_CONFLICT,
    E_INVALID,
    E_MALFORMED,
    E_NOT_FOUND,
    EntryDraft,
    LedgerError,
    Outcome,
    PostingDraft,
    Problem,
    Refused,
    show,
)
from ledger.schemas import load_document

EVENT_BYTES_MAX = 64 * 1024
EVENTS_PER_IMPORT_MAX = 1_000_000
SOURCE_TYPE = "contract_event"
ENTRY_ID_PREFIX = "event:"
# A reseller's commission for obtaining a contract posts in its activation's entry, through
# this rule; its contract cost asset names the reseller as counterparty, by which clearing
# tells it from the commissions that accrue on charges.
ACQUISITION_RULE = "acquisition_commission"
ACQUISITION_MONTHS = 12  # the "first year" of a contract's value
# Rules that other capabilities apply: an event of such a type would post around them.
NOT_EVENT_TYPES = ("usage", "invoice_usage", "invoice_fee_in_advance", "invoice_fee_in_arrears", "invoice_credit",
                   ACQUISITION_RULE)

# Which contract statuses accept each built-in type, and the status it leaves.
_STATUS_RULES: dict[str, tuple[tuple[str, ...], str | None]] = {
    "activated": (("draft",), "active"),
    "amended": (("active", "suspended"), None),
    "suspended": (("active",), "suspended"),
    "resumed": (("suspended",), "active"),
    "terminated": (("active", "suspended"), "terminated"),
    "one_off_charge": (("active",), None),
    "credit": (("active", "suspended", "terminated"), None),
    "sla_breach": (("active", "suspended", "terminated"), None),
}
_CUSTOM_STATUSES = ("active",)


STATUS_EVENTS = ("activated", "suspended", "resumed", "terminated")


def status_on(status_changes: Iterable[tuple[dt.date, str]], day: dt.date) -> tuple[str, dt.date | None]:
    """A contract's status on ``day`` and since when, from its status events in date order
    ((date, type) pairs). A termination's date is the last day of service."""
    status, since = "draft", None
    for change_date, kind in status_changes:
        if kind == "terminated":
            if change_date < day:
                status, since = "terminated", change_date
        elif kind in STATUS_EVENTS and change_date <= day:
            status, since = ("suspended" if kind == "suspended" else "active"), change_date
    return status, since


def status_changes_of(conn: Connection, contract_ids: set[int] | None = None) -> dict[int, list[tuple[dt.date, str]]]:
    """``status_changes`` of many contracts (None: every contract) in one query."""
    e = contract_events.c
    found: dict[int, list[tuple[dt.date, str]]] = {}
    query = (select(e.contract_id, e.event_date, e.type).where(e.type.in_(STATUS_EVENTS))
             .order_by(e.contract_id, e.event_date, e.recorded_at))
    for contract_id, day, kind in conn.execute(query):
        if contract_ids is None or contract_id in contract_ids:
            found.setdefault(contract_id, []).append((day, kind))
    return found


def status_changes(conn: Connection, contract_id: int) -> list[tuple[dt.date, str]]:
    """A contract's status events, (date, type) in the order they apply (for status_on)."""
    e = contract_events.c
    query = (select(e.event_date, e.type).where(e.contract_id == contract_id, e.type.in_(STATUS_EVENTS))
             .order_by(e.event_date, e.recorded_at))
    return [tuple(row) for row in conn.execute(query)]


class _Rejected(Exception):
    def __init__(self, *problems: Problem) -> None:
        super().__init__(problems)
        self.problems = problems


@dataclasses.dataclass
class EventReport:
    """Counts add up to the input: accepted + duplicates + rejected + not_applied."""

    all_or_nothing: bool
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    not_applied: int = 0
    entries_posted: int = 0
    outcomes: list[Outcome] = dataclasses.field(default_factory=list)  # duplicates and rejections, the first ones
    outcomes_omitted: int = 0

    def note(self, outcome: Outcome) -> None:
        if len(self.outcomes) < limits.REJECTIONS_REPORTED_MAX:
            self.outcomes.append(outcome)
        else:
            self.outcomes_omitted += 1

    @property
    def total(self) -> int:
        return self.accepted + self.duplicates + self.rejected + self.not_applied

    @property
    def ok(self) -> bool:
        return self.rejected == 0


class _Application(NamedTuple):
    component: dict | None
    amount_minor: int
    quantity: Decimal


def read_events(stream) -> Iterator[tuple[int, dict] | Refused]:
    """Events from a JSON-lines stream, each with its 1-based line number."""
    for number, line in enumerate(stream, start=1):
        if len(line) > EVENT_BYTES_MAX:
            yield Refused(number, None, (Problem(E_MALFORMED, None, f"line longer than {EVENT_BYTES_MAX} bytes"),))
            continue
        if not line.strip():
            continue
        try:
            value = decode_json(line)
        except ValueError as exc:
            yield Refused(number, None, (Problem(E_MALFORMED, None, f"not JSON: {exc}"),))
            continue
        if not isinstance(value, dict):
            yield Refused(number, None, (Problem(E_MALFORMED, None, "an event is a JSON object"),))
            continue
        yield number, value


def import_events(db: Database, events: Iterable[tuple[object, dict] | Refused], *, rules: RuleSet, actor: str,
                  all_or_nothing: bool = True, progress: Callable[[int], None] | None = None) -> EventReport:
    """Apply events, given with the reference that reports name (a line number, an index), in
    order. All-or-nothing (the default): any rejection and nothing is written; otherwise the
    accepted ones are applied and the rejected ones reported."""
    report = EventReport(all_or_nothing)

    class _Rollback(Exception):
        pass

    try:
        with db.write() as conn:
            applier = _Applier(conn, rules, actor)
            for index, item in enumerate(events):
                if index >= EVENTS_PER_IMPORT_MAX:
                    raise LedgerError(Problem(E_INVALID, None, f"more than {EVENTS_PER_IMPORT_MAX} events in one import"))
                applier.apply(item, report)
                if progress and (index + 1) % 100 == 0:
                    progress(index + 1)
            if all_or_nothing and report.rejected:
                raise _Rollback
            if report.entries_posted:
                audit_post(conn, actor, report.entries_posted, applier.first_seq, applier.last_seq, None)
    except _Rollback:
        report.not_applied, report.accepted, report.entries_posted = report.accepted, 0, 0
    return report


def apply_event(conn: Connection, event: dict, *, rules: RuleSet, actor: str) -> int | None:
    """Apply one event inside the caller's transaction (a use case that records an event
    with other rows, such as a dispute credited); returns its entry, or raises LedgerError
    naming what is wrong. The same event again is a duplicate that writes nothing."""
    applier = _Applier(conn, rules, actor)
    report = EventReport(True)
    applier.apply((event.get("id"), event), report)
    if report.rejected:
        raise LedgerError(*report.outcomes[0].problems)
    if report.entries_posted:
        audit_post(conn, actor, report.entries_posted, applier.first_seq, applier.last_seq, None)
    return applier.last_seq


class _Applier:
    def __init__(self, conn: Connection, rules: RuleSet, actor: str) -> None:
        self.conn, self.rules, self.actor = conn, rules, actor
        self.writer = JournalWriter(conn)
        self.contracts: dict[str, Contract] = {}
        self.terms = AgreementTerms(conn)
        self.first_seq: int | None = None
        self.last_seq: int | None = None
        self.posted = 0  # entries posted (an activation may post two)

    def apply(self, item: tuple[object, dict] | Refused, report: EventReport) -> None:
        if isinstance(item, Refused):
            report.rejected += 1
            report.note(Outcome(item.ref, item.external_id, "rejected", None, item.problems))
            return
        ref, item = item
        raw_id = item.get("id") if isinstance(item.get("id"), str) else None
        posted = self.posted
        try:
            status, seq = self._apply(item)
        except _Rejected as rejected:
            report.rejected += 1
            report.note(Outcome(ref, raw_id, "rejected", None, rejected.problems))
            return
        except LedgerError as error:
            report.rejected += 1
            report.note(Outcome(ref, raw_id, "rejected", None, error.problems))
            return
        if status == DUPLICATE:
            report.duplicates += 1
            report.note(Outcome(ref, raw_id, DUPLICATE, seq, ()))
        else:
            report.accepted += 1
            report.entries_posted += self.posted - posted

    def _apply(self, raw: dict) -> tuple[str, int | None]:
        event = load_document(EventSchema(), raw, "an event")
        payload, payload_hash = document_json(raw), document_hash(raw)
        stored = self.conn.execute(select(contract_events.c.payload_hash, contract_events.c.entry_seq)
                                   .where(contract_events.c.id == event["id"])).first()
        if stored is not None:
            if stored.payload_hash == payload_hash:
                return DUPLICATE, stored.entry_seq
            raise _Rejected(Problem(E_CONFLICT, "id", f"event {show(event['id'])} was recorded with other content"))
        rule = self.rules.rules.get(event["type"])
        if event["type"] in NOT_EVENT_TYPES:
            raise _Rejected(Problem(E_INVALID, "type", f"{event['type']} is not a contract event: usage lines are "
                                    "imported with `ecoledger import usage`, and billing runs invoice them"))
        if rule is None:
            raise _Rejected(Problem(E_INVALID, "type", f"no posting rule for event type {show(event['type'])}; "
                                    f"rules: {', '.join(sorted(self.rules.rules))}"))
        contract = self._contract(event["contract"])
        new_status = self._check_status(contract, event)
        applications = self._applications(contract, event)
        acquisition = self._acquisition(contract, event) if event["type"] == "activated" else []
        draft = self._draft(contract, event, rule, applications, acquisition)
        seq = None
        if draft is not None:
            outcome = self._post(draft)
            seq = outcome.entry_seq
        self.conn.execute(insert(contract_events).values(
            id=event["id"], contract_id=contract.id, type=event["type"], event_date=event["date"],
            payload_hash=payload_hash, payload=payload, entry_seq=seq, rule=rule.event_type,
            rule_version=rule.version, rule_hash=rule.content_hash, recorded_at=dt.datetime.now(dt.UTC),
            recorded_by=self.actor[:200]))
        if new_status is not None:
            self.conn.execute(update(contracts).where(contracts.c.id == contract.id)
                              .values(status=new_status, status_since=event["date"]))
            self.contracts[contract.code] = contract._replace(status=new_status, status_since=event["date"])
        return ACCEPTED, seq

    def _contract(self, code: str) -> Contract:
        if code not in self.contracts:
            try:
                self.contracts[code] = load_contract(self.conn, code)
            except LedgerError as error:
                raise _Rejected(*error.problems) from None
        return self.contracts[code]

    def _check_status(self, contract: Contract, event: dict) -> str | None:
        allowed, becomes = _STATUS_RULES.get(event["type"], (_CUSTOM_STATUSES, None))
        if contract.status not in allowed:
            raise _Rejected(Problem(E_INVALID, "type", f"contract {contract.code} is {contract.status}; "
                                    f"{event['type']} needs it {' or '.join(allowed)}"))
        day = event["date"]
        if day < contract.start or (contract.end is not None and day > contract.end and event["type"] != "credit"):
            raise _Rejected(Problem(E_INVALID, "date", f"{day} is outside contract {contract.code} "
                                    f"({contract.start} to {contract.end or 'open-ended'})"))
        if contract.status_since is not None and day < contract.status_since:
            raise _Rejected(Problem(E_INVALID, "date", f"{day} is before the contract's last status change "
                                    f"({contract.status} since {contract.status_since}); events apply in date order"))
        return becomes

    def _applications(self, contract: Contract, event: dict) -> list[_Application]:
        kind, day = event["type"], event["date"]
        version = contract.version_at(day)
        if kind == "activated":
            return [_Application(c, c["amount_minor"], Decimal(1)) for c in version.components if c["type"] == "one_off_fee"]
        if kind in ("suspended", "resumed"):
            return []
        if kind == "amended":
            return self._amendment(contract, event)
        if kind == "terminated":
            return self._termination(contract, day)
        component = None
        if "component" in event:
            component = version.component(event["component"])
            if component is None:
                raise _Rejected(Problem(E_NOT_FOUND, "component", f"contract {contract.code} has no component "
                                        f"{show(event['component'])} in version {version.version}"))
        if "amount" not in event and "quantity" not in event:
            raise _Rejected(Problem(E_INVALID, "amount", f"a {kind} event needs an amount"))
        amount = 0
        if "amount" in event:
            try:
                amount = parse_amount(event["amount"], contract.currency)
            except AmountError as exc:
                raise _Rejected(Problem(exc.code, "amount", str(exc))) from None
        return [_Application(component, amount, Decimal(event.get("quantity", "1")))]

    def _period(self, contract: Contract, day: dt.date) -> tuple[dt.date, dt.date]:
        return billing_period(day, start=contract.start, frequency=contract.billing_frequency,
                              billing_day=contract.billing_day)

    def _amendment(self, contract: Contract, event: dict) -> list[_Application]:
        day = event["date"]
        number = event.get("version")
        target = next((v for v in contract.versions if v.version == number), None)
        if number is None or target is None:
            raise _Rejected(Problem(E_NOT_FOUND, "version", f"an amended event names a stored version of contract "
                                    f"{contract.code} (loaded: {', '.join(str(v.version) for v in contract.versions)})"))
        if target.effective_from != day:
            raise _Rejected(Problem(E_INVALID, "date", f"version {number} takes effect on {target.effective_from}, not {day}"))
        before = contract.version_at(day - dt.timedelta(days=1))
        period = self._period(contract, day)
        applications = []
        codes = {c["code"] for c in before.components} | {c["code"] for c in target.components}
        for code in sorted(codes):
            old, new = before.component(code), target.component(code)
            fee_old = _advance_fee(old)
            fee_new = _advance_fee(new)
            if fee_old == fee_new:
                continue
            policy = (new or old)["proration"]
            difference = prorate(fee_new - fee_old, day, period[1], period, policy)
            if difference:
                applications.append(_Application(new or old, difference, Decimal(1)))
        return applications

    def _termination(self, contract: Contract, last_day: dt.date) -> list[_Application]:
        version = contract.version_at(last_day)
        period = self._period(contract, last_day)
        applications = []
        for component in version.components:
            fee = _advance_fee(component)
            unused = prorate(fee, last_day + dt.timedelta(days=1), period[1], period, component.get("proration") or "daily")
            if unused:
                applications.append(_Application(component, -unused, Decimal(1)))
        return applications

    def _draft(self, contract: Contract, event: dict, rule: Rule, applications: list[_Application],
               extra: list[PostingDraft]) -> EntryDraft | None:
        postings: list[PostingDraft] = []
        for application in applications:
            component = application.component or {}
            parties = {"billing": contract.billing_company, "vendor": component.get("vendor"),
                       "reseller": component.get("reseller")}
            dimensions = {"customer": contract.customer, "contract": contract.code,
                          "service": component.get("service") or event.get("service"), "component": component.get("code")}
            context = Context(application.amount_minor, application.quantity, parties, dimensions,
                              self.terms.functions(contract, parties, event["date"], application.quantity))
            try:
                postings += posting_drafts(rule, context, contract.currency)
            except (RuleError, _Rejected, LedgerError) as error:
                problems = (Problem(E_INVALID, "type", str(error)),) if isinstance(error, RuleError) else error.problems
                raise _Rejected(*problems) from None
        postings += extra
        if not postings:
            return None
        description = f"{event['type']} {contract.code}" + (f": {event['reason']}" if event.get("reason") else "")
        metadata = (("contract", contract.code), ("event_type", event["type"]), ("rule", rule.event_type),
                    ("rule_hash", rule.content_hash), ("rule_version", str(rule.version)))
        return EntryDraft(ENTRY_ID_PREFIX + event["id"], event["date"], tuple(postings), description[:500],
                          SOURCE_TYPE, event["id"], metadata)

    def _acquisition(self, contract: Contract, event: dict) -> list[PostingDraft]:
        """The acquisition commissions of the resellers whose agreements grant one, on
        what each sold in the version in force at activation."""
        day = event["date"]
        version = contract.version_at(day)
        owed: dict[str, int] = {}
        for component in version.components:
            reseller = component.get("reseller")
            if reseller is None or reseller in owed:
                continue
            try:
                terms = self.terms.terms(contract, reseller, "reseller_commission", day)
            except LedgerError as error:
                raise _Rejected(*error.problems) from None
            if terms is None:
                continue
            if terms.get("acquisition_minor") is not None:
                owed[reseller] = terms["acquisition_minor"]
            elif terms.get("acquisition_percent") is not None:
                sold = [c for c in version.components if c.get("reseller") == reseller]
                value = Decimal(first_year_value(contract, sold)) * Decimal(terms["acquisition_percent"]) / 100
                owed[reseller] = int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))
        owed = {reseller: amount for reseller, amount in owed.items() if amount}
        if not owed:
            return []
        rule = self.rules.rules.get(ACQUISITION_RULE)
        if rule is None:
            raise _Rejected(Problem(E_INVALID, "type", f"the posting rules ({self.rules.source}) have no "
                                    f"{ACQUISITION_RULE!r} rule; a reseller agreement grants an acquisition commission"))
        postings: list[PostingDraft] = []
        for reseller, amount in sorted(owed.items()):
            parties = {"billing": contract.billing_company, "vendor": None, "reseller": reseller}
            context = Context(amount, Decimal(1), parties, {"customer": contract.customer, "contract": contract.code}, {})
            try:
                postings += posting_drafts(rule, context, contract.currency)
            except RuleError as error:
                raise _Rejected(Problem(E_INVALID, "type", str(error))) from None
        return postings

    def _post(self, draft: EntryDraft) -> Outcome:
        report = PostingReport(all_or_nothing=False, results=[])
        self.writer.post_batch([draft], report)
        outcome = report.results[0]
        if outcome.status != ACCEPTED:
            if outcome.status == DUPLICATE:
                raise _Rejected(Problem(E_CONFLICT, "id", f"an entry {draft.external_id} exists that no event recorded"))
            raise _Rejected(*(p.under("entry") for p in outcome.problems))
        self.first_seq = self.first_seq or outcome.entry_seq
        self.last_seq = outcome.entry_seq
        self.posted += 1
        return outcome


def first_year_value(contract: Contract, components: Iterable[dict]) -> int:
    """What ``components`` are worth over the contract's first year (its term, when
    shorter): recurring fees for that many months at their billing frequency, and one-off
    fees. Usage and discounts are left out: their value is not known at signing."""
    months = ACQUISITION_MONTHS if contract.end is None else min(ACQUISITION_MONTHS, term_months(contract.start, contract.end))
    per_period = MONTHS_OF[contract.billing_frequency]
    value = Decimal(0)
    for component in components:
        if component["type"] == "recurring_fee":
            value += Decimal(component["amount_minor"]) * months / per_period
        elif component["type"] == "one_off_fee":
            value += component["amount_minor"]
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _advance_fee(component: dict | None) -> int:
    if component is None or component["type"] != "recurring_fee" or component.get("timing") != "in_advance":
        return 0
    return component["amount_minor"]

