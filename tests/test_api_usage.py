"""Usage through the API: upload CSV or JSON lines, rejects, resubmission, lines, alerts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ecoledger.documents import parse_document

DEMO_FILE = Path(__file__).resolve().parents[1] / "ecoledger" / "demo_ecosystem.yaml"
LINE = {"id": "v1", "timestamp": "2026-10-05T09:00:00+03:00", "contract": "SD-C-17", "service": "field-service",
        "quantity": "2", "unit": "hour", "attributes": {"employee_level": "technician", "shift": "day"}}


@pytest.fixture
def eco_api(api):
    document = parse_document(DEMO_FILE.read_bytes(), "demo")
    document["companies"] = []  # the harness has OPFI already
    assert api.call("operator_admin", "POST", "/ecosystem", json=document).status_code == 200
    events = {"events": [{"id": "a1", "type": "activated", "contract": "SD-C-17", "date": "2026-10-01"}]}
    assert api.call("controller", "POST", "/contract-events", json=events).status_code == 201
    return api


def upload(api, text: str, content_type: str = "application/x-ndjson", role: str = "controller", **query):
    return api.call(role, "POST", "/usage", data=text.encode(), content_type=content_type, query_string=query)


def jsonl(*records: dict) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def test_upload_json_lines_then_csv_then_again(eco_api):
    api = eco_api
    response = upload(api, jsonl(LINE, {**LINE, "id": "v2", "quantity": "1.5"}), source="october")
    assert response.status_code == 201, response.get_json()
    report = response.get_json()
    assert (report["posted"], report["rejected"], report["amounts"]) == (2, 0, {"EUR": 33250})
    assert report["source"] == "api: october"
    csv_text = ("id,timestamp,contract,service,quantity,attributes.employee_level,attributes.shift\n"
                "c1,2026-10-06,SD-C-17,field-service,1,specialist,night\n")
    response = upload(api, csv_text, "text/csv")
    assert response.status_code == 201 and response.get_json()["amounts"] == {"EUR": 19950}
    again = upload(api, jsonl(LINE))
    assert again.status_code == 201 and again.get_json()["duplicates"] == 1
    lines = api.call("auditor", "GET", "/usage/lines", query_string={"contract": "SD-C-17"}).get_json()
    assert [(r["id"], r["amount"]) for r in lines] == [("v1", "190.00"), ("v2", "142.50"), ("c1", "199.50")]
    by_entry = api.call("auditor", "GET", "/usage/lines", query_string={"entry": lines[0]["entry_seq"]}).get_json()
    assert [r["id"] for r in by_entry] == ["v1"]
    imports = api.call("auditor", "GET", "/usage/imports").get_json()
    assert [i["lines_read"] for i in imports] == [1, 1, 2]
    one = api.call("auditor", "GET", f"/usage/imports/{imports[-1]['id']}").get_json()
    assert one["posted"] == 2
    assert api.call("auditor", "GET", "/usage/imports/999").status_code == 404
    assert api.call("auditor", "GET", "/usage/imports/7462698997251").status_code == 404  # beyond 32 bits (fuzz)
    assert api.call("auditor", "GET", "/usage/rejects", query_string={"import": 2**40}).status_code == 422
    usage = api.call("auditor", "GET", "/contracts/SD-C-17/usage").get_json()
    assert usage == [{"contract": "SD-C-17", "component": "FIELD", "period_start": "2026-10-01",
                      "period_end": "2026-10-31", "quantity": "4.5", "amount": "532.00", "currency": "EUR"}]
    assert api.call("auditor", "GET", "/contracts/NOPE/usage").status_code == 404


def test_rejected_lines_are_reported_kept_and_resubmitted(eco_api):
    api = eco_api
    response = upload(api, jsonl({**LINE, "contract": "SD-C-23"}, {**LINE, "id": "bad", "quantity": 1.5}) + "not json\n")
    assert response.status_code == 200
    report = response.get_json()
    assert (report["posted"], report["rejected"]) == (0, 3)
    fields = {(o["ref"], o["problems"][0]["field"]) for o in report["outcomes"]}
    assert fields == {("1", "timestamp"), ("2", "quantity"), ("3", None)}
    rejects = api.call("auditor", "GET", "/usage/rejects").get_json()
    assert [r["code"] for r in rejects] == ["contract_not_active", "malformed", "malformed"]
    assert json.loads(rejects[0]["raw"])["contract"] == "SD-C-23"
    events = {"events": [{"id": "a23", "type": "activated", "contract": "SD-C-23", "date": "2026-10-01"}]}
    api.call("controller", "POST", "/contract-events", json=events)
    response = api.call("controller", "POST", "/usage/rejects/resubmit", query_string={"import": report["import_id"]})
    assert response.status_code == 200  # the two malformed lines are rejected again
    assert (response.get_json()["posted"], response.get_json()["rejected"]) == (1, 2)
    statuses = sorted(r["status"] for r in api.call("auditor", "GET", "/usage/rejects",
                                                     query_string={"status": "all"}).get_json())
    assert statuses == ["open", "open", "resolved", "resubmitted", "resubmitted"]


def test_upload_refusals(eco_api):
    api = eco_api
    assert upload(api, jsonl(LINE), "image/png").status_code == 415
    response = upload(api, "id,when\n", "text/csv")
    assert response.status_code == 400 and "unknown column" in response.get_json()["detail"]
    assert upload(api, jsonl(LINE), posting="sideways").status_code == 422
    assert upload(api, jsonl(LINE), role="partner").status_code == 403
    assert upload(api, jsonl(LINE), role="auditor").status_code == 403
    big = "x" * (16 * 1024 * 1024 + 1)
    response = upload(api, big)
    assert response.status_code == 413 and "16777216" in response.get_json()["detail"]
    assert api.call("auditor", "GET", "/usage/imports").get_json() == []  # nothing was recorded


def test_alerts_through_the_api(eco_api):
    api = eco_api
    assert api.call("auditor", "GET", "/usage/alerts").get_json() == []
    assert api.call("auditor", "GET", "/usage/alerts", query_string={"contract": "NOPE"}).status_code == 404


def test_uploads_are_audited_with_their_request_id(eco_api):
    api = eco_api
    response = api.call("controller", "POST", "/usage", data=jsonl(LINE).encode(), content_type="application/x-ndjson",
                        headers={"X-Request-ID": "req-usage-1"})
    assert response.status_code == 201
    log = api.call("operator_admin", "GET", "/audit-log").get_json()
    actions = {(e["action"], e["request_id"]) for e in log["items"]} if isinstance(log, dict) else {
        (e["action"], e["request_id"]) for e in log}
    assert ("usage.import", "req-usage-1") in actions


def test_a_large_file_is_uploaded_and_imported_by_a_job(eco_api):
    from jobs.runner import JobTiming, execute

    api = eco_api
    settings = api.app.extensions["ecoledger"]["settings"]
    lines = [{**LINE, "id": f"bulk-{n}", "quantity": str(1 + n % 3)} for n in range(300)]
    response = upload(api, jsonl(*lines, {**LINE, "id": "bulk-bad", "unit": "day"}), source="bulk")
    assert response.status_code == 200 and response.get_json()["rejected"] == 1  # the small path: in the request
    response = api.call("controller", "POST", "/usage/uploads", data=jsonl(*lines, {**LINE, "id": "more"}).encode(),
                        content_type="application/x-ndjson", query_string={"source": "bulk-2"})
    assert response.status_code == 202, response.get_json()
    job = response.get_json()
    assert job["kind"] == "import-usage" and response.headers["Location"].endswith(job["id"])
    uploads = list((settings.data_path / "uploads").iterdir())
    assert [p.suffix for p in uploads] == [".jsonl"]  # stored whole, no partial file left
    done = execute(api.db, job["id"], worker="test", timing=JobTiming(30, 60), data_dir=settings.data_path)
    assert done.status == "succeeded", done.error
    assert (done.result["posted"], done.result["duplicates"], done.result["source"]) == (1, 300, "api: bulk-2")
    polled = api.call("auditor", "GET", f"/jobs/{job['id']}").get_json()
    assert polled["status"] == "succeeded" and polled["result"]["lines_read"] == 301
    audit = api.call("operator_admin", "GET", "/audit-log", query_string={"action": "usage.import"}).get_json()
    rows = audit["items"] if isinstance(audit, dict) else audit
    assert any(r["actor"].startswith(f"job:{job['id']}") for r in rows)


def test_the_import_job_from_the_cli(cli, tmp_path):
    assert cli("init")[0] == 0
    assert cli("load", str(DEMO_FILE))[0] == 0
    events = tmp_path / "e.jsonl"
    events.write_text(json.dumps({"id": "a1", "type": "activated", "contract": "SD-C-17", "date": "2026-10-01"}) + "\n")
    cli("import", "events", str(events))
    usage = tmp_path / "u.jsonl"
    usage.write_text(jsonl(LINE))
    code, out, err = cli("job", "run", "import-usage", "-p", f"file={usage}", "--format", "json")
    assert code == 0, out + err
    assert json.loads(out)["result"]["posted"] == 1
    code, out, _ = cli("job", "run", "import-usage", "-p", f"file={tmp_path / 'missing.csv'}")
    assert code != 0 and "cannot read" in out + _


def test_a_billing_run_through_the_api(eco_api):
    from jobs.runner import JobTiming, execute

    api = eco_api
    assert upload(api, jsonl(LINE, {**LINE, "id": "v2", "quantity": "1.5"})).status_code == 201
    response = api.call("controller", "POST", "/billing-runs", json={"company": "OPFI", "period": "2026-10"})
    assert response.status_code == 202, response.get_json()
    job = response.get_json()
    settings = api.app.extensions["ecoledger"]["settings"]
    done = execute(api.db, job["id"], worker="test", timing=JobTiming(30, 60), data_dir=settings.data_path)
    assert done.status == "succeeded", done.error
    assert done.result["invoices"] == ["OPFI-000001"] and done.result["totals"] == {"EUR": 33250 + 30000 + 15000}
    assert (done.result["usage_lines"], done.result["fees"]) == (2, 1)  # and the desk's fee, and the set-up fee event
    listed = api.call("auditor", "GET", "/invoices", query_string={"period": "2026-10"}).get_json()
    assert [(i["number"], i["customer"], i["total"]) for i in listed] == [("OPFI-000001", "C-17", "782.50")]
    invoice = api.call("auditor", "GET", "/invoices/OPFI-000001").get_json()
    assert invoice["lines"][0]["usage_lines"] == 2 and invoice["lines"][0]["quantity"] == "3.5"
    csv_response = api.call("auditor", "GET", "/invoices/OPFI-000001", query_string={"format": "csv"})
    assert csv_response.mimetype == "text/csv"
    assert csv_response.get_data(as_text=True).splitlines()[1].endswith(",332.50,EUR,2")
    pdf = api.call("auditor", "GET", "/invoices/OPFI-000001", query_string={"format": "pdf"})
    assert pdf.mimetype == "application/pdf" and pdf.get_data().startswith(b"%PDF")
    assert api.call("auditor", "GET", "/invoices/NOPE").status_code == 404
    assert api.call("partner", "GET", "/invoices").status_code == 403
    leakage = api.call("auditor", "GET", "/billing/leakage", query_string={"company": "OPFI", "period": "2026-10"})
    assert leakage.status_code == 200 and leakage.get_json()["not_billed"] == []
    assert api.call("auditor", "GET", "/billing/leakage", query_string={"company": "NOPE", "period": "2026-10"}
                    ).status_code == 404
    year_zero = api.call("auditor", "GET", "/billing/leakage", query_string={"company": "OPFI", "period": "0000-01"})
    assert year_zero.status_code == 422 and year_zero.get_json()["errors"][0]["field"] == "period"  # found by schemathesis
    bad = api.call("controller", "POST", "/billing-runs", json={"company": "OPFI", "period": "2026-13"})
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "period"


def test_budget_caps_through_the_api(eco_api):
    api = eco_api
    body = {"customer": "C-17", "period": "2026-10", "amount": "700.00"}
    set_cap = api.call("controller", "POST", "/billing/caps", json=body)
    assert set_cap.status_code == 200, set_cap.get_json()
    assert {k: set_cap.get_json()[k] for k in ("customer", "currency", "period", "amount")} == {
        "customer": "C-17", "currency": "EUR", "period": "2026-10", "amount": "700.00"}
    listed = api.call("auditor", "GET", "/billing/caps", query_string={"period": "2026-10"}).get_json()
    assert [(c["customer"], c["amount"], c["set_by"].startswith("api:")) for c in listed] == [("C-17", "700.00", True)]
    for bad, field in [({**body, "amount": 700}, "amount"), ({**body, "amount": "7.001"}, "amount"),
                       ({**body, "customer": "NOPE"}, "customer"), ({**body, "period": "2026-13"}, "period"),
                       ({**body, "extra": 1}, "extra")]:
        response = api.call("controller", "POST", "/billing/caps", json=bad)
        assert response.status_code in (404, 422) and response.get_json()["errors"][0]["field"] == field, bad
    assert api.call("auditor", "POST", "/billing/caps", json=body).status_code == 403
    assert api.call("partner", "GET", "/billing/caps").status_code == 403


def test_disputes_through_the_api(eco_api):
    api = eco_api
    assert upload(api, jsonl(LINE)).status_code == 201
    line_id = LINE["id"]
    opened = api.call("controller", "POST", "/usage/disputes", json={"line_id": line_id, "reason": "wrong site"})
    assert opened.status_code == 201 and opened.get_json()["status"] == "open", opened.get_json()
    again = api.call("controller", "POST", "/usage/disputes", json={"line_id": line_id, "reason": "again"})
    assert again.status_code == 409 and again.get_json()["errors"][0]["field"] == "line_id"
    missing = api.call("controller", "POST", "/usage/disputes", json={"line_id": "nope", "reason": "x"})
    assert missing.status_code == 404
    bad = api.call("controller", "POST", "/usage/disputes/resolve", json={"line_id": line_id, "outcome": "refund"})
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "outcome"
    resolved = api.call("controller", "POST", "/usage/disputes/resolve",
                        json={"line_id": line_id, "outcome": "credit", "date": "2026-11-02", "resolution": "goodwill"})
    assert resolved.status_code == 200, resolved.get_json()
    assert (resolved.get_json()["status"], resolved.get_json()["event_id"]) == ("credited", f"dispute:{line_id}")
    listed = api.call("auditor", "GET", "/usage/disputes", query_string={"status": "credited"}).get_json()
    assert [d["line_id"] for d in listed] == [line_id]
    assert api.call("auditor", "POST", "/usage/disputes", json={"line_id": line_id, "reason": "x"}).status_code == 403
    assert api.call("partner", "GET", "/usage/disputes").status_code == 403


def test_credit_notes_through_the_api(eco_api):
    from billing.service import run_billing
    from contracts.rules import load_rules

    api = eco_api
    assert upload(api, jsonl(LINE)).status_code == 201
    [number] = run_billing(api.db, "OPFI", "2026-10", rules=load_rules(), actor="t").invoices
    body = {"reason": "goodwill", "amount": "10.00", "date": "2026-11-04"}
    created = api.call("controller", "POST", f"/invoices/{number}/credit-notes", json=body)
    assert created.status_code == 201, created.get_json()
    note = created.get_json()
    assert (note["number"], note["document_type"], note["credits"], note["total"]) == (
        "OPFI-CN-000001", "credit_note", number, "-10.00")
    for bad, field in [({**body, "amount": "-1.00"}, "amount"), ({**body, "line_no": 99}, "line"),
                       ({**body, "line_no": "1"}, "line_no"), ({"amount": "1.00"}, "reason"),
                       ({**body, "amount": "100000.00"}, "amount")]:
        response = api.call("controller", "POST", f"/invoices/{number}/credit-notes", json=bad)
        assert response.status_code in (404, 409, 422), (bad, response.get_json())
        assert response.get_json()["errors"][0]["field"] == field, (bad, response.get_json())
    assert api.call("controller", "POST", "/invoices/NOPE/credit-notes", json=body).status_code == 404
    assert api.call("auditor", "POST", f"/invoices/{number}/credit-notes", json=body).status_code == 403
    assert api.call("auditor", "GET", "/invoices/OPFI-CN-000001").get_json()["credits"] == number


def test_preview_and_approval_through_the_api(eco_api):
    api = eco_api
    assert upload(api, jsonl(LINE)).status_code == 201
    preview = api.call("auditor", "GET", "/billing/preview", query_string={"company": "OPFI", "period": "2026-10"})
    assert preview.status_code == 200, preview.get_json()
    [planned] = preview.get_json()["invoices"]
    approved = api.call("controller", "POST", "/billing/approvals",
                        json={"customer": planned["customer"], "period": "2026-10", "total": planned["total"]})
    assert approved.status_code == 200 and approved.get_json()["invoice"] is None, approved.get_json()
    listed = api.call("auditor", "GET", "/billing/approvals").get_json()
    assert [(a["customer"], a["total"]) for a in listed] == [(planned["customer"], planned["total"])]
    bad = api.call("controller", "POST", "/billing/approvals", json={"customer": "NOPE", "period": "2026-10",
                                                                     "total": "1.00"})
    assert bad.status_code == 404 and bad.get_json()["errors"][0]["field"] == "customer"
    bad = api.call("auditor", "GET", "/billing/preview", query_string={"company": "OPFI", "period": "2026-10",
                                                                       "rounding": "bankers"})
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "rounding"
    assert api.call("auditor", "POST", "/billing/approvals", json={"customer": "C-17", "period": "2026-10",
                                                                   "total": "1.00"}).status_code == 403
    assert api.call("partner", "GET", "/billing/preview",
                    query_string={"company": "OPFI", "period": "2026-10"}).status_code == 403


def test_period_alerts_through_the_api(eco_api):
    api = eco_api
    assert upload(api, jsonl(LINE)).status_code == 201
    response = api.call("controller", "POST", "/usage/alerts/evaluate", json={"period": "2026-10"})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["period"] == "2026-10"
    bad = api.call("controller", "POST", "/usage/alerts/evaluate", json={"period": "October"})
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "period"
    assert api.call("auditor", "POST", "/usage/alerts/evaluate", json={"period": "2026-10"}).status_code == 403
