"""Usage: upload usage lines (CSV or JSON lines, streamed), imports, rejects, rated lines,
alerts and period counters. The same services as `ecoledger import usage` and `ecoledger
usage ...` (docs/usage.md)."""

from __future__ import annotations

import shutil
import uuid

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from api import database, settings
from api.auth import POST, READ_ALL, principal, requires
from api.problems import ApiProblem, from_body_error
from api.resources.common import start_job
from contracts.rules import DEFAULT_RULES, RuleError, current_rules
from jobs.kinds import upload_path
from ledger.records import LedgerError
from ledger.schemas import JobSchema
from usage import queries
from usage.lines import HeaderError, read_lines
from usage.period_alerts import evaluate_period_alerts, thresholds_from
from usage.schemas import (
    AlertSchema,
    CounterSchema,
    ImportReportSchema,
    PeriodAlertArgsSchema,
    PeriodAlertReportSchema,
    RatedLineSchema,
    RejectSchema,
    UsageImportSchema,
)
from usage.service import LATE_POLICIES, POSTING_MODES, Options, import_usage, options_from, resubmit_rejects

CSV_TYPES = ("text/csv",)
JSONL_TYPES = ("application/x-ndjson", "application/jsonl", "application/json", "text/plain")

blp = Blueprint("usage", __name__, description="Usage lines: upload, mediation, rating, rejects, alerts")


class UploadArgsSchema(Schema):
    format = fields.String(load_default=None, validate=validate.OneOf(["csv", "jsonl"]),
                           metadata={"description": "csv or jsonl; default from the Content-Type (text/csv: csv)"})
    posting = fields.String(load_default=None, validate=validate.OneOf(POSTING_MODES),
                            metadata={"description": "line or aggregated; default the usage_posting setting"})
    late_policy = fields.String(load_default=None, validate=validate.OneOf(LATE_POLICIES),
                                metadata={"description": "default the usage_late_policy setting"})
    source = fields.String(load_default="upload", validate=validate.Length(1, 200),
                           metadata={"description": "a name for the upload, shown in the import list"})


class ResubmitArgsSchema(Schema):
    import_id = fields.Integer(data_key="import", load_default=None, validate=validate.Range(1, queries.IMPORT_ID_MAX))
    posting = fields.String(load_default=None, validate=validate.OneOf(POSTING_MODES))
    late_policy = fields.String(load_default=None, validate=validate.OneOf(LATE_POLICIES))


class RejectArgsSchema(Schema):
    import_id = fields.Integer(data_key="import", load_default=None, validate=validate.Range(1, queries.IMPORT_ID_MAX))
    status = fields.String(load_default="open", validate=validate.OneOf(["open", "resolved", "resubmitted", "all"]))


class LineArgsSchema(Schema):
    contract = fields.String(load_default=None, validate=validate.Length(1, 64))
    import_id = fields.Integer(data_key="import", load_default=None, validate=validate.Range(1, queries.IMPORT_ID_MAX))
    entry = fields.Integer(load_default=None, validate=validate.Range(1, 2**62))
    date_from = fields.Date(data_key="from", load_default=None)
    date_to = fields.Date(data_key="to", load_default=None)
    limit = fields.Integer(load_default=1_000, validate=validate.Range(1, queries.ROWS_LISTED_MAX))


class AlertArgsSchema(Schema):
    contract = fields.String(load_default=None, validate=validate.Length(1, 64))


class ImportListArgsSchema(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(1, queries.ROWS_LISTED_MAX))


def _options(posting: str | None, late_policy: str | None) -> Options:
    try:
        rules = current_rules(settings().posting_rules or DEFAULT_RULES)
    except RuleError as exc:
        raise ApiProblem(503, f"the server's posting rules are refused: {exc}", code="rules_unavailable") from None
    try:
        return options_from(settings(), rules, principal().actor, posting=posting, late_policy=late_policy)
    except LedgerError as error:
        raise ApiProblem(503, f"the server's usage settings are refused: {error}", code="settings_unavailable") from None


def _file_format(asked: str | None) -> str:
    """csv or jsonl: as asked, else from the Content-Type (text/csv is CSV)."""
    content_type = (request.mimetype or "").lower()
    if asked is None and content_type and content_type not in CSV_TYPES + JSONL_TYPES:
        raise ApiProblem(415, f"send text/csv or application/x-ndjson, not {content_type}", code="unsupported_media_type")
    return asked or ("csv" if content_type in CSV_TYPES else "jsonl")


def _answer(report):
    document = ImportReportSchema().dump(report)
    return document, 201 if report.ok else 200


_LINES_BODY = {"required": True, "content": {
    "application/x-ndjson": {"schema": {"type": "string", "description": "usage lines, one JSON object per line"}},
    "text/csv": {"schema": {"type": "string", "description": "usage lines with a header row"}},
}}


@blp.route("/usage")
class UsageUpload(MethodView):
    @requires(POST)
    @blp.arguments(UploadArgsSchema, location="query")
    @blp.doc(requestBody=_LINES_BODY)
    @blp.response(201, ImportReportSchema, description="every line posted or a duplicate")
    @blp.alt_response(200, schema=ImportReportSchema,
                      description="some lines rejected (kept in the rejects store); the others posted")
    def post(self, args):
        """Import usage lines from the request body (CSV with a header, or JSON lines),
        streamed, at most 16 MiB. Every line ends posted, duplicate or rejected; rejected
        lines are listed in the report and kept under GET /usage/rejects."""
        file_format = _file_format(args["format"])
        options = _options(args["posting"], args["late_policy"])
        try:
            report = import_usage(database(), read_lines(request.stream, file_format), options=options,
                                  source=f"api: {args['source']}", file_format=file_format)
        except HeaderError as exc:
            raise ApiProblem(400, str(exc), code="malformed") from None
        except LedgerError as error:
            raise from_body_error(error) from None
        return _answer(report)


@blp.route("/usage/uploads")
class UsageUploadJob(MethodView):
    @requires(POST)
    @blp.arguments(UploadArgsSchema, location="query")
    @blp.doc(requestBody=_LINES_BODY)
    @blp.response(202, JobSchema, description="stored and queued: poll the import-usage job (Location)")
    def post(self, args):
        """Upload a large usage file (up to 1 GiB), stored on the server and imported by a
        job: the answer is the job to poll, whose result is the import's report."""
        file_format = _file_format(args["format"])
        _options(args["posting"], args["late_policy"])  # refuse bad server settings now, not in the job
        name = f"{uuid.uuid4().hex}.{file_format}"
        target = upload_path(settings().data_path, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(name + ".partial")
        try:
            with partial.open("wb") as out:
                shutil.copyfileobj(request.stream, out, UPLOAD_CHUNK_BYTES)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
        params = {"file": name, "file_format": file_format, "posting": args["posting"],
                  "late_policy": args["late_policy"], "source": f"api: {args['source']}"}
        return start_job("import-usage", params)


UPLOAD_CHUNK_BYTES = 1024 * 1024


@blp.route("/usage/imports")
class UsageImports(MethodView):
    @requires(READ_ALL)
    @blp.arguments(ImportListArgsSchema, location="query")
    @blp.response(200, UsageImportSchema(many=True))
    def get(self, args):
        """Usage imports, newest first, with their counts."""
        return queries.list_imports(database(), args["limit"])


@blp.route("/usage/imports/<int:import_id>")
class UsageImport(MethodView):
    @requires(READ_ALL)
    @blp.response(200, UsageImportSchema)
    def get(self, import_id):
        """One usage import."""
        return queries.get_import(database(), import_id)


@blp.route("/usage/rejects")
class UsageRejects(MethodView):
    @requires(READ_ALL)
    @blp.arguments(RejectArgsSchema, location="query")
    @blp.response(200, RejectSchema(many=True))
    def get(self, args):
        """Rejected lines with the reason and the line as read (correct it and upload it
        again: a corrected line that posts resolves its reject)."""
        status = None if args["status"] == "all" else args["status"]
        return queries.list_rejects(database(), import_id=args["import_id"], status=status)


@blp.route("/usage/rejects/resubmit")
class UsageResubmit(MethodView):
    @requires(POST)
    @blp.arguments(ResubmitArgsSchema, location="query")
    @blp.response(201, ImportReportSchema, description="every re-submitted line posted")
    @blp.alt_response(200, schema=ImportReportSchema, description="some lines rejected again")
    def post(self, args):
        """Run the open rejects (of one import, or all) through mediation again, unchanged."""
        options = _options(args["posting"], args["late_policy"])
        return _answer(resubmit_rejects(database(), options=options, import_id=args["import_id"]))


@blp.route("/usage/lines")
class UsageLines(MethodView):
    @requires(READ_ALL)
    @blp.arguments(LineArgsSchema, location="query")
    @blp.response(200, RatedLineSchema(many=True))
    def get(self, args):
        """Rated usage lines of a contract, an import or an entry, in date order."""
        return queries.list_lines(database(), contract=args["contract"], import_id=args["import_id"],
                                  entry_seq=args["entry"], start=args["date_from"], end=args["date_to"],
                                  limit=args["limit"])


@blp.route("/usage/alerts")
class UsageAlerts(MethodView):
    @requires(READ_ALL)
    @blp.arguments(AlertArgsSchema, location="query")
    @blp.response(200, AlertSchema(many=True))
    def get(self, args):
        """Allowance and budget alerts."""
        return queries.list_alerts(database(), contract=args["contract"])


@blp.route("/usage/alerts/evaluate")
class UsagePeriodAlerts(MethodView):
    @requires(POST)
    @blp.arguments(PeriodAlertArgsSchema)
    @blp.response(200, PeriodAlertReportSchema)
    def post(self, body):
        """Raise the underrun and run-rate alerts of the rating periods that ended in a
        month (each once). Also a job: kind usage-period-alerts."""
        return evaluate_period_alerts(database(), body["period"], actor=principal().actor,
                                      thresholds=thresholds_from(settings()))


@blp.route("/contracts/<code>/usage")
class ContractUsage(MethodView):
    @requires(READ_ALL)
    @blp.response(200, CounterSchema(many=True))
    def get(self, code):
        """A contract's usage per component and rating period: quantity and rated amount."""
        return queries.list_counters(database(), contract=code)
