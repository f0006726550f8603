"""Jobs (verify, exports): start answers 202 with the job to poll."""

from __future__ import annotations

import os

from flask import send_file
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from api import database
from api.auth import EXPORT, JOBS_READ, JOBS_RUN, principal, requires, visible_company
from api.problems import ApiProblem
from api.resources.common import accepted
from jobs import service, store
from jobs.kinds import KINDS
from ledger.records import E_NOT_FOUND, Problem, show
from ledger.schemas import JobSchema

blp = Blueprint("jobs", __name__, description="Long-running work: verify, exports")

# Kinds a client may start by name. Exports go through /exports/beancount, which chooses
# the file's place on the server: a client never names a server path.
API_KINDS = ("verify",)
EXPORT_KIND = "export-beancount"


class JobStartSchema(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(API_KINDS))
    params = fields.Dict(load_default=dict)
    dedup_key = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 255))


class JobListArgsSchema(Schema):
    status = fields.String(load_default=None, validate=validate.OneOf(
        [store.QUEUED, store.RUNNING, store.SUCCEEDED, store.FAILED, store.CANCELLED]))
    kind = fields.String(load_default=None, validate=validate.OneOf(sorted(KINDS)))


class ExportInputSchema(Schema):
    company = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 32),
                            metadata={"description": "one company's books (a partner: its own); default all"})


def _visible_job(job_id: str) -> store.Job:
    """The job, if the caller may see it. A partner sees the exports of its own books."""
    job = store.get_job(database(), job_id)
    own = principal().partner_company
    if own is not None and not (job.kind == EXPORT_KIND and job.params.get("company") == own):
        raise ApiProblem(404, f"no job {show(job_id)}", code=E_NOT_FOUND,
                         errors=[Problem(E_NOT_FOUND, "job", f"no job {show(job_id)}")])
    return job


@blp.route("/jobs")
class Jobs(MethodView):
    @requires(JOBS_READ)
    @blp.arguments(JobListArgsSchema, location="query")
    @blp.response(200, JobSchema(many=True))
    def get(self, args):
        """Jobs, newest first."""
        return store.list_jobs(database(), status=args["status"], kind=args["kind"])

    @requires(JOBS_RUN)
    @blp.arguments(JobStartSchema)
    @blp.response(202, JobSchema, description="queued (or the queued or running job with the same key)")
    def post(self, body):
        """Start a job; poll the job it answers (Location) until it finishes."""
        job, created = service.start(database(), body["kind"], body["params"], actor=principal().actor,
                                     dedup_key=body["dedup_key"])
        return accepted(job, created)


@blp.route("/verify")
class Verify(MethodView):
    @requires(JOBS_RUN)
    @blp.response(202, JobSchema)
    def post(self):
        """Start a verify job: every invariant recomputed from the stored rows."""
        return accepted(*service.start(database(), "verify", {}, actor=principal().actor))


@blp.route("/jobs/<job_id>")
class Job(MethodView):
    @requires(EXPORT)
    @blp.response(200, JobSchema)
    def get(self, job_id):
        """A job: status, progress, runs, result or error (a partner: its own exports)."""
        return _visible_job(job_id)


@blp.route("/jobs/<job_id>/cancel")
class CancelJob(MethodView):
    @requires(JOBS_RUN)
    @blp.response(200, JobSchema)
    def post(self, job_id):
        """Cancel a queued job, or stop a running one at its next safe point."""
        return store.cancel_job(database(), job_id, actor=principal().actor)


@blp.route("/jobs/<job_id>/retry")
class RetryJob(MethodView):
    @requires(JOBS_RUN)
    @blp.response(202, JobSchema)
    def post(self, job_id):
        """Run a failed or cancelled job again from the start."""
        return accepted(store.retry_job(database(), job_id, actor=principal().actor), True)


@blp.route("/exports/beancount")
class BeancountExports(MethodView):
    @requires(EXPORT)
    @blp.arguments(ExportInputSchema)
    @blp.response(202, JobSchema)
    def post(self, body):
        """Export the ledger, or one company's books, as a beancount file (a job)."""
        company = body["company"]
        own = principal().partner_company
        if own is not None:
            company = visible_company(company) if company is not None else own
        elif company is not None:
            visible_company(company)
        # The server names the file: under <data_dir>/exports/api/, never a client's path.
        out = f"api/{company or 'all'}.beancount"
        job, created = service.start(database(), EXPORT_KIND, {"out": out, "company": company},
                                     actor=principal().actor)
        return accepted(job, created)


@blp.route("/exports/beancount/<job_id>")
class BeancountExport(MethodView):
    @requires(EXPORT)
    @blp.response(200, content_type="text/plain", description="the beancount file")
    def get(self, job_id):
        """Download the file of a finished export job."""
        job = _visible_job(job_id)
        if job.kind != EXPORT_KIND:
            raise ApiProblem(404, f"job {job_id} is not a beancount export", code=E_NOT_FOUND)
        if job.status != store.SUCCEEDED:
            raise ApiProblem(409, f"job {job_id} is {job.status}; the file exists once it has succeeded", code="not_ready")
        path = job.result["path"]
        if not os.path.isfile(path):
            raise ApiProblem(410, "the file of this export is gone; start a new export", code="gone")
        return send_file(path, mimetype="text/plain; charset=utf-8", as_attachment=True,
                         download_name=f"ecoledger-{job.params.get('company') or 'all'}-{job.id[:8]}.beancount")
