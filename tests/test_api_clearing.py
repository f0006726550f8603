"""Settlement statements through the API: operators issue and record payments; each
partner reads its own statements and nobody else's."""

from __future__ import annotations

from test_api_usage import LINE, eco_api, jsonl, upload  # noqa: F401 (the fixture)

from access.keys import issue_key


def test_partners_read_their_own_statements_and_operators_record_payments(eco_api):  # noqa: F811
    api = eco_api
    api.tokens["fixr"] = issue_key(api.db, name="FIXR portal", role="partner", actor="t", company="FIXR").token
    assert upload(api, jsonl(LINE, {**LINE, "id": "v2", "quantity": "1.5"})).status_code == 201
    issued = api.call("controller", "POST", "/statements", json={"period": "2026-10"})
    assert issued.status_code == 200, issued.get_json()
    number = "ST-FIXR-OPFI-2026-10-EUR-1"
    assert number in issued.get_json()["issued"]
    again = api.call("controller", "POST", "/statements", json={"period": "2026-10"}).get_json()
    assert again["issued"] == [] and number in again["unchanged"]
    # The vendor sees its own statement, and only its own.
    own = api.call("fixr", "GET", "/statements").get_json()
    assert [s["number"] for s in own] == [number]
    assert api.call("fixr", "GET", "/statements", query_string={"partner": "CHNL"}).get_json() == []
    statement = api.call("fixr", "GET", f"/statements/{number}").get_json()
    assert (statement["direction"], statement["status"], statement["amount_due"]) == ("payout", "open",
                                                                                     statement["closing"])
    kinds = {line["kind"]: line for line in statement["lines"]}
    assert set(kinds) == {"activated", "usage"} and kinds["usage"]["postings"] == 2  # the set-up fee's share too
    entries = api.call("fixr", "GET", f"/statements/{number}/lines/{kinds['usage']['line_no']}/entries").get_json()
    assert entries["entries"] == ["usage:v1", "usage:v2"]
    assert api.call("partner", "GET", f"/statements/{number}").status_code == 404  # another partner's: not found
    assert api.call("partner", "GET", "/statements").get_json() == []
    assert api.call("partner", "GET", f"/statements/{number}/lines/1/entries").status_code == 404
    csv_response = api.call("fixr", "GET", f"/statements/{number}", query_string={"format": "csv"})
    assert csv_response.mimetype == "text/csv" and csv_response.get_data(as_text=True).startswith("line,contract,kind")
    pdf = api.call("fixr", "GET", f"/statements/{number}", query_string={"format": "pdf"})
    assert pdf.mimetype == "application/pdf" and pdf.get_data().startswith(b"%PDF")
    # Payments: only operators record them; the status follows.
    body = {"amount": "10.00", "date": "2026-11-20", "reference": "SEPA 1"}
    assert api.call("fixr", "POST", f"/statements/{number}/payments", json=body).status_code == 403
    paid = api.call("controller", "POST", f"/statements/{number}/payments", json=body)
    assert paid.status_code == 201 and paid.get_json()["status"] == "partially_settled", paid.get_json()
    too_much = api.call("controller", "POST", f"/statements/{number}/payments",
                        json={**body, "amount": "100000.00"})
    assert too_much.status_code == 409 and too_much.get_json()["errors"][0]["field"] == "amount"
    for bad, field in [({**body, "amount": 10}, "amount"), ({**body, "date": "soon"}, "date"),
                       ({"amount": "1.00"}, "date"), ({**body, "extra": 1}, "extra")]:
        response = api.call("controller", "POST", f"/statements/{number}/payments", json=bad)
        assert response.status_code == 422 and response.get_json()["errors"][0]["field"] == field, bad
    missing = api.call("controller", "POST", "/statements/ST-NOPE/payments", json=body)
    assert missing.status_code == 404
    bad_period = api.call("controller", "POST", "/statements", json={"period": "2026-13"})
    assert bad_period.status_code == 422 and bad_period.get_json()["errors"][0]["field"] == "period"


def test_clearing_runs_through_the_api(eco_api):  # noqa: F811
    from jobs.runner import JobTiming, execute

    api = eco_api
    api.tokens["fixr"] = issue_key(api.db, name="FIXR portal", role="partner", actor="t", company="FIXR").token
    assert upload(api, jsonl(LINE)).status_code == 201
    response = api.call("controller", "POST", "/clearing-runs", json={"period": "2026-10"})
    assert response.status_code == 202, response.get_json()
    settings = api.app.extensions["ecoledger"]["settings"]
    done = execute(api.db, response.get_json()["id"], worker="test", timing=JobTiming(30, 60),
                   data_dir=settings.data_path)
    assert done.status == "succeeded", done.error
    assert [i["kind"] for i in done.result["items"]] == ["minimum_guarantee"]
    own = api.call("fixr", "GET", "/clearing/items").get_json()
    assert [i["agreement"] for i in own] == ["FIXR-SHARE"]
    assert api.call("partner", "GET", "/clearing/items").get_json() == []  # another partner's: none
    bad = api.call("controller", "POST", "/clearing-runs", json={"period": "2026-13"})
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "period"


def test_consolidation_through_the_api(eco_api):  # noqa: F811
    api = eco_api
    response = api.call("auditor", "GET", "/consolidation", query_string={"as_of": "2026-10-31"})
    assert response.status_code == 200 and response.get_json()["group"] == ["OPEE", "OPFI"]
    assert api.call("partner", "GET", "/consolidation").status_code == 403
    bad = api.call("auditor", "GET", "/consolidation", query_string={"as_of": "yesterday"})
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "as_of"


def test_netting_through_the_api(eco_api):  # noqa: F811
    api = eco_api
    assert upload(api, jsonl(LINE)).status_code == 201
    response = api.call("controller", "POST", "/netting-runs", json={"cycle": "2026-10", "centre": "OPEE"})
    assert response.status_code == 200, response.get_json()
    report = response.get_json()
    assert [(m["partner"], m["counterparty"]) for m in report["moves"]] == [("FIXR", "OPFI")]
    assert [(p["participant"], p["direction"]) for p in report["positions"]] == [("FIXR", "receive")]
    bad = api.call("controller", "POST", "/netting-runs", json={"cycle": "2026-10", "centre": "FIXR"})
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "centre"
    assert api.call("auditor", "POST", "/netting-runs", json={"cycle": "2026-10", "centre": "OPEE"}).status_code == 403


def test_exchange_rates_and_bilateral_netting_through_the_api(eco_api):  # noqa: F811
    api = eco_api
    rate = {"cycle": "2026-10", "currency": "USD", "to_currency": "EUR", "rate": "0.9213", "rate_date": "2026-10-30",
            "source": "ECB reference rate"}
    created = api.call("controller", "POST", "/fx-rates", json=rate)
    assert created.status_code == 201 and created.get_json()["rate"] == "0.9213"
    assert api.call("controller", "POST", "/fx-rates", json=rate).status_code == 200
    assert api.call("controller", "POST", "/fx-rates", json={**rate, "rate": "0.93"}).status_code == 409
    bad = api.call("controller", "POST", "/fx-rates", json={**rate, "rate": "-1"})
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "rate"
    listed = api.call("auditor", "GET", "/fx-rates?cycle=2026-10")
    assert listed.status_code == 200 and [r["source"] for r in listed.get_json()] == ["ECB reference rate"]
    assert api.call("partner", "GET", "/fx-rates").status_code == 403
    bilateral = api.call("controller", "POST", "/netting-runs", json={"cycle": "2026-10", "mode": "bilateral"})
    assert bilateral.status_code == 200 and bilateral.get_json()["mode"] == "bilateral"
    both = api.call("controller", "POST", "/netting-runs", json={"cycle": "2026-10", "mode": "bilateral",
                                                                 "centre": "OPFI"})
    assert both.status_code == 422 and both.get_json()["errors"][0]["field"] == "centre"
