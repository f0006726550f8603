"""Settlement statements and payments: operators issue statements and record payments; a
partner reads its own statements (another company's answers 404, as one that does not
exist)."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from api import database
from api.auth import POST, READ, READ_ALL, principal, requires
from api.problems import ApiProblem
from api.resources.common import DocumentFormatArgsSchema, document_formats, document_response, json_body, start_job
from clearing import statements as service
from clearing.consolidation import consolidate
from clearing.fx import FxRateSchema, list_rates, record_rate
from clearing.netting import run_bilateral_netting, run_netting
from clearing.payments import record_payment
from clearing.pdf import statement_pdf
from clearing.run import list_items
from clearing.schemas import (
    ClearingItemArgsSchema,
    ClearingItemSchema,
    ConsolidationArgsSchema,
    ConsolidationSchema,
    FxRateDocumentSchema,
    FxRateListArgsSchema,
    IssueReportSchema,
    IssueRequestSchema,
    LineEntriesSchema,
    NettingReportSchema,
    NettingRequestSchema,
    PaymentRequestSchema,
    StatementListArgsSchema,
    StatementSchema,
    StatementSummarySchema,
)
from jobs.kinds import ClearingRunParams
from ledger.records import E_NOT_FOUND, Problem, show
from ledger.schemas import JobSchema

blp = Blueprint("clearing", __name__, description="Settlement statements and payments")


def _visible(number: str) -> service.Statement:
    """The statement, if the caller may see it: a partner sees only its own."""
    found = service.get_statement(database(), number)
    own = principal().partner_company
    if own is not None and found.partner != own:
        raise ApiProblem(404, f"no statement {show(number)}", code=E_NOT_FOUND,
                         errors=[Problem(E_NOT_FOUND, "statement", f"no statement {show(number)}")])
    return found


@blp.route("/clearing-runs")
class ClearingRuns(MethodView):
    @requires(POST)
    @blp.arguments(ClearingRunParams)
    @blp.response(202, JobSchema, description="queued (or the queued or running run of the same period and partner)")
    def post(self, body):
        """Start a clearing run for a period (every partner, or one) as a job; poll the job
        it answers (Location). Its result lists the items posted."""
        return start_job("clearing-run", body)


@blp.route("/clearing/items")
class ClearingItems(MethodView):
    @requires(READ)
    @blp.arguments(ClearingItemArgsSchema, location="query")
    @blp.response(200, ClearingItemSchema(many=True))
    def get(self, args):
        """What clearing runs posted, with what each was computed from. A partner key lists
        its own."""
        own = principal().partner_company
        if own is not None and args["partner"] not in (None, own):
            return []
        return list_items(database(), partner=own or args["partner"], period=args["period"])


@blp.route("/fx-rates")
class FxRates(MethodView):
    @requires(READ_ALL)
    @blp.arguments(FxRateListArgsSchema, location="query")
    @blp.response(200, FxRateDocumentSchema(many=True))
    def get(self, args):
        """The exchange rates fixed per netting cycle (of one cycle, with ``cycle``)."""
        return list_rates(database(), args["cycle"])

    @requires(POST)
    @blp.doc(requestBody={"required": True, "content": {"application/json": {"schema": FxRateSchema}}})
    @blp.response(201, FxRateDocumentSchema, description="fixed")
    @blp.alt_response(200, schema=FxRateDocumentSchema, description="fixed before at the same rate: nothing changed")
    def post(self):
        """Fix an exchange rate for a netting cycle (never changed: another rate for the same
        cycle and currencies answers 409)."""
        rate, created = record_rate(database(), json_body(), actor=principal().actor)
        return rate, 201 if created else 200


@blp.route("/netting-runs")
class NettingRuns(MethodView):
    @requires(POST)
    @blp.arguments(NettingRequestSchema)
    @blp.response(200, NettingReportSchema)
    def post(self, body):
        """Net a cycle. Multilateral (``centre``): each netting partner's positions with the
        other entities move to the centre, per currency. Bilateral (``mode: bilateral``): each
        partner's due-from and due-to with each entity are offset. Disputed usage is withheld.
        Answers the moves and each participant's one amount per currency and counterparty."""
        if body["mode"] == "bilateral":
            return run_bilateral_netting(database(), body["cycle"], actor=principal().actor)
        return run_netting(database(), body["cycle"], centre=body["centre"], actor=principal().actor)


@blp.route("/consolidation")
class Consolidation(MethodView):
    @requires(READ_ALL)
    @blp.arguments(ConsolidationArgsSchema, location="query")
    @blp.response(200, ConsolidationSchema)
    def get(self, args):
        """The operator entities' trial balance with intercompany eliminations; what does not
        cancel is listed in `differences`."""
        return consolidate(database(), as_of=args["as_of"])


@blp.route("/statements")
class Statements(MethodView):
    @requires(READ)
    @blp.arguments(StatementListArgsSchema, location="query")
    @blp.response(200, StatementSummarySchema(many=True))
    def get(self, args):
        """Statements by period (the latest versions, or all with `all_versions`). A partner
        key lists its own."""
        partner = principal().partner_company or args["partner"]
        if principal().partner_company and args["partner"] not in (None, partner):
            return []
        return service.list_statements(database(), partner=partner, period=args["period"],
                                       latest_only=not args["all_versions"])

    @requires(POST)
    @blp.arguments(IssueRequestSchema)
    @blp.response(200, IssueReportSchema)
    def post(self, body):
        """Issue a period's statements, of every partner or one. Idempotent: nothing new
        unless something changed, and then a new version referring to the previous one."""
        return service.issue_statements(database(), body["period"], partner=body["partner"], actor=principal().actor)


@blp.route("/statements/<number>")
class Statement(MethodView):
    @requires(READ)
    @blp.arguments(DocumentFormatArgsSchema, location="query")
    @blp.response(200, StatementSchema)
    @document_formats(blp, "the lines as CSV", "the statement document")
    def get(self, args, number):
        """A statement with its lines and payments; `format=csv` the lines, `format=pdf` the
        document."""
        found = _visible(number)
        return document_response(found.number, args["format"], lambda font: statement_pdf(found, font),
                                 service.CSV_COLUMNS, lambda: service.csv_rows(found)) or found


@blp.route("/statements/<number>/lines/<int:line_no>/entries")
class StatementEntries(MethodView):
    @requires(READ)
    @blp.response(200, LineEntriesSchema)
    def get(self, number, line_no):
        """The external ids of the entries a statement line sums (its drill-down)."""
        _visible(number)
        return {"statement": number, "line_no": line_no,
                "entries": service.statement_entries(database(), number, line_no)}


@blp.route("/statements/<number>/payments")
class Payments(MethodView):
    @requires(POST)
    @blp.arguments(PaymentRequestSchema)
    @blp.response(201, StatementSchema)
    def post(self, body, number):
        """Record a payout to the partner (or a receipt from it) against a statement: a
        settlement entry in both books. Answers the statement with its new status."""
        return record_payment(database(), number, body["amount"], day=body["date"], actor=principal().actor,
                              reference=body["reference"])
