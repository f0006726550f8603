"""The authorisation matrix: every role against every endpoint, and a partner key against
another company's resources. The matrix below is the specification: changing who may do
what means changing it here, deliberately."""

from __future__ import annotations

import pytest

from access.keys import issue_key
from access.schema import ROLES

EVERYONE = set(ROLES)
INTERNAL = {"operator_admin", "controller", "auditor"}
WRITERS = {"operator_admin", "controller"}
ADMIN = {"operator_admin"}
PUBLIC = "public"

MATRIX = {
    ("GET", "/health"): PUBLIC,
    ("GET", "/ready"): PUBLIC,
    ("GET", "/companies"): EVERYONE,
    ("POST", "/companies"): ADMIN,
    ("GET", "/companies/<code>"): EVERYONE,
    ("GET", "/companies/<code>/accounts"): EVERYONE,
    ("POST", "/companies/<code>/accounts"): WRITERS,
    ("POST", "/companies/<code>/accounts/<name>/close"): WRITERS,
    ("GET", "/companies/<code>/accounts/<name>/statement"): EVERYONE,
    ("GET", "/companies/<code>/trial-balance"): EVERYONE,
    ("GET", "/companies/<code>/periods"): EVERYONE,
    ("POST", "/companies/<code>/periods/<period>/close"): WRITERS,
    ("GET", "/partners"): INTERNAL,
    ("POST", "/partners"): ADMIN,
    ("GET", "/partners/<code>"): EVERYONE,
    ("POST", "/partners/<code>/offboard"): ADMIN,
    ("GET", "/price-plans"): INTERNAL,
    ("POST", "/price-plans"): ADMIN,
    ("GET", "/customers"): INTERNAL,
    ("POST", "/customers"): ADMIN,
    ("GET", "/contracts"): INTERNAL,
    ("POST", "/contracts"): ADMIN,
    ("GET", "/contracts/<code>"): INTERNAL,
    ("POST", "/contract-events"): WRITERS,
    ("POST", "/ecosystem"): ADMIN,
    ("POST", "/usage"): WRITERS,
    ("POST", "/usage/uploads"): WRITERS,
    ("GET", "/usage/imports"): INTERNAL,
    ("GET", "/usage/imports/<int:import_id>"): INTERNAL,
    ("GET", "/usage/rejects"): INTERNAL,
    ("POST", "/usage/rejects/resubmit"): WRITERS,
    ("GET", "/usage/lines"): INTERNAL,
    ("GET", "/usage/alerts"): INTERNAL,
    ("POST", "/usage/alerts/evaluate"): WRITERS,
    ("GET", "/webhooks"): INTERNAL,
    ("POST", "/webhooks"): ADMIN,
    ("DELETE", "/webhooks/<name>"): ADMIN,
    ("GET", "/webhooks/<name>/deliveries"): INTERNAL,
    ("POST", "/webhook-deliveries"): WRITERS,
    ("GET", "/contracts/<code>/usage"): INTERNAL,
    ("POST", "/billing-runs"): WRITERS,
    ("GET", "/invoices"): INTERNAL,
    ("GET", "/billing/leakage"): INTERNAL,
    ("GET", "/billing/caps"): INTERNAL,
    ("GET", "/billing/preview"): INTERNAL,
    ("GET", "/billing/approvals"): INTERNAL,
    ("POST", "/billing/approvals"): WRITERS,
    ("GET", "/usage/disputes"): INTERNAL,
    ("POST", "/usage/disputes"): WRITERS,
    ("POST", "/usage/disputes/resolve"): WRITERS,
    ("POST", "/billing/caps"): WRITERS,
    ("GET", "/invoices/<number>"): INTERNAL,
    ("POST", "/invoices/<number>/credit-notes"): WRITERS,
    ("POST", "/clearing-runs"): WRITERS,
    ("GET", "/contracts/<code>/schedule"): INTERNAL,
    ("GET", "/contracts/<code>/estimates"): INTERNAL,
    ("POST", "/contracts/<code>/estimates"): WRITERS,
    ("POST", "/closes"): WRITERS,
    ("GET", "/closes/<company>/<period>"): INTERNAL,
    ("POST", "/closes/<company>/<period>/reopen"): WRITERS,
    ("GET", "/reports/waterfall"): INTERNAL,
    ("GET", "/reports/rollforward"): INTERNAL,
    ("GET", "/reports/disaggregation"): INTERNAL,
    ("GET", "/reports/rpo"): INTERNAL,
    ("GET", "/reports/contract_costs"): INTERNAL,
    ("GET", "/consolidation"): INTERNAL,
    ("POST", "/netting-runs"): WRITERS,
    ("GET", "/fx-rates"): INTERNAL,
    ("POST", "/fx-rates"): WRITERS,
    ("GET", "/clearing/items"): EVERYONE,
    ("GET", "/statements"): EVERYONE,
    ("POST", "/statements"): WRITERS,
    ("GET", "/statements/<number>"): EVERYONE,
    ("GET", "/statements/<number>/lines/<int:line_no>/entries"): EVERYONE,
    ("POST", "/statements/<number>/payments"): WRITERS,
    ("GET", "/trial-balance"): INTERNAL,
    ("POST", "/entries"): WRITERS,
    ("GET", "/entries"): EVERYONE,
    ("GET", "/entries/<path:entry_id>"): EVERYONE,
    ("POST", "/reversals"): WRITERS,
    ("GET", "/jobs"): INTERNAL,
    ("POST", "/jobs"): WRITERS,
    ("POST", "/verify"): WRITERS,
    ("GET", "/jobs/<job_id>"): EVERYONE,
    ("POST", "/jobs/<job_id>/cancel"): WRITERS,
    ("POST", "/jobs/<job_id>/retry"): WRITERS,
    ("POST", "/exports/beancount"): EVERYONE,
    ("GET", "/exports/beancount/<job_id>"): EVERYONE,
    ("GET", "/api-keys"): ADMIN,
    ("POST", "/api-keys"): ADMIN,
    ("GET", "/api-keys/<key_id>"): ADMIN,
    ("POST", "/api-keys/<key_id>/revoke"): ADMIN,
    ("POST", "/api-keys/<key_id>/rotate"): ADMIN,
    ("GET", "/audit-log"): {"operator_admin", "auditor"},
}


def routes(app) -> set[tuple[str, str]]:
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api-docs.") or rule.endpoint == "static":
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            found.add((method, rule.rule))
    return found


def test_every_endpoint_is_in_the_matrix(api):
    assert routes(api.app) == set(MATRIX), "an endpoint without a declared authorisation"


def test_the_code_declares_what_the_matrix_says(api):
    from api.auth import ROLE_PERMISSIONS

    for rule in api.app.url_map.iter_rules():
        view_class = getattr(api.app.view_functions[rule.endpoint], "view_class", None)
        if view_class is None:
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            permission = getattr(view_class, method.lower()).permission
            allowed = PUBLIC if permission == "public" else {r for r in ROLES if permission in ROLE_PERMISSIONS[r]}
            assert allowed == MATRIX[(method, rule.rule)], (method, rule.rule)


@pytest.fixture
def filled(api):
    """Values for the path parameters: resources the partner (VEND) may see."""
    job = api.call("partner", "POST", "/exports/beancount", json={}).get_json()
    spare = issue_key(api.db, name="spare", role="auditor", actor="test").key.id
    return {"<number>": "OPFI-000001", "<int:import_id>": "1", "<code>": "VEND", "<company>": "VEND", "<name>": "Income:Ecosystem", "<period>": "2026-09", "<path:entry_id>": "shared",
            "<job_id>": job["id"], "<key_id>": spare, "<int:line_no>": "1"}


def concrete(rule: str, values: dict) -> str:
    for placeholder, value in values.items():
        rule = rule.replace(placeholder, value)
    return rule


@pytest.mark.parametrize("role", ROLES)
def test_each_role_against_each_endpoint(api, filled, role):
    for (method, rule), allowed in sorted(MATRIX.items()):
        response = api.call(role, method, concrete(rule, filled), json={} if method == "POST" else None)
        if allowed == PUBLIC:
            assert response.status_code not in (401, 403), (method, rule)
        elif role in allowed:
            assert response.status_code not in (401, 403), (method, rule, response.get_data(as_text=True))
            assert response.status_code < 500, (method, rule, response.get_data(as_text=True))
        else:
            assert response.status_code == 403, (method, rule, response.status_code)


def test_no_key_gets_nothing_but_health(api, filled):
    for (method, rule), allowed in MATRIX.items():
        response = api.call(None, method, concrete(rule, filled), json={} if method == "POST" else None)
        assert (response.status_code == 401) == (allowed != PUBLIC), (method, rule)


def test_a_partner_reaches_no_other_company(api):
    other_job = api.call("auditor", "POST", "/exports/beancount", json={"company": "OPFI"}).get_json()
    values = {"<code>": "OPFI", "<name>": "Income:Usage", "<period>": "2026-09",
              "<path:entry_id>": "operator-only", "<job_id>": other_job["id"]}
    for (method, rule), allowed in sorted(MATRIX.items()):
        if allowed == PUBLIC or "partner" not in allowed or not any(p in rule for p in values):
            continue
        response = api.call("partner", method, concrete(rule, values), json={} if method == "POST" else None)
        assert response.status_code == 404, (method, rule, response.status_code)
