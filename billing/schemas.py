"""JSON shapes of billing runs and invoices (CLI and API)."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from billing.service import BillingPlan, describe, line_kind
from ledger.money import format_amount
from ledger.schemas import PERIOD, money_field
from usage.queries import quantity_text


class BillingReportSchema(Schema):
    run_id = fields.Integer()
    company = fields.String()
    period = fields.String()
    issue_date = fields.Date()
    invoices = fields.List(fields.String(), metadata={"description": "numbers of the invoices issued, in order"})
    usage_lines = fields.Integer(metadata={"description": "usage lines invoiced"})
    fees = fields.Integer(metadata={"description": "billing periods of recurring fees charged"})
    awaiting_approval = fields.List(fields.Dict(), metadata={
        "description": "approval required: customers whose open balance is not approved at its total "
                       "({customer, currency, total_minor})"})
    totals = fields.Dict(keys=fields.String(), values=fields.Integer(),
                         metadata={"description": "invoiced per currency, in minor units"})


class InvoiceLineSchema(Schema):
    line_no = fields.Integer()
    kind = fields.String()
    customer = fields.String(metadata={"description": "whose contract: on a consolidated invoice, an organisation below"})
    cost_centre = fields.String(allow_none=True)
    contract = fields.String()
    component = fields.String()
    service = fields.String()
    description = fields.String()
    quantity = fields.String()
    unit = fields.String()
    amount = money_field("amount_minor")
    usage_lines = fields.Integer(metadata={"description": "usage lines this line invoices"})


class InvoiceSchema(Schema):
    number = fields.String()
    document_type = fields.String(metadata={"description": "invoice or credit_note"})
    credits = fields.String(allow_none=True, metadata={"description": "a credit note: the invoice it credits"})
    reason = fields.String(allow_none=True, metadata={"description": "a credit note: why"})
    cost_centre = fields.String(allow_none=True, metadata={"description": "the invoiced customer's cost centre"})
    company = fields.String()
    customer = fields.String()
    customer_name = fields.String()
    currency = fields.String()
    period = fields.String()
    issue_date = fields.Date()
    due_date = fields.Date()
    total = money_field("total_minor")
    entry_seq = fields.Integer(allow_none=True, metadata={"description": "the entry that posted it"})
    document_hash = fields.String()
    lines = fields.List(fields.Nested(InvoiceLineSchema))


class InvoiceSummarySchema(InvoiceSchema):
    class Meta:
        exclude = ("lines",)


class NotBilledSchema(Schema):
    kind = fields.String(metadata={"description": "usage; fee (a recurring fee's period due); true_up (a minimum "
                                                  "commitment's shortfall); prepayment; event or credit (a contract "
                                                  "event's charge or credit)"})
    contract = fields.String()
    component = fields.String()
    lines = fields.Integer()
    quantity = fields.String()
    amount = money_field("amount_minor")
    currency = fields.String()
    oldest_usage_date = fields.Date(metadata={"description": "a fee: the start of its billing period"})


class NoContractSchema(Schema):
    reason = fields.String(metadata={"description": "the reject code: not_found, unknown_service, contract_not_active"})
    contract = fields.String(allow_none=True)
    lines = fields.Integer()
    quantity = fields.String()
    pre_rated = fields.Dict(keys=fields.String(), values=fields.String(),
                            metadata={"description": "pre-rated amounts per currency (unknown: no such contract), "
                                                     "major units"})


class InactiveServiceSchema(Schema):
    contract = fields.String()
    component = fields.String()
    lines = fields.Integer()
    amount = money_field("amount_minor")
    invoiced = money_field("invoiced_minor")
    currency = fields.String()
    first_date = fields.Date()
    last_date = fields.Date()


class LeakageReportSchema(Schema):
    company = fields.String()
    period = fields.String()
    not_billed = fields.List(fields.Nested(NotBilledSchema))
    no_contract = fields.List(fields.Nested(NoContractSchema))
    inactive_service = fields.List(fields.Nested(InactiveServiceSchema))


class BudgetCapSchema(Schema):
    customer = fields.String()
    currency = fields.String()
    period = fields.String()
    amount = money_field("amount_minor")
    set_at = fields.DateTime()
    set_by = fields.String()


class BudgetCapRequestSchema(Schema):
    """A customer's budget cap for a period's invoices: what they would charge above it is
    carried to the next invoice."""

    class Meta:
        unknown = RAISE

    customer = fields.String(required=True, validate=validate.Length(1, 64))
    period = fields.String(required=True, validate=PERIOD)
    amount = fields.String(required=True, validate=validate.Length(1, 40),
                           metadata={"description": "decimal string in major units, e.g. \"500.00\""})
    currency = fields.String(load_default=None, validate=validate.Regexp(r"^[A-Z]{3}$", error="a currency code"),
                             metadata={"description": "default: the customer's currency"})


class BudgetCapListArgsSchema(Schema):
    customer = fields.String(load_default=None, validate=validate.Length(1, 64))
    period = fields.String(load_default=None, validate=PERIOD)


class DisputeSchema(Schema):
    line_id = fields.String()
    contract = fields.String()
    component = fields.String()
    usage_date = fields.Date()
    amount = money_field("amount_minor")
    currency = fields.String()
    reason = fields.String()
    status = fields.String(metadata={"description": "open, cancelled, credited or accepted"})
    opened_at = fields.DateTime()
    opened_by = fields.String()
    resolved_at = fields.DateTime(allow_none=True)
    resolved_by = fields.String(allow_none=True)
    resolution = fields.String(allow_none=True)
    entry_seq = fields.Integer(allow_none=True, metadata={"description": "cancelled: the entry reversing the line"})
    event_id = fields.String(allow_none=True, metadata={"description": "credited: the credit event, or the credit "
                                                                       "note's number"})
    invoice = fields.String(allow_none=True, metadata={"description": "the invoice that invoiced the line"})


class DisputeRequestSchema(Schema):
    class Meta:
        unknown = RAISE

    line_id = fields.String(required=True, validate=validate.Length(1, 200))
    reason = fields.String(required=True, validate=validate.Length(1, 500))


class DisputeResolutionSchema(Schema):
    class Meta:
        unknown = RAISE

    line_id = fields.String(required=True, validate=validate.Length(1, 200))
    outcome = fields.String(required=True, validate=validate.OneOf(["cancel", "credit", "credit_note", "accept"]))
    resolution = fields.String(load_default="", validate=validate.Length(max=500))
    date = fields.Date(load_default=None, metadata={"description": "dates the reversal or the credit; default today"})


class DisputeListArgsSchema(Schema):
    status = fields.String(load_default=None, validate=validate.OneOf(["open", "cancelled", "credited", "accepted"]))
    contract = fields.String(load_default=None, validate=validate.Length(1, 64))


class CreditNoteRequestSchema(Schema):
    """What to credit: an amount of the invoice, or a line (in full, or an amount of it)."""

    class Meta:
        unknown = RAISE

    reason = fields.String(required=True, validate=validate.Length(1, 500))
    line_no = fields.Integer(load_default=None, strict=True, validate=validate.Range(1, 1_000_000))
    amount = fields.String(load_default=None, validate=validate.Length(1, 40),
                           metadata={"description": "decimal string in major units; default the rest of the line"})
    date = fields.Date(load_default=None, metadata={"description": "issue date; default today"})


class ApprovalSchema(Schema):
    customer = fields.String()
    currency = fields.String()
    period = fields.String()
    total = money_field("total_minor")
    approved_at = fields.DateTime()
    approved_by = fields.String()
    invoice = fields.String(allow_none=True, metadata={"description": "the invoice that used the approval"})


class ApprovalRequestSchema(Schema):
    class Meta:
        unknown = RAISE

    customer = fields.String(required=True, validate=validate.Length(1, 64))
    period = fields.String(required=True, validate=PERIOD)
    total = fields.String(required=True, validate=validate.Length(1, 40),
                          metadata={"description": "the open balance approved, as the preview showed it"})
    currency = fields.String(load_default=None, validate=validate.Regexp(r"^[A-Z]{3}$", error="a currency code"))


class PlannedLineSchema(Schema):
    kind = fields.String()
    customer = fields.String()
    contract = fields.String()
    component = fields.String()
    description = fields.String()
    quantity = fields.String()
    unit = fields.String()
    amount = fields.String()


class PlannedInvoiceSchema(Schema):
    customer = fields.String()
    currency = fields.String()
    total = fields.String()
    lines = fields.List(fields.Nested(PlannedLineSchema))


class BillingPreviewSchema(Schema):
    company = fields.String()
    period = fields.String()
    issue_date = fields.Date()
    invoices = fields.List(fields.Nested(PlannedInvoiceSchema))


class PreviewArgsSchema(Schema):
    company = fields.String(required=True, validate=validate.Length(1, 32))
    period = fields.String(required=True, validate=PERIOD)
    consolidate = fields.Boolean(load_default=None)
    rounding = fields.String(load_default=None, validate=validate.OneOf(["line", "document"]))


def preview_document(company: str, period: str, plan: BillingPlan) -> dict:
    """A billing plan as the preview shows it (JSON-ready)."""
    return BillingPreviewSchema().dump(preview_data(company, period, plan))


def preview_data(company: str, period: str, plan: BillingPlan) -> dict:
    """A billing plan as BillingPreviewSchema dumps it: each invoice a run would issue,
    money in major units."""
    return {"company": company, "period": period, "issue_date": plan.issue_date, "invoices": [
        {"customer": p.customer, "currency": p.currency, "total": format_amount(p.total_minor, p.currency),
         "lines": [{"kind": line_kind(line), "customer": line.customer, "contract": line.contract,
                    "component": line.component, "description": describe(line, p.customer_id, p.currency),
                    "quantity": quantity_text(line.quantity_micro), "unit": line.unit,
                    "amount": format_amount(line.amount_minor, p.currency)} for line in p.lines]}
        for p in plan.invoices]}
