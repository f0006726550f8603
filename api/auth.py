"""Authentication (Bearer API keys) and authorisation (roles, and a partner's one company).

Each view method declares what it needs with ``@requires(PERMISSION)``; the permission is
kept on the function so that tests/test_api_authorisation.py can check every endpoint
against every role. A partner key reaches only its own company: any other company's
resource answers 404, exactly as a company that does not exist would, so that a partner
cannot even learn which companies exist.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

from flask import g, request

from access.keys import AUDITOR, CONTROLLER, OPERATOR_ADMIN, PARTNER, ApiKey, authenticate
from api.problems import ApiProblem
from ledger.records import E_UNKNOWN_COMPANY, Problem, show

# Permissions, and the roles that hold them.
READ = "read"  # ledger data; a partner's reach is its own company
READ_ALL = "read_all"  # data across companies (ledger-wide lists and reports)
POST = "post"  # entries, reversals, accounts
ONBOARD = "onboard"  # companies
CLOSE = "close"  # periods
JOBS_READ = "jobs_read"
JOBS_RUN = "jobs_run"
EXPORT = "export"  # beancount exports; a partner exports its own books
KEYS = "keys"
AUDIT = "audit"

ROLE_PERMISSIONS = {
    OPERATOR_ADMIN: {READ, READ_ALL, POST, ONBOARD, CLOSE, JOBS_READ, JOBS_RUN, EXPORT, KEYS, AUDIT},
    CONTROLLER: {READ, READ_ALL, POST, CLOSE, JOBS_READ, JOBS_RUN, EXPORT},
    AUDITOR: {READ, READ_ALL, JOBS_READ, EXPORT, AUDIT},
    PARTNER: {READ, EXPORT},
}
PUBLIC = "public"  # health, readiness, the OpenAPI document


class Principal(NamedTuple):
    key: ApiKey

    @property
    def actor(self) -> str:
        return f"api:{self.key.id} ({self.key.name})"

    @property
    def partner_company(self) -> str | None:
        return self.key.company if self.key.role == PARTNER else None

    def may(self, permission: str) -> bool:
        return permission in ROLE_PERMISSIONS[self.key.role]


def authenticate_request(db) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="ecoledger"'}
    if not header:
        raise ApiProblem(401, "an API key is required: Authorization: Bearer <key>", code="unauthenticated", headers=challenge)
    key = authenticate(db, token.strip()) if scheme.lower() == "bearer" else None
    if key is None:
        raise ApiProblem(401, "the API key is not valid, or is revoked or expired", code="unauthenticated",
                         headers={**challenge, "WWW-Authenticate": 'Bearer realm="ecoledger", error="invalid_token"'})
    return Principal(key)


def principal() -> Principal:
    return g.principal


def requires(permission: str) -> Callable:
    """Mark a view method with the permission it needs, and check it."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def checked(*args, **kwargs):
            if permission != PUBLIC and not principal().may(permission):
                raise ApiProblem(403, f"a {principal().key.role} key may not do this", code="forbidden")
            return view(*args, **kwargs)

        checked.permission = permission
        return checked

    return decorate


def visible_company(code: str) -> str:
    """``code`` if the caller may see that company; for a partner asking about another
    company, the same 404 as for a company that does not exist."""
    own = principal().partner_company
    if own is not None and code != own:
        raise ApiProblem(404, f"no company {show(code)}", code=E_UNKNOWN_COMPANY,
                         errors=[Problem(E_UNKNOWN_COMPANY, "company", f"no company {show(code)}")])
    return code
