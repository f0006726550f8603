"""Helpers shared by the resources: cursors, paging arguments, delivering jobs."""

from __future__ import annotations

import base64
import csv
import io
import json
from typing import Any

from flask import Response, current_app, request, url_for
from marshmallow import Schema, fields, validate

from api.problems import ApiProblem
from config import limits
from jobs.errors import BrokerUnavailable
from jobs.store import Job
from ledger.interchange import decode_json
from ledger.records import E_MALFORMED, Problem

PAGE_ITEMS_MAX = 500
ALL_OR_NOTHING, PARTIAL = "all_or_nothing", "partial"


class PageArgsSchema(Schema):
    cursor = fields.String(load_default=None, validate=validate.Length(max=500),
                           metadata={"description": "next_cursor of the previous page"})
    limit = fields.Integer(load_default=100, validate=validate.Range(1, PAGE_ITEMS_MAX))


def encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":"), default=str).encode()).decode().rstrip("=")


def decode_cursor(text: str | None) -> Any:
    """The value a cursor carries, or None for the first page. A cursor is opaque to
    clients; anything that does not decode is a 400."""
    if text is None:
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, TypeError):
        raise ApiProblem(400, "the cursor is not one this API gave out", code="invalid_cursor") from None


def enqueue(job: Job) -> None:
    """Hand a queued job to the workers; 503 if the broker cannot take it now (the job
    stays queued and a worker's reaper sends it when the broker is back)."""
    from jobs.celery_app import create_app
    from jobs.celery_app import enqueue as send

    state = current_app.extensions["ecoledger"]
    try:
        if "celery" not in state:
            state["celery"] = create_app(state["settings"])
        send(state["celery"], job)
    except BrokerUnavailable as exc:
        raise ApiProblem(503, str(exc), code="broker_unavailable", extra={"job_id": job.id}) from exc


def accepted(job: Job, created: bool):
    """202 with the job to poll (``Location``); a job just created is handed to the workers
    first."""
    if created:
        enqueue(job)
    return job, 202, {"Location": url_for("jobs.Job", job_id=job.id)}


def start_job(kind: str, params: dict):
    """Start a job of ``kind`` (or find the queued or running one with the same
    parameters) for the caller, and answer 202 with it."""
    from api import database
    from api.auth import principal
    from jobs import service as jobs_service

    return accepted(*jobs_service.start(database(), kind, params, actor=principal().actor))


def json_body() -> Any:
    """The request body as strict JSON (no NaN, no duplicate keys); 400 if it is not."""
    try:
        return decode_json(request.get_data(cache=True))
    except ValueError as exc:
        raise ApiProblem(400, f"the body is not valid JSON: {exc}", code=E_MALFORMED) from None


def batch_body(name: str) -> tuple[list, bool]:
    """A batch body {"<name>": [...], "mode": "all_or_nothing" | "partial"}: its records
    and whether it is all or nothing."""
    body = json_body()
    if type(body) is not dict or type(body.get(name)) is not list or not set(body) <= {name, "mode"}:
        raise ApiProblem(422, f'the body is an object {{"{name}": [...], "mode": ...}}', code=E_MALFORMED,
                         errors=[Problem(E_MALFORMED, name, f"must be a list of {name}")])
    records = body[name]
    if not 0 < len(records) <= limits.BATCH_ENTRIES_MAX:
        raise ApiProblem(422, f"a batch holds 1 to {limits.BATCH_ENTRIES_MAX} {name}", code="too_long",
                         errors=[Problem("too_long", name, f"has {len(records)} {name}")])
    mode = body.get("mode", ALL_OR_NOTHING)
    if mode not in (ALL_OR_NOTHING, PARTIAL):
        raise ApiProblem(422, f"mode is {ALL_OR_NOTHING} or {PARTIAL}", code="invalid_value",
                         errors=[Problem("invalid_value", "mode", f"must be {ALL_OR_NOTHING} or {PARTIAL}")])
    return records, mode == ALL_OR_NOTHING


class DocumentFormatArgsSchema(Schema):
    """``format`` of a document an endpoint answers (an invoice, a statement): JSON by default."""

    format = fields.String(load_default="json", validate=validate.OneOf(["json", "csv", "pdf"]))


def document_formats(blp, csv_description: str, pdf_description: str):
    """Declare, in the OpenAPI document, the CSV and PDF answers of an endpoint that also
    answers JSON (``document_response`` makes them)."""
    as_csv = blp.alt_response(200, description=f"format=csv: {csv_description}", content_type="text/csv",
                              schema={"type": "string"}, success=True)
    as_pdf = blp.alt_response(200, description=f"format=pdf: {pdf_description}", content_type="application/pdf",
                              schema={"type": "string", "format": "binary"}, success=True)
    return lambda view: as_csv(as_pdf(view))


def document_response(number: str, fmt: str, render_pdf, columns, rows) -> Response | None:
    """An invoice's or statement's PDF (rendered with the configured fonts) or its lines as
    CSV, as an attachment named after its number; None for JSON (the caller's schema)."""
    from billing.pdf import FontError, fonts

    if fmt == "pdf":
        config = current_app.extensions["ecoledger"]["settings"]
        try:
            document = render_pdf(fonts(config.pdf_font, config.pdf_font_bold))
        except FontError as exc:
            raise ApiProblem(503, str(exc), code="pdf_font_unavailable") from None
        return Response(document, mimetype="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="{number}.pdf"'})
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows(rows())
        return Response(out.getvalue(), mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{number}.csv"'})
    return None
