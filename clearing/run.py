"""The clearing run: what partners' agreements give per period beyond what each event
accrued, posted with its mirror entries.

Shares, commissions and SLA recoveries accrue when their event or usage line posts (the
posting rules). What only a period can tell is trued up here, per partner agreement in force
at the period's end, and per window (the agreement's month, quarter or year ending with the
period):

- ``vendor_share`` with ``basis: fixed_cost``: the fixed cost of the window accrues
  (``fixed_cost``);
- ``vendor_share`` with a ``minimum_guarantee``: when the vendor's earnings from the
  counterparty in the window (its position postings, payments and clearing left out) are
  below the guarantee, the difference is topped up (``minimum_guarantee``);
- ``reseller_commission`` with ``tiers``: events accrue at the first tier's rate; the run
  computes the commission on the window's volume (the counterparty's revenue and deferred
  revenue from the components the reseller sold, as their events, usage lines and invoices
  posted it) by the tiers, marginal or retroactive, and posts the difference from what was
  accrued (``commission_tiers``);
- ``reseller_commission`` with ``clawback_days``: each credit the counterparty granted in the
  window on what the reseller sold (a credit or SLA event, a credit note) takes back the
  commission on it at the accrual rate, one item per credit (``clawback``). A credit note
  counts when it is issued within ``clawback_days`` of the invoice it credits; a credit event
  has no original charge to measure from and always counts;
- ``transfer_price`` between operator entities (the agreement's company provides, its
  counterparty buys): ``cost_plus`` charges the provider's costs of the window (its
  ``Expenses`` accounts, intercompany ones left out) plus ``markup_percent``,
  ``pass_through`` the costs as they are, and ``resale_minus`` the buyer's revenue from the
  contract components the provider delivers (as their vendor) less ``margin_percent``
  (``transfer_price``, posted as intercompany revenue and cost).

Idempotent: each item records what it posted, and a run posts only the difference between
what is due now and what earlier runs posted for the same agreement, window and kind. Running
a period again posts nothing new. Late usage of a window changes what is due, and the next
run posts the adjustment (negative too): a run of the same period, or of a later one, which
also revisits the windows ending in the ``LOOKBACK_MONTHS`` before it that an earlier run
cleared (``clearing_runs``). Items are dated at the window's end, or on the first open day
when either company has closed it, and name their window.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import Connection, func, insert, or_, select

from clearing.schema import clearing_items, clearing_runs
from clearing.statements import partner_rows, position_accounts, with_counterparty
from clearing.terms import guarantee_top_up, tiered_commission, window
from contracts.rules import Context, RuleError, RuleSet, posting_drafts
from contracts.schema import contracts
from contracts.service import load_contract
from ledger import audit
from ledger.database import Database
from ledger.periods import parse_period
from ledger.posting import JournalWriter, audit_post, post_single
from ledger.records import E_INVALID, EntryDraft, LedgerError, Problem
from ledger.schema import accounts, closed_periods, companies, journal_entries, postings
from partners.agreements import Agreement
from partners.service import agreements_of

RULES = {"vendor_share": "clearing_vendor_true_up", "reseller_commission": "clearing_commission_true_up",
         "transfer_price": "clearing_transfer_price"}
CLAWBACK_RULE = "clearing_commission_clawback"
CREDIT_ACCOUNT = "Income:Adjustments"
CONTRACT_COSTS = "Assets:ContractCosts"
ROLE = {"vendor_share": "vendor", "reseller_commission": "reseller", "transfer_price": "provider"}
SOURCE_TYPE = "clearing"
COMMISSIONABLE_SOURCES = ("usage_line", "contract_event", "invoice")
COMMISSIONABLE_ACCOUNTS = ("Income:Usage", "Income:Subscriptions", "Income:OneOff", "Liabilities:ContractLiabilities")
SOLD_COMPONENTS = ("usage", "recurring_fee", "one_off_fee")
_ONE_DAY = dt.timedelta(days=1)
# How far back a run looks for windows cleared before whose events arrived late.
LOOKBACK_MONTHS = 3


@dataclasses.dataclass
class ClearingItem:
    partner: str
    counterparty: str
    agreement: str
    kind: str
    window_start: dt.date
    window_end: dt.date
    currency: str
    basis_minor: int
    due_minor: int
    amount_minor: int
    entry: str


@dataclasses.dataclass
class ClearingReport:
    period: str
    items: list[ClearingItem] = dataclasses.field(default_factory=list)  # posted by this run
    unchanged: int = 0  # items due that earlier runs already posted in full


def run_clearing(db: Database, period: str, *, rules: RuleSet, actor: str, partner: str | None = None,
                 lookback_months: int = LOOKBACK_MONTHS) -> ClearingReport:
    start, end = parse_period(period)
    report = ClearingReport(period)
    with db.write() as conn:
        writer = JournalWriter(conn)
        for _, code, _ in partner_rows(conn, partner):
            for agreement in agreements_of(conn, code):
                if agreement.kind not in RULES:
                    continue
                # Windows cleared before, ended within the look-back: late events change
                # what they give, and the difference posts as an adjustment naming them.
                for earlier in _cleared_windows(conn, agreement, start, lookback_months):
                    _clear_window(conn, writer, rules, agreement, earlier, actor, report)
                version = agreement.in_force(end)
                found = window(start, end, version.terms.get("period")) if version is not None else None
                if found is not None:
                    _clear_window(conn, writer, rules, agreement, found, actor, report)
        if writer.first_seq is not None:
            audit_post(conn, actor, writer.last_seq - writer.first_seq + 1, writer.first_seq, writer.last_seq)
        partner_id = conn.execute(select(companies.c.id).where(companies.c.code == partner)).scalar() if partner else None
        conn.execute(insert(clearing_runs).values(period=period, partner_id=partner_id, items=len(report.items),
                                                  run_at=dt.datetime.now(dt.UTC), run_by=actor[:200]))
        audit.record(conn, actor=actor, action="clearing.run", target=f"{partner or '*'} {period}", details={
            "items": len(report.items), "unchanged": report.unchanged})
    return report


def _clear_window(conn: Connection, writer: JournalWriter, rules: RuleSet, agreement: Agreement,
                  span: tuple[dt.date, dt.date], actor: str, report: ClearingReport) -> None:
    """Post what the agreement in force at the window's end gives for it, less what earlier
    runs posted; and the clawbacks of its credits not clawed back yet."""
    version = agreement.in_force(span[1])
    if version is None:
        return
    for kind, basis, due in _due(conn, agreement, version.terms, span):
        item = _settle(conn, writer, rules, agreement, kind, span, basis, due, actor)
        if item is None:
            report.unchanged += 1
        else:
            report.items.append(item)
    if agreement.kind == "reseller_commission" and version.terms.get("clawback_days") is not None:
        report.items += _clawbacks(conn, writer, rules, agreement, version.terms, span, actor)


def _cleared_windows(conn: Connection, agreement: Agreement, start: dt.date, lookback_months: int
                     ) -> list[tuple[dt.date, dt.date]]:
    """The agreement's windows that end in a month an earlier run cleared (for every partner
    or for this one), within ``lookback_months`` before ``start``, oldest first."""
    r = clearing_runs.c
    months = [_month_before(start, back) for back in range(lookback_months, 0, -1)]
    cleared = set(conn.execute(select(r.period).distinct().where(
        r.period.in_([m.strftime("%Y-%m") for m in months]),
        or_(r.partner_id.is_(None), r.partner_id == select(companies.c.id).where(
            companies.c.code == agreement.company).scalar_subquery()))).scalars())
    spans = []
    for month in months:
        if month.strftime("%Y-%m") not in cleared:
            continue
        end = _month_before(month, -1) - _ONE_DAY
        version = agreement.in_force(end)
        span = window(month, end, version.terms.get("period")) if version is not None else None
        if span is not None:
            spans.append(span)
    return spans


def _month_before(day: dt.date, months: int) -> dt.date:
    """The first day of the month ``months`` before ``day``'s (after, when negative)."""
    index = day.year * 12 + day.month - 1 - months
    return dt.date(index // 12, index % 12 + 1, 1)


def _due(conn: Connection, agreement: Agreement, terms: dict, span: tuple[dt.date, dt.date]) -> list[tuple[str, int, int]]:
    """(kind, basis, due) of each true-up the agreement has for the window: ``due`` is what
    all the window's items of the kind together should have posted."""
    due = []
    if agreement.kind == "vendor_share":
        if terms.get("basis") == "fixed_cost":
            due.append(("fixed_cost", terms["fixed_cost_minor"], terms["fixed_cost_minor"]))
        if terms.get("minimum_guarantee_minor"):
            # earnings without the top-ups themselves (other clearing items, such as a fixed
            # cost, are earnings)
            earned = _earned(conn, agreement, span) - _posted(conn, agreement, "minimum_guarantee", span[0])
            guarantee = terms["minimum_guarantee_minor"]
            due.append(("minimum_guarantee", earned, guarantee_top_up(earned, guarantee)))
    elif agreement.kind == "transfer_price":
        basis = _costs(conn, agreement.company, agreement.currency, span) if terms["method"] != "resale_minus" else (
            _resale(conn, agreement, span))
        factor = {"cost_plus": 1 + Decimal(terms.get("markup_percent") or 0) / 100, "pass_through": Decimal(1),
                  "resale_minus": 1 - Decimal(terms.get("margin_percent") or 0) / 100}[terms["method"]]
        due.append(("transfer_price", basis, int((basis * factor).quantize(Decimal(1), rounding=ROUND_HALF_UP))))
    elif terms.get("tiers"):
        volume = _volume(conn, agreement, span)
        # what the events accrued at the first tier's rate, without acquisition commissions,
        # earlier tier true-ups and clawbacks (a credit's clawback is its own item, not a change of the volume's tier)
        accrued = (_earned(conn, agreement, span) - _acquired(conn, agreement, span)
                   - _posted(conn, agreement, ("commission_tiers", "clawback"), span[0]))
        commission = tiered_commission(volume, terms["tiers"], terms.get("tier_mode") or "marginal")
        due.append(("commission_tiers", volume, commission - accrued))
    return due


def _earned(conn: Connection, agreement: Agreement, span: tuple[dt.date, dt.date]) -> int:
    """The partner's position movements with the counterparty in the window, payments left
    out (clearing items included: callers take out their own kind)."""
    p, e = postings.c, journal_entries.c
    return int(conn.execute(
        select(func.coalesce(func.sum(p.amount_minor), 0)).join(journal_entries, e.id == p.entry_id)
        .where(p.account_id.in_(position_accounts(conn, agreement.company)), p.currency == agreement.currency,
               with_counterparty(agreement.counterparty), p.effective_date >= span[0], p.effective_date <= span[1],
               e.source_type != "settlement_payment")).scalar())


def _acquired(conn: Connection, agreement: Agreement, span: tuple[dt.date, dt.date]) -> int:
    """Acquisition commissions the reseller earned from the counterparty in the window: the
    contract cost assets its activations capitalised naming it (earned for obtaining
    contracts, not on the window's volume)."""
    p, a, e = postings.c, accounts.c, journal_entries.c
    return int(conn.execute(
        select(func.coalesce(func.sum(p.amount_minor), 0)).join(accounts, a.id == p.account_id)
        .join(companies, companies.c.id == a.company_id).join(journal_entries, e.id == p.entry_id)
        .where(companies.c.code == agreement.counterparty, a.name == CONTRACT_COSTS, e.source_type == "contract_event",
               p.currency == agreement.currency, with_counterparty(agreement.company),
               p.effective_date >= span[0], p.effective_date <= span[1])).scalar())


def _posted(conn: Connection, agreement: Agreement, kinds: str | tuple[str, ...], window_start: dt.date) -> int:
    """What clearing items of ``kinds`` posted for the agreement's window."""
    c = clearing_items.c
    kinds = (kinds,) if isinstance(kinds, str) else kinds
    return int(conn.execute(select(func.coalesce(func.sum(c.amount_minor), 0)).where(
        c.agreement == agreement.code, c.kind.in_(kinds), c.window_start == window_start)).scalar())


def _costs(conn: Connection, company: str, currency: str, span: tuple[dt.date, dt.date]) -> int:
    """A company's costs in the window: its expense accounts, intercompany ones left out (the
    transfer price itself is one)."""
    p, a = postings.c, accounts.c
    return int(conn.execute(
        select(func.coalesce(func.sum(p.amount_minor), 0)).join(accounts, a.id == p.account_id)
        .join(companies, companies.c.id == a.company_id)
        .where(companies.c.code == company, a.name.like("Expenses:%"), a.name != "Expenses:Intercompany",
               p.currency == currency, p.effective_date >= span[0], p.effective_date <= span[1])).scalar())


def _resale(conn: Connection, agreement: Agreement, span: tuple[dt.date, dt.date]) -> int:
    """The buyer's revenue in the window from the components the provider delivers."""
    return _revenue(conn, agreement, _delivered(conn, agreement, "vendor"), span)


def _delivered(conn: Connection, agreement: Agreement, role: str) -> set[tuple[str, str]]:
    """The (contract, service) pairs of the counterparty's contracts whose components name
    the agreement's company in ``role`` (vendor or reseller)."""
    found = set()
    for code in conn.execute(select(contracts.c.code).join(companies, companies.c.id == contracts.c.billing_company_id)
                             .where(companies.c.code == agreement.counterparty)).scalars():
        contract = load_contract(conn, code)
        found |= {(contract.code, component["service"]) for version in contract.versions
                  for component in version.components
                  if component["type"] in SOLD_COMPONENTS and component.get(role) == agreement.company}
    return found


def _sold(conn: Connection, agreement: Agreement) -> set[tuple[str, str]]:
    """The (contract, service) pairs whose components the reseller sold."""
    return _delivered(conn, agreement, "reseller")


def _volume(conn: Connection, agreement: Agreement, span: tuple[dt.date, dt.date]) -> int:
    """The counterparty's revenue and deferred revenue in the window from the (contract,
    service) pairs whose components the reseller sold."""
    return _revenue(conn, agreement, _sold(conn, agreement), span)


def _revenue(conn: Connection, agreement: Agreement, pairs: set[tuple[str, str]], span: tuple[dt.date, dt.date]) -> int:
    """The counterparty's revenue and deferred revenue in the window from ``pairs``, as the
    usage lines, events and invoices posted it."""
    if not pairs:
        return 0
    p, e, a = postings.c, journal_entries.c, accounts.c
    query = (select(p.amount_minor, p.dimensions).join(journal_entries, e.id == p.entry_id)
             .join(accounts, a.id == p.account_id).join(companies, companies.c.id == a.company_id)
             .where(companies.c.code == agreement.counterparty, a.name.in_(COMMISSIONABLE_ACCOUNTS),
                    p.currency == agreement.currency, p.effective_date >= span[0], p.effective_date <= span[1],
                    e.source_type.in_(COMMISSIONABLE_SOURCES)))
    revenue = 0
    for amount, dimensions in conn.execute(query):
        found = json.loads(dimensions) if dimensions else {}
        if (found.get("contract"), found.get("service")) in pairs:
            revenue -= amount  # revenue is credited
    return revenue


def _settle(conn: Connection, writer: JournalWriter, rules: RuleSet, agreement: Agreement, kind: str,
            span: tuple[dt.date, dt.date], basis: int, due: int, actor: str) -> ClearingItem | None:
    change = due - _posted(conn, agreement, kind, span[0])
    if change == 0:
        return None
    return _post_item(conn, writer, rules, agreement, kind, span, basis, due, change, actor, RULES[agreement.kind])


def _post_item(conn: Connection, writer: JournalWriter, rules: RuleSet, agreement: Agreement, kind: str,
               span: tuple[dt.date, dt.date], basis: int, due: int, change: int, actor: str, name: str, *,
               source_entry: str | None = None, contract: str | None = None) -> ClearingItem:
    """Post one clearing item through rule ``name`` (with its mirror postings) and record it."""
    if name not in rules.rules:
        raise LedgerError(Problem(E_INVALID, "rules", f"the posting rules ({rules.source}) have no {name!r} rule; "
                                  "clearing runs post through it"))
    parties = {"billing": agreement.counterparty, "vendor": None, "reseller": None, "provider": None,
               ROLE[agreement.kind]: agreement.company}
    try:
        drafts = posting_drafts(rules.rules[name], Context(change, Decimal(1), parties, {"contract": contract}, {}),
                                agreement.currency)
    except RuleError as exc:
        raise LedgerError(Problem(E_INVALID, "rules", str(exc))) from None
    count = conn.execute(select(func.count()).select_from(clearing_items).where(
        clearing_items.c.agreement == agreement.code, clearing_items.c.kind == kind,
        clearing_items.c.window_start == span[0])).scalar()
    external_id = f"clearing:{agreement.code}:{kind}:{span[0].isoformat()}:{count + 1}"
    day = posting_day(conn, (agreement.company, agreement.counterparty), span[1])
    about = f" of {source_entry}" if source_entry else ""
    draft = EntryDraft(external_id, day, tuple(drafts),
                       f"Clearing {agreement.code}: {kind.replace('_', ' ')}{about} for {span[0]} to {span[1]}"[:500],
                       SOURCE_TYPE, agreement.code,
                       (("agreement", agreement.code), ("kind", kind), ("rule", name),
                        ("window", f"{span[0].isoformat()}/{span[1].isoformat()}"),
                        *((("credit", source_entry[:200]),) if source_entry else ())))
    entry_seq = post_single(writer, draft, f"clearing of {agreement.code}")
    partner_id, counterparty_id = (conn.execute(select(companies.c.id).where(companies.c.code == code)).scalar()
                                   for code in (agreement.company, agreement.counterparty))
    conn.execute(insert(clearing_items).values(
        company_id=partner_id, counterparty_id=counterparty_id, agreement=agreement.code, kind=kind,
        window_start=span[0], window_end=span[1], currency=agreement.currency, basis_minor=basis, due_minor=due,
        amount_minor=change, entry_seq=entry_seq, source_entry=source_entry, recorded_at=dt.datetime.now(dt.UTC),
        recorded_by=actor[:200]))
    return ClearingItem(agreement.company, agreement.counterparty, agreement.code, kind, span[0], span[1],
                        agreement.currency, basis, due, change, external_id)


def _clawbacks(conn: Connection, writer: JournalWriter, rules: RuleSet, agreement: Agreement, terms: dict,
               span: tuple[dt.date, dt.date], actor: str) -> list[ClearingItem]:
    """One clawback per credit in the window on what the reseller sold, not clawed back yet."""
    sold = _sold(conn, agreement)
    if not sold:
        return []
    rate = Decimal(terms.get("percent") or sorted(terms["tiers"], key=lambda t: t["from_minor"])[0]["percent"])
    p, e, a = postings.c, journal_entries.c, accounts.c
    query = (select(e.external_id, e.effective_date, e.metadata_json, p.amount_minor, p.dimensions)
             .join(journal_entries, e.id == p.entry_id).join(accounts, a.id == p.account_id)
             .join(companies, companies.c.id == a.company_id)
             .where(companies.c.code == agreement.counterparty, a.name == CREDIT_ACCOUNT,
                    p.currency == agreement.currency, p.effective_date >= span[0], p.effective_date <= span[1],
                    e.source_type.in_(("contract_event", "invoice")))
             .order_by(e.id, p.line_no))
    credits: dict[str, list] = {}
    for external_id, day, metadata, amount, dimensions in conn.execute(query):
        found = json.loads(dimensions) if dimensions else {}
        if (found.get("contract"), found.get("service")) not in sold:
            continue
        credit = credits.setdefault(external_id, [day, metadata, 0, found.get("contract")])
        credit[2] += amount  # a credit debits revenue adjustments
    items = []
    c = clearing_items.c
    for external_id, (day, metadata, credited, contract) in credits.items():
        if credited <= 0 or not _within(conn, metadata, day, terms["clawback_days"]):
            continue
        if conn.execute(select(c.id).where(c.agreement == agreement.code, c.kind == "clawback",
                                           c.source_entry == external_id)).first():
            continue
        clawback = -int((Decimal(credited) * rate / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        if clawback:
            items.append(_post_item(conn, writer, rules, agreement, "clawback", span, credited, clawback, clawback,
                                    actor, CLAWBACK_RULE, source_entry=external_id, contract=contract))
    return items


def _within(conn: Connection, metadata: str | None, day: dt.date, clawback_days: int) -> bool:
    """Whether a credit falls inside the clawback window: a credit note within
    ``clawback_days`` of the invoice it credits; a credit event always."""
    credited = (json.loads(metadata) if metadata else {}).get("credits")
    if credited is None:
        return True
    from billing.schema import invoices

    issued = conn.execute(select(invoices.c.issue_date).where(invoices.c.number == credited)).scalar()
    return issued is None or (day - issued).days <= clawback_days


def posting_day(conn: Connection, codes: tuple[str, ...], day: dt.date) -> dt.date:
    """``day``, or the first day after the latest close of any of the companies."""
    closed = conn.execute(select(func.max(closed_periods.c.end_date)).join(
        companies, companies.c.id == closed_periods.c.company_id).where(companies.c.code.in_(codes))).scalar()
    return day if closed is None or day > closed else closed + _ONE_DAY


def list_items(db: Database, *, partner: str | None = None, period: str | None = None,
               limit: int = 1_000) -> list[ClearingItem]:
    """Clearing items in the order they were posted (of windows ending in ``period``)."""
    c, partner_co, counterparty_co, e = clearing_items.c, companies.alias("p"), companies.alias("o"), journal_entries.c
    query = (select(partner_co.c.code, counterparty_co.c.code, c.agreement, c.kind, c.window_start, c.window_end,
                    c.currency, c.basis_minor, c.due_minor, c.amount_minor, e.external_id)
             .join(partner_co, partner_co.c.id == c.company_id).join(counterparty_co, counterparty_co.c.id == c.counterparty_id)
             .join(journal_entries, e.id == c.entry_seq).order_by(c.id).limit(limit))
    if partner is not None:
        query = query.where(partner_co.c.code == partner)
    if period is not None:
        start, end = parse_period(period)
        query = query.where(c.window_end >= start, c.window_end <= end)
    with db.read() as conn:
        return [ClearingItem(*row) for row in conn.execute(query)]
