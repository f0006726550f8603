"""Revenue recognition and the close: contracts' schedules, close runs (a job), their status
and reopening. Controllers and operator admins close; auditors read; partner keys reach none
of it (a contract's schedule and a company's close are the operator's books)."""

from __future__ import annotations

import datetime as dt

from flask import url_for
from flask.views import MethodView
from flask_smorest import Blueprint

from api import database, settings
from api.auth import CLOSE, READ_ALL, principal, requires
from api.resources.common import enqueue
from jobs import service as jobs_service
from jobs.kinds import CloseParams
from ledger.schemas import JobSchema
from revrec.close import close_status, reopen_close, schedule_of
from revrec.policy import policies
from revrec.schemas import (
    CloseReportSchema,
    CloseStatusSchema,
    ReopenRequestSchema,
    ScheduleArgsSchema,
    ScheduleSchema,
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


@blp.route("/closes")
class Closes(MethodView):
    @requires(CLOSE)
    @blp.arguments(CloseParams)
    @blp.response(202, JobSchema, description="queued (or the queued or running close of the same company and month)")
    def post(self, body):
        """Start the close of a company's month as a job; poll the job it answers
        (Location). A failed readiness check not accepted (``accept``: check -> reason)
        fails the job with the checks; nothing is posted."""
        job, created = jobs_service.start(database(), "close", body, actor=principal().actor)
        if created:
            enqueue(job)
        return job, 202, {"Location": url_for("jobs.Job", job_id=job.id)}


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
                            day_count=policy.day_count, actor=principal().actor)
