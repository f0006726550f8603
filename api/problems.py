"""RFC 9457 problem details: every error the API answers, in one shape.

    {"type": "https://ecoledger.org/problems/unbalanced", "title": "Unprocessable Content",
     "status": 422, "detail": "...", "instance": "/entries", "request_id": "...",
     "errors": [{"code": "unbalanced", "field": "entries[0].postings", "message": "..."}]}

Domain refusals (LedgerError) map to 404 (not found), 409 (duplicate, conflict) or 422
(everything else the caller can fix). Bad input never yields a 500: only an unexpected
failure does, logged with its request id and answered without internals.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Response, g, json, request
from marshmallow import Schema, fields

from ledger.records import (
    E_ALREADY_REVERSED,
    E_CONFLICT,
    E_DUPLICATE,
    E_NOT_FOUND,
    E_UNKNOWN_COMPANY,
    LedgerError,
    Problem,
)
from ledger.schemas import FieldErrorSchema, PostingReportSchema, problems_from_messages

log = logging.getLogger("ecoledger.api")

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://ecoledger.org/problems/"

_STATUS_OF_CODE = {
    E_NOT_FOUND: 404,
    E_UNKNOWN_COMPANY: 404,
    E_DUPLICATE: 409,
    E_CONFLICT: 409,
    E_ALREADY_REVERSED: 409,
}


class ProblemSchema(Schema):
    """RFC 9457 problem details, with field-level errors."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    instance = fields.String(required=True)
    request_id = fields.String(allow_none=True)
    errors = fields.List(fields.Nested(FieldErrorSchema), required=True)


class RejectedBatchProblemSchema(ProblemSchema):
    """422 for a batch: the problem, plus the posting report of every entry when entries were
    checked (absent when the body itself was refused before any entry was looked at)."""

    report = fields.Nested(PostingReportSchema)


class ApiProblem(Exception):
    """Raised by the API layer to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        code: str | None = None,
        errors: list[Problem] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code or HTTPStatus(status).phrase.lower().replace(" ", "_")
        self.errors = errors or []
        self.headers = headers or {}
        self.extra = extra or {}


def problem_response(problem: ApiProblem) -> Response:
    document = {
        "type": PROBLEM_TYPE_BASE + problem.code,
        "title": HTTPStatus(problem.status).phrase,
        "status": problem.status,
        "detail": problem.detail,
        "instance": request.path,
        "request_id": getattr(g, "request_id", None),
        "errors": [{"code": p.code, "field": p.field, "message": p.message} for p in problem.errors],
        **problem.extra,
    }
    response = Response(json.dumps(document), status=problem.status, mimetype=PROBLEM_CONTENT_TYPE)
    for name, value in problem.headers.items():
        response.headers[name] = value
    return response


def from_ledger_error(error: LedgerError) -> ApiProblem:
    status = _STATUS_OF_CODE.get(error.code, 422)
    return ApiProblem(status, str(error), code=error.code, errors=list(error.problems))


def from_body_error(error: LedgerError) -> ApiProblem:
    """A refusal of what the request body says: 409 for duplicates and conflicts, else 422.
    A company the body names that does not exist is bad content (422), not a missing
    resource (404)."""
    codes = {p.code for p in error.problems}
    status = 409 if codes and codes <= {E_DUPLICATE, E_CONFLICT} else 422
    return ApiProblem(status, str(error), code=error.code, errors=list(error.problems))


def from_validation_messages(messages: Any, status: int = 422) -> ApiProblem:
    """webargs/marshmallow messages ({"json": {"field": ["..."]}}) as field-level errors."""
    errors = problems_from_messages(messages)
    detail = "; ".join(str(e) for e in errors[:5]) or "the request is not valid"
    return ApiProblem(status, detail, code="invalid_value", errors=errors)


def unexpected(error: Exception) -> Response:
    log.exception("request %s failed", getattr(g, "request_id", "?"), exc_info=error)
    return problem_response(ApiProblem(500, "the server failed to answer this request; it was logged with its request id", code="server_error"))
