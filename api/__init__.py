"""The REST API: a Flask app factory, one flask-smorest blueprint per resource, marshmallow
schemas shared with the CLI (``ledger.schemas``), the OpenAPI document at /openapi.json and
interactive docs at /docs.

Every request but health, readiness and the docs carries an API key (Bearer). Every
mutating request is audited with its request id, refused or not. Errors are RFC 9457
problem documents (``api.problems``). POST requests with an Idempotency-Key replay their
first response (``access.idempotency``).
"""

from __future__ import annotations

import hashlib
import http
import json
import re
import uuid

from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask, Response, g, request
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from access import idempotency
from api.auth import PUBLIC, authenticate_request
from api.problems import (
    PROBLEM_CONTENT_TYPE,
    ApiProblem,
    ProblemSchema,
    from_ledger_error,
    from_validation_messages,
    problem_response,
    unexpected,
)
from config import Settings, limits, load_settings
from ecoledger import __version__
from ledger import audit
from ledger.database import Database
from ledger.records import E_INVALID, LedgerError, Problem

# Request bodies: a batch of BATCH_ENTRIES_MAX entries is about 3 MB of JSON.
REQUEST_BYTES_MAX = 8 * 1024 * 1024
# Endpoints that take more than REQUEST_BYTES_MAX: usage uploads (api/resources/usage.py).
LARGE_BODY_ENDPOINTS = {"usage.UsageUpload": limits.USAGE_UPLOAD_BYTES_MAX,
                        "usage.UsageUploadJob": limits.USAGE_FILE_UPLOAD_BYTES_MAX}
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._\-]{1,64}")
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


class EcoApi(Api):
    """flask-smorest with problem+json errors, documented as such on every operation."""

    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error: HTTPException):
        if isinstance(error, RequestEntityTooLarge):
            limit = request.max_content_length or REQUEST_BYTES_MAX
            return problem_response(ApiProblem(413, f"the request body exceeds {limit} bytes", code="too_large"))
        data = getattr(error, "data", None) or {}
        if "messages" in data:  # webargs: the body or query did not validate
            return problem_response(from_validation_messages(data["messages"], error.code or 422))
        status = error.code or 500
        return problem_response(ApiProblem(status, error.description or http.HTTPStatus(status).phrase))

    def _register_responses(self):
        for status in http.HTTPStatus:
            response = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
                prepare_response(response, self.spec, PROBLEM_CONTENT_TYPE)
            else:
                prepare_response(response, self.spec, self.DEFAULT_RESPONSE_CONTENT_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "An RFC 9457 problem document", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_CONTENT_TYPE)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)


def create_app(settings: Settings | None = None, *, db: Database | None = None) -> Flask:
    settings = settings or load_settings()
    app = Flask("ecoledger.api")
    app.config.update(
        API_TITLE="ecoledger",
        API_VERSION=__version__,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="https://cdn.jsdelivr.net/npm/swagger-ui-dist/",
        MAX_CONTENT_LENGTH=REQUEST_BYTES_MAX,
        JSON_SORT_KEYS=False,
    )
    app.extensions["ecoledger"] = {"settings": settings, "db": db or Database(settings.database_url, echo=settings.echo_sql)}
    api = EcoApi(
        app,
        spec_kwargs={
            "info": {"description": "The system of record of a service ecosystem's money. See docs/api.md."},
            "security": [{"bearerAuth": []}],
            "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
            "marshmallow_plugin": MarshmallowPlugin(),
        },
    )
    from api.resources import register

    register(api)
    _install_hooks(app)
    return app


def database() -> Database:
    from flask import current_app

    return current_app.extensions["ecoledger"]["db"]


def settings() -> Settings:
    from flask import current_app

    return current_app.extensions["ecoledger"]["settings"]


def _refuse_nul_in_the_address() -> None:
    """Query and path values are compared with stored text, and PostgreSQL cannot hold a NUL
    character: a value with one is refused here, for every resource, naming its field
    (found by schemathesis: a 500 on GET /entries?company=%00...)."""
    for name, value in [*request.args.items(multi=True), *(request.view_args or {}).items()]:
        if isinstance(value, str) and "\x00" in value:
            raise ApiProblem(422, f"{name}: text may not contain a NUL character", code=E_INVALID,
                             errors=[Problem(E_INVALID, name, "text may not contain a NUL character")])


def _install_hooks(app: Flask) -> None:
    @app.before_request
    def identify_and_authenticate():
        supplied = request.headers.get("X-Request-ID", "")
        g.request_id = supplied if _REQUEST_ID_RE.fullmatch(supplied) else uuid.uuid4().hex
        g.audit_token = audit.current_request_id.set(g.request_id)
        g.principal = None
        if request.endpoint in LARGE_BODY_ENDPOINTS:
            request.max_content_length = LARGE_BODY_ENDPOINTS[request.endpoint]
        if _public(request.endpoint):
            return None
        g.principal = authenticate_request(database())
        _refuse_nul_in_the_address()
        return _replay_if_idempotent()

    @app.after_request
    def finish(response: Response) -> Response:
        response.headers["X-Request-ID"] = getattr(g, "request_id", "")
        _store_if_idempotent(response)
        if request.method in MUTATING:
            _audit_request(response.status_code)
        return response

    @app.teardown_request
    def forget_request(_error=None):
        token = g.pop("audit_token", None)
        if token is not None:
            audit.current_request_id.reset(token)

    @app.errorhandler(ApiProblem)
    def api_problem(error: ApiProblem):
        return problem_response(error)

    @app.errorhandler(LedgerError)
    def ledger_error(error: LedgerError):
        return problem_response(from_ledger_error(error))

    @app.errorhandler(idempotency.Conflict)
    def idempotency_conflict(error: idempotency.Conflict):
        return problem_response(ApiProblem(409, str(error), code="idempotency_conflict"))

    @app.errorhandler(Exception)
    def anything_else(error: Exception):
        if isinstance(error, HTTPException):  # raised outside flask-smorest's routes
            return problem_response(ApiProblem(error.code or 500, error.description or "error"))
        return unexpected(error)


def _public(endpoint: str | None) -> bool:
    """Health, readiness and the API documents need no key: their views say PUBLIC."""
    from flask import current_app

    if endpoint is None or endpoint.startswith("api-docs.") or endpoint == "static":
        return True  # unknown URLs answer 404 without asking for a key; the docs are public
    view_class = getattr(current_app.view_functions[endpoint], "view_class", None)
    method = getattr(view_class, request.method.lower(), None) if view_class else None
    return getattr(method, "permission", None) == PUBLIC


# -- Idempotency-Key -----------------------------------------------------------------------


def _request_hash() -> str:
    body = request.get_data(cache=True)
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    text = f"{request.method} {request.path}?{request.query_string.decode(errors='replace')}\n".encode()
    return hashlib.sha256(text + canonical).hexdigest()


def _replay_if_idempotent() -> Response | None:
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or key is None:
        return None
    if not 0 < len(key) <= idempotency.IDEMPOTENCY_KEY_CHARS_MAX or not key.isprintable():
        raise ApiProblem(400, f"Idempotency-Key must be 1 to {idempotency.IDEMPOTENCY_KEY_CHARS_MAX} printable characters", code="invalid_value")
    stored = idempotency.reserve(database(), g.principal.key.id, key, _request_hash())
    if stored is None:
        g.idempotency_key = key
        return None
    response = Response(stored.body, status=stored.status_code, content_type=stored.content_type)
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _store_if_idempotent(response: Response) -> None:
    key = g.pop("idempotency_key", None)
    if key is None:
        return
    owner = g.principal.key.id
    if response.status_code >= 500:
        idempotency.release(database(), owner, key)  # the client may try again
    else:
        stored = idempotency.Stored(response.status_code, response.content_type, _without_secrets(response))
        idempotency.complete(database(), owner, key, stored)


def _without_secrets(response: Response) -> str:
    """The body to keep for replays. A secret shown once (a new API key's token) is never
    stored: the replay answers the same document with the token null."""
    body = response.get_data(as_text=True)
    if '"token"' not in body or not response.is_json:
        return body
    def forget(value):
        if isinstance(value, dict):
            return {k: (None if k == "token" else forget(v)) for k, v in value.items()}
        if isinstance(value, list):
            return [forget(v) for v in value]
        return value

    return json.dumps(forget(json.loads(body)))


def _audit_request(status: int) -> None:
    """Every mutating call, refused or not: who, what, when, the outcome, the request id."""
    principal = getattr(g, "principal", None)
    actor = principal.actor if principal is not None else "anonymous"
    with database().write(ledger_lock=False) as conn:
        audit.record(conn, actor=actor, action=f"http.{request.method.lower()}", target=request.path[:255],
                     details={"status": status, "replayed": bool(g.get("replayed"))})
