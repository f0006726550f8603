"""`ecoledger import usage` and `ecoledger usage ...` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

DEMO_FILE = Path(__file__).resolve().parents[1] / "ecoledger" / "demo_ecosystem.yaml"
CSV_FILE = """id,timestamp,contract,service,quantity,unit,attributes.employee_level,attributes.shift
v1,2026-10-05T09:00:00+03:00,SD-C-17,field-service,2,hour,technician,day
v2,2026-10-06T22:00:00+03:00,SD-C-17,field-service,1.5,hour,specialist,night
v3,2026-10-07T09:00:00+03:00,SD-C-17,field-service,1,hour,boss,day
v4,2026-10-07T09:00:00+03:00,SD-C-99,field-service,1,hour,technician,day
"""


@pytest.fixture
def eco_cli(cli, tmp_path):
    assert cli("init")[0] == 0
    assert cli("load", str(DEMO_FILE))[0] == 0
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps({"id": "act", "type": "activated", "contract": "SD-C-17", "date": "2026-10-01"}) + "\n")
    assert cli("import", "events", str(events))[0] == 0
    return cli


def test_import_usage_csv_then_correct_the_rejects(eco_cli, tmp_path):
    cli = eco_cli
    usage = tmp_path / "october.csv"
    usage.write_text(CSV_FILE)
    code, out, _ = cli("import", "usage", str(usage))
    assert code == 1
    assert "4 lines read: 2 posted (0 late), 0 duplicate, 2 rejected" in out
    assert "line 4 (v3): attributes.employee_level: 'boss' is not a employee_level" in out
    assert "line 5 (v4): contract: no contract 'SD-C-99' [not_found]" in out
    code, out, _ = cli("usage", "lines", "--contract", "SD-C-17", "--format", "json")
    lines = json.loads(out)
    # 2 h x 95.00; 1.5 h x 95.00 x 1.4 (specialist) x 1.5 (night)
    assert [(r["id"], r["amount"], r["rating"]["factor"]) for r in lines] == [("v1", "190.00", "1"), ("v2", "299.25", "2.1")]
    code, out, _ = cli("usage", "rejects", "--format", "jsonl")
    rejected = [json.loads(text) for text in out.splitlines()]
    assert [r["id"] for r in rejected] == ["v3", "v4"]
    fixed = tmp_path / "fixed.jsonl"
    fixed.write_text("".join(json.dumps({**r, "attributes": {**r["attributes"], "employee_level": "technician"},
                                         "contract": "SD-C-17"}) + "\n" for r in rejected))
    code, out, _ = cli("import", "usage", str(fixed), "--format", "json")
    report = json.loads(out)
    assert code == 0 and (report["posted"], report["rejected"], report["format"]) == (2, 0, "jsonl")
    assert cli("usage", "rejects", "--format", "json")[1].strip() == "[]"
    resolved = json.loads(cli("usage", "rejects", "--status", "resolved", "--format", "json")[1])
    assert {r["line_id"] for r in resolved} == {"v3", "v4"}
    code, out, _ = cli("import", "usage", str(usage))
    assert "4 lines read: 0 posted (0 late), 2 duplicate, 2 rejected" in out  # v3, v4 conflict with the fixes
    imports = json.loads(cli("usage", "imports", "--format", "json")[1])
    assert [(i["lines_read"], i["posted"], i["status"]) for i in imports] == [(4, 0, "complete"), (2, 2, "complete"),
                                                                              (4, 2, "complete")]
    counters = json.loads(cli("usage", "counters", "SD-C-17", "--format", "json")[1])
    assert counters == [{"contract": "SD-C-17", "component": "FIELD", "period_start": "2026-10-01",
                         "period_end": "2026-10-31", "quantity": "5.5", "amount": "679.25", "currency": "EUR"}]
    code, out, _ = cli("usage", "lines", "--format", "csv")
    assert out.splitlines()[0].startswith("id,contract,component,usage_date,quantity")
    assert cli("verify")[0] == 0


def test_resubmit_after_activation(eco_cli, tmp_path):
    cli = eco_cli
    usage = tmp_path / "u.jsonl"
    usage.write_text(json.dumps({"id": "w1", "timestamp": "2026-10-05", "contract": "SD-C-23", "service": "field-service",
                                 "quantity": "1", "attributes": {"employee_level": "technician", "shift": "day"}}) + "\n")
    code, out, _ = cli("import", "usage", str(usage))
    assert code == 1 and "never activated" in out
    events = tmp_path / "e.jsonl"
    events.write_text(json.dumps({"id": "act23", "type": "activated", "contract": "SD-C-23", "date": "2026-10-01"}) + "\n")
    cli("import", "events", str(events))
    code, out, _ = cli("usage", "resubmit")
    assert code == 0 and "1 posted" in out
    assert json.loads(cli("usage", "rejects", "--status", "all", "--format", "json")[1])[0]["status"] == "resolved"


def test_a_bad_csv_header_imports_nothing(eco_cli, tmp_path):
    usage = tmp_path / "bad.csv"
    usage.write_text("id,when,contract\nx,2026-10-05,SD-C-17\n")
    code, _, err = eco_cli("import", "usage", str(usage))
    assert code == 2 and "unknown column 'when'" in err
    assert eco_cli("usage", "imports", "--format", "json")[1].strip() == "[]"


def test_alerts_from_the_cli(eco_cli, tmp_path):
    cli = eco_cli
    raise_budget_alert(cli, tmp_path)
    alerts = json.loads(cli("usage", "alerts", "--format", "json")[1])
    assert [(a["kind"], a["threshold_percent"], a["used"], a["limit"]) for a in alerts] == [("budget", 80, "190.00", "200.00")]


def raise_budget_alert(cli, tmp_path) -> None:
    """Contract SD-C-18, with a budget of 200.00 on field service, and a line reaching 80% of it."""
    plan = tmp_path / "eco.yaml"
    plan.write_text(DEMO_FILE.read_text().replace(
        "      - {code: FIELD, type: usage, service: field-service, price_plan: FS-HOURLY, vendor: FIXR}\n"
        "      - {code: SETUP", "      - {code: FIELD, type: usage, service: field-service, price_plan: FS-HOURLY, "
        "vendor: FIXR, budget: \"200.00\"}\n      - {code: SETUP").replace("code: SD-C-17", "code: SD-C-18"), encoding="utf-8")
    assert cli("load", str(plan))[0] == 0
    events = tmp_path / "e.jsonl"
    events.write_text(json.dumps({"id": "act18", "type": "activated", "contract": "SD-C-18", "date": "2026-10-01"}) + "\n")
    cli("import", "events", str(events))
    usage = tmp_path / "u.jsonl"
    usage.write_text(json.dumps({"id": "b1", "timestamp": "2026-10-05", "contract": "SD-C-18", "service": "field-service",
                                 "quantity": "2", "attributes": {"employee_level": "technician", "shift": "day"}}) + "\n")
    assert cli("import", "usage", str(usage))[0] == 0


@pytest.mark.parametrize("command", [["import", "usage"], ["usage"], ["usage", "imports"], ["usage", "rejects"],
                                     ["usage", "resubmit"], ["usage", "lines"], ["usage", "alerts"], ["usage", "counters"],
                                     ["usage", "dispute"], ["usage", "resolve"], ["usage", "disputes"]])
def test_every_usage_command_has_help(cli, command):
    code, out, _ = cli(*command, "--help")
    assert code == 0 and "Usage:" in out


def test_billing_run_and_invoices_from_the_cli(eco_cli, tmp_path):
    cli = eco_cli
    usage = tmp_path / "october.csv"
    usage.write_text(CSV_FILE)
    cli("import", "usage", str(usage))
    code, out, _ = cli("billing", "run", "--company", "OPFI", "--period", "2026-10")
    assert code == 0 and "1 invoices issued on 2026-10-31, 2 usage lines, 1 fee periods, 939.25 EUR" in out and "OPFI-000001" in out
    code, out, _ = cli("billing", "run", "--company", "OPFI", "--period", "2026-10", "--format", "json")
    assert json.loads(out)["invoices"] == []
    listed = json.loads(cli("invoice", "list", "--format", "json")[1])
    assert [(i["number"], i["customer"], i["total"], i["due_date"]) for i in listed] == [
        ("OPFI-000001", "C-17", "939.25", "2026-11-30")]  # the usage, the desk's fee and the set-up fee
    code, out, _ = cli("invoice", "show", "OPFI-000001", "--format", "csv")
    assert out.splitlines() == [
        "line,customer,cost_centre,contract,component,description,quantity,unit,amount,currency,usage_lines",
        "1,C-17,,SD-C-17,FIELD,field-service (SD-C-17 FIELD): 3.5 hour,3.5,hour,489.25,EUR,2",
        "2,C-17,,SD-C-17,DESK,\"service-desk (SD-C-17 DESK): in advance, 2026-10-01 to 2026-10-31, 31 of 31 days\","
        "31,days,300.00,EUR,0",
        "3,C-17,,SD-C-17,contract,activated (SD-C-17 contract): 2026-10-01,1,event,150.00,EUR,0"]
    assert cli("invoice", "show", "OPFI-000001")[0] == 0
    code, out, _ = cli("invoice", "show", "OPFI-000001", "--format", "pdf", "--out", str(tmp_path / "i.pdf"))
    assert code == 0 and (tmp_path / "i.pdf").read_bytes().startswith(b"%PDF")
    code, _, err = cli("invoice", "show", "NOPE")
    assert code == 1 and "no invoice 'NOPE'" in err
    code, out, _ = cli("billing", "leakage", "--company", "OPFI", "--period", "2026-10", "--format", "json")
    leakage = json.loads(out)
    assert code == 1 and leakage["not_billed"] == [] and [r["contract"] for r in leakage["no_contract"]] == ["SD-C-99"]
    assert cli("billing", "leakage", "--company", "OPFI", "--period", "2026-09")[0] == 0
    assert cli("verify")[0] == 0


def test_budget_caps_from_the_cli(eco_cli, tmp_path):
    cli = eco_cli
    usage = tmp_path / "october.csv"
    usage.write_text(CSV_FILE)
    cli("import", "usage", str(usage))
    code, out, _ = cli("billing", "cap", "--customer", "C-17", "--period", "2026-10", "--amount", "800.00")
    assert code == 0 and out.strip() == "budget cap for C-17 2026-10: 800.00 EUR"
    code, _, err = cli("billing", "cap", "--customer", "C-17", "--period", "2026-10", "--amount", "-1.00")
    assert code == 1 and "not negative" in err
    code, out, _ = cli("billing", "caps", "--format", "csv")
    assert out.splitlines()[1].startswith("2026-10,C-17,800.00,EUR,")
    cli("billing", "run", "--company", "OPFI", "--period", "2026-10")
    code, out, _ = cli("invoice", "show", "OPFI-000001", "--format", "csv")
    assert out.splitlines()[-1] == ("4,C-17,,,budget_cap,\"Budget cap: over the budget cap of 800.00 for 2026-10, carried "
                                    "to the next invoice\",1,invoice,-139.25,EUR,0")
    listed = json.loads(cli("invoice", "list", "--format", "json")[1])
    assert listed[0]["total"] == "800.00"
    assert cli("verify")[0] == 0


@pytest.mark.parametrize("command", [["billing"], ["billing", "run"], ["billing", "leakage"], ["billing", "cap"],
                                     ["billing", "caps"], ["invoice"], ["invoice", "list"], ["invoice", "show"],
                                     ["invoice", "credit"], ["billing", "preview"], ["billing", "approve"],
                                     ["billing", "approvals"], ["usage", "period-alerts"]])
def test_every_billing_command_has_help(cli, command):
    code, out, _ = cli(*command, "--help")
    assert code == 0 and "Usage:" in out


def test_disputes_from_the_cli(eco_cli, tmp_path):
    cli = eco_cli
    usage = tmp_path / "october.csv"
    usage.write_text(CSV_FILE)
    cli("import", "usage", str(usage))
    line_id = json.loads(cli("usage", "lines", "--format", "json")[1])[0]["id"]
    code, out, err = cli("usage", "dispute", line_id, "--reason", "not ordered")
    assert code == 0 and out.strip().endswith(": open"), out + err
    code, _, err = cli("usage", "resolve", line_id, "--outcome", "refund")
    assert code == 2 and "refund" in err
    code, out, err = cli("usage", "resolve", line_id, "--outcome", "cancel", "--date", "2026-11-02")
    assert code == 0 and ": cancelled, reversed by entry " in out, out + err
    listed = json.loads(cli("usage", "disputes", "--status", "cancelled", "--format", "json")[1])
    assert [(d["line_id"], d["reason"], d["invoice"]) for d in listed] == [(line_id, "not ordered", None)]
    code, out, _ = cli("usage", "disputes", "--format", "csv")
    assert out.splitlines()[0].startswith("line_id,contract,component,usage_date,amount")
    assert cli("verify")[0] == 0


def test_credit_notes_from_the_cli(eco_cli, tmp_path):
    cli = eco_cli
    usage = tmp_path / "october.csv"
    usage.write_text(CSV_FILE)
    cli("import", "usage", str(usage))
    cli("billing", "run", "--company", "OPFI", "--period", "2026-10")
    code, out, err = cli("invoice", "credit", "OPFI-000001", "--line", "1", "--amount", "89.25", "--reason",
                         "one visit too many", "--date", "2026-11-04")
    assert code == 0 and out.strip() == "credit note OPFI-CN-000001 credits OPFI-000001: -89.25 EUR", out + err
    code, _, err = cli("invoice", "credit", "OPFI-000001", "--line", "1", "--amount", "400.01", "--reason", "x")
    assert code == 1 and "400.00 EUR left to credit" in err
    code, out, _ = cli("invoice", "list", "--format", "csv")
    assert out.splitlines()[2].startswith("OPFI-CN-000001,credit_note,OPFI,C-17,2026-10,2026-11-04,2026-11-04,-89.25,EUR,")
    code, out, _ = cli("invoice", "show", "OPFI-CN-000001")
    assert code == 0 and "Credit note OPFI-CN-000001" in out and "one visit too many" in out
    code, _, _ = cli("invoice", "show", "OPFI-CN-000001", "--format", "pdf", "--out", str(tmp_path / "cn.pdf"))
    assert code == 0 and (tmp_path / "cn.pdf").read_bytes().startswith(b"%PDF")
    assert cli("verify")[0] == 0


def test_preview_and_approval_from_the_cli(eco_cli, tmp_path):
    cli = eco_cli
    usage = tmp_path / "october.csv"
    usage.write_text(CSV_FILE)
    cli("import", "usage", str(usage))
    code, out, _ = cli("billing", "preview", "--company", "OPFI", "--period", "2026-10", "--format", "json")
    [planned] = json.loads(out)["invoices"]
    assert code == 0 and (planned["customer"], planned["total"]) == ("C-17", "939.25")
    assert [line["kind"] for line in planned["lines"]] == ["usage", "fee", "event"]
    assert "C-17: 939.25 EUR" in cli("billing", "preview", "--company", "OPFI", "--period", "2026-10")[1]
    code, out, _ = cli("billing", "run", "--company", "OPFI", "--period", "2026-10", "--approval")
    assert code == 0 and "0 invoices issued" in out and "awaiting approval: C-17 939.25 EUR" in out
    code, out, _ = cli("billing", "approve", "--customer", "C-17", "--period", "2026-10", "--total", "939.25")
    assert code == 0 and out.strip() == "approved C-17 2026-10: 939.25 EUR"
    code, out, _ = cli("billing", "run", "--company", "OPFI", "--period", "2026-10", "--approval", "--format", "json")
    assert json.loads(out)["invoices"] == ["OPFI-000001"]
    code, out, _ = cli("billing", "approvals", "--format", "csv")
    assert out.splitlines()[1].startswith("2026-10,C-17,939.25,EUR,") and out.splitlines()[1].endswith(",OPFI-000001")


def test_period_alerts_from_the_cli_and_as_a_job(eco_cli, tmp_path):
    cli = eco_cli
    usage = tmp_path / "october.csv"
    usage.write_text(CSV_FILE)
    cli("import", "usage", str(usage))
    code, out, err = cli("usage", "period-alerts", "--period", "2026-10", "--format", "json")
    assert code == 0, out + err
    report = json.loads(out)
    assert report["period"] == "2026-10" and report["components"] >= 1
    code, out, err = cli("job", "run", "usage-period-alerts", "-p", "period=2026-10", "--format", "json")
    assert code == 0 and json.loads(out)["result"]["raised"] == [], out + err  # raised once, by the command
    code, _, err = cli("usage", "period-alerts", "--period", "2026-13")
    assert code == 1 and "YYYY-MM" in err
