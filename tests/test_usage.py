"""Usage import: mediation, rating and posting, told as the IT-services story of issue 5,
and every way a line can go wrong."""

from __future__ import annotations

import copy
import datetime as dt
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from contracts import service
from contracts.events import import_events
from contracts.rules import load_rules
from ledger import companies, reports
from ledger.money import format_amount
from ledger.periods import close_period
from ledger.schema import journal_entries
from ledger.verify import verify
from partners.service import onboard_partner
from usage import queries
from usage.lines import RawLine, read_lines
from usage.schema import usage_alerts, usage_counters, usage_imports, usage_lines, usage_rejects
from usage.service import Options, import_usage, resubmit_rejects

RULES = load_rules()
OPTIONS = Options(RULES, "test")

FIXR = {
    "code": "FIXR", "name": "FieldFix Oy", "currency": "EUR", "roles": ["vendor"], "open_date": "2026-01-01",
    "api_key": False,
    "agreements": [{"code": "FIXR-SHARE", "kind": "vendor_share", "counterparty": "OPFI", "versions": [
        {"version": 1, "effective_from": "2026-01-01", "terms": {"basis": "percent_of_price", "percent": "60"}}]}],
}
RESL = {
    "code": "RESL", "name": "Channel Oy", "currency": "EUR", "roles": ["reseller"], "open_date": "2026-01-01",
    "api_key": False,
    "agreements": [{"code": "RESL-COMM", "kind": "reseller_commission", "counterparty": "OPFI", "versions": [
        {"version": 1, "effective_from": "2026-01-01", "terms": {"percent": "10"}}]}],
}
PLANS = [
    # the service desk: 5 hours a month included, then 80.00 an hour, night shift +50%
    {"code": "DESK-HOURS", "currency": "EUR", "unit": "hour", "model": "allowance", "included": "5", "period": "month",
     "overage_unit_price": "80.00", "drivers": [{"attribute": "shift", "values": {"day": "1", "night": "1.5"}}]},
    {"code": "DESK-PREMIUM", "currency": "EUR", "unit": "hour", "model": "allowance", "included": "10",
     "period": "month", "overage_unit_price": "70.00"},
    {"code": "REPAIR", "currency": "EUR", "unit": "hour", "model": "per_unit", "unit_price": "120.00"},
    {"code": "MAINT", "currency": "EUR", "unit": "hour", "model": "per_unit", "unit_price": "70.00"},
]
DESK = {"code": "DESK", "type": "usage", "service": "service-desk", "price_plan": "DESK-HOURS", "vendor": "FIXR",
        "reseller": "RESL", "budget": "500.00"}
COMPONENTS = [
    DESK,
    {"code": "REPAIR", "type": "usage", "service": "onsite-repair", "price_plan": "REPAIR", "vendor": "FIXR"},
    {"code": "MAINT", "type": "usage", "service": "preventive-maintenance", "price_plan": "MAINT", "vendor": "FIXR"},
    {"code": "MAINT-DISCOUNT", "type": "discount", "service": "preventive-maintenance", "percent": "10",
     "applies_to": ["MAINT"]},
]
CONTRACT = {"code": "SD-1", "customer": "ACME", "billing_company": "OPFI", "currency": "EUR", "start": "2026-10-01",
            "components": COMPONENTS}


def line(line_id: str, when: str, service_code: str, quantity: str, **extra) -> dict:
    return {"id": line_id, "timestamp": when, "contract": "SD-1", "service": service_code, "quantity": quantity,
            **extra}


MONTH = [
    line("d1", "2026-10-02T09:00:00+03:00", "service-desk", "3", attributes={"shift": "day"}),
    line("d2", "2026-10-06T10:00:00+03:00", "service-desk", "1.5", unit="hour", attributes={"shift": "day"}),
    line("d3", "2026-10-07T23:00:00+03:00", "service-desk", "2", attributes={"shift": "night"}),
    line("r1", "2026-10-08T13:00:00+03:00", "onsite-repair", "2"),
    line("m1", "2026-10-09T08:00:00+03:00", "preventive-maintenance", "3"),
]


@pytest.fixture
def eco(empty_db):
    return build_eco(empty_db)


def build_eco(empty_db):
    companies.add_company(empty_db, "OPFI", "Operator", "EUR", actor="t", roles=["operator"], open_date=dt.date(2026, 1, 1))
    onboard_partner(empty_db, FIXR, actor="t")
    onboard_partner(empty_db, RESL, actor="t")
    for plan in PLANS:
        service.save_price_plan(empty_db, plan, actor="t")
    service.save_customer(empty_db, {"code": "ACME", "name": "Acme Oy", "billing_company": "OPFI", "currency": "EUR"},
                          actor="t")
    service.save_contract(empty_db, CONTRACT, actor="t")
    report = import_events(empty_db, [(1, {"id": "a", "type": "activated", "contract": "SD-1", "date": "2026-10-01"})],
                           rules=RULES, actor="t")
    assert report.accepted == 1
    return empty_db


def run(db, records, options=OPTIONS, source="test"):
    raw = [RawLine(str(n), "", copy.deepcopy(r)) for n, r in enumerate(records, start=1)]
    report = import_usage(db, raw, options=options, source=source, file_format="jsonl")
    assert report.lines_read == report.posted + report.duplicates + report.rejected
    return report


def amounts(db) -> dict[str, str]:
    return {r.id: format_amount(r.amount_minor, r.currency) for r in queries.list_lines(db)}


def postings(db, external_id: str) -> list[tuple]:
    entry = reports.get_entry(db, external_id)
    return [(p.company, p.account, format_amount(p.amount_minor, p.currency), p.dimensions.get("counterparty"))
            for p in entry.postings]


def balance(db, company: str, account: str) -> str:
    rows = {r.account: r for r in reports.trial_balance(db, company=company).lines}
    return format_amount(rows[account].balance_minor, "EUR") if account in rows else "0.00"


def count_rows(db) -> dict:
    with db.read() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar()
                for t in (journal_entries, usage_lines, usage_rejects, usage_counters, usage_alerts)}


def test_the_service_desk_month(eco):
    report = run(eco, MONTH)
    assert (report.posted, report.rejected, report.duplicates) == (5, 0, 0)
    # 3 + 1.5 hours are inside the 5 included; the night line has 0.5 included and 1.5 extra
    # hours at 80.00 x 1.5; repair at its own rate; maintenance with its 10% discount.
    assert amounts(eco) == {"d1": "0.00", "d2": "0.00", "d3": "180.00", "r1": "240.00", "m1": "189.00"}
    assert report.amounts == {"EUR": 60900}
    by_id = {r.id: r for r in queries.list_lines(eco)}
    assert by_id["d1"].entry_seq is None and by_id["d2"].entry_seq is None  # nothing to post
    assert by_id["d3"].rating == {"plan": "DESK-HOURS", "model": "allowance", "counter_before": "4.5", "factor": "1.5"}
    assert by_id["m1"].gross_minor == 21000 and by_id["m1"].discount_minor == 2100
    assert by_id["d3"].usage_date == dt.date(2026, 10, 7)  # the local date of the timestamp
    assert postings(eco, "usage:d3") == [
        ("OPFI", "Assets:Receivables:Unbilled", "180.00", None),
        ("OPFI", "Income:Usage", "-180.00", None),
        ("OPFI", "Expenses:CostOfServices", "108.00", None),
        ("OPFI", "Liabilities:Ecosystem:DueTo", "-108.00", "FIXR"),
        ("FIXR", "Assets:Ecosystem:DueFrom", "108.00", "OPFI"),
        ("FIXR", "Income:Ecosystem", "-108.00", None),
        ("OPFI", "Expenses:Commissions", "18.00", None),
        ("OPFI", "Liabilities:Ecosystem:DueTo", "-18.00", "RESL"),
        ("RESL", "Assets:Ecosystem:DueFrom", "18.00", "OPFI"),
        ("RESL", "Income:Commissions", "-18.00", None),
    ]
    entry = reports.get_entry(eco, "usage:d3")
    assert entry.metadata["rule"] == "usage" and entry.source == {"type": "usage_line", "id": "d3"}
    assert balance(eco, "OPFI", "Assets:Receivables:Unbilled") == "609.00"
    assert balance(eco, "OPFI", "Income:Usage") == "-609.00"
    # allowance alerts at 80% (4 of 5 hours, reached by d2) and 100% (by d3); the desk's
    # budget of 500.00 is far (180.00): budgets are per component
    alerts = [(a.kind, a.threshold_percent, a.line_id, a.used, a.limit) for a in queries.list_alerts(eco)]
    assert alerts == [("allowance", 80, "d2", "4.5", "5"), ("allowance", 100, "d3", "6.5", "5")]
    counters = {(c.component, str(c.period_start)): (c.quantity, c.amount_minor) for c in queries.list_counters(eco, contract="SD-1")}
    assert counters == {("DESK", "2026-10-01"): ("6.5", 18000), ("REPAIR", "2026-10-01"): ("2", 24000),
                        ("MAINT", "2026-10-01"): ("3", 18900)}
    assert verify(eco).ok


def test_a_budget_alert_is_raised_once_per_period(eco):
    lines = [line(f"n{i}", f"2026-10-{10 + i}T22:00:00+00:00", "service-desk", "2", attributes={"shift": "night"})
             for i in range(5)]
    run(eco, lines)  # 10 hours: 5 included, 5 x 120.00 = 600.00 of a 500.00 budget
    alerts = [(a.kind, a.threshold_percent, a.line_id, a.used) for a in queries.list_alerts(eco) if a.kind == "budget"]
    # 0, 0, 120.00 (one hour over), 240.00, 240.00: the last line crosses both marks
    assert alerts == [("budget", 80, "n4", "600.00"), ("budget", 100, "n4", "600.00")]
    run(eco, [line("n9", "2026-10-28T22:00:00+00:00", "service-desk", "1", attributes={"shift": "night"})])
    assert len(queries.list_alerts(eco)) == 4  # 2 allowance + 2 budget, none again


def test_underrun_and_run_rate_alerts_are_raised_when_a_period_ends(eco):
    from usage.period_alerts import Thresholds, evaluate_period_alerts

    def month(name: str, day: str, hours: str) -> dict:
        return line(name, f"{day}T10:00:00+00:00", "service-desk", hours, attributes={"shift": "day"})

    # The desk has 5 hours included, then 80.00 an hour, and a 500.00 budget a month.
    run(eco, [month("o1", "2026-10-05", "10"),  # October: 400.00
              month("n1", "2026-11-05", "7"),  # November: 160.00
              month("d1", "2026-12-05", "20")])  # December: 1,200.00
    october = evaluate_period_alerts(eco, "2026-10", actor="t")
    # Not under half of the budget, and no history yet for a run rate.
    assert (october.components, october.raised) == (3, [])
    november = evaluate_period_alerts(eco, "2026-11", actor="t")
    assert [(a["component"], a["kind"], a["threshold_percent"], a["used_text"], a["limit_text"])
            for a in november.raised] == [
        ("DESK", "underrun", 50, "160.00", "500.00"),  # under half of the budget
        ("DESK", "run_rate_low", 50, "160.00", "400.00 mean of 1")]  # and under half of October's
    december = evaluate_period_alerts(eco, "2026-12", actor="t", thresholds=Thresholds(history=2))
    assert [(a["kind"], a["limit_text"]) for a in december.raised] == [("run_rate_high", "280.00 mean of 2")]
    # Components without usage in the month: an underrun of their budget only if they have one.
    assert all(a["component"] == "DESK" for a in november.raised + december.raised)
    assert evaluate_period_alerts(eco, "2026-11", actor="t").raised == []  # raised once
    stored = [(a.kind, a.line_id) for a in queries.list_alerts(eco) if a.kind not in ("allowance", "budget")]
    assert stored == [("underrun", None), ("run_rate_low", None), ("run_rate_high", None)]
    assert evaluate_period_alerts(eco, "2026-09", actor="t").components == 0  # before the contract


def test_importing_the_same_lines_again_changes_nothing(eco):
    run(eco, MONTH)
    before = count_rows(eco)
    report = run(eco, MONTH)
    assert (report.posted, report.duplicates, report.rejected, report.entries_posted) == (0, 5, 0, 0)
    assert count_rows(eco) == before
    assert amounts(eco)["d3"] == "180.00"


def test_the_same_id_with_other_content_is_a_conflict(eco):
    run(eco, MONTH[:1])
    report = run(eco, [{**MONTH[0], "quantity": "4"}])
    assert report.rejected == 1
    assert report.outcomes[0].problems[0].code == "idempotency_conflict"
    assert report.outcomes[0].problems[0].field == "id"


def test_duplicates_inside_one_file(eco):
    report = run(eco, [MONTH[3], MONTH[3], {**MONTH[3], "quantity": "9"}])
    assert (report.posted, report.duplicates, report.rejected) == (1, 1, 1)


BAD = [
    ({"contract": "NOPE"}, "not_found", "contract", "no contract"),
    ({"timestamp": "2026-09-30T12:00:00Z"}, "contract_not_active", "timestamp", "outside contract SD-1"),
    ({"service": "gardening"}, "unknown_service", "service", "its usage services: onsite-repair"),
    ({"component": "MAINT"}, "unknown_service", "component", "no usage component MAINT for service"),
    ({"unit": "day"}, "unit_mismatch", "unit", "priced per hour"),
    ({"quantity": "-1"}, "malformed", "quantity", "not negative"),
    ({"quantity": 1.5}, "malformed", "quantity", "is not a quantity"),
    ({"quantity": "10000000000"}, "malformed", "quantity", "broken"),
    ({"quantity": "1.1234567"}, "malformed", "quantity", "up to 6 decimals"),
    ({"timestamp": "2026-10-05T10:00:00"}, "malformed", "timestamp", "no UTC offset"),
    ({"timestamp": "yesterday"}, "malformed", "timestamp", "ISO 8601"),
    ({"id": "a b"}, "malformed", "id", "printable ASCII"),
    ({"id": None}, "missing_field", "id", "required"),
    ({"colour": "red"}, "unknown_field", "colour", "unknown field"),
    ({"attributes": {"shift": "\x00"}}, "malformed", "attributes.shift", "1 to 64 characters"),
    ({"attributes": {"Shift": "day"}}, "malformed", "attributes.'Shift'", "a-z"),
    ({"attributes": ["day"]}, "malformed", "attributes", "an object"),
    ({"service": "service-desk", "attributes": {"shift": "evening"}}, "not_rated", "attributes.shift",
     "'evening' is not a shift"),
    ({"service": "service-desk"}, "not_rated", "attributes.shift", "the line has none"),
    ({"price": "1.00", "amount": "2.00"}, "malformed", "price", "not both"),
    ({"amount": "1.001"}, "amount_precision", "amount", "EUR has 2"),
    ({"amount": "-5.00"}, "invalid_value", "amount", "not negative"),
]


@pytest.mark.parametrize(("change", "code", "field", "message"), BAD, ids=[f"{i}-{b[2]}" for i, b in enumerate(BAD)])
def test_bad_lines_are_rejected_with_their_field_and_kept(eco, change, code, field, message):
    record = {**MONTH[3], **change}
    record = {k: v for k, v in record.items() if v is not None}
    before = count_rows(eco)
    report = run(eco, [record])
    assert report.rejected == 1 and report.posted == 0
    problems = report.outcomes[0].problems
    assert any(p.code == code and p.field == field and message in p.message for p in problems), problems
    after = count_rows(eco)
    assert after == {**before, "usage_rejects": before["usage_rejects"] + 1}
    stored = queries.list_rejects(eco)[-1]
    assert stored.code == problems[0].code and json.loads(stored.raw) == record


def test_a_corrected_line_resolves_its_reject(eco):
    report = run(eco, [{**MONTH[3], "unit": "day"}, MONTH[4]])
    assert (report.posted, report.rejected) == (1, 1)
    [reject] = queries.list_rejects(eco)
    corrected = {**json.loads(reject.raw), "unit": "hour"}
    fixed = run(eco, [corrected])
    assert fixed.posted == 1
    assert queries.list_rejects(eco) == []
    [resolved] = queries.list_rejects(eco, status="resolved")
    assert resolved.resolved_by_import == fixed.import_id


def test_rejected_again_supersedes_the_old_reject(eco):
    run(eco, [{**MONTH[3], "unit": "day"}])
    run(eco, [{**MONTH[3], "unit": "day"}])
    assert len(queries.list_rejects(eco)) == 1
    assert len(queries.list_rejects(eco, status="resubmitted")) == 1


def test_resubmitting_rejects_after_the_contract_is_loaded(eco):
    other = {**CONTRACT, "code": "SD-2"}
    report = run(eco, [{**MONTH[3], "id": "x1", "contract": "SD-2"}])
    assert report.outcomes[0].problems[0].code == "not_found"
    service.save_contract(eco, other, actor="t")
    again = resubmit_rejects(eco, options=OPTIONS)
    assert again.rejected == 1 and again.outcomes[0].problems[0].code == "contract_not_active"
    import_events(eco, [(1, {"id": "a2", "type": "activated", "contract": "SD-2", "date": "2026-10-01"})],
                  rules=RULES, actor="t")
    final = resubmit_rejects(eco, options=OPTIONS)
    assert (final.posted, final.rejected) == (1, 0)
    assert queries.list_rejects(eco) == []
    assert len(queries.list_rejects(eco, status="resubmitted")) == 1  # the first, rejected again
    [resolved] = queries.list_rejects(eco, status="resolved")  # the second, posted
    assert resolved.resolved_by_import == final.import_id


def test_suspended_and_terminated_contracts_take_no_usage(eco):
    events = [{"id": "s", "type": "suspended", "contract": "SD-1", "date": "2026-10-10"},
              {"id": "r", "type": "resumed", "contract": "SD-1", "date": "2026-10-15"},
              {"id": "t", "type": "terminated", "contract": "SD-1", "date": "2026-10-20"}]
    assert import_events(eco, list(enumerate(events)), rules=RULES, actor="t").accepted == 3
    days = {"2026-10-09": True, "2026-10-10": False, "2026-10-14": False, "2026-10-15": True, "2026-10-20": True,
            "2026-10-21": False}
    report = run(eco, [{**MONTH[3], "id": day, "timestamp": day} for day in days])
    posted = {r.id for r in queries.list_lines(eco)}
    assert {day for day, ok in days.items() if ok} == posted
    assert report.rejected == 3
    assert {p.problems[0].code for p in report.outcomes} == {"contract_not_active"}


def test_late_lines_post_in_the_first_open_period(eco):
    run(eco, MONTH[3:4])
    for company in ("OPFI", "FIXR"):
        close_period(eco, company, "2026-10", actor="t")
    report = run(eco, [{**MONTH[3], "id": "late1", "timestamp": "2026-10-20T10:00:00Z"}])
    assert (report.posted, report.late) == (1, 1)
    late = next(r for r in queries.list_lines(eco) if r.id == "late1")
    assert late.usage_date == dt.date(2026, 10, 20) and late.posted_date == dt.date(2026, 11, 1) and late.late
    entry = reports.get_entry(eco, "usage:late1")
    assert entry.effective_date == dt.date(2026, 11, 1) and entry.metadata["late"] == "true"
    strict = Options(RULES, "test", late_policy="reject")
    refused = run(eco, [{**MONTH[3], "id": "late2", "timestamp": "2026-10-21T10:00:00Z"}], options=strict)
    assert refused.outcomes[0].problems[0].code == "closed_period"
    assert verify(eco).ok


def test_aggregated_posting_one_entry_per_component_and_day_traceable_to_its_lines(eco):
    lines = [line(f"r{i}", f"2026-10-{12 + i % 3}T10:00:00Z", "onsite-repair", "1.25") for i in range(30)]
    report = run(eco, lines, options=Options(RULES, "test", posting="aggregated"))
    assert (report.posted, report.entries_posted) == (30, 3)
    rated = queries.list_lines(eco)
    assert len({r.entry_seq for r in rated}) == 3
    for seq in {r.entry_seq for r in rated}:
        behind = queries.list_lines(eco, entry_seq=seq)
        assert len(behind) == 10 and len({r.usage_date for r in behind}) == 1
        [entry], _ = reports.list_entries(eco, after_seq=seq - 1, limit=1)
        assert entry.entry_seq == seq and entry.source["type"] == "usage_line"
        assert entry.postings[0].amount_minor == sum(r.amount_minor for r in behind) == 10 * 15000
        assert entry.metadata["lines"] == "10"
    assert balance(eco, "OPFI", "Income:Usage") == "-4500.00"
    assert verify(eco).ok


def test_a_mid_month_upgrade_prices_later_lines_with_the_new_plan_on_the_same_counter(eco):
    upgraded = copy.deepcopy(CONTRACT)
    upgraded["amendments"] = [{"version": 2, "effective_from": "2026-10-16", "components": [
        {**DESK, "price_plan": "DESK-PREMIUM"}, *COMPONENTS[1:]]}]
    service.save_contract(eco, upgraded, actor="t")
    import_events(eco, [(1, {"id": "up", "type": "amended", "contract": "SD-1", "date": "2026-10-16", "version": 2})],
                  rules=RULES, actor="t")
    run(eco, [line("b1", "2026-10-05T10:00:00Z", "service-desk", "6", attributes={"shift": "day"}),
              line("b2", "2026-10-20T10:00:00Z", "service-desk", "6")])
    # before: 1 hour over 5 at 80.00; after: premium includes 10, the counter at 6 goes to 12
    assert amounts(eco) == {"b1": "80.00", "b2": "140.00"}


def test_a_vendor_without_an_agreement_rejects_its_lines_and_posts_the_rest(eco):
    contract = copy.deepcopy(CONTRACT)
    contract["code"] = "SD-3"
    onboard_partner(eco, {"code": "BARE", "name": "Bare Oy", "currency": "EUR", "roles": ["vendor"],
                          "open_date": "2026-01-01", "api_key": False, "agreements": []}, actor="t")
    contract["components"][1] = {**COMPONENTS[1], "vendor": "BARE"}  # no vendor_share agreement
    service.save_contract(eco, contract, actor="t")
    import_events(eco, [(1, {"id": "a3", "type": "activated", "contract": "SD-3", "date": "2026-10-01"})],
                  rules=RULES, actor="t")
    report = run(eco, [{**MONTH[3], "contract": "SD-3"}, {**MONTH[4], "contract": "SD-3"}])
    assert (report.posted, report.rejected) == (1, 1)
    problem = report.outcomes[0].problems[0]
    assert problem.field == "component.vendor" and "no vendor_share agreement of BARE" in problem.message
    assert verify(eco).ok


def test_pre_rated_lines_keep_their_price(eco):
    run(eco, [{**MONTH[3], "id": "p1", "price": "99.50"}, {**MONTH[3], "id": "p2", "amount": "12.34"}])
    assert amounts(eco) == {"p1": "199.00", "p2": "12.34"}


def test_csv_and_json_lines_read_the_same(eco, tmp_path):
    csv_text = ("id,timestamp,contract,service,quantity,unit,attributes.shift\n"
                "c1,2026-10-07T23:00:00+03:00,SD-1,service-desk,7,hour,night\n"
                "c2,2026-10-08T10:00:00Z,SD-1,onsite-repair,2,,\n"
                "c3,2026-10-08T10:00:00Z,SD-1,onsite-repair\n"
                "\xff\n")
    raw = list(read_lines(iter(csv_text.encode("latin-1").splitlines(keepends=True)), "csv"))
    report = import_usage(eco, raw, options=OPTIONS, source="f.csv", file_format="csv")
    assert (report.posted, report.rejected) == (2, 2)
    assert amounts(eco) == {"c1": "240.00", "c2": "240.00"}
    messages = {o.ref: str(o.problems[0]) for o in report.outcomes}
    assert "cells" in messages["4"] and "UTF-8" in messages["5"]


def test_the_database_keeps_posted_lines_and_alerts(eco):
    run(eco, MONTH)
    with pytest.raises(Exception, match="never change"), eco.write() as conn:
        conn.execute(text("UPDATE usage_lines SET amount_minor = 1, gross_minor = 1 WHERE id = 'r1'"))
    with pytest.raises(Exception, match="never change"), eco.write() as conn:
        conn.execute(text("DELETE FROM usage_lines"))
    with pytest.raises(Exception, match="a record"), eco.write() as conn:
        conn.execute(text("DELETE FROM usage_alerts"))


def test_an_interrupted_import_is_marked_and_finishes_when_run_again(eco):
    def lines():
        yield RawLine("1", "", MONTH[3])
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_usage(eco, lines(), options=OPTIONS, source="x", file_format="jsonl")
    with eco.read() as conn:
        assert conn.execute(select(usage_imports.c.status)).scalar() == "interrupted"
    report = run(eco, MONTH)
    assert (report.posted, report.duplicates) == (5, 0)  # the batch in flight was never committed


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_journal_and_counters_agree_with_the_rated_lines(eco_factory, data):
    """Random lines (some repeated, some bad) in random batches: every line ends posted,
    duplicate or rejected; Unbilled equals the posted amounts; counters equal the sums."""
    db = eco_factory()
    lines_ = data.draw(st.lists(st.tuples(st.integers(0, 9), st.sampled_from(["service-desk", "onsite-repair", "x"]),
                                          st.decimals(min_value=0, max_value=9, places=2), st.integers(1, 28)),
                                min_size=1, max_size=25))
    records = [line(f"L{i}", f"2026-10-{day:02d}T12:00:00Z", svc, str(q), attributes={"shift": "day"})
               for i, svc, q, day in lines_]
    total_read = 0
    for start in range(0, len(records), 7):
        total_read += run(db, records[start:start + 7]).lines_read
    rated = queries.list_lines(db)
    assert total_read == len(records)
    assert len(rated) == len({r["id"] for r in records if r["service"] != "x"})
    unbilled = sum(r.amount_minor for r in rated)
    assert balance(db, "OPFI", "Assets:Receivables:Unbilled") == format_amount(unbilled, "EUR")
    sums: dict = {}
    for r in rated:
        sums[r.component] = sums.get(r.component, 0) + r.amount_minor
    assert {c.component: c.amount_minor for c in queries.list_counters(db, contract="SD-1")} == sums
    assert verify(db).ok


@pytest.fixture
def eco_factory(db_url, request, tmp_path):
    """A fresh ecosystem per hypothesis example (SQLite files; schemas on PostgreSQL)."""
    from ecoledger.schema import metadata
    from ledger.database import Database

    from conftest import BACKEND, fresh_pg_schema

    counter = iter(range(10_000))
    made = []

    def make():
        url = (f"sqlite:///{tmp_path / f'eco{next(counter)}.db'}" if BACKEND == "sqlite" else fresh_pg_schema(request))
        db = Database(url)
        made.append(db)
        metadata.create_all(db.engine)
        return build_eco(db)

    yield make
    for db in made:
        db.dispose()


def test_a_per_unit_vendor_cost_follows_each_lines_quantity(eco):
    onboard_partner(eco, {"code": "UNIT", "name": "Unit Oy", "currency": "EUR", "roles": ["vendor"],
                          "open_date": "2026-01-01", "api_key": False, "agreements": [
                              {"code": "UNIT-COST", "kind": "vendor_share", "counterparty": "OPFI", "versions": [
                                  {"version": 1, "effective_from": "2026-01-01",
                                   "terms": {"basis": "per_unit_cost", "unit_cost": "30.00", "unit": "hour"}}]}]},
                    actor="t")
    contract = copy.deepcopy(CONTRACT)
    contract["code"] = "SD-4"
    contract["components"][1] = {**COMPONENTS[1], "vendor": "UNIT"}
    service.save_contract(eco, contract, actor="t")
    import_events(eco, [(1, {"id": "a4", "type": "activated", "contract": "SD-4", "date": "2026-10-01"})],
                  rules=RULES, actor="t")
    run(eco, [{**MONTH[3], "id": "q1", "contract": "SD-4", "quantity": "2"},
              {**MONTH[3], "id": "q2", "contract": "SD-4", "quantity": "1.5"}])
    assert postings(eco, "usage:q1")[3] == ("OPFI", "Liabilities:Ecosystem:DueTo", "-60.00", "UNIT")
    assert postings(eco, "usage:q2")[3] == ("OPFI", "Liabilities:Ecosystem:DueTo", "-45.00", "UNIT")


def test_batches_see_what_other_writers_changed_in_between(eco, monkeypatch):
    """The registers read by one batch are reused by the next only while unchanged: an
    activation and a closed period landing between two batches are seen by the second."""
    import usage.service

    monkeypatch.setattr(usage.service, "LINES_PER_BATCH", {"line": 2, "aggregated": 2})
    other = copy.deepcopy(CONTRACT)
    other["code"] = "SD-5"
    service.save_contract(eco, other, actor="t")

    def lines():
        yield RawLine("1", "", {**MONTH[3], "id": "k1", "contract": "SD-5"})  # not active yet: rejected
        yield RawLine("2", "", {**MONTH[3], "id": "k2"})
        import_events(eco, [(1, {"id": "a5", "type": "activated", "contract": "SD-5", "date": "2026-10-01"})],
                      rules=RULES, actor="t")
        for company in ("OPFI", "FIXR"):
            close_period(eco, company, "2026-10", actor="t")
        yield RawLine("3", "", {**MONTH[3], "id": "k3", "contract": "SD-5"})
        yield RawLine("4", "", {**MONTH[3], "id": "k4"})

    report = import_usage(eco, lines(), options=OPTIONS, source="x", file_format="jsonl")
    assert (report.posted, report.rejected, report.late) == (3, 1, 2)
    posted = {r.id: r.posted_date for r in queries.list_lines(eco)}
    assert posted == {"k2": dt.date(2026, 10, 8), "k3": dt.date(2026, 11, 1), "k4": dt.date(2026, 11, 1)}


def _drop_trigger(conn, table: str, verb: str) -> None:
    name = f"{table}_no_{verb}"
    conn.execute(text(f"DROP TRIGGER {name}" if conn.dialect.name == "sqlite" else f"DROP TRIGGER {name} ON {table}"))


@pytest.mark.parametrize(("tamper", "message"), [
    ("UPDATE usage_lines SET amount_minor = amount_minor + 1, gross_minor = gross_minor + 1 WHERE id = 'r1'",
     "its lines sum to"),
    ("UPDATE usage_counters SET quantity_micro = 1 WHERE component = 'MAINT'", "its lines sum to"),
    ("DELETE FROM usage_lines WHERE id = 'm1'", "without the usage lines it posted"),
    ("UPDATE usage_lines SET entry_seq = (SELECT MIN(id) FROM journal_entries) WHERE id = 'r1'",
     "not an entry made for it"),
    ("UPDATE usage_lines SET usage_date = '2027-01-05' WHERE id = 'r1'", "is in no period counter"),
])
def test_verify_finds_tampered_usage(eco, tamper, message):
    run(eco, MONTH)
    assert verify(eco).ok
    with eco.write() as conn:
        _drop_trigger(conn, "usage_lines", "update")
        _drop_trigger(conn, "usage_lines", "delete")
        conn.execute(text(tamper))
    report = verify(eco)
    assert report.counts["usage"] >= 1
    assert any(message in v.message for v in report.violations if v.check == "usage"), report.violations


def test_hostile_bytes_are_rejected_and_stored_safely(eco):
    raw = (b'{"id": "n\\u0000l", "timestamp": "2026-10-05", "contract": "SD-1", "service": "onsite-repair", "quantity": "1"}\n'
           b'{"id": "x", "quantity": "1\x00"}\n'
           b'\xff\xfe garbage\n'
           b'{"id": "ok", "timestamp": "2026-10-05", "contract": "SD-1", "service": "onsite-repair", "quantity": "1"}\n')
    report = import_usage(eco, read_lines(iter(raw.splitlines(keepends=True)), "jsonl"), options=OPTIONS,
                          source="hostile", file_format="jsonl")
    assert (report.posted, report.rejected) == (1, 3)
    rejects = queries.list_rejects(eco)
    assert [r.line_id for r in rejects] == [None, None, None]
    assert "\x00" not in "".join(r.raw for r in rejects)
    assert verify(eco).ok


def test_aggregated_late_and_timely_lines_of_one_day_post_apart(eco):
    run(eco, MONTH[3:4])
    for company in ("OPFI", "FIXR"):
        close_period(eco, company, "2026-10", actor="t")
    lines = [{**MONTH[3], "id": "old", "timestamp": "2026-10-20T10:00:00Z"},
             {**MONTH[3], "id": "new", "timestamp": "2026-11-01T10:00:00Z"}]
    report = run(eco, lines, options=Options(RULES, "test", posting="aggregated"))
    assert (report.posted, report.late, report.entries_posted) == (2, 1, 2)
    by_id = {r.id: r for r in queries.list_lines(eco)}
    assert by_id["old"].entry_seq != by_id["new"].entry_seq
    assert by_id["old"].posted_date == by_id["new"].posted_date == dt.date(2026, 11, 1)
    assert verify(eco).ok
