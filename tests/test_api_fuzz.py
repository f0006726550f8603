"""schemathesis over every operation of the API's own OpenAPI document: whatever it sends,
no 5xx and no response that breaks the documented schema. Run with an operator admin key
(everything reachable) and with a partner key (the scoped paths).

Driven through schemathesis's Python API (one hypothesis test per operation) rather than its
lazy pytest fixture, which pytest 9 no longer supports."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

# More with ECOLEDGER_FUZZ_EXAMPLES=500 for a deeper search before a release.
# The default keeps CI's two runs (SQLite, PostgreSQL) within their time budget as the API grows.
EXAMPLES_PER_OPERATION = int(os.environ.get("ECOLEDGER_FUZZ_EXAMPLES", "25"))

# No 5xx, every response as documented (status, content type, headers, body), and what the
# document forbids is refused. Not "schema-valid data is accepted": a request can be valid
# by its schema and still refused for good reasons the schema cannot say (an opaque cursor
# that was never given out, a NUL character in a name, a company that does not exist).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


# A partner key is refused (403) or scoped (404) on most operations before its body is read,
# so fewer examples find what there is to find: a 5xx, or another company's data.
EXAMPLES = {"operator_admin": EXAMPLES_PER_OPERATION, "partner": max(EXAMPLES_PER_OPERATION // 4, 1)}


@pytest.mark.parametrize("role", ["operator_admin", "partner"])
def test_every_operation(api, role):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", api.app)
    headers = {"Authorization": f"Bearer {api.tokens[role]}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    for operation in operations:

        @settings(max_examples=EXAMPLES[role], deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy())
        def check(case):
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            check()
        except Exception as failure:
            raise AssertionError(f"{operation.method.upper()} {operation.path}: {failure}") from failure
