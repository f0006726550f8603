"""A contract's revenue schedule under IFRS 15. Pure: a function of the contract, its status
events, the charges its events posted, the standalone selling price table and the policies.

**Performance obligations** come from the contract's components:

- a ``recurring_fee`` is a series of distinct service periods (15.22(b)), satisfied over time
  and recognised ratably over each billing period, spread over the months by the day-count
  policy (``actual_days`` or ``equal_months``);
- a ``one_off_fee`` charged when the contract starts is satisfied at a point in time (its
  date), unless the contract records the judgement that it is not a distinct good
  (``recognition: {pattern: over_time, months: N, reason: ...}``: an up-front fee recognised
  over the N months of service it relates to, 15.B48-B51);
- ``usage`` is variable consideration allocated entirely to the period the usage relates to
  (15.84-85, B63): the usage posting recognises it, and the schedule does not restate it.

**Transaction price and allocation.** An open-ended contract is enforceable one billing
period at a time (a party may end it at the period's end), so each billing period is an
allocation window: its fixed consideration is the fees billed for it (as billing computes
them: the version in force, proration, discounts) and the one-off fees charged in it. A
contract with an end date is enforceable for its term: its whole term is allocated at once
(each component's fees over the term, weighed by its standalone selling price over the
term), then each component's part is spread over its billing periods in proportion to their
fees. An amendment on the separate-contract or prospective path starts a new term of
allocation from its date (15.20, 15.21(a)); a cumulative catch-up does not (15.21(b)).
Either way the price is allocated by relative standalone selling price with largest remainder
(revrec/allocation.py); a discount naming components (``applies_to``) stays with them
(15.82), one that does not is spread over every obligation of the window (15.81). An
obligation without a price in the table is weighed at its contract price, and the schedule
says so (``ssp_method: contract_price``): the close asks the controller to accept that.

**Modifications.** An amendment or termination inside a billing period posts the prorated
difference (contracts/events.py); the schedule recognises it from its date to the period's
end (prospective, 15.21(a)). Amendments from a period's start are new fees of later windows.
"""

from __future__ import annotations

import calendar
import dataclasses
import datetime as dt
from collections.abc import Sequence
from fractions import Fraction
from typing import NamedTuple

from billing.fees import fees_due
from config.limits import REVREC_SCHEDULE_MONTHS_MAX
from contracts.billing_periods import MONTHS_OF, billing_period
from contracts.service import Contract
from ledger.periods import period_of
from ledger.records import E_INVALID, LedgerError, Problem
from revrec.allocation import allocate, integer_weights, split
from revrec.ssp import SspTable

ACTUAL_DAYS, EQUAL_MONTHS = "actual_days", "equal_months"
DAY_COUNTS = (ACTUAL_DAYS, EQUAL_MONTHS)
SUBSCRIPTIONS, ONE_OFF = "Income:Subscriptions", "Income:OneOff"
SERIES, POINT_IN_TIME, OVER_TIME = "series", "point_in_time", "over_time"
CONTRACT_PRICE = "contract_price"
MODIFICATION = "modification"  # the ssp_method of an amendment's or termination's difference
PROSPECTIVE, CUMULATIVE_CATCH_UP = "prospective", "cumulative_catch_up"
_ONE_DAY = dt.timedelta(days=1)


class Charge(NamedTuple):
    """A fixed charge a contract event posted: ``activated`` (one-off fees, revenue when
    posted) or ``amended``/``terminated`` (the prorated difference of a fee billed in
    advance, deferred)."""

    event_type: str
    day: dt.date
    service: str
    amount_minor: int


@dataclasses.dataclass
class Obligation:
    """One obligation of one allocation window."""

    component: str
    service: str
    pattern: str  # series, point_in_time, over_time
    account: str  # the revenue account it is recognised in
    first_day: dt.date  # recognised from (and, point in time, on) this day
    last_day: dt.date
    stated_minor: int  # before discounts
    discount_minor: int
    ssp_weight: int | Fraction  # the standalone selling price for this window, in minor units
    ssp_method: str
    allocated_minor: int = 0
    deferred: bool = False  # billed in advance or a deferred event difference: held as a contract liability


@dataclasses.dataclass
class Window:
    start: dt.date
    end: dt.date
    obligations: list[Obligation]


class Line(NamedTuple):
    """Revenue the schedule recognises in one month for one obligation of one window."""

    component: str
    service: str
    account: str
    window_start: dt.date
    month: str  # YYYY-MM
    amount_minor: int


@dataclasses.dataclass
class Schedule:
    contract: str
    currency: str
    day_count: str
    windows: list[Window]
    lines: list[Line]
    # the amendments' judgements: (version, effective from, path, reason)
    modifications: list[tuple[int, dt.date, str, str]] = dataclasses.field(default_factory=list)

    def recognised(self, through: str) -> dict[tuple[str, str], int]:
        """Cumulative revenue per (service, account) in the months up to ``through``."""
        totals: dict[tuple[str, str], int] = {}
        for line in self.lines:
            if line.month <= through:
                key = (line.service, line.account)
                totals[key] = totals.get(key, 0) + line.amount_minor
        return totals


def contract_schedule(contract: Contract, status_changes: Sequence[tuple[dt.date, str]], charges: Sequence[Charge],
                      ssp: SspTable, segment: str, *, through: dt.date, day_count: str = ACTUAL_DAYS) -> Schedule:
    """The schedule of every billing period that starts on or before ``through``, and of
    the whole term when the contract has an end date (what remains to be recognised)."""
    if day_count not in DAY_COUNTS:
        raise ValueError(f"day count {day_count!r} is not one of {', '.join(DAY_COUNTS)}")
    horizon = contract.end if contract.end is not None else through
    months = (horizon.year - contract.start.year) * 12 + horizon.month - contract.start.month
    if months > REVREC_SCHEDULE_MONTHS_MAX:
        field = "end" if contract.end is not None else "through"
        raise LedgerError(Problem(E_INVALID, field, f"{contract.code}: schedules reach at most "
                                  f"{REVREC_SCHEDULE_MONTHS_MAX} months from the contract's start ({contract.start}); "
                                  f"{horizon} is {months} months after it"))
    terminated = next((day for day, kind in status_changes if kind == "terminated"), None)
    if terminated is not None:
        horizon = min(horizon, terminated)
    windows: dict[tuple[dt.date, dt.date], Window] = {}
    for fee in _fees(contract, status_changes, horizon):
        window = windows.setdefault((fee.period_start, fee.period_end), Window(fee.period_start, fee.period_end, []))
        months = Fraction(MONTHS_OF[contract.billing_frequency] * fee.charged_days, fee.period_days)
        price = ssp.price(fee.component["service"], segment, contract.currency, fee.terms_day)
        window.obligations.append(Obligation(
            fee.component["code"], fee.component["service"], SERIES, SUBSCRIPTIONS, max(fee.period_start, contract.start),
            fee.period_end, fee.gross_minor, fee.discount_minor, *_weight(price, months, fee.gross_minor),
            deferred=fee.timing == "in_advance"))
    for charge in charges:
        if charge.event_type == "activated":
            component = _one_off(contract, charge)
            window = _window_of(windows, contract, charge.day)
            judged = (component or {}).get("recognition") or {}
            price = ssp.price(charge.service, segment, contract.currency, charge.day)
            code = component["code"] if component else charge.service
            if judged.get("pattern") == OVER_TIME:
                last = _add_months(charge.day, int(judged["months"])) - _ONE_DAY
                obligation = Obligation(code, charge.service, OVER_TIME, ONE_OFF, charge.day, last, charge.amount_minor,
                                        0, *_weight(price, 1, charge.amount_minor))
            else:
                obligation = Obligation(code, charge.service, POINT_IN_TIME, ONE_OFF, charge.day, charge.day,
                                        charge.amount_minor, 0, *_weight(price, 1, charge.amount_minor))
            window.obligations.append(obligation)
        elif charge.event_type in ("amended", "terminated"):
            # the prorated difference of a fee: recognised from the change to the period's end
            window = _window_of(windows, contract, charge.day)
            code = next((o.component for o in window.obligations if o.service == charge.service), charge.service)
            window.obligations.append(Obligation(code, charge.service, SERIES, SUBSCRIPTIONS, charge.day, window.end,
                                                 charge.amount_minor, 0, 0, MODIFICATION, charge.amount_minor, True))
    ordered = [windows[key] for key in sorted(windows)]
    if contract.end is None:
        for window in ordered:
            # a modification's difference keeps its amount: it is not reallocated
            _allocate(window, contract, [o for o in window.obligations if o.ssp_method != MODIFICATION])
    else:
        for segment in _term_segments(contract, ordered):
            _allocate_term(segment, contract)
    lines = [line for window in ordered for obligation in window.obligations
             for line in _recognise(obligation, window, day_count)]
    modifications = [(v.version, v.effective_from, *_path(v)) for v in contract.versions[1:]]
    for _version, effective_from, path, _reason in modifications:
        if path == CUMULATIVE_CATCH_UP and contract.end is not None:
            lines = _caught_up(lines, contract.start, min(contract.end, terminated or contract.end), effective_from,
                               day_count)
    return Schedule(contract.code, contract.currency, day_count, ordered, lines, modifications)


def _path(version) -> tuple[str, str]:
    """An amendment's path and reason; prospective when the contract records none."""
    if version.modification:
        return version.modification["path"], version.modification["reason"]
    return PROSPECTIVE, "default: the remaining services are distinct (IFRS 15.21(a))"


def _progress(total_minor: int, months: list[tuple[str, int | Fraction]]) -> dict[str, int]:
    """Revenue per month by the measure of progress: each month's cumulative share of the
    term, rounded half-up, less the month before's, so every cumulative figure is the
    rounded exact one and the months add up to the total."""
    whole = sum((Fraction(w) for _, w in months), Fraction(0))
    found, elapsed, before = {}, Fraction(0), 0
    for month, weight in months:
        elapsed += Fraction(weight)
        cumulative = _round_half_up(total_minor * elapsed / whole)
        found[month] = cumulative - before
        before = cumulative
    return found


def _round_half_up(value: Fraction) -> int:
    sign = -1 if value < 0 else 1
    return sign * int(abs(value) + Fraction(1, 2))


def _caught_up(lines: list[Line], first: dt.date, last: dt.date, effective_from: dt.date, day_count: str) -> list[Line]:
    """IFRS 15.21(b): from the modification on, each recurring fee is one obligation over
    the contract's whole term, its price all the term's fees (as amended), measured by time
    elapsed. The months before the modification keep what they recognised; the
    modification's month catches up the difference; later months recognise the rest
    ratably. The total is unchanged, to the cent."""
    month_of_change = period_of(effective_from)
    months = month_weights(first, last, day_count)
    result = [line for line in lines if line.account != SUBSCRIPTIONS]
    for component, service in sorted({(line.component, line.service) for line in lines
                                       if line.account == SUBSCRIPTIONS}):
        own = [line for line in lines if line.account == SUBSCRIPTIONS and line.component == component]
        before = [line for line in own if line.month < month_of_change]
        total = sum(line.amount_minor for line in own)
        spread = _progress(total, months)
        result += before
        earlier = sum(line.amount_minor for line in before)
        due = sum(amount for month, amount in spread.items() if month <= month_of_change) - earlier
        if due:
            result.append(Line(component, service, SUBSCRIPTIONS, first, month_of_change, due))
        result += [Line(component, service, SUBSCRIPTIONS, first, month, amount)
                   for month, amount in spread.items() if month > month_of_change and amount]
        # lines outside the term (none, normally) keep their amount in the last month
        outside = total - sum(line.amount_minor for line in result if line.account == SUBSCRIPTIONS
                              and line.component == component)
        if outside:
            result.append(Line(component, service, SUBSCRIPTIONS, first, period_of(last), outside))
    return result


def _fees(contract: Contract, status_changes, horizon: dt.date):
    """The fees billing charges for every billing period starting by the horizon: one call
    of billing's own rule over the whole span (in-arrears periods end up to a billing period
    after the horizon)."""
    first = contract.start.replace(day=1)
    stop = _add_months(horizon.replace(day=1), MONTHS_OF[contract.billing_frequency] + 1) - _ONE_DAY
    for fee in fees_due(contract, status_changes, first, stop):
        if fee.period_start <= horizon:
            yield fee


def _weight(price, months: int | Fraction, stated_minor: int) -> tuple[int | Fraction, str]:
    if price is None:
        return stated_minor, CONTRACT_PRICE
    if price.method == "residual":
        return -1, "residual"  # computed in _allocate
    weight = Fraction(price.amount_minor) * (months if price.per == "month" else 1)
    # integral weights stay integers: the allocation's arithmetic is then plain integers
    return (int(weight) if weight.denominator == 1 else weight), price.method


def _allocate(window: Window, contract: Contract, obligations: list[Obligation]) -> None:
    if not obligations:
        return
    stated = [o.stated_minor for o in obligations]
    price = sum(stated) - sum(o.discount_minor for o in obligations)
    residual = [o for o in obligations if o.ssp_method == "residual"]
    if residual:
        # 15.79(c): what the price leaves after the others' standalone selling prices
        left = max(Fraction(price) - sum((o.ssp_weight for o in obligations if o.ssp_method != "residual"), Fraction(0)),
                   Fraction(0))
        for obligation, part in zip(residual, split(int(left), [1] * len(residual)), strict=True):
            obligation.ssp_weight = part
    targeted = _targeted(contract, window)
    discounts = []
    for index, obligation in enumerate(obligations):
        if obligation.discount_minor:
            to = [index] if obligation.component in targeted else list(range(len(obligations)))
            discounts.append((obligation.discount_minor, to))
    weights = integer_weights([o.ssp_weight for o in obligations])
    for obligation, part in zip(obligations, allocate(stated, weights, discounts), strict=True):
        obligation.allocated_minor = part


def _term_segments(contract: Contract, windows: list[Window]) -> list[list[Window]]:
    """A fixed-term contract's windows grouped by allocation term: from the start, and anew
    from each amendment that is a separate contract or prospective."""
    starts = [contract.start] + [v.effective_from for v in contract.versions[1:] if _path(v)[0] != CUMULATIVE_CATCH_UP]
    segments: dict[dt.date, list[Window]] = {}
    for window in windows:
        begins = max(day for day in starts if day <= max(window.start, contract.start))
        segments.setdefault(begins, []).append(window)
    return [segments[day] for day in sorted(segments)]


def _allocate_term(windows: list[Window], contract: Contract) -> None:
    """Allocate a term's price over its components at once, then each component's part over
    its obligations (one per billing period, or the one-off) in proportion to their fees."""
    members: dict[tuple[str, str], list[Obligation]] = {}
    for window in windows:
        for obligation in window.obligations:
            if obligation.ssp_method != MODIFICATION:
                members.setdefault((obligation.component, obligation.pattern), []).append(obligation)
    if not members:
        return
    groups = []
    for (component, pattern), found in members.items():
        residual = any(o.ssp_method == "residual" for o in found)
        weight = -1 if residual else sum((Fraction(o.ssp_weight) for o in found), Fraction(0))
        method = "residual" if residual else (CONTRACT_PRICE if any(o.ssp_method == CONTRACT_PRICE for o in found)
                                              else found[0].ssp_method)
        groups.append(Obligation(component, found[0].service, pattern, found[0].account, found[0].first_day,
                                 found[-1].last_day, sum(o.stated_minor for o in found),
                                 sum(o.discount_minor for o in found),
                                 int(weight) if isinstance(weight, int) or weight.denominator == 1 else weight, method))
    term = Window(windows[0].start, windows[-1].end, groups)
    _allocate(term, contract, groups)
    for group, found in zip(groups, members.values(), strict=True):
        weights = [o.stated_minor for o in found]
        if not any(weights):
            weights = [1] * len(found)
        for obligation, part in zip(found, split(group.allocated_minor, weights), strict=True):
            obligation.allocated_minor = part


def _targeted(contract: Contract, window: Window) -> set[str]:
    """Components whose discounts name them (``applies_to``): those discounts stay with them."""
    version = contract.version_at(max(window.start, contract.start))
    return {code for c in version.components if c["type"] == "discount" for code in (c.get("applies_to") or ())}


def _recognise(obligation: Obligation, window: Window, day_count: str) -> list[Line]:
    amount = obligation.allocated_minor
    if not amount:
        return []
    if obligation.pattern == POINT_IN_TIME:
        return [Line(obligation.component, obligation.service, obligation.account, window.start,
                     period_of(obligation.first_day), amount)]
    months = month_weights(obligation.first_day, obligation.last_day, day_count)
    parts = split(amount, [w for _, w in months])
    return [Line(obligation.component, obligation.service, obligation.account, window.start, month, part)
            for (month, _), part in zip(months, parts, strict=True) if part]


def month_weights(first: dt.date, last: dt.date, day_count: str) -> list[tuple[str, Fraction]]:
    """The months ``first``..``last`` touches, each with its weight: its days in the span
    (actual_days), or its share of a month (equal_months: a whole month 1, a part month its
    days over the month's days)."""
    result = []
    month = first.replace(day=1)
    while month <= last:
        days_in = calendar.monthrange(month.year, month.month)[1]
        start, end = max(first, month), min(last, month.replace(day=days_in))
        days = (end - start).days + 1
        result.append((period_of(month), days if day_count == ACTUAL_DAYS else (
            1 if days == days_in else Fraction(days, days_in))))
        month = month.replace(day=days_in) + _ONE_DAY
    return result


def _window_of(windows: dict, contract: Contract, day: dt.date) -> Window:
    for (start, end), window in windows.items():
        if start <= day <= end:
            return window
    span = billing_period(day, start=contract.start, frequency=contract.billing_frequency,
                          billing_day=contract.billing_day)
    return windows.setdefault(span, Window(span[0], span[1], []))


def _one_off(contract: Contract, charge: Charge) -> dict | None:
    version = contract.version_at(charge.day)
    return next((c for c in version.components if c["type"] == "one_off_fee" and c["service"] == charge.service), None)


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return dt.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))
