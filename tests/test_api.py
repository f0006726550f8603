"""The REST API: each endpoint's happy path, its problems, tenant isolation, idempotency
and the audit trail."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from access import keys
from ecoledger import migrate
from jobs import store
from jobs.runner import JobTiming, execute
from ledger.database import Database

from helpers import entry


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.content_type == "application/problem+json"
    document = response.get_json()
    assert {"type", "title", "status", "detail", "instance", "request_id", "errors"} <= set(document)
    assert document["status"] == status
    return document


# -- authentication ----------------------------------------------------------------------------


def test_a_key_is_required(api):
    response = api.call(None, "GET", "/companies")
    document = problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert document["type"].endswith("/unauthenticated")


@pytest.mark.parametrize("header", ["Bearer nope", "Basic dXNlcjpwYXNz", "Bearer eco_aaaaaaaaaaaa_" + "x" * 43, "Bearer"])
def test_bad_keys_are_refused(api, header):
    problem(api.client.get("/companies", headers={"Authorization": header}), 401)


def test_revoked_expired_and_rotated_keys(api):
    issued = keys.issue_key(api.db, name="temp", role="auditor", actor="t")
    headers = {"Authorization": f"Bearer {issued.token}"}
    assert api.client.get("/companies", headers=headers).status_code == 200
    keys.revoke_key(api.db, issued.key.id, actor="t")
    problem(api.client.get("/companies", headers=headers), 401)
    expiring = keys.issue_key(api.db, name="short", role="auditor", actor="t",
                              expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
    with api.db.engine.begin() as conn:  # let it expire
        from sqlalchemy import text

        conn.execute(text("UPDATE api_keys SET expires_at = :t WHERE id = :i"),
                     {"t": dt.datetime(2000, 1, 1), "i": expiring.key.id})
    problem(api.client.get("/companies", headers={"Authorization": f"Bearer {expiring.token}"}), 401)
    response = api.call("operator_admin", "POST", f"/api-keys/{api.key_ids['controller']}/rotate", json={"grace_hours": 1})
    assert response.status_code == 201
    rotated = response.get_json()
    assert rotated["key"]["rotated_from"] == api.key_ids["controller"] and rotated["token"].startswith("eco_")
    assert api.client.get("/companies", headers={"Authorization": f"Bearer {rotated['token']}"}).status_code == 200
    assert api.call("controller", "GET", "/companies").status_code == 200  # old one, within its grace


def test_health_and_docs_need_no_key(api):
    assert api.client.get("/health").get_json() == {"status": "ok", "schema": None}
    assert api.client.get("/ready").get_json() == {"status": "ready", "schema": migrate.head_revision()}
    spec = api.client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.") and "/entries" in spec["paths"]
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    answers = {path: set(spec["paths"][path]["get"]["responses"]["200"]["content"])
               for path in ("/invoices/{number}", "/statements/{number}", "/reports/rollforward", "/reports/waterfall")}
    documents = {"application/json", "text/csv", "application/pdf"}
    assert answers == {"/invoices/{number}": documents, "/statements/{number}": documents,
                       "/reports/rollforward": documents, "/reports/waterfall": documents | {"image/png"}}


def test_ready_reports_the_schema(db_url, tmp_path):
    from api import create_app
    from config import Settings

    db = Database(db_url)
    app = create_app(Settings(database_url=db_url, data_dir=str(tmp_path)), db=db)
    document = problem(app.test_client().get("/ready"), 503)
    assert "run `ecoledger init`" in document["detail"]
    migrate.upgrade(db)
    assert app.test_client().get("/ready").get_json() == {"status": "ready", "schema": migrate.head_revision()}
    db.dispose()


# -- companies and accounts --------------------------------------------------------------------


def test_companies(api):
    listed = api.call("auditor", "GET", "/companies").get_json()
    assert [c["code"] for c in listed] == ["OPFI", "VEND"]
    assert [c["code"] for c in api.call("partner", "GET", "/companies").get_json()] == ["VEND"]
    created = api.call("operator_admin", "POST", "/companies",
                       json={"code": "CHNL", "name": "ChannelOne AB", "currency": "SEK", "roles": ["reseller"]})
    assert created.status_code == 201 and created.get_json()["account_count"] == 8
    document = problem(api.call("operator_admin", "POST", "/companies",
                                json={"code": "CHNL", "name": "Again", "currency": "SEK"}), 409)
    assert document["errors"][0]["field"] == "code"
    document = problem(api.call("operator_admin", "POST", "/companies",
                                json={"code": "bad code", "name": "", "currency": "EURO"}), 422)
    assert {e["field"] for e in document["errors"]} == {"code", "name", "currency"}


def test_partner_sees_other_companies_as_nonexistent(api):
    other = problem(api.call("partner", "GET", "/companies/OPFI"), 404)
    missing = problem(api.call("partner", "GET", "/companies/NOPE"), 404)
    assert other["detail"].replace("OPFI", "X") == missing["detail"].replace("NOPE", "X")
    for path in ("/companies/OPFI/accounts", "/companies/OPFI/trial-balance", "/companies/OPFI/periods",
                 "/companies/OPFI/accounts/Assets:Bank/statement", "/entries/operator-only",
                 "/entries?company=OPFI"):
        problem(api.call("partner", "GET", path), 404)
    assert api.call("partner", "GET", "/companies/VEND/trial-balance").status_code == 200


def test_accounts(api):
    created = api.call("controller", "POST", "/companies/OPFI/accounts",
                       json={"name": "Assets:Bank:Savings", "currencies": ["EUR", "USD"], "open_date": "2026-01-01"})
    assert created.status_code == 201 and created.get_json()["type"] == "asset"
    names = [a["name"] for a in api.call("partner", "GET", "/companies/VEND/accounts").get_json()]
    assert "Income:Ecosystem" in names
    closed = api.call("controller", "POST", "/companies/OPFI/accounts/Assets:Bank:Savings/close", json={"date": "2026-12-31"})
    assert closed.status_code == 200 and closed.get_json()["close_date"] == "2026-12-31"
    document = problem(api.call("controller", "POST", "/companies/OPFI/accounts/Income:Usage/close", json={"date": "2026-12-31"}), 422)
    assert "still holds" in document["detail"]


# -- entries -----------------------------------------------------------------------------------


def batch(*documents, mode=None):
    body = {"entries": list(documents)}
    if mode:
        body["mode"] = mode
    return body


def test_post_entries(api):
    response = api.call("controller", "POST", "/entries", json=batch(entry("a"), entry("b", "2026-10-07")))
    assert response.status_code == 201
    report = response.get_json()
    assert (report["accepted"], report["duplicates"], report["rejected"]) == (2, 0, 0)
    assert [r["status"] for r in report["results"]] == ["accepted", "accepted"]
    again = api.call("controller", "POST", "/entries", json=batch(entry("a")))
    assert again.status_code == 201 and again.get_json()["results"][0]["status"] == "duplicate"


def test_rejected_entries_name_the_field(api):
    bad = entry("bad", "2026-10-05", ("OPFI", "Assets:Bank", "1.001"), ("OPFI", "Income:Usage", "-1.00"))
    document = problem(api.call("controller", "POST", "/entries", json=batch(entry("ok"), bad)), 422)
    assert document["errors"] == [{"code": "amount_precision", "field": "entries[1].postings[0].amount",
                                   "message": "'1.001' has 3 decimal places; EUR has 2"}]
    assert document["report"]["not_posted"] == 1
    partial = api.call("controller", "POST", "/entries", json=batch(entry("ok"), bad, mode="partial"))
    assert partial.status_code == 200 and partial.get_json()["accepted"] == 1


@pytest.mark.parametrize(
    "body, status",
    [
        (b"{not json", 400),
        (b'{"entries": [{"id": "x", "amount": NaN}]}', 400),
        (b'{"entries": [], "mode": "all_or_nothing"}', 422),
        (b'{"entries": "x"}', 422),
        (b'{"entries": [{}], "mode": "sometimes"}', 422),
        (b'{"entries": [{}], "extra": 1}', 422),
        (b"[]", 422),
    ],
)
def test_malformed_batches(api, body, status):
    problem(api.call("controller", "POST", "/entries", data=body, content_type="application/json"), status)


def test_too_large_a_body(api):
    huge = b'{"entries": [' + b'{"id": "x"},' * 900_000 + b'{"id": "y"}]}'
    problem(api.call("controller", "POST", "/entries", data=huge, content_type="application/json"), 413)


def test_list_entries_with_cursor(api):
    api.call("controller", "POST", "/entries", json=batch(*(entry(f"e{i}", "2026-10-08") for i in range(5))))
    seen, cursor = [], None
    while True:
        page = api.call("auditor", "GET", "/entries?company=OPFI&limit=3" + (f"&cursor={cursor}" if cursor else "")).get_json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["shared", "operator-only", "e0", "e1", "e2", "e3", "e4"]
    problem(api.call("auditor", "GET", "/entries?cursor=garbage!"), 400)
    dated = api.call("auditor", "GET", "/entries?from=2026-10-06&to=2026-10-06").get_json()
    assert [item["id"] for item in dated["items"]] == ["operator-only"]


def test_partner_sees_only_its_own_postings(api):
    listed = api.call("partner", "GET", "/entries").get_json()["items"]
    assert [item["id"] for item in listed] == ["shared"]
    assert {p["company"] for p in listed[0]["postings"]} == {"VEND"}
    one = api.call("partner", "GET", "/entries/shared").get_json()
    assert [p["account"] for p in one["postings"]] == ["Assets:Ecosystem:DueFrom", "Income:Ecosystem"]
    assert len(api.call("auditor", "GET", "/entries/shared").get_json()["postings"]) == 4


def test_reversal(api):
    first = api.call("controller", "POST", "/reversals", json={"entry_id": "operator-only", "date": "2026-10-09"})
    assert first.status_code == 201 and first.get_json()["reversal_id"] == "operator-only~reversal"
    assert api.call("controller", "POST", "/reversals", json={"entry_id": "operator-only", "date": "2026-10-09"}).status_code == 200
    problem(api.call("controller", "POST", "/reversals", json={"entry_id": "operator-only", "date": "2026-10-10"}), 409)
    problem(api.call("controller", "POST", "/reversals", json={"entry_id": "nope", "date": "2026-10-10"}), 404)
    assert api.call("auditor", "GET", "/entries/operator-only").get_json()["reversed_by"] == "operator-only~reversal"


# -- balances, statements, periods --------------------------------------------------------------


def test_trial_balances(api):
    vend = api.call("partner", "GET", "/companies/VEND/trial-balance").get_json()
    assert vend["totals"] == [{"currency": "EUR", "debits": "60.00", "credits": "60.00"}]
    before = api.call("auditor", "GET", "/companies/OPFI/trial-balance?as_of=2026-10-05").get_json()
    assert {line["account"] for line in before["lines"]} == {"Expenses:CostOfServices", "Liabilities:Ecosystem:DueTo"}
    everything = api.call("controller", "GET", "/trial-balance?consolidated=true").get_json()
    assert everything["consolidated"] is True
    problem(api.call("partner", "GET", "/trial-balance"), 403)


def test_statement_pages_carry_the_running_balance(api):
    api.call("controller", "POST", "/entries", json=batch(*(entry(f"s{i}", f"2026-10-{10 + i}") for i in range(5))))
    lines, cursor, openings = [], None, []
    while True:
        page = api.call("auditor", "GET", "/companies/OPFI/accounts/Income:Usage/statement?limit=2&from=2026-10-01"
                        + (f"&cursor={cursor}" if cursor else "")).get_json()
        openings.append(page["opening"])
        lines += page["lines"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [line["balance"] for line in lines] == ["-100.00", "-200.00", "-300.00", "-400.00", "-500.00", "-600.00"]
    assert openings == [{}, {"EUR": "-200.00"}, {"EUR": "-400.00"}]


def test_periods(api):
    assert api.call("controller", "POST", "/companies/VEND/periods/2026-09/close").get_json()["status"] == "closed"
    problem(api.call("auditor", "POST", "/companies/VEND/periods/2026-10/close"), 403)
    problem(api.call("controller", "POST", "/companies/VEND/periods/2026-13/close"), 422)
    listed = api.call("partner", "GET", "/companies/VEND/periods").get_json()
    assert listed[0]["period"] == "2026-09" and listed[0]["status"] == "closed"


# -- jobs and exports --------------------------------------------------------------------------


def run_queued(api, job_id: str):
    return execute(api.db, job_id, worker="test", timing=JobTiming(30, 60), data_dir=api.app.extensions["ecoledger"]["settings"].data_path)


def test_verify_job(api):
    started = api.call("controller", "POST", "/verify")
    assert started.status_code == 202 and started.headers["Location"].endswith(started.get_json()["id"])
    job_id = started.get_json()["id"]
    assert api.call("controller", "POST", "/jobs", json={"kind": "verify"}).get_json()["id"] == job_id  # one job
    run_queued(api, job_id)
    shown = api.call("auditor", "GET", f"/jobs/{job_id}").get_json()
    assert shown["status"] == "succeeded" and shown["result"]["ok"] is True
    problem(api.call("controller", "POST", "/jobs", json={"kind": "export-beancount", "params": {"out": "/etc/x"}}), 422)
    problem(api.call("controller", "POST", f"/jobs/{job_id}/cancel"), 422)
    assert api.call("controller", "POST", f"/jobs/{job_id}/retry").status_code == 422


def test_partner_exports_its_own_books(api):
    started = api.call("partner", "POST", "/exports/beancount", json={})
    assert started.status_code == 202
    job = started.get_json()
    assert job["params"] == {"company": "VEND", "out": "api/VEND.beancount"}
    problem(api.call("partner", "GET", f"/exports/beancount/{job['id']}"), 409)  # not run yet
    run_queued(api, job["id"])
    download = api.call("partner", "GET", f"/exports/beancount/{job['id']}")
    assert download.status_code == 200 and "Assets:Ecosystem:DueFrom" in download.get_data(as_text=True)
    assert "Assets:OPFI" not in download.get_data(as_text=True)
    problem(api.call("partner", "POST", "/exports/beancount", json={"company": "OPFI"}), 404)
    everything = api.call("auditor", "POST", "/exports/beancount", json={}).get_json()
    problem(api.call("partner", "GET", f"/jobs/{everything['id']}"), 404)
    problem(api.call("partner", "GET", f"/exports/beancount/{everything['id']}"), 404)


def test_job_cancel_and_retry(api):
    job = api.call("controller", "POST", "/verify").get_json()
    assert api.call("controller", "POST", f"/jobs/{job['id']}/cancel").get_json()["status"] == "cancelled"
    assert api.call("controller", "POST", f"/jobs/{job['id']}/retry").get_json()["status"] == "queued"
    listed = api.call("auditor", "GET", "/jobs?status=queued").get_json()
    assert [j["id"] for j in listed] == [job["id"]]
    assert store.get_job(api.db, job["id"]).status == "queued"


# -- keys, audit, idempotency ------------------------------------------------------------------


def test_key_management(api):
    issued = api.call("operator_admin", "POST", "/api-keys", json={"name": "FieldFix statements", "role": "partner", "company": "VEND"})
    assert issued.status_code == 201
    key = issued.get_json()
    assert key["token"].startswith(f"eco_{key['key']['id']}_") and key["key"]["company"] == "VEND"
    listed = api.call("operator_admin", "GET", "/api-keys").get_json()
    assert all("token" not in k and "secret_hash" not in k for k in listed)
    problem(api.call("operator_admin", "POST", "/api-keys", json={"name": "x", "role": "partner"}), 422)
    problem(api.call("operator_admin", "POST", "/api-keys", json={"name": "x", "role": "partner", "company": "NOPE"}), 404)
    revoked = api.call("operator_admin", "POST", f"/api-keys/{key['key']['id']}/revoke").get_json()
    assert revoked["active"] is False
    problem(api.call("operator_admin", "POST", f"/api-keys/{api.key_ids['operator_admin']}/revoke"), 409)
    problem(api.call("controller", "GET", "/api-keys"), 403)


def test_every_mutating_call_is_audited(api):
    api.call("controller", "POST", "/entries", json=batch(entry("audited")), headers={"X-Request-ID": "req-123"})
    api.call("partner", "POST", "/companies", json={"code": "X", "name": "x", "currency": "EUR"})  # refused
    api.call(None, "POST", "/verify")  # not even authenticated
    page = api.call("auditor", "GET", "/audit-log?limit=20").get_json()
    actions = [(row["action"], row["details"].get("status"), row["request_id"]) for row in page["items"]]
    assert ("entries.post", None, "req-123") in actions  # the change itself, with the request id
    assert ("http.post", 201, "req-123") in actions  # and the call
    assert ("http.post", 403, actions[1][2]) in actions and ("http.post", 401, actions[0][2]) in actions
    assert page["items"][0]["actor"] == "anonymous"
    problem(api.call("partner", "GET", "/audit-log"), 403)


def test_idempotency_key(api):
    headers = {"Idempotency-Key": "batch-7"}
    first = api.call("controller", "POST", "/entries", json=batch(entry("i1")), headers=headers)
    again = api.call("controller", "POST", "/entries", json=batch(entry("i1")), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_json() == first.get_json()
    assert again.get_json()["results"][0]["status"] == "accepted"  # the first answer, replayed
    problem(api.call("controller", "POST", "/entries", json=batch(entry("i2")), headers=headers), 409)
    other_key = api.call("operator_admin", "POST", "/entries", json=batch(entry("i1")), headers=headers)
    assert other_key.get_json()["results"][0]["status"] == "duplicate"  # keys are per API key
    problem(api.call("controller", "POST", "/entries", json=batch(entry("i3")), headers={"Idempotency-Key": ""}), 400)


def test_unknown_routes_and_methods_are_problems(api):
    problem(api.call("auditor", "GET", "/nope"), 404)
    problem(api.call("auditor", "DELETE", "/companies"), 405)
    assert json.loads(api.call("auditor", "GET", "/nope").get_data())["instance"] == "/nope"


def test_a_nul_character_in_the_address_is_refused_naming_the_field(api):
    """Found by schemathesis on PostgreSQL: GET /entries?company=%00... answered 500."""
    response = api.call("operator_admin", "GET", "/entries", query_string={"company": "\x00OPFI"})
    assert response.status_code == 422 and response.get_json()["errors"][0]["field"] == "company"
    response = api.call("operator_admin", "GET", "/invoices/OPFI%00-000001")
    assert response.status_code == 422 and response.get_json()["errors"][0]["field"] == "number"
    assert api.call(None, "GET", "/entries", query_string={"company": "\x00"}).status_code == 401  # keys first
