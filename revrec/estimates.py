"""Variable consideration (IFRS 15.50-59, 15.87-90): the controller's estimates of the
consideration a contract's customer will not pay after all (SLA credits, rebates, price
concessions, refunds), recorded per contract and month, and what the close makes of them.

An estimate is an input with its reason, never guessed. It gives the possible outcomes as
percentages of the contract's revenue with their probabilities, and the method that turns
them into one figure (15.53): ``expected_value`` (the probability-weighted sum) or
``most_likely_amount`` (the single most likely outcome; a tie takes the larger reduction).
The constraint (15.56-58) is its own input, ``constraint_percent``: revenue held back on
top of the estimate until the uncertainty resolves. An estimate may name the services it
covers (default: all of the contract's).

Estimates are updated, never edited: a new estimate from a later month (or again for an
open month) replaces the one before it from then on. The row of each is kept.

At each close the close brings the contract's refund liability to what the estimates expect
less what has been credited already:

    expected = sum over the estimates in force of
               round_half_up(revenue to date of their services x (estimate + constraint) / 100)
    credited = the contract's credits, SLA credits and credit notes to date (Income:Adjustments)
    refund liability = max(expected - credited, 0)

and posts the change: Dr ``Income:Adjustments`` / Cr ``Liabilities:RefundLiabilities``.
Revenue to date is the contract's usage, subscription and one-off revenue through the month,
this close's recognition included. A change of estimate is thus caught up cumulatively in
the month it is made (15.88), and a credit granted draws the liability down instead of
reducing revenue twice.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple

from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import Connection, insert, select

from contracts.schema import contracts
from contracts.schemas import LOCAL_CODE
from ledger import audit
from ledger.database import Database
from ledger.hashing import document_hash, document_json
from ledger.periods import parse_period
from ledger.records import E_INVALID, E_NOT_FOUND, LedgerError, Problem, show
from ledger.schema import closed_periods
from ledger.schemas import PERIOD, load_document
from partners.schemas import DecimalText, Percent, canonical_decimal
from revrec.schema import revrec_estimates

KINDS = ("sla_credits", "rebate", "price_concession", "refund")
METHODS = ("expected_value", "most_likely_amount")
SCENARIOS_MAX = 20
REFUND_LIABILITY = "Liabilities:RefundLiabilities"
ADJUSTMENTS = "Income:Adjustments"
_HUNDRED = Decimal(100)


class Scenario(NamedTuple):
    percent: Decimal  # of the revenue, 0 to 100
    probability: Decimal  # 0 to 1


class Estimate(NamedTuple):
    contract: str
    effective_from: str  # YYYY-MM
    kind: str
    method: str
    scenarios: tuple[Scenario, ...]
    constraint_percent: Decimal
    services: tuple[str, ...]  # empty: every service of the contract
    reason: str
    recorded_at: dt.datetime
    recorded_by: str

    @property
    def estimate_percent(self) -> Decimal:
        return estimate_percent(self.method, self.scenarios)

    @property
    def withheld_percent(self) -> Decimal:
        """What the close keeps out of revenue: the estimate and the constraint, at most all."""
        return min(self.estimate_percent + self.constraint_percent, _HUNDRED)

    def covers(self, service: str) -> bool:
        return not self.services or service in self.services


def estimate_percent(method: str, scenarios: tuple[Scenario, ...]) -> Decimal:
    """The estimate by ``method`` (IFRS 15.53)."""
    if method == "expected_value":
        return sum((s.percent * s.probability for s in scenarios), Decimal(0))
    return max(scenarios, key=lambda s: (s.probability, s.percent)).percent


def expected_reduction(estimates: list[Estimate], revenue: dict[str, int]) -> int:
    """What the estimates in force keep out of ``revenue`` (per service, to date)."""
    total = 0
    for estimate in estimates:
        base = sum(amount for service, amount in revenue.items() if estimate.covers(service))
        total += int((Decimal(base) * estimate.withheld_percent / _HUNDRED).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return total


def refund_liability(expected_minor: int, credited_minor: int) -> int:
    """The consideration still expected to be given back: what is expected less what has been
    credited already, never below nothing (credits beyond the estimate reduce revenue as
    they are granted)."""
    return max(expected_minor - credited_minor, 0)


# -- recording estimates ---------------------------------------------------------------------


class ProbabilityField(DecimalText):
    pattern = re.compile(r"(0(\.[0-9]{1,4})?|1(\.0{1,4})?)")
    what = "a probability from 0 to 1 with up to 4 decimals"

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        return Decimal(super()._deserialize(value, attr, data, **kwargs))


class ScenarioSchema(Schema):
    class Meta:
        unknown = "raise"

    percent = Percent(required=True, metadata={"description": "the share of the revenue not paid in this outcome"})
    probability = ProbabilityField(required=True, metadata={
        "description": "0 to 1, up to 4 decimals", "anyOf": [{"type": "string"}, {"type": "integer"}]})


class EstimateSchema(Schema):
    """An estimate of variable consideration for one contract from one month on."""

    class Meta:
        unknown = "raise"

    contract = fields.String(required=True, validate=LOCAL_CODE)
    effective_from = fields.String(required=True, validate=PERIOD)
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    method = fields.String(required=True, validate=validate.OneOf(METHODS))
    scenarios = fields.List(fields.Nested(ScenarioSchema), required=True, validate=validate.Length(1, SCENARIOS_MAX))
    constraint_percent = Percent(load_default=Decimal(0), metadata={
        "description": "revenue held back beyond the estimate until the uncertainty resolves (IFRS 15.56)"})
    services = fields.List(fields.String(validate=LOCAL_CODE), load_default=list, validate=validate.Length(max=50),
                           metadata={"description": "the services it covers; default all"})
    reason = fields.String(required=True, validate=validate.Length(1, 500))

    @validates_schema(skip_on_field_errors=True)
    def _probabilities_add_up(self, data: dict, **_: Any) -> None:
        total = sum(s["probability"] for s in data["scenarios"])
        if total != 1:
            raise ValidationError({"scenarios": [f"the probabilities add up to {canonical_decimal(total)}, not 1"]})


def record_estimate(db: Database, document: Any, *, actor: str) -> tuple[Estimate, bool]:
    """Record an estimate; (the estimate, whether it is new). The same estimate again is
    recorded once. A month that its billing company has closed cannot take an estimate:
    record it from the first open month, where the close catches it up."""
    spec = load_document(EstimateSchema(), document, "an estimate")
    parse_period(spec["effective_from"])
    canonical = {**spec, "scenarios": [{"percent": canonical_decimal(s["percent"]),
                                        "probability": canonical_decimal(s["probability"])} for s in spec["scenarios"]],
                 "constraint_percent": canonical_decimal(spec["constraint_percent"]),
                 "services": sorted(set(spec["services"]))}
    digest = document_hash(canonical)
    with db.write() as conn:
        row = conn.execute(select(contracts.c.id, contracts.c.billing_company_id).where(
            contracts.c.code == spec["contract"])).first()
        if row is None:
            raise LedgerError(Problem(E_NOT_FOUND, "contract", f"no contract {show(spec['contract'])}"))
        e = revrec_estimates.c
        latest = conn.execute(select(revrec_estimates).where(
            e.contract_id == row.id, e.kind == spec["kind"]).order_by(e.effective_from.desc(), e.id.desc())).first()
        if latest is not None and latest.document_hash == digest:
            return _estimate(latest, spec["contract"]), False
        closed = conn.execute(select(closed_periods.c.period).where(
            closed_periods.c.company_id == row.billing_company_id, closed_periods.c.period >= spec["effective_from"])
            .order_by(closed_periods.c.period.desc())).scalar()
        if closed is not None:
            raise LedgerError(Problem(E_INVALID, "effective_from", f"{spec['effective_from']} is not open: the billing "
                                      f"company has closed {closed}; record the estimate from the first open month"))
        values = {"contract_id": row.id, "effective_from": spec["effective_from"], "kind": spec["kind"],
                  "method": spec["method"], "scenarios": document_json(canonical["scenarios"]),
                  "constraint_percent": canonical["constraint_percent"],
                  "services": document_json(canonical["services"]), "reason": spec["reason"],
                  "document_hash": digest, "recorded_at": dt.datetime.now(dt.UTC), "recorded_by": actor[:200]}
        conn.execute(insert(revrec_estimates).values(**values))
        audit.record(conn, actor=actor, action="revrec.estimate", target=spec["contract"], details={
            "kind": spec["kind"], "effective_from": spec["effective_from"], "method": spec["method"],
            "constraint_percent": canonical["constraint_percent"]})
        return _estimate(_Row(**values), spec["contract"]), True


class _Row(NamedTuple):
    contract_id: int
    effective_from: str
    kind: str
    method: str
    scenarios: str
    constraint_percent: str
    services: str
    reason: str
    document_hash: str
    recorded_at: dt.datetime
    recorded_by: str


def _estimate(row, contract: str) -> Estimate:
    scenarios = tuple(Scenario(Decimal(s["percent"]), Decimal(s["probability"])) for s in json.loads(row.scenarios))
    return Estimate(contract, row.effective_from, row.kind, row.method, scenarios, Decimal(row.constraint_percent),
                    tuple(json.loads(row.services)), row.reason, row.recorded_at, row.recorded_by)


def list_estimates(db: Database, contract: str) -> list[Estimate]:
    """Every estimate recorded for the contract, in the order they take effect."""
    with db.read() as conn:
        contract_id = conn.execute(select(contracts.c.id).where(contracts.c.code == contract)).scalar()
        if contract_id is None:
            raise LedgerError(Problem(E_NOT_FOUND, "contract", f"no contract {show(contract)}"))
        e = revrec_estimates.c
        return [_estimate(row, contract) for row in conn.execute(
            select(revrec_estimates).where(e.contract_id == contract_id).order_by(e.effective_from, e.id))]


def estimates_in_force(conn: Connection, company_id: int, period: str) -> dict[str, list[Estimate]]:
    """Per contract the company bills: the latest estimate of each kind from ``period`` or
    before."""
    e = revrec_estimates.c
    query = (select(revrec_estimates, contracts.c.code).join(contracts, contracts.c.id == e.contract_id)
             .where(contracts.c.billing_company_id == company_id, e.effective_from <= period)
             .order_by(e.contract_id, e.kind, e.effective_from, e.id))
    latest: dict[tuple[str, str], Estimate] = {}
    for row in conn.execute(query):
        latest[(row.code, row.kind)] = _estimate(row, row.code)  # later rows replace earlier ones
    found: dict[str, list[Estimate]] = defaultdict(list)
    for (code, _), estimate in sorted(latest.items()):
        found[code].append(estimate)
    return found
