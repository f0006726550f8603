"""Billing: start a billing run (a job), list and fetch invoices (JSON or CSV)."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from api import database, settings
from api.auth import POST, READ_ALL, principal, requires
from api.problems import ApiProblem
from api.resources.common import DocumentFormatArgsSchema, document_formats, document_response, start_job
from billing import disputes, service
from billing.credit_notes import issue_credit_note
from billing.leakage import leakage_report
from billing.pdf import invoice_pdf
from billing.schemas import (
    ApprovalRequestSchema,
    ApprovalSchema,
    BillingPreviewSchema,
    BudgetCapListArgsSchema,
    BudgetCapRequestSchema,
    BudgetCapSchema,
    CreditNoteRequestSchema,
    DisputeListArgsSchema,
    DisputeRequestSchema,
    DisputeResolutionSchema,
    DisputeSchema,
    InvoiceSchema,
    InvoiceSummarySchema,
    LeakageReportSchema,
    PreviewArgsSchema,
    preview_data,
)
from contracts.rules import DEFAULT_RULES, RuleError, current_rules
from jobs.kinds import BillingRunParams
from ledger.schemas import PERIOD, JobSchema

blp = Blueprint("billing", __name__, description="Billing runs and invoices")


class InvoiceListArgsSchema(Schema):
    company = fields.String(load_default=None, validate=validate.Length(1, 32))
    customer = fields.String(load_default=None, validate=validate.Length(1, 64))
    period = fields.String(load_default=None, validate=PERIOD)


@blp.route("/billing-runs")
class BillingRuns(MethodView):
    @requires(POST)
    @blp.arguments(BillingRunParams)
    @blp.response(202, JobSchema, description="queued (or the queued or running run of the same company and period)")
    def post(self, body):
        """Start a billing run for a company and period as a job; poll the job it answers
        (Location). Its result lists the invoices issued."""
        return start_job("billing-run", body)


class LeakageArgsSchema(Schema):
    company = fields.String(required=True, validate=validate.Length(1, 32))
    period = fields.String(required=True, validate=PERIOD)


@blp.route("/billing/leakage")
class Leakage(MethodView):
    @requires(READ_ALL)
    @blp.arguments(LeakageArgsSchema, location="query")
    @blp.response(200, LeakageReportSchema)
    def get(self, args):
        """The leakage report of a billing company and period: usage posted but not
        invoiced, usage refused for a missing or inactive contract, usage of inactive days."""
        return leakage_report(database(), args["company"], args["period"])


@blp.route("/billing/preview")
class BillingPreview(MethodView):
    @requires(READ_ALL)
    @blp.arguments(PreviewArgsSchema, location="query")
    @blp.response(200, BillingPreviewSchema)
    def get(self, args):
        """Each customer's open balance: the invoices a run would issue now, written nowhere."""
        config = settings()
        plan = service.preview_billing(
            database(), args["company"], args["period"], rules=_rules(),
            consolidate=config.invoice_consolidate if args["consolidate"] is None else args["consolidate"],
            rounding=args["rounding"] or config.invoice_rounding)
        return preview_data(args["company"], args["period"], plan)


@blp.route("/billing/approvals")
class Approvals(MethodView):
    @requires(READ_ALL)
    @blp.arguments(BudgetCapListArgsSchema, location="query")
    @blp.response(200, ApprovalSchema(many=True))
    def get(self, args):
        """Approved open balances, and the invoice that used each."""
        return service.list_approvals(database(), customer=args["customer"], period=args["period"])

    @requires(POST)
    @blp.arguments(ApprovalRequestSchema)
    @blp.response(200, ApprovalSchema)
    def post(self, body):
        """Approve a customer's open balance for a period at a total. A run requiring
        approval invoices it at exactly that total; a changed balance waits."""
        return service.approve_balance(database(), body["customer"], body["period"], body["total"],
                                       currency=body["currency"], actor=principal().actor)


def _rules():
    try:
        return current_rules(settings().posting_rules or DEFAULT_RULES)
    except RuleError as exc:
        raise ApiProblem(503, f"the server's posting rules are refused: {exc}", code="rules_unavailable") from None


@blp.route("/billing/caps")
class BudgetCaps(MethodView):
    @requires(READ_ALL)
    @blp.arguments(BudgetCapListArgsSchema, location="query")
    @blp.response(200, BudgetCapSchema(many=True))
    def get(self, args):
        """Budget caps by period and customer."""
        return service.list_caps(database(), customer=args["customer"], period=args["period"])

    @requires(POST)
    @blp.arguments(BudgetCapRequestSchema)
    @blp.response(200, BudgetCapSchema)
    def post(self, body):
        """Cap what a customer's invoices for a period charge; a billing run carries the rest
        to the next invoice without changing recognised revenue. Setting it again replaces it."""
        return service.set_cap(database(), body["customer"], body["period"], body["amount"],
                               currency=body["currency"], actor=principal().actor)


@blp.route("/usage/disputes")
class Disputes(MethodView):
    @requires(READ_ALL)
    @blp.arguments(DisputeListArgsSchema, location="query")
    @blp.response(200, DisputeSchema(many=True))
    def get(self, args):
        """Disputes of usage lines, oldest first."""
        return disputes.list_disputes(database(), status=args["status"], contract=args["contract"])

    @requires(POST)
    @blp.arguments(DisputeRequestSchema)
    @blp.response(201, DisputeSchema)
    def post(self, body):
        """Record a customer's dispute of a usage line: billing runs hold it back until it
        is resolved."""
        return disputes.open_dispute(database(), body["line_id"], body["reason"], actor=principal().actor)


@blp.route("/usage/disputes/resolve")
class DisputeResolution(MethodView):
    @requires(POST)
    @blp.arguments(DisputeResolutionSchema)
    @blp.response(200, DisputeSchema)
    def post(self, body):
        """Resolve an open dispute: cancel (the line's posting is reversed; never invoiced),
        credit (invoiced, and credited on the next invoice) or accept (invoiced as it is)."""
        rules = _rules()
        return disputes.resolve_dispute(database(), body["line_id"], body["outcome"], rules=rules,
                                        actor=principal().actor, resolution=body["resolution"], day=body["date"])


@blp.route("/invoices")
class Invoices(MethodView):
    @requires(READ_ALL)
    @blp.arguments(InvoiceListArgsSchema, location="query")
    @blp.response(200, InvoiceSummarySchema(many=True))
    def get(self, args):
        """Invoices in number order."""
        return service.list_invoices(database(), company=args["company"], customer=args["customer"],
                                     period=args["period"])


@blp.route("/invoices/<number>")
class Invoice(MethodView):
    @requires(READ_ALL)
    @blp.arguments(DocumentFormatArgsSchema, location="query")
    @blp.response(200, InvoiceSchema)
    @document_formats(blp, "the lines as CSV", "the invoice document")
    def get(self, args, number):
        """An invoice with its lines; `format=csv` gives the lines as CSV, `format=pdf` the
        document to send."""
        found = service.get_invoice(database(), number)
        return document_response(found.number, args["format"], lambda font: invoice_pdf(found, font),
                                 service.CSV_COLUMNS, lambda: service.csv_rows(found)) or found


@blp.route("/invoices/<number>/credit-notes")
class CreditNotes(MethodView):
    @requires(POST)
    @blp.arguments(CreditNoteRequestSchema)
    @blp.response(201, InvoiceSchema)
    def post(self, body, number):
        """Issue a credit note against an invoice: an amount of it, or a line of it (the rest
        of the line by default). Never more than the line or the invoice charged."""
        rules = _rules()
        return issue_credit_note(database(), number, reason=body["reason"], rules=rules, actor=principal().actor,
                                 amount=body["amount"], line_no=body["line_no"], day=body["date"])
