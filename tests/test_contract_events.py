"""Contract events posted through the posting rules, checked posting by posting, for an
operator that is principal, with a vendor and a reseller."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from contracts import service
from contracts.events import import_events
from contracts.rules import load_rules
from ecoledger.schema import metadata
from ledger import companies, reports
from ledger.money import format_amount
from ledger.records import LedgerError
from ledger.verify import verify
from partners.service import offboard_partner, onboard_partner

RULES = load_rules()
FIXR = {
    "code": "FIXR", "name": "FieldFix Oy", "currency": "EUR", "roles": ["vendor"], "open_date": "2026-01-01",
    "api_key": False,
    "agreements": [
        {"code": "FIXR-SHARE", "kind": "vendor_share", "counterparty": "OPFI", "versions": [
            {"version": 1, "effective_from": "2026-01-01", "effective_to": "2026-10-14",
             "terms": {"basis": "percent_of_price", "percent": "60"}},
            {"version": 2, "effective_from": "2026-10-15", "terms": {"basis": "percent_of_price", "percent": "62.5"}}]},
        {"code": "FIXR-SLA", "kind": "sla_sharing", "counterparty": "OPFI", "versions": [
            {"version": 1, "effective_from": "2026-01-01", "terms": {"method": "pro_rata"}}]},
    ],
}
RESL = {
    "code": "RESL", "name": "Channel Oy", "currency": "EUR", "roles": ["reseller"], "open_date": "2026-01-01",
    "api_key": False,
    "agreements": [{"code": "RESL-COMM", "kind": "reseller_commission", "counterparty": "OPFI", "versions": [
        {"version": 1, "effective_from": "2026-01-01", "terms": {"percent": "10", "clawback_days": 90}}]}],
}
CONTRACT = {
    "code": "C-1001", "customer": "ACME", "billing_company": "OPFI", "currency": "EUR", "start": "2026-10-01",
    "billing": {"frequency": "monthly", "day": 1},
    "components": [
        {"code": "PLAN", "type": "recurring_fee", "service": "field-service-plan", "amount": "300.00",
         "timing": "in_advance", "vendor": "FIXR", "reseller": "RESL"},
        {"code": "SETUP", "type": "one_off_fee", "service": "onboarding", "amount": "150.00", "vendor": "FIXR"},
        {"code": "HOURS", "type": "usage", "service": "field-service", "price_plan": "FS-HOURLY", "vendor": "FIXR"},
    ],
    "amendments": [
        {"version": 2, "effective_from": "2026-10-16", "components": [
            {"code": "PLAN", "type": "recurring_fee", "service": "field-service-plan", "amount": "450.00",
             "timing": "in_advance", "vendor": "FIXR", "reseller": "RESL"},
            {"code": "SETUP", "type": "one_off_fee", "service": "onboarding", "amount": "150.00", "vendor": "FIXR"}]},
    ],
}
EVENTS = [
    {"id": "e1", "type": "activated", "contract": "C-1001", "date": "2026-10-01"},
    {"id": "e2", "type": "one_off_charge", "contract": "C-1001", "date": "2026-10-14", "amount": "80.00", "component": "SETUP"},
    {"id": "e3", "type": "one_off_charge", "contract": "C-1001", "date": "2026-10-15", "amount": "80.00", "component": "SETUP"},
    {"id": "e4", "type": "amended", "contract": "C-1001", "date": "2026-10-16", "version": 2},
    {"id": "e5", "type": "sla_breach", "contract": "C-1001", "date": "2026-10-20", "amount": "50.00", "component": "PLAN",
     "reason": "response time missed"},
    {"id": "e6", "type": "credit", "contract": "C-1001", "date": "2026-10-21", "amount": "25.00"},
    {"id": "e7", "type": "suspended", "contract": "C-1001", "date": "2026-10-22"},
    {"id": "e8", "type": "resumed", "contract": "C-1001", "date": "2026-10-25"},
    {"id": "e9", "type": "terminated", "contract": "C-1001", "date": "2026-10-26"},
]


@pytest.fixture
def eco(empty_db):
    companies.add_company(empty_db, "OPFI", "Operator", "EUR", actor="t", roles=["operator"], open_date=dt.date(2026, 1, 1))
    onboard_partner(empty_db, FIXR, actor="t")
    onboard_partner(empty_db, RESL, actor="t")
    service.save_price_plan(empty_db, {"code": "FS-HOURLY", "currency": "EUR", "unit": "hour", "model": "per_unit",
                                       "unit_price": "95.00"}, actor="t")
    service.save_customer(empty_db, {"code": "ACME", "name": "Acme Oy", "billing_company": "OPFI", "currency": "EUR"},
                          actor="t")
    assert service.save_contract(empty_db, CONTRACT, actor="t") == ("created", (1, 2))
    return empty_db


def lines(db, event_id: str) -> list[tuple]:
    entry = reports.get_entry(db, f"event:{event_id}")
    return [(p.company, p.account, format_amount(p.amount_minor, p.currency), p.dimensions.get("counterparty"))
            for p in entry.postings]


def test_every_event_type_posts_as_its_rule_says(eco):
    report = import_events(eco, enumerate(copy.deepcopy(EVENTS)), rules=RULES, actor="t")
    assert (report.accepted, report.rejected, report.entries_posted) == (9, 0, 7), report.outcomes
    # Activation charges the one-off fee; FIXR's share is 60% (version 1 in force on 1 October).
    assert lines(eco, "e1") == [
        ("OPFI", "Assets:Receivables:Customers", "150.00", None), ("OPFI", "Income:OneOff", "-150.00", None),
        ("OPFI", "Expenses:CostOfServices", "90.00", None), ("OPFI", "Liabilities:Ecosystem:DueTo", "-90.00", "FIXR"),
        ("FIXR", "Assets:Ecosystem:DueFrom", "90.00", "OPFI"), ("FIXR", "Income:Ecosystem", "-90.00", None)]
    # The agreement's version changes in the middle of the month: 60% on the 14th, 62.5% on the 15th.
    assert lines(eco, "e2")[2][2] == "48.00" and lines(eco, "e3")[2][2] == "50.00"
    # Upgrade 300 -> 450 on 16 October: 150 x 16/31 = 77.42, deferred; 62.5% to FIXR; 10% to RESL.
    assert lines(eco, "e4") == [
        ("OPFI", "Assets:Receivables:Customers", "77.42", None), ("OPFI", "Liabilities:ContractLiabilities", "-77.42", None),
        ("OPFI", "Expenses:CostOfServices", "48.39", None), ("OPFI", "Liabilities:Ecosystem:DueTo", "-48.39", "FIXR"),
        ("FIXR", "Assets:Ecosystem:DueFrom", "48.39", "OPFI"), ("FIXR", "Income:Ecosystem", "-48.39", None),
        ("OPFI", "Expenses:Commissions", "7.74", None), ("OPFI", "Liabilities:Ecosystem:DueTo", "-7.74", "RESL"),
        ("RESL", "Assets:Ecosystem:DueFrom", "7.74", "OPFI"), ("RESL", "Income:Commissions", "-7.74", None)]
    # SLA breach: the customer is credited 50; FIXR bears 62.5% of it, pro rata to its share.
    assert lines(eco, "e5") == [
        ("OPFI", "Income:Adjustments", "50.00", None), ("OPFI", "Liabilities:CustomerCredits", "-50.00", None),
        ("OPFI", "Liabilities:Ecosystem:DueTo", "31.25", "FIXR"), ("OPFI", "Expenses:CostOfServices", "-31.25", None),
        ("FIXR", "Expenses:SlaPenalties", "31.25", None), ("FIXR", "Assets:Ecosystem:DueFrom", "-31.25", "OPFI")]
    assert lines(eco, "e6") == [("OPFI", "Income:Adjustments", "25.00", None),
                                ("OPFI", "Liabilities:CustomerCredits", "-25.00", None)]
    # Suspension and resumption post nothing; termination on the 26th credits 27-31 October
    # of the 450 fee: 450 x 5/31 = 72.58; FIXR -45.36 (half-up of -45.3625); RESL -7.26.
    assert lines(eco, "e9") == [
        ("OPFI", "Assets:Receivables:Customers", "-72.58", None), ("OPFI", "Liabilities:ContractLiabilities", "72.58", None),
        ("OPFI", "Expenses:CostOfServices", "-45.36", None), ("OPFI", "Liabilities:Ecosystem:DueTo", "45.36", "FIXR"),
        ("FIXR", "Assets:Ecosystem:DueFrom", "-45.36", "OPFI"), ("FIXR", "Income:Ecosystem", "45.36", None),
        ("OPFI", "Expenses:Commissions", "-7.26", None), ("OPFI", "Liabilities:Ecosystem:DueTo", "7.26", "RESL"),
        ("RESL", "Assets:Ecosystem:DueFrom", "-7.26", "OPFI"), ("RESL", "Income:Commissions", "7.26", None)]
    assert service.get_contract(eco, "C-1001").status == "terminated"
    # Every entry names the rule and version that produced it.
    entry = reports.get_entry(eco, "event:e4")
    assert entry.source == {"type": "contract_event", "id": "e4"}
    assert entry.metadata["rule"] == "amended" and entry.metadata["rule_version"] == "2"
    assert verify(eco).ok


def test_mirror_postings_keep_every_intercompany_pair_equal_and_opposite(eco):
    import_events(eco, enumerate(copy.deepcopy(EVENTS)), rules=RULES, actor="t")
    balance = {(line.company, line.account): line.balance_minor for line in reports.trial_balance(eco).lines}
    due_to = {}
    for entry_id in [f"event:e{n}" for n in range(1, 10)]:
        try:
            entry = reports.get_entry(eco, entry_id)
        except LedgerError:
            continue
        for p in entry.postings:
            if p.account in ("Liabilities:Ecosystem:DueTo", "Assets:Ecosystem:DueFrom"):
                pair = tuple(sorted((p.company, p.dimensions["counterparty"])))
                due_to[pair] = due_to.get(pair, 0) + p.amount_minor
    assert due_to and all(total == 0 for total in due_to.values()), due_to
    assert balance[("OPFI", "Liabilities:Ecosystem:DueTo")] == -(
        balance[("FIXR", "Assets:Ecosystem:DueFrom")] + balance[("RESL", "Assets:Ecosystem:DueFrom")])


def count_rows(db) -> dict:
    with db.read() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in metadata.sorted_tables}


def test_events_are_idempotent_by_id(eco):
    import_events(eco, enumerate(copy.deepcopy(EVENTS[:3])), rules=RULES, actor="t")
    before = count_rows(eco)
    again = import_events(eco, enumerate(copy.deepcopy(EVENTS[:3])), rules=RULES, actor="t")
    assert (again.accepted, again.duplicates, again.rejected) == (0, 3, 0)
    assert count_rows(eco) == before
    changed = {**EVENTS[1], "amount": "81.00"}
    conflict = import_events(eco, enumerate([changed]), rules=RULES, actor="t")
    assert conflict.rejected == 1 and conflict.outcomes[0].problems[0].field == "id"
    assert count_rows(eco) == before


@pytest.mark.parametrize(
    "event, field, message",
    [
        ({"id": "x", "type": "one_off_charge", "contract": "C-1001", "date": "2026-10-05", "amount": "1"}, "type",
         "is draft; one_off_charge needs it active"),
        ({"id": "x", "type": "teleported", "contract": "C-1001", "date": "2026-10-05"}, "type", "no posting rule"),
        ({"id": "x", "type": "activated", "contract": "C-9", "date": "2026-10-05"}, "contract", "no contract"),
        ({"id": "x", "type": "activated", "contract": "C-1001", "date": "2026-09-30"}, "date", "outside contract"),
        ({"id": "x", "type": "activated", "contract": "C-1001", "date": "2026-10-05", "amount": 12.5}, "amount", "not 12.5"),
        ({"id": "x", "type": "activated", "contract": "C-1001"}, "date", "Missing data"),
        ({"id": "x", "type": "activated", "contract": "C-1001", "date": "2026-10-05", "colour": "red"}, "colour", "Unknown"),
        ({"id": "", "type": "activated", "contract": "C-1001", "date": "2026-10-05"}, "id", "printable"),
        ({"id": "x", "type": "activated", "contract": "C-1001", "date": "2026-10-05", "reason": "a\x00b"}, "entry.description",
         "NUL"),
    ],
)
def test_bad_events_are_rejected_with_their_field(eco, event, field, message):
    before = count_rows(eco)
    report = import_events(eco, enumerate([event]), rules=RULES, actor="t")
    assert report.rejected == 1
    problems = report.outcomes[0].problems
    assert any(p.field == field and message in p.message for p in problems), problems
    assert count_rows(eco) == before


def test_all_or_nothing_and_partial(eco):
    bad = {"id": "bad", "type": "one_off_charge", "contract": "C-1001", "date": "2026-10-05", "amount": "1.001"}
    before = count_rows(eco)
    report = import_events(eco, enumerate(copy.deepcopy(EVENTS[:2]) + [bad]), rules=RULES, actor="t")
    assert (report.accepted, report.not_applied, report.rejected) == (0, 2, 1)
    assert count_rows(eco) == before
    report = import_events(eco, enumerate(copy.deepcopy(EVENTS[:2]) + [bad]), rules=RULES, actor="t", all_or_nothing=False)
    assert (report.accepted, report.rejected) == (2, 1)
    assert report.outcomes[0].problems[0].field == "amount"


def test_an_entry_the_ledger_refuses_rejects_its_event(eco):
    from ledger.periods import close_period

    close_period(eco, "OPFI", "2026-09", actor="t")
    close_period(eco, "OPFI", "2026-10", actor="t")
    report = import_events(eco, enumerate(copy.deepcopy(EVENTS[:1])), rules=RULES, actor="t")
    assert report.rejected == 1 and "closed" in str(report.outcomes[0].problems[0])
    assert service.get_contract(eco, "C-1001").status == "draft"


def test_a_missing_agreement_is_named(eco):
    contract = json.loads(json.dumps(CONTRACT))
    contract.update(code="C-2", start="2025-06-01", amendments=[])
    service.save_contract(eco, contract, actor="t")
    report = import_events(eco, enumerate([{"id": "a", "type": "activated", "contract": "C-2", "date": "2025-06-01"}]),
                           rules=RULES, actor="t")
    assert report.rejected == 1
    assert "no vendor_share agreement of FIXR with OPFI in force on 2025-06-01" in str(report.outcomes[0].problems[0])


def test_contract_register_refusals(eco):
    def refused(update, field, message):
        document = json.loads(json.dumps(CONTRACT))
        update(document)
        with pytest.raises(LedgerError) as caught:
            service.save_contract(eco, document, actor="t")
        assert any(p.field == field and message in p.message for p in caught.value.problems), caught.value.problems

    refused(lambda d: d["components"][0].update(amount="300.001"), "components[0].amount", "EUR has 2")
    refused(lambda d: d["components"][0].pop("timing"), "components[0].timing", "required for a recurring_fee")
    refused(lambda d: d["components"][1].update(timing="in_advance"), "components[1].timing", "not used by a one_off_fee")
    refused(lambda d: d.update(code="C-3") or d["components"][0].update(vendor="RESL"), "components[0].vendor", "not a vendor")
    refused(lambda d: d.update(code="C-3", customer="NOBODY"), "customer", "no customer")
    refused(lambda d: d.update(code="C-3", currency="USD") or d["components"].pop(2), "currency", "does not bill in USD")
    refused(lambda d: d.update(code="C-3", currency="USD"), "components[2].price_plan", "FS-HOURLY is in EUR")
    refused(lambda d: d.update(code="C-3") or d["components"][2].update(price_plan="NOPE"), "components[2].price_plan",
            "no price plan 'NOPE'")
    refused(lambda d: d["amendments"][0].update(effective_from="2026-09-01"), "amendments[0].effective_from", "must be after")
    refused(lambda d: d["components"][0].update(amount="999.00"), "code", "change it with an amendment")
    # A new amendment is added; the same document again changes nothing.
    grown = json.loads(json.dumps(CONTRACT))
    grown["amendments"].append({**grown["amendments"][0], "version": 3, "effective_from": "2026-12-01"})
    assert service.save_contract(eco, grown, actor="t") == ("amended", (3,))
    assert service.save_contract(eco, grown, actor="t") == ("unchanged", ())


def test_offboarded_partners_take_no_new_contracts(eco):
    offboard_partner(eco, "FIXR", on=dt.date(2026, 11, 30), reason="ended", actor="t")
    contract = json.loads(json.dumps(CONTRACT))
    contract.update(code="C-4", start="2026-12-01", amendments=[])
    with pytest.raises(LedgerError, match="offboarded on 2026-11-30"):
        service.save_contract(eco, contract, actor="t")


# --- the ecosystem file, through the CLI and the API ----------------------------------------

DEMO_FILE = Path(__file__).resolve().parents[1] / "ecoledger" / "demo_ecosystem.yaml"


def test_cli_load_import_and_show(ready, tmp_path):
    # `ready` has OPFI (an operator) and VEND; the demo file's OPFI matches it by code.
    code, out, err = ready("load", str(DEMO_FILE))
    assert code == 1 and "companies[0].name: company OPFI exists with 'Operator Oy'" in err  # a conflict, named
    text = DEMO_FILE.read_text().replace("Northwind Services Oy (operator, billing entity)", "Operator Oy")
    (tmp_path / "eco.yaml").write_text(text)
    code, out, err = ready("load", str(tmp_path / "eco.yaml"))
    assert code == 0, err
    assert "companies: 0 created, 0 updated, 1 unchanged" in out and "partners: 3 created" in out
    assert "contracts: 3 created" in out and [line.split("\t")[0] for line in out.splitlines() if "\teco_" in line] == ["FIXR", "CHNL"]
    code, out, _ = ready("load", str(tmp_path / "eco.yaml"), "--format", "json")
    assert json.loads(out)["contracts"] == {"created": 0, "unchanged": 3, "updated": 0} and json.loads(out)["api_keys"] == []

    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(json.dumps(e) for e in [
        {"id": "a1", "type": "activated", "contract": "SD-C-17", "date": "2026-10-01"},
        {"id": "c1", "type": "one_off_charge", "contract": "SD-C-17", "date": "2026-10-02", "amount": "80.00", "component": "FIELD"},
    ]) + "\n")
    code, out, _ = ready("import", "events", str(events))
    assert code == 0 and "2 accepted, 0 duplicate, 0 rejected; 2 entries posted" in out
    code, out, _ = ready("import", "events", str(events))
    assert code == 0 and "0 accepted, 2 duplicate, 0 rejected" in out
    events.write_text('{"id": "x", "type": "activated", "contract": "SD-C-23", "date": "2026-10-01"}\nnot json\n')
    code, out, _ = ready("import", "events", str(events))
    assert code == 1 and "line 2: not JSON" in out and "1 valid events not applied" in out
    code, out, _ = ready("import", "events", str(events), "--partial", "--format", "json")
    assert code == 1 and json.loads(out)["accepted"] == 1

    code, out, _ = ready("contract", "show", "SD-C-23", "--format", "json")
    shown = json.loads(out)
    assert shown["status"] == "active" and [v["version"] for v in shown["versions"]] == [1, 2]
    assert shown["versions"][1]["components"][0]["amount"] == "450.00"
    code, out, _ = ready("contract", "list", "--status", "active", "--format", "csv")
    assert [line.split(",")[0] for line in out.splitlines()[1:]] == ["SD-C-17", "SD-C-23"]
    code, out, _ = ready("customer", "list", "--format", "csv")
    assert "C-23-NORTH,Fabrikam Clinics North,OPFI,EUR,C-23,4100" in out
    code, _, err = ready("import", "events", str(events), "--rules", str(tmp_path / "eco.yaml"))
    assert code == 2 and "posting rules refused" in err


def test_api_ecosystem_contracts_and_events(api):
    from ecoledger.documents import parse_document

    document = parse_document(DEMO_FILE.read_bytes(), "demo")
    document["companies"] = []  # the harness has OPFI already
    response = api.call("operator_admin", "POST", "/ecosystem", json=document, headers={"Idempotency-Key": "eco-1"})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["partners"]["created"] == 3 and all(k["token"].startswith("eco_") for k in body["api_keys"])
    replay = api.call("operator_admin", "POST", "/ecosystem", json=document, headers={"Idempotency-Key": "eco-1"})
    assert all(k["token"] is None for k in replay.get_json()["api_keys"])  # secrets are not kept for replays

    events = {"events": [{"id": "a1", "type": "activated", "contract": "SD-C-17", "date": "2026-10-01"},
                         {"id": "s1", "type": "sla_breach", "contract": "SD-C-17", "date": "2026-10-02", "amount": "10.00",
                          "component": "FIELD"}]}
    response = api.call("controller", "POST", "/contract-events", json=events)
    assert response.status_code == 201 and response.get_json()["entries_posted"] == 2
    bad = {"events": [{"id": "b1", "type": "one_off_charge", "contract": "SD-C-42", "date": "2026-10-02", "amount": "1.00"}]}
    response = api.call("controller", "POST", "/contract-events", json=bad)
    assert response.status_code == 422 and response.get_json()["errors"][0]["field"] == "events[0].type"
    contract = api.call("auditor", "GET", "/contracts/SD-C-17").get_json()
    assert contract["status"] == "active" and contract["customer"] == "C-17"
    assert api.call("auditor", "GET", "/contracts/NOPE").status_code == 404
    assert {c["code"] for c in api.call("auditor", "GET", "/customers").get_json()} == {"C-17", "C-23", "C-23-NORTH", "C-42"}
    # A contract posted alone: 201, then 200 unchanged; a rewrite is a conflict.
    single = dict(document["contracts"][0], code="SD-NEW")
    assert api.call("operator_admin", "POST", "/contracts", json=single).status_code == 201
    assert api.call("operator_admin", "POST", "/contracts", json=single).get_json()["outcome"] == "unchanged"
    rewrite = json.loads(json.dumps(single))
    rewrite["components"][0]["amount"] = "999.00"
    response = api.call("operator_admin", "POST", "/contracts", json=rewrite)
    assert response.status_code == 409 and response.get_json()["errors"][0]["field"] == "code"
    # The partner sees its own agreements through /partners, but not the register.
    assert api.call("partner", "GET", "/contracts").status_code == 403


# --- price plans --------------------------------------------------------------------------------

PLAN = {"code": "P", "currency": "EUR", "unit": "hour", "model": "graduated",
        "tiers": [{"up_to": "10", "unit_price": "95.00"}, {"up_to": "40", "unit_price": "90", "flat_fee": "5.00"},
                  {"up_to": None, "unit_price": "85.5"}],
        "drivers": [{"attribute": "shift", "values": {"night": "1.5"}}, {"calendar": "weekend", "multiplier": "1.5"}]}


def _plan(**changes):
    plan = json.loads(json.dumps(PLAN))
    plan.update(changes)
    return plan


@pytest.mark.parametrize(
    "plan, field, message",
    [
        (_plan(model="per_unit"), "unit_price", "required for the per_unit model"),
        (_plan(unit_price="1"), "unit_price", "not used by the graduated model"),
        (_plan(tiers=[{"up_to": "10", "unit_price": "1"}]), "tiers[0].up_to", "the last tier is open-ended"),
        (_plan(tiers=[{"up_to": None, "unit_price": "1"}, {"up_to": None, "unit_price": "1"}]), "tiers[0].up_to", "only the last"),
        (_plan(tiers=[{"up_to": "10", "unit_price": "1"}, {"up_to": "5", "unit_price": "1"}, {"up_to": None, "unit_price": "1"}]),
         "tiers[1].up_to", "tiers go up"),
        (_plan(tiers=[{"up_to": None, "unit_price": "1", "flat_fee": "1.001"}]), "tiers[0].flat_fee", "EUR has 2"),
        (_plan(tiers=[{"up_to": None, "unit_price": 1.5}]), "tiers[0].unit_price", "not 1.5"),
        (_plan(model="percentage", tiers=None, percent="3", minimum="10.00", maximum="5.00"), "maximum", "below the minimum"),
        (_plan(drivers=[{"attribute": "shift", "calendar": "weekend", "multiplier": "2"}]), "drivers[0]", "either"),
        (_plan(drivers=[{"calendar": "full_moon", "multiplier": "2"}]), "drivers[0].calendar", "Must be one of"),
    ],
)
def test_price_plan_refusals(eco, plan, field, message):
    if plan.get("tiers") is None:
        plan.pop("tiers")
    with pytest.raises(LedgerError) as caught:
        service.save_price_plan(eco, plan, actor="t")
    assert any((p.field or "") .startswith(field) and message in p.message for p in caught.value.problems), caught.value.problems


def test_price_plans_load_once_and_never_change(eco):
    assert service.save_price_plan(eco, PLAN, actor="t") == "created"
    assert service.save_price_plan(eco, json.loads(json.dumps(PLAN)), actor="t") == "unchanged"
    with pytest.raises(LedgerError, match="a new price is a new plan"):
        service.save_price_plan(eco, _plan(tiers=[{"up_to": None, "unit_price": "80"}]), actor="t")
    stored = {p.code: p for p in service.list_price_plans(eco)}["P"]
    assert stored.document["tiers"][1] == {"up_to": "40", "unit_price": "90", "flat_fee_minor": 500}


def test_price_plans_through_the_api(api):
    response = api.call("operator_admin", "POST", "/price-plans", json=PLAN)
    assert response.status_code == 201 and response.get_json()["outcome"] == "created"
    assert api.call("operator_admin", "POST", "/price-plans", json=PLAN).status_code == 200
    listed = api.call("auditor", "GET", "/price-plans").get_json()
    assert listed[0]["document"]["tiers"][1] == {"up_to": "40", "unit_price": "90", "flat_fee": "5.00"}
    bad = api.call("operator_admin", "POST", "/price-plans", json=_plan(code="Q", model="volume", tiers=[]))
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "tiers"


def test_price_plans_through_the_cli(ready):
    code, out, _ = ready("load", "-", input=json.dumps({"price_plans": [PLAN]}))
    assert code == 0 and "price_plans: 1 created" in out
    code, out, _ = ready("price-plan", "list", "--format", "csv")
    assert out.splitlines()[1] == "P,EUR,graduated,hour,"
    code, out, _ = ready("price-plan", "show", "P")
    assert json.loads(out)["drivers"][1] == {"calendar": "weekend", "multiplier": "1.5"}
    assert ready("price-plan", "show", "NOPE")[0] == 1


def test_a_plan_with_terms_of_another_model_is_refused_not_crashed(eco):
    """Found by schemathesis: tier checks on a plan whose model has no tiers."""
    plan = _plan(model="percentage", percent="2", tiers=[{"up_to": None, "unit_price": "1"}, {"up_to": "5", "unit_price": "1"}],
                 package_size="0")
    with pytest.raises(LedgerError) as caught:
        service.save_price_plan(eco, plan, actor="t")
    assert {p.field for p in caught.value.problems} == {"tiers", "package_size"}


def test_the_database_keeps_the_contract_register_immutable(eco):
    from contracts.schema import contract_events, contract_versions, contracts, customers, price_plans

    import_events(eco, enumerate(copy.deepcopy(EVENTS[:2])), rules=RULES, actor="t")
    for statement, message in [
        (price_plans.update().values(model="volume"), "price plans never change"),
        (price_plans.delete(), "price plans never change"),
        (contract_versions.update().values(components="[]"), "contract versions never change"),
        (contract_versions.delete(), "contract versions never change"),
        (contract_events.update().values(entry_seq=None), "recorded events never change"),
        (contract_events.delete(), "recorded events never change"),
        (contracts.delete(), "contracts are never deleted"),
        (customers.delete(), "customers are never deleted"),
    ]:
        with pytest.raises(Exception, match=message):
            with eco.write() as conn:
                conn.execute(statement)
