"""Revenue recognition and the close: contracts' schedules, close runs (a job), their status
and reopening. Controllers and operator admins close; auditors read; partner keys reach none
of it (a contract's schedule and a company's close are the operator's books)."""

from __future__ import annotations

import datetime as dt

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint

from api import database, settings
from api.auth import CLOSE, READ_ALL, principal, requires
from api.resources.common import document_formats, document_response, json_body, start_job
from jobs.kinds import CloseParams
from ledger.schemas import JobSchema
from revrec.close import close_status, reopen_close, schedule_of
from revrec.estimates import list_estimates, record_estimate
from revrec.pdf import report_pdf, waterfall_png
from revrec.policy import policies
from revrec.reports import build_report
from revrec.schemas import (
    REPORT_SCHEMAS,
    CloseReportSchema,
    CloseStatusSchema,
    EstimateDocumentSchema,
    EstimateRequestSchema,
    ReopenRequestSchema,
    ReportArgsSchema,
    ScheduleArgsSchema,
    ScheduleSchema,
    WaterfallArgsSchema,
)

blp = Blueprint("revrec", __name__, description="Revenue recognition (IFRS 15) and the controller's close")


@blp.route("/contracts/<code>/schedule")
class ContractSchedule(MethodView):
    @requires(READ_ALL)
    @blp.arguments(ScheduleArgsSchema, location="query")
    @blp.response(200, ScheduleSchema)
    def get(self, args, code):
        """A contract's revenue schedule: per billing period its performance obligations,
        their standalone selling prices and allocated price; then revenue per month."""
        policy = policies(settings())
        return schedule_of(database(), code, through=args["through"] or dt.date.today(), ssp=policy.ssp,
                           day_count=policy.day_count)


@blp.route("/contracts/<code>/estimates")
class ContractEstimates(MethodView):
    @requires(READ_ALL)
    @blp.response(200, EstimateDocumentSchema(many=True))
    def get(self, code):
        """The contract's estimates of variable consideration, in the order they take effect."""
        return list_estimates(database(), code)

    @requires(CLOSE)
    @blp.doc(requestBody={"required": True, "content": {"application/json": {"schema": EstimateRequestSchema}}})
    @blp.response(201, EstimateDocumentSchema, description="recorded")
    @blp.alt_response(200, schema=EstimateDocumentSchema, description="the same estimate was the latest: nothing changed")
    def post(self, code):
        """Record an estimate of variable consideration (SLA credits, rebates, price
        concessions, refunds) from a month on: outcomes with probabilities, the method, the
        constraint and the reason. The next close brings the refund liability to it."""
        body = json_body()
        estimate, created = record_estimate(database(), {**body, "contract": code} if isinstance(body, dict) else body,
                                            actor=principal().actor)
        return estimate, 201 if created else 200


@blp.route("/closes")
class Closes(MethodView):
    @requires(CLOSE)
    @blp.arguments(CloseParams)
    @blp.response(202, JobSchema, description="queued (or the queued or running close of the same company and month)")
    def post(self, body):
        """Start the close of a company's month as a job; poll the job it answers
        (Location). A failed readiness check not accepted (``accept``: check -> reason)
        fails the job with the checks; nothing is posted."""
        return start_job("close", body)


@blp.route("/closes/<company>/<period>")
class Close(MethodView):
    @requires(READ_ALL)
    @blp.response(200, CloseStatusSchema)
    def get(self, company, period):
        """A month's status and every close run and reopening of it, with their checks."""
        return close_status(database(), company, period)


@blp.route("/closes/<company>/<period>/reopen")
class Reopen(MethodView):
    @requires(CLOSE)
    @blp.arguments(ReopenRequestSchema)
    @blp.response(200, CloseReportSchema)
    def post(self, body, company, period):
        """Reopen the company's latest closed month, with the reason (audited): posts the
        delta batch of what changed since the close. A close run locks it again."""
        policy = policies(settings())
        return reopen_close(database(), company, period, reason=body["reason"], ssp=policy.ssp,
                            day_count=policy.day_count, actor=principal().actor, cost_expedient=policy.cost_expedient)


def _report_view(kind: str, args_schema, doc: str):
    """GET /reports/<kind>: the report as JSON, CSV, PDF (and the waterfall as PNG)."""
    as_png = (blp.alt_response(200, description="format=png: the chart", content_type="image/png",
                               schema={"type": "string", "format": "binary"}, success=True)
              if kind == "waterfall" else (lambda view: view))

    class ReportView(MethodView):
        @requires(READ_ALL)
        @blp.arguments(args_schema, location="query")
        @blp.response(200, REPORT_SCHEMAS[kind])
        @document_formats(blp, "the report's table", "the report as a document")
        @as_png
        def get(self, args):
            policy = policies(settings())
            found, table = build_report(database(), kind, args["company"], args["period"], ssp=policy.ssp,
                                        day_count=policy.day_count)
            name = f"{kind}-{args['company']}-{args['period']}"
            if args["format"] == "png":
                return Response(waterfall_png(found), mimetype="image/png",
                                headers={"Content-Disposition": f'attachment; filename="{name}.png"'})
            return document_response(name, args["format"],
                                     lambda font: report_pdf(table, args["company"], args["period"], font),
                                     table.columns, lambda: table.rows) or found

    ReportView.get.__doc__ = doc
    ReportView.__name__ = "".join(part.capitalize() for part in kind.split("_")) + "Report"
    return blp.route(f"/reports/{kind}")(ReportView)


WaterfallReport = _report_view("waterfall", WaterfallArgsSchema, "Revenue per month by the billing period it was "
                               "allocated in: recognised up to the month, scheduled after it. `format=png`: the chart.")
RollforwardReport = _report_view("rollforward", ReportArgsSchema, "Each contract's balance through the month, "
                                 "reconciled to the ledger (IFRS 15.118).")
DisaggregationReport = _report_view("disaggregation", ReportArgsSchema, "The month's revenue by service, partner, "
                                    "region and timing (IFRS 15.114).")
RpoReport = _report_view("rpo", ReportArgsSchema, "Remaining performance obligations in time bands (IFRS 15.120).")
ContractCostsReport = _report_view("contract_costs", ReportArgsSchema, "Each contract's capitalised costs of obtaining "
                                   "it: opening, capitalised, amortised, closing, reconciled to the ledger (IFRS 15.128).")
