"""JSON shapes of settlement statements and payments (CLI and API)."""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from ledger.money import format_amount
from ledger.schemas import COMPANY_CODE, PERIOD, money_field
from partners.schemas import canonical_decimal

CODE = COMPANY_CODE


class PaymentSchema(Schema):
    amount = fields.String()
    paid_on = fields.Date()
    reference = fields.String(allow_none=True)
    entry_seq = fields.Integer()


class StatementSchema(Schema):
    number = fields.String()
    partner = fields.String()
    counterparty = fields.String(metadata={"description": "the operator entity the position is with"})
    period = fields.String()
    currency = fields.String()
    version = fields.Integer()
    previous = fields.String(allow_none=True, metadata={"description": "the version this one corrects"})
    latest = fields.Boolean(metadata={"description": "false: a later version corrects it"})
    opening = money_field("opening_minor")
    closing = money_field("closing_minor")
    withheld = money_field("withheld_minor")
    to_settle = fields.Method("_settle", metadata={
        "description": "closing less withheld: what is settled (> 0: the counterparty pays the partner)"})
    amount_due = fields.Method("_due", metadata={"description": "what is left to settle, in major units"})
    direction = fields.Method("_direction", metadata={
        "description": "payout: the counterparty pays the partner; receipt: the partner pays; none"})
    due_date = fields.Date()
    status = fields.String(metadata={"description": "open, partially_settled or settled"})
    paid = money_field("paid_minor")
    issued_at = fields.DateTime()
    issued_by = fields.String()
    document_hash = fields.String()
    lines = fields.Method("_lines", metadata={"description": "each with its section: activity, adjustments, netting "
                                                             "or settlement"})
    sections = fields.Method("_sections", metadata={"description": "per section: its lines' total"})
    withheld_items = fields.Method("_withheld", metadata={
        "description": "usage lines under an open dispute: part of the lines, not settled until resolved"})
    payments = fields.Method("_payments")

    def _settle(self, statement) -> str:
        return format_amount(statement.settle_minor, statement.currency)

    def _due(self, statement) -> str:
        return format_amount(max(statement.outstanding_minor, 0), statement.currency)

    def _direction(self, statement) -> str:
        return "payout" if statement.settle_minor > 0 else "receipt" if statement.settle_minor < 0 else "none"

    def _lines(self, statement) -> list[dict]:
        return [{"line_no": line.line_no, "section": line.section, "contract": line.contract, "service": line.service,
                 "kind": line.kind, "postings": line.postings,
                 "amount": format_amount(line.amount_minor, statement.currency)} for line in statement.lines]

    def _sections(self, statement) -> dict:
        totals: dict[str, int] = {}
        for line in statement.lines:
            totals[line.section] = totals.get(line.section, 0) + line.amount_minor
        return {section: format_amount(amount, statement.currency) for section, amount in totals.items()}

    def _withheld(self, statement) -> list[dict]:
        return [{"usage_line": item.usage_line, "contract": item.contract,
                 "amount": format_amount(item.amount_minor, statement.currency)} for item in statement.withheld]

    def _payments(self, statement) -> list[dict]:
        return [{"amount": format_amount(p.amount_minor, statement.currency), "paid_on": p.paid_on.isoformat(),
                 "reference": p.reference, "entry_seq": p.entry_seq} for p in statement.payments]


class StatementSummarySchema(StatementSchema):
    class Meta:
        exclude = ("lines", "payments", "sections", "withheld_items")


class IssueReportSchema(Schema):
    period = fields.String()
    issued = fields.List(fields.String(), metadata={"description": "statements and new versions issued"})
    unchanged = fields.List(fields.String(), metadata={"description": "statements already issued as they are"})


class IssueRequestSchema(Schema):
    class Meta:
        unknown = RAISE

    period = fields.String(required=True, validate=PERIOD)
    partner = fields.String(load_default=None, validate=[validate.Length(1, 32), CODE])


class StatementListArgsSchema(Schema):
    partner = fields.String(load_default=None, validate=validate.Length(1, 32))
    period = fields.String(load_default=None, validate=PERIOD)
    all_versions = fields.Boolean(load_default=False)


class PaymentRequestSchema(Schema):
    class Meta:
        unknown = RAISE

    amount = fields.String(required=True, validate=validate.Length(1, 40),
                           metadata={"description": "decimal string in major units; the direction follows the statement"})
    date = fields.Date(required=True)
    reference = fields.String(load_default=None, validate=validate.Length(1, 200))


class LineEntriesSchema(Schema):
    statement = fields.String()
    line_no = fields.Integer()
    entries = fields.List(fields.String(), metadata={"description": "external ids of the entries the line sums"})


class ClearingItemSchema(Schema):
    partner = fields.String()
    counterparty = fields.String()
    agreement = fields.String()
    kind = fields.String(metadata={"description": "minimum_guarantee, fixed_cost or commission_tiers"})
    window_start = fields.Date()
    window_end = fields.Date()
    currency = fields.String()
    basis = money_field("basis_minor")
    due = money_field("due_minor")
    amount = money_field("amount_minor")
    entry = fields.String(metadata={"description": "the entry that posted it"})


class ClearingReportSchema(Schema):
    period = fields.String()
    items = fields.List(fields.Nested(ClearingItemSchema), metadata={"description": "posted by this run"})
    unchanged = fields.Integer(metadata={"description": "true-ups due that earlier runs posted in full"})


class ClearingItemArgsSchema(Schema):
    partner = fields.String(load_default=None, validate=validate.Length(1, 32))
    period = fields.String(load_default=None, validate=PERIOD)


class ConsolidatedLineSchema(Schema):
    account = fields.String()
    currency = fields.String()
    group = money_field("group_minor")
    eliminated = money_field("eliminated_minor")
    consolidated = money_field("consolidated_minor")


class EliminationSchema(Schema):
    company = fields.String()
    counterparty = fields.String(allow_none=True, metadata={"description": "null: intercompany revenue or cost"})
    account = fields.String()
    currency = fields.String()
    amount = money_field("amount_minor")


class DifferenceSchema(Schema):
    what = fields.String(metadata={"description": "the pair A/B whose positions do not cancel, or intercompany P&L"})
    currency = fields.String()
    amount = money_field("amount_minor")


class ConsolidationSchema(Schema):
    as_of = fields.Date(allow_none=True)
    group = fields.List(fields.String(), metadata={"description": "the operator entities"})
    lines = fields.List(fields.Nested(ConsolidatedLineSchema))
    eliminations = fields.List(fields.Nested(EliminationSchema))
    differences = fields.List(fields.Nested(DifferenceSchema), metadata={"description": "empty when everything cancels"})


class ConsolidationArgsSchema(Schema):
    as_of = fields.Date(load_default=None)


class ConversionSchema(Schema):
    partner = fields.String()
    currency = fields.String()
    amount = fields.Function(lambda c: format_amount(c.amount_minor, c.currency))
    to_currency = fields.String()
    converted = fields.Function(lambda c: format_amount(c.converted_minor, c.to_currency))
    rate = fields.Function(lambda c: canonical_decimal(c.rate))
    rate_source = fields.String()
    entry = fields.String()


class UnconvertedSchema(Schema):
    partner = fields.String()
    currency = fields.String()
    to_currency = fields.String(metadata={"description": "the partner's settlement currency: no rate for the cycle"})


class FxRateDocumentSchema(Schema):
    cycle = fields.String()
    currency = fields.String()
    to_currency = fields.String()
    rate = fields.Function(lambda r: canonical_decimal(r.rate))
    rate_date = fields.Date()
    source = fields.String()
    recorded_at = fields.DateTime()
    recorded_by = fields.String()


class FxRateListArgsSchema(Schema):
    class Meta:
        unknown = RAISE

    cycle = fields.String(load_default=None, validate=PERIOD)


class NettingMoveSchema(Schema):
    partner = fields.String()
    counterparty = fields.String(metadata={"description": "the entity the position was with"})
    currency = fields.String()
    amount = money_field("amount_minor")
    withheld = money_field("withheld_minor")
    entry = fields.String()


class NetPositionSchema(Schema):
    participant = fields.String()
    counterparty = fields.String(metadata={"description": "the centre, or (bilateral) the entity"})
    currency = fields.String()
    amount = money_field("amount_minor")
    direction = fields.Function(lambda p: "receive" if p.amount_minor > 0 else "pay",
                                metadata={"description": "receive: the counterparty pays the participant"})


class NettingReportSchema(Schema):
    cycle = fields.String()
    mode = fields.String(metadata={"description": "multilateral (through the centre) or bilateral"})
    centre = fields.String(allow_none=True, metadata={"description": "null when bilateral"})
    moves = fields.List(fields.Nested(NettingMoveSchema))
    positions = fields.List(fields.Nested(NetPositionSchema), metadata={
        "description": "each participant's one amount per currency with the centre"})
    conversions = fields.List(fields.Nested(ConversionSchema), metadata={
        "description": "positions converted into the partner's settlement currency at the cycle's rates"})
    unconverted = fields.List(fields.Nested(UnconvertedSchema), metadata={
        "description": "positions left in their currency for want of a rate"})


class NettingRequestSchema(Schema):
    class Meta:
        unknown = RAISE

    cycle = fields.String(required=True, validate=PERIOD)
    mode = fields.String(load_default="multilateral", validate=validate.OneOf(["multilateral", "bilateral"]))
    centre = fields.String(load_default=None, validate=[validate.Length(1, 32), CODE],
                           metadata={"description": "multilateral: the netting centre (an operator entity)"})

    @validates_schema(skip_on_field_errors=True)
    def _centre_with_multilateral(self, data: dict, **_) -> None:
        if (data["mode"] == "multilateral") != (data.get("centre") is not None):
            raise ValidationError({"centre": ["required for multilateral netting, and only for it"]})
