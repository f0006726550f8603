"""Alerts raised when a rating period ends, not by a line: budget underrun and run rate.

Allowance and budget *overrun* alerts are raised by the line that crosses the mark
(usage/service.py). What did *not* happen can only be seen once the period is over, so a
month's evaluation (``ecoledger usage period-alerts --period P``, job ``usage-period-alerts``)
looks at every usage component whose rating period ended in that month, on a contract active
on the period's last day:

- **underrun**: the component has a budget, and the period's rated usage is below
  ``underrun_percent`` of it (no usage at all included);
- **run_rate_high** / **run_rate_low**: the period's rated usage is above ``high_percent``
  or below ``low_percent`` of the mean of the component's previous periods with usage (up
  to ``history`` of them). A component without history has no run rate yet.

Each alert is raised once per component, period and kind: evaluating a month again raises
nothing new.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import Connection, insert, select

from contracts.billing_periods import billing_period
from contracts.events import status_changes, status_on
from contracts.schema import contracts, price_plans
from contracts.service import load_contract
from ledger import audit
from ledger.database import Database
from ledger.money import format_amount
from ledger.periods import parse_period
from usage.rating import PLAN_PERIOD_FREQUENCY
from usage.schema import usage_alerts, usage_counters


class Thresholds(NamedTuple):
    underrun_percent: int = 50
    high_percent: int = 150
    low_percent: int = 50
    history: int = 3


class PeriodAlertReport(NamedTuple):
    period: str
    components: int  # usage components whose rating period ended in the month
    raised: list[dict]


def evaluate_period_alerts(db: Database, period: str, *, actor: str,
                           thresholds: Thresholds = Thresholds()) -> PeriodAlertReport:
    month_start, month_end = parse_period(period)
    raised: list[dict] = []
    evaluated = 0
    now = dt.datetime.now(dt.UTC)
    with db.write() as conn:
        plans = {code: json.loads(document).get("period") for code, document in
                 conn.execute(select(price_plans.c.code, price_plans.c.document))}
        codes = conn.execute(select(contracts.c.code).where(contracts.c.start_date <= month_end)
                             .order_by(contracts.c.code)).scalars().all()
        for code in codes:
            contract = load_contract(conn, code)
            if contract.end is not None and contract.end < month_start:
                continue
            changes = status_changes(conn, contract.id)
            for component in contract.version_at(month_end).components:
                if component["type"] != "usage":
                    continue
                frequency = PLAN_PERIOD_FREQUENCY.get(plans.get(component["price_plan"]) or "",
                                                      contract.billing_frequency)
                start, end = billing_period(month_end, start=contract.start, frequency=frequency,
                                            billing_day=contract.billing_day)
                if end > month_end:  # the period containing the month's end is not over: the one before may be
                    start, end = billing_period(start - dt.timedelta(days=1), start=contract.start,
                                                frequency=frequency, billing_day=contract.billing_day)
                if not month_start <= end <= month_end or status_on(changes, end)[0] != "active":
                    continue
                evaluated += 1
                for alert in _alerts(conn, contract, component, start, thresholds):
                    if _new(conn, alert):
                        conn.execute(insert(usage_alerts).values(**alert, raised_at=now))
                        raised.append({**alert, "contract": contract.code})
        audit.record(conn, actor=actor, action="usage.period_alerts", target=period,
                     details={"components": evaluated, "raised": len(raised)})
    return PeriodAlertReport(period, evaluated, raised)


def _alerts(conn: Connection, contract, component: dict, start: dt.date, thresholds: Thresholds) -> list[dict]:
    c = usage_counters.c
    key = (c.contract_id == contract.id, c.component == component["code"])
    used = conn.execute(select(c.amount_minor).where(*key, c.period_start == start)).scalar() or 0
    base = {"contract_id": contract.id, "component": component["code"], "period_start": start, "line_id": None}
    currency = contract.currency
    alerts = []
    budget = component.get("budget_minor")
    if budget and used * 100 < budget * thresholds.underrun_percent:
        alerts.append({**base, "kind": "underrun", "threshold_percent": thresholds.underrun_percent,
                       "limit_text": format_amount(budget, currency), "used_text": format_amount(used, currency)})
    earlier = conn.execute(select(c.amount_minor).where(*key, c.period_start < start, c.amount_minor > 0)
                           .order_by(c.period_start.desc()).limit(thresholds.history)).scalars().all()
    if earlier:
        mean = Decimal(sum(earlier)) / len(earlier)
        rate = {"limit_text": f"{format_amount(int(mean.to_integral_value()), currency)} mean of {len(earlier)}",
                "used_text": format_amount(used, currency)}
        if used * 100 > mean * thresholds.high_percent:
            alerts.append({**base, **rate, "kind": "run_rate_high", "threshold_percent": thresholds.high_percent})
        elif used * 100 < mean * thresholds.low_percent:
            alerts.append({**base, **rate, "kind": "run_rate_low", "threshold_percent": thresholds.low_percent})
    return alerts


def _new(conn: Connection, alert: dict) -> bool:
    a = usage_alerts.c
    return conn.execute(select(a.id).where(
        a.contract_id == alert["contract_id"], a.component == alert["component"],
        a.period_start == alert["period_start"], a.kind == alert["kind"])).first() is None


def thresholds_from(settings) -> Thresholds:
    return Thresholds(settings.usage_underrun_percent, settings.usage_run_rate_high_percent,
                      settings.usage_run_rate_low_percent, settings.usage_run_rate_periods)
