"""JSON shapes of schedules and close runs (CLI and API), and the API's requests."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from ledger.money import format_amount
from ledger.schemas import COMPANY_CODE, PERIOD
from partners.schemas import canonical_decimal
from revrec.close import CHECKS, REASON_CHARS_MAX
from revrec.estimates import EstimateSchema
from revrec.schedule import MODIFICATION

CODE = COMPANY_CODE


def _amount(value: int, currency: str) -> str:
    return format_amount(value, currency)


class ScheduleSchema(Schema):
    contract = fields.String()
    currency = fields.String()
    day_count = fields.String(metadata={"description": "actual_days or equal_months"})
    windows = fields.Method("_windows", metadata={"description": "allocation windows (billing periods) with their "
                                                                 "obligations and the price allocated to each"})
    lines = fields.Method("_lines", metadata={"description": "revenue recognised per obligation and month"})
    modifications = fields.Method("_modifications", metadata={
        "description": "each amendment's path (separate_contract, prospective, cumulative_catch_up) and reason"})

    def _modifications(self, schedule) -> list[dict]:
        return [{"version": version, "effective_from": day.isoformat(), "path": path, "reason": reason}
                for version, day, path, reason in schedule.modifications]

    def _windows(self, schedule) -> list[dict]:
        return [{"start": w.start.isoformat(), "end": w.end.isoformat(), "obligations": [
            {"component": o.component, "service": o.service, "pattern": o.pattern, "account": o.account,
             "first_day": o.first_day.isoformat(), "last_day": o.last_day.isoformat(),
             "stated": _amount(o.stated_minor, schedule.currency),
             "discount": _amount(o.discount_minor, schedule.currency),
             "ssp": None if o.ssp_method == MODIFICATION else _amount(int(o.ssp_weight), schedule.currency),
             "ssp_method": o.ssp_method, "allocated": _amount(o.allocated_minor, schedule.currency),
             "deferred": o.deferred} for o in w.obligations]} for w in schedule.windows]

    def _lines(self, schedule) -> list[dict]:
        return [{"component": line.component, "service": line.service, "account": line.account,
                 "window_start": line.window_start.isoformat(), "month": line.month,
                 "amount": _amount(line.amount_minor, schedule.currency)} for line in schedule.lines]


class CheckSchema(Schema):
    name = fields.String()
    status = fields.String(metadata={"description": "passed, failed or accepted"})
    detail = fields.String()
    accepted_by = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)


class RecognitionEntrySchema(Schema):
    contract = fields.String()
    currency = fields.String()
    revenue = fields.Method("_revenue", metadata={"description": "revenue this entry recognised (negative: reversed)"})
    released = fields.Method("_released", metadata={"description": "taken from the contract liability"})
    accrued = fields.Method("_accrued", metadata={"description": "added to the contract asset (unbilled)"})
    amortised = fields.Method("_amortised", metadata={
        "description": "capitalised contract costs amortised (a termination's write-off included)"})
    refund = fields.Method("_refund", metadata={
        "description": "added to the refund liability by the estimates of variable consideration (negative: released)"})
    entry = fields.String()

    def _revenue(self, item) -> str:
        return format_amount(item.revenue_minor, item.currency)

    def _released(self, item) -> str:
        return format_amount(item.released_minor, item.currency)

    def _accrued(self, item) -> str:
        return format_amount(item.accrued_minor, item.currency)

    def _amortised(self, item) -> str:
        return format_amount(item.amortised_minor, item.currency)

    def _refund(self, item) -> str:
        return format_amount(item.refund_minor, item.currency)


class ScenarioDocumentSchema(Schema):
    percent = fields.Function(lambda s: canonical_decimal(s.percent))
    probability = fields.Function(lambda s: canonical_decimal(s.probability))


class EstimateDocumentSchema(Schema):
    contract = fields.String()
    effective_from = fields.String(metadata={"description": "the month from which it applies (YYYY-MM)"})
    kind = fields.String()
    method = fields.String()
    scenarios = fields.List(fields.Nested(ScenarioDocumentSchema))
    estimate_percent = fields.Function(lambda e: canonical_decimal(e.estimate_percent),
                                       metadata={"description": "the scenarios by the method"})
    constraint_percent = fields.Function(lambda e: canonical_decimal(e.constraint_percent))
    withheld_percent = fields.Function(lambda e: canonical_decimal(e.withheld_percent),
                                       metadata={"description": "kept out of revenue: estimate and constraint"})
    services = fields.List(fields.String())
    reason = fields.String()
    recorded_at = fields.DateTime()
    recorded_by = fields.String()


class EstimateRequestSchema(EstimateSchema):
    """An estimate posted to a contract's resource: the contract is the path's."""

    class Meta:
        unknown = RAISE
        exclude = ("contract",)


class CloseReportSchema(Schema):
    company = fields.String()
    period = fields.String()
    run_no = fields.Integer()
    outcome = fields.String(metadata={"description": "closed, blocked, reopened or already_closed"})
    checks = fields.List(fields.Nested(CheckSchema))
    batch = fields.String(allow_none=True, metadata={"description": "the recognition batch: its entries' ids start so"})
    contracts = fields.Integer(metadata={"description": "contracts whose schedules were recomputed"})
    recognitions = fields.List(fields.Nested(RecognitionEntrySchema))
    recognised = fields.Method("_recognised", metadata={"description": "revenue recognised per currency"})

    def _recognised(self, report) -> dict[str, str]:
        return {currency: format_amount(amount, currency) for currency, amount in report.recognised.items()}


class CloseRunSchema(Schema):
    run_no = fields.Integer()
    outcome = fields.String()
    checks = fields.List(fields.Nested(CheckSchema))
    batch = fields.String(allow_none=True)
    entries = fields.Integer()
    recognised = fields.Method("_recognised")
    reason = fields.String(allow_none=True, metadata={"description": "a reopening's reason"})
    acted_at = fields.DateTime()
    acted_by = fields.String()

    def _recognised(self, run) -> dict[str, str]:
        return {currency: format_amount(amount, currency) for currency, amount in run.recognised.items()}


class CloseStatusSchema(Schema):
    company = fields.String()
    period = fields.String()
    status = fields.String(metadata={"description": "open or closed"})
    closed_at = fields.DateTime(allow_none=True)
    closed_by = fields.String(allow_none=True)
    runs = fields.List(fields.Nested(CloseRunSchema))


class CloseRequestSchema(Schema):
    class Meta:
        unknown = RAISE

    company = fields.String(required=True, validate=[validate.Length(1, 32), CODE])
    period = fields.String(required=True, validate=PERIOD)
    accept = fields.Dict(keys=fields.String(validate=validate.OneOf(CHECKS)),
                         values=fields.String(validate=validate.Length(1, REASON_CHARS_MAX)), load_default=dict,
                         metadata={"description": "failed readiness checks accepted, each with the reason"})


class ReopenRequestSchema(Schema):
    class Meta:
        unknown = RAISE

    reason = fields.String(required=True, validate=validate.Length(1, REASON_CHARS_MAX))


class ScheduleArgsSchema(Schema):
    class Meta:
        unknown = RAISE

    through = fields.Date(load_default=None, metadata={"description": "recognised through this day; default today"})


# -- reports ---------------------------------------------------------------------------------


class WaterfallSchema(Schema):
    company = fields.String()
    period = fields.String()
    currency = fields.String()
    months = fields.List(fields.String(), metadata={"description": "recognition months; after `period`: scheduled"})
    cohorts = fields.Method("_cohorts", metadata={"description": "billing period -> month -> amount"})
    totals = fields.Method("_totals", metadata={"description": "month -> amount"})

    def _cohorts(self, fall) -> dict:
        return {cohort: {month: format_amount(amount, fall.currency) for month, amount in row.items()}
                for cohort, row in fall.cohorts.items()}

    def _totals(self, fall) -> dict:
        return {month: format_amount(amount, fall.currency) for month, amount in fall.totals().items()}


def _money(attribute: str, description: str):
    return fields.Function(lambda obj: format_amount(getattr(obj, attribute), obj.currency),
                           metadata={"description": description})


class RollforwardLineSchema(Schema):
    contract = fields.String()
    currency = fields.String()
    opening = _money("opening_minor", "contract liability (positive) or asset (negative) at the month's start")
    billed = _money("billed_minor", "consideration invoiced or charged in the month")
    recognised = _money("recognised_minor", "revenue recognised in the month")
    from_opening_liability = _money("from_opening_liability_minor", "of which out of the opening contract liability")
    catch_up = _money("catch_up_minor", "of which other months' revenue caught up by the close")
    drawn = _money("drawn_minor", "prepaid credit drawn down by invoices")
    closing = _money("closing_minor", "opening + billed - recognised - drawn")


class _ReconciledSchema(Schema):
    """A report reconciled to the ledger: its ``ledger`` and ``difference`` per currency (the
    subclasses declare the two fields with their own descriptions)."""

    def _ledger(self, report) -> dict:
        return {c: format_amount(v, c) for c, v in report.ledger_minor.items()}

    def _difference(self, report) -> dict:
        return {c: format_amount(v, c) for c, v in report.difference_minor.items()}


class RollforwardSchema(_ReconciledSchema):
    company = fields.String()
    period = fields.String()
    lines = fields.List(fields.Nested(RollforwardLineSchema))
    ledger = fields.Method("_ledger", metadata={"description": "per currency: the ledger's contract liabilities less "
                                                              "contract assets at the month's end"})
    difference = fields.Method("_difference", metadata={"description": "ledger less the lines' closing; 0.00 when "
                                                                      "the roll-forward reconciles"})


class DisaggregationLineSchema(Schema):
    service = fields.String()
    partner = fields.String(allow_none=True, metadata={"description": "the vendor delivering the component"})
    region = fields.String(allow_none=True, metadata={"description": "the customer's region (or its organisation's)"})
    timing = fields.String(metadata={"description": "point_in_time, over_time or adjustment"})
    account = fields.String()
    currency = fields.String()
    amount = _money("amount_minor", "revenue in the month")


class DisaggregationSchema(Schema):
    company = fields.String()
    period = fields.String()
    lines = fields.List(fields.Nested(DisaggregationLineSchema))
    totals = fields.Method("_totals", metadata={"description": "per currency: the revenue accounts' movement"})

    def _totals(self, report) -> dict:
        return {c: format_amount(v, c) for c, v in report.totals_minor.items()}


class RpoLineSchema(Schema):
    contract = fields.String()
    currency = fields.String()
    bands = fields.Function(lambda line: {band: format_amount(v, line.currency) for band, v in line.bands_minor.items()})
    total = _money("total_minor", "remaining, all bands")


class RpoSchema(Schema):
    company = fields.String()
    period = fields.String()
    lines = fields.List(fields.Nested(RpoLineSchema))
    totals = fields.Method("_totals")

    def _totals(self, report) -> dict:
        return {c: {band: format_amount(v, c) for band, v in bands.items()} for c, bands in report.totals().items()}


class ContractCostReportLineSchema(Schema):
    contract = fields.String()
    currency = fields.String()
    resellers = fields.List(fields.String(), metadata={"description": "the resellers whose commissions were capitalised"})
    basis = fields.String(metadata={"description": "the amortisation period's basis: judgement, term or missing"})
    months = fields.Integer(allow_none=True, metadata={"description": "the amortisation period, before the expedient"})
    opening = _money("opening_minor", "capitalised costs not yet amortised at the month's start")
    capitalised = _money("capitalised_minor", "costs of obtaining the contract capitalised in the month")
    amortised = _money("amortised_minor", "amortised in the month, a termination's write-off included")
    closing = _money("closing_minor", "opening + capitalised - amortised")


class ContractCostReportSchema(_ReconciledSchema):
    company = fields.String()
    period = fields.String()
    lines = fields.List(fields.Nested(ContractCostReportLineSchema))
    ledger = fields.Method("_ledger", metadata={"description": "per currency: the ledger's contract cost assets"})
    difference = fields.Method("_difference", metadata={"description": "ledger less the lines' closing"})


REPORT_KINDS = ("waterfall", "rollforward", "disaggregation", "rpo", "contract_costs")


class ReportArgsSchema(Schema):
    class Meta:
        unknown = RAISE

    company = fields.String(required=True, validate=[validate.Length(1, 32), CODE])
    period = fields.String(required=True, validate=PERIOD)
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "csv", "pdf"]))


class WaterfallArgsSchema(ReportArgsSchema):
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "csv", "pdf", "png"]),
                           metadata={"description": "png: the chart"})


REPORT_SCHEMAS = {"waterfall": WaterfallSchema(many=True), "rollforward": RollforwardSchema(),
                  "disaggregation": DisaggregationSchema(), "rpo": RpoSchema(),
                  "contract_costs": ContractCostReportSchema()}
