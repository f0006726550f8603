"""IFRS 15 revenue recognition and the controller's close: allocation (the Illustrative
Examples' numbers), schedules, the close's checks, batch, lock and reopening."""

from __future__ import annotations

import datetime as dt
import json
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from billing import service as billing
from contracts import service
from contracts.events import import_events
from contracts.rules import load_rules
from jobs.runner import JobTiming, execute
from ledger import companies, reports
from ledger.records import LedgerError
from ledger.schema import closed_periods, postings
from ledger.verify import verify
from revrec.allocation import allocate, split
from revrec.close import close_status, reopen_close, run_close, schedule_of
from revrec.schedule import month_weights
from revrec.ssp import parse_ssp_table

RULES = load_rules()
SSP_TEXT = """
prices:
  - {service: desk, currency: EUR, effective_from: 2026-01-01, amount: "300.00", per: month, method: observable}
  - {service: onboarding, currency: EUR, effective_from: 2026-01-01, amount: "200.00", per: unit,
     method: expected_cost_plus_margin}
"""
SSP = parse_ssp_table(SSP_TEXT, "test")


# -- allocation: IFRS 15 Illustrative Example 34 ---------------------------------------------


def test_example_34_a_discount_is_allocated_by_relative_standalone_selling_price():
    # Products A, B and C with standalone selling prices 40, 55 and 45 are sold together
    # for 100: the discount of 40 goes to all three in proportion (29, 39 and 32 rounded
    # in the example; to the cent, with the parts adding up to 100 exactly).
    assert allocate([4000, 5500, 4500], [4000, 5500, 4500], [(4000, [0, 1, 2])]) == [2857, 3929, 3214]


def test_example_34_a_discount_evidenced_for_some_products_stays_with_them():
    # B and C are regularly sold together for 60: the whole discount is theirs (15.82), A
    # keeps its standalone price 40, and B and C share 60 by their prices: 33 and 27.
    assert allocate([4000, 5500, 4500], [4000, 5500, 4500], [(4000, [1, 2])]) == [4000, 3300, 2700]


@given(st.integers(-10**12, 10**12), st.lists(st.integers(0, 10**9), min_size=1, max_size=20).filter(any))
@settings(max_examples=200, deadline=None)
def test_a_split_adds_up_to_the_whole_and_each_part_is_within_a_cent_of_its_share(total, weights):
    parts = split(total, weights)
    assert sum(parts) == total
    whole = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        assert abs(Fraction(part) - Fraction(total * weight, whole)) < 1


@given(st.lists(st.tuples(st.integers(0, 10**7), st.integers(0, 10**7)), min_size=1, max_size=8),
       st.integers(0, 10**6), st.data())
@settings(max_examples=200, deadline=None)
def test_an_allocation_adds_up_to_the_transaction_price(items, discount, data):
    stated, ssp = [s for s, _ in items], [w for _, w in items]
    to = data.draw(st.lists(st.integers(0, len(items) - 1), min_size=1, unique=True))
    allocated = allocate(stated, ssp, [(discount, to)])
    assert sum(allocated) == sum(stated) - discount


def test_day_count_policies_spread_a_quarter_over_its_months():
    assert month_weights(dt.date(2026, 1, 1), dt.date(2026, 3, 31), "actual_days") == [
        ("2026-01", 31), ("2026-02", 28), ("2026-03", 31)]
    assert month_weights(dt.date(2026, 1, 1), dt.date(2026, 3, 31), "equal_months") == [
        ("2026-01", 1), ("2026-02", 1), ("2026-03", 1)]
    assert month_weights(dt.date(2026, 1, 15), dt.date(2026, 2, 14), "equal_months") == [
        ("2026-01", Fraction(17, 31)), ("2026-02", Fraction(14, 28))]


def test_the_ssp_table_names_the_field_of_a_bad_price():
    with pytest.raises(LedgerError) as caught:
        parse_ssp_table("prices: [{service: x, currency: EUR, effective_from: 2026-01-01, per: month, "
                        "method: residual, amount: '1.00'}]", "t")
    assert caught.value.problems[0].field == "prices.0.amount"
    with pytest.raises(LedgerError) as caught:
        parse_ssp_table("prices: [{service: x, currency: EUR, effective_from: 2026-01-01, per: week, "
                        "method: observable, amount: '1.00'}]", "t")
    assert caught.value.problems[0].field == "prices.0.per"


# -- the ecosystem: an operator billing a desk with a set-up fee -----------------------------


def contract(code="C1", setup=None, **extra):
    components = [{"code": "DESK", "type": "recurring_fee", "service": "desk", "amount": "300.00",
                   "timing": "in_advance"},
                  {"code": "SETUP", "type": "one_off_fee", "service": "onboarding", "amount": "150.00",
                   **({"recognition": setup} if setup else {})}]
    return {"code": code, "customer": "ACME", "billing_company": "OPFI", "currency": "EUR", "start": "2026-10-01",
            "components": components, **extra}


@pytest.fixture
def eco(empty_db):
    return operator_and_customer(empty_db)


def operator_and_customer(db):
    """The operator OPFI and its customer ACME."""
    companies.add_company(db, "OPFI", "Operator", "EUR", actor="t", roles=["operator"], open_date=dt.date(2026, 1, 1))
    service.save_customer(db, {"code": "ACME", "name": "Acme", "billing_company": "OPFI", "currency": "EUR"}, actor="t")
    return db


def start(db, document):
    service.save_contract(db, document, actor="t")
    report = import_events(db, enumerate([{"id": f"a-{document['code']}", "type": "activated",
                                           "contract": document["code"], "date": document["start"]}]),
                           rules=RULES, actor="t")
    assert report.accepted == 1, report.outcomes


def close(db, period, **kwargs):
    return run_close(db, "OPFI", period, ssp=SSP, day_count="actual_days", actor="controller:jane", **kwargs)


def revenue(db, contract_code=None):
    """Income:Subscriptions and Income:OneOff of OPFI (of one contract), as positive amounts."""
    totals = {}
    for line in reports.trial_balance(db).lines:
        if line.company == "OPFI" and line.account in ("Income:Subscriptions", "Income:OneOff") and not contract_code:
            totals[line.account] = -line.balance_minor
    if contract_code:
        with db.read() as conn:
            from ledger.schema import accounts

            for account, amount, dims in conn.execute(
                    select(accounts.c.name, postings.c.amount_minor, postings.c.dimensions)
                    .join(accounts, accounts.c.id == postings.c.account_id)
                    .where(accounts.c.name.in_(("Income:Subscriptions", "Income:OneOff")))):
                if json.loads(dims or "{}").get("contract") == contract_code:
                    totals[account] = totals.get(account, 0) - amount
    return totals


def balance(db, account):
    return sum(line.balance_minor for line in reports.trial_balance(db).lines
               if line.company == "OPFI" and line.account == account)


def test_the_schedule_allocates_the_set_up_fee_by_standalone_selling_price(eco):
    start(eco, contract())
    schedule = schedule_of(eco, "C1", through=dt.date(2026, 11, 30), ssp=SSP, day_count="actual_days")
    first = schedule.windows[0]
    # 300 + 150 allocated by 300 : 200: the desk 270, the set-up 180
    assert [(o.component, o.allocated_minor, o.ssp_method) for o in first.obligations] == [
        ("DESK", 27000, "observable"), ("SETUP", 18000, "expected_cost_plus_margin")]
    assert [(w.start, [o.allocated_minor for o in w.obligations]) for w in schedule.windows[1:]] == [
        (dt.date(2026, 11, 1), [30000])]
    assert schedule.recognised("2026-10") == {("desk", "Income:Subscriptions"): 27000,
                                              ("onboarding", "Income:OneOff"): 18000}
    with pytest.raises(LedgerError) as caught:  # bounded: REVREC_SCHEDULE_MONTHS_MAX
        schedule_of(eco, "C1", through=dt.date(9999, 12, 31), ssp=SSP, day_count="actual_days")
    assert caught.value.problems[0].field == "through"


def test_a_fixed_term_is_allocated_over_its_whole_term(eco):
    # Twelve months of a 300.00 desk and a 150.00 set-up: 3,750.00 allocated by the
    # standalone selling prices over the term, 12 x 300 : 200. The set-up gets 197.37, the
    # desk 3,552.63, spread over its months by their fees.
    start(eco, contract(end="2027-09-30"))
    schedule = schedule_of(eco, "C1", through=dt.date(2026, 10, 31), ssp=SSP, day_count="actual_days")
    desks = [o for w in schedule.windows for o in w.obligations if o.component == "DESK"]
    [setup] = [o for w in schedule.windows for o in w.obligations if o.component == "SETUP"]
    assert setup.allocated_minor == 19737 and sum(o.allocated_minor for o in desks) == 355263
    assert len(desks) == 12 and {o.allocated_minor for o in desks} == {29605, 29606}
    billing.run_billing(eco, "OPFI", "2026-10", rules=RULES, actor="t")
    [item] = close(eco, "2026-10").recognitions
    # October: the desk's 296.06 out of the 300.00 billed in advance, and the set-up's 197.37
    # of which 150.00 was charged: revenue ahead of billing is a contract asset (43.43)
    assert (item.revenue_minor, item.released_minor, item.accrued_minor) == (29606 + 4737, 30000, 4343)
    assert revenue(eco) == {"Income:OneOff": 19737, "Income:Subscriptions": 29606}


def test_a_prospective_amendment_starts_a_new_term_of_allocation(eco):
    document = contract(end="2027-09-30")
    document["amendments"] = [{"version": 2, "effective_from": "2027-01-01", "components": [
        {"code": "DESK", "type": "recurring_fee", "service": "desk", "amount": "400.00", "timing": "in_advance"}],
        "modification": {"path": "prospective", "reason": "a larger desk: a distinct service from January"}}]
    start(eco, document)
    schedule = schedule_of(eco, "C1", through=dt.date(2027, 9, 30), ssp=SSP, day_count="actual_days")
    before = [o for w in schedule.windows if w.start < dt.date(2027, 1, 1) for o in w.obligations]
    after = [o for w in schedule.windows if w.start >= dt.date(2027, 1, 1) for o in w.obligations]
    # October to December: 3 x 300 + 150 = 1,050.00 by 900 : 200; the set-up 190.91
    assert sum(o.allocated_minor for o in before) == 105000
    assert [o.allocated_minor for o in before if o.component == "SETUP"] == [19091]
    # from January, a new term of the amended desk alone: its fees as they are
    assert [o.allocated_minor for o in after] == [40000] * 9


def test_a_close_releases_deferred_revenue_accrues_the_unbilled_and_locks(eco):
    start(eco, contract())
    billing.run_billing(eco, "OPFI", "2026-10", rules=RULES, actor="t")
    report = close(eco, "2026-10")
    assert report.outcome == "closed" and [c.status for c in report.checks] == ["passed"] * 6
    [item] = report.recognitions
    # 180 - 150 = 30 more one-off revenue and 270 subscription revenue; the 300 billed in
    # advance is released in full.
    assert (item.revenue_minor, item.released_minor, item.accrued_minor) == (30000, 30000, 0)
    assert revenue(eco) == {"Income:Subscriptions": 27000, "Income:OneOff": 18000}
    assert balance(eco, "Liabilities:ContractLiabilities") == 0
    # Closing it again changes nothing; the month refuses postings.
    assert close(eco, "2026-10").outcome == "already_closed"
    late = import_events(eco, enumerate([{"id": "x1", "type": "one_off_charge", "contract": "C1", "date": "2026-10-20",
                                          "amount": "10.00", "component": "SETUP"}]), rules=RULES, actor="t")
    assert late.rejected == 1
    # November is not billed: the billing check blocks the close and nothing is posted.
    blocked = close(eco, "2026-11")
    assert blocked.outcome == "blocked" and [c.name for c in blocked.checks if c.status == "failed"] == ["billing"]
    assert close_status(eco, "OPFI", "2026-11").status == "open"
    # Accepted with a reason: November's desk is revenue before it is billed (contract asset).
    accepted = close(eco, "2026-11", accept={"billing": "November billed with December"})
    [check] = [c for c in accepted.checks if c.name == "billing"]
    assert (check.status, check.accepted_by, check.reason) == ("accepted", "controller:jane",
                                                                "November billed with December")
    assert (accepted.recognitions[0].revenue_minor, accepted.recognitions[0].accrued_minor) == (30000, 30000)
    assert balance(eco, "Assets:Receivables:Unbilled") == 30000
    assert revenue(eco, "C1") == {"Income:Subscriptions": 57000, "Income:OneOff": 18000}
    runs = close_status(eco, "OPFI", "2026-11").runs
    assert [(r.run_no, r.outcome, r.entries) for r in runs] == [(1, "blocked", 0), (2, "closed", 1)]
    assert verify(eco).ok


def test_reopening_needs_a_reason_records_it_and_the_next_close_posts_the_delta(eco):
    start(eco, contract())
    billing.run_billing(eco, "OPFI", "2026-10", rules=RULES, actor="t")
    close(eco, "2026-10")
    close(eco, "2026-11", accept={"billing": "billed later"})
    with pytest.raises(LedgerError) as caught:
        reopen_close(eco, "OPFI", "2026-11", reason=" ", ssp=SSP, day_count="actual_days", actor="ctl")
    assert caught.value.problems[0].field == "reason"
    with pytest.raises(LedgerError) as caught:  # not the latest closed month
        reopen_close(eco, "OPFI", "2026-10", reason="fix", ssp=SSP, day_count="actual_days", actor="ctl")
    assert caught.value.problems[0].field == "period"
    reopened = reopen_close(eco, "OPFI", "2026-11", reason="November invoice was late", ssp=SSP,
                            day_count="actual_days", actor="ctl")
    assert reopened.outcome == "reopened" and reopened.recognitions == []  # nothing changed yet
    billing.run_billing(eco, "OPFI", "2026-11", rules=RULES, actor="t")
    again = close(eco, "2026-11")
    [item] = again.recognitions
    # billed now: the accrual turns into a release of the invoiced fee, revenue unchanged
    assert (item.revenue_minor, item.released_minor, item.accrued_minor) == (0, 30000, -30000)
    assert item.entry == "revrec:OPFI:2026-11:3:C1"
    assert balance(eco, "Assets:Receivables:Unbilled") == 0
    status = close_status(eco, "OPFI", "2026-11")
    assert [(r.outcome, r.reason) for r in status.runs] == [("closed", None), ("reopened", "November invoice was late"),
                                                              ("closed", None)]
    with eco.read() as conn:
        from ledger.schema import audit_log

        reasons = conn.execute(select(audit_log.c.details).where(audit_log.c.action == "close.reopen")).scalars().all()
    assert [json.loads(d)["reason"] for d in reasons] == ["November invoice was late"]
    assert verify(eco).ok


def test_the_database_keeps_a_closed_period_unless_its_reopening_is_recorded(eco):
    start(eco, contract())
    billing.run_billing(eco, "OPFI", "2026-10", rules=RULES, actor="t")
    close(eco, "2026-10")
    with pytest.raises(Exception, match="closed_periods"):
        with eco.write() as conn:
            conn.execute(delete(closed_periods))
    assert close_status(eco, "OPFI", "2026-10").status == "closed"


def test_an_up_front_fee_that_buys_nothing_distinct_is_recognised_over_its_months(eco):
    # IFRS 15.B48-B51 (Example 53's reasoning): the set-up activity transfers no service, so
    # the fee is part of the price of the service and recognised over the months it
    # relates to. The judgement is the contract's, with its reason.
    start(eco, contract(setup={"pattern": "over_time", "months": 12, "reason": "set-up transfers nothing distinct"}))
    billing.run_billing(eco, "OPFI", "2026-10", rules=RULES, actor="t")
    schedule = schedule_of(eco, "C1", through=dt.date(2026, 10, 31), ssp=SSP, day_count="actual_days")
    setup = [line for line in schedule.lines if line.component == "SETUP"]
    assert len(setup) == 12 and sum(line.amount_minor for line in setup) == 18000
    close(eco, "2026-10")
    october = sum(line.amount_minor for line in setup if line.month == "2026-10")
    assert revenue(eco)["Income:OneOff"] == october  # the rest is deferred
    assert balance(eco, "Liabilities:ContractLiabilities") == -(18000 - october)
    assert verify(eco).ok


def test_usage_revenue_is_left_to_the_usage_postings(eco):
    from usage.lines import RawLine
    from usage.service import Options, import_usage

    service.save_price_plan(eco, {"code": "HOURLY", "currency": "EUR", "unit": "hour", "model": "per_unit",
                                  "unit_price": "95.00"}, actor="t")
    document = contract()
    document["components"].append({"code": "HOURS", "type": "usage", "service": "field", "price_plan": "HOURLY"})
    start(eco, document)
    line = {"id": "u1", "timestamp": "2026-10-10T10:00:00Z", "contract": "C1", "service": "field", "quantity": "2",
            "unit": "hour"}
    report = import_usage(eco, [RawLine("1", "", line)], options=Options(rules=RULES, actor="t"), source="u.jsonl",
                          file_format="jsonl")
    assert report.posted == 1, report
    billing.run_billing(eco, "OPFI", "2026-10", rules=RULES, actor="t")
    usage_before = balance(eco, "Income:Usage")
    close(eco, "2026-10")
    assert balance(eco, "Income:Usage") == usage_before == -19000


def test_a_modification_inside_a_period_is_recognised_from_its_date(eco):
    document = contract()
    document["amendments"] = [{"version": 2, "effective_from": "2026-10-16", "components": [
        {"code": "DESK", "type": "recurring_fee", "service": "desk", "amount": "450.00", "timing": "in_advance"},
        {"code": "SETUP", "type": "one_off_fee", "service": "onboarding", "amount": "150.00"}]}]
    start(eco, document)
    import_events(eco, enumerate([{"id": "m1", "type": "amended", "contract": "C1", "date": "2026-10-16",
                                   "version": 2}]), rules=RULES, actor="t")
    billing.run_billing(eco, "OPFI", "2026-10", rules=RULES, actor="t")
    close(eco, "2026-10")
    # 270 + 180 allocated as before; the upgrade's 150 x 16/31 = 77.42 is October's too
    assert revenue(eco) == {"Income:Subscriptions": 27000 + 7742, "Income:OneOff": 18000}
    assert balance(eco, "Liabilities:ContractLiabilities") == 0
    assert verify(eco).ok


def test_an_obligation_without_a_standalone_selling_price_needs_the_controllers_acceptance(eco):
    document = contract()
    document["components"][1]["service"] = "unpriced"
    start(eco, document)
    billing.run_billing(eco, "OPFI", "2026-10", rules=RULES, actor="t")
    blocked = close(eco, "2026-10")
    [ssp] = [c for c in blocked.checks if c.name == "ssp"]
    assert ssp.status == "failed" and "C1" in ssp.detail
    assert close(eco, "2026-10", accept={"ssp": "unpriced onboarding at its contract price"}).outcome == "closed"
    with pytest.raises(LedgerError) as caught:
        close(eco, "2026-11", accept={"nonsense": "x"})
    assert caught.value.problems[0].field == "accept"


def test_the_ledger_revenue_equals_the_schedules_month_by_month(eco):
    start(eco, contract("C1"))
    start(eco, contract("C2", end="2027-03-31", billing={"frequency": "quarterly", "day": 1}))
    for period in ("2026-10", "2026-11", "2026-12", "2027-01"):
        billing.run_billing(eco, "OPFI", period, rules=RULES, actor="t")
        assert close(eco, period).outcome == "closed"
        end = dt.date.fromisoformat(f"{period}-01")
        for code in ("C1", "C2"):
            schedule = schedule_of(eco, code, through=end, ssp=SSP, day_count="actual_days")
            expected = {}
            for (_, account), amount in schedule.recognised(period).items():
                expected[account] = expected.get(account, 0) + amount
            assert revenue(eco, code) == expected, (period, code)
    assert verify(eco).ok


# -- CLI and API -------------------------------------------------------------------------------


def test_close_through_the_cli(ready, tmp_path, monkeypatch):
    cli = ready
    (tmp_path / "ssp.yaml").write_text(SSP_TEXT)
    monkeypatch.setenv("ECOLEDGER_SSP_TABLE", str(tmp_path / "ssp.yaml"))
    (tmp_path / "eco.json").write_text(json.dumps({
        "customers": [{"code": "ACME", "name": "Acme", "billing_company": "OPFI", "currency": "EUR"}],
        "contracts": [contract()]}))
    assert cli("load", str(tmp_path / "eco.json"))[0] == 0
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps({"id": "a1", "type": "activated", "contract": "C1", "date": "2026-10-01"}) + "\n")
    assert cli("import", "events", str(events))[0] == 0
    code, out, err = cli("close", "run", "--company", "OPFI", "--period", "2026-10")
    assert code == 1 and "blocked" in err and "billing" in out
    assert cli("billing", "run", "--company", "OPFI", "--period", "2026-10")[0] == 0
    code, out, err = cli("close", "run", "--company", "OPFI", "--period", "2026-10", "--format", "json")
    report = json.loads(out)
    assert code == 0 and report["outcome"] == "closed" and report["batch"] == "revrec:OPFI:2026-10:2", err
    code, out, _ = cli("close", "status", "--company", "OPFI", "--period", "2026-10", "--format", "json")
    assert code == 0 and [r["outcome"] for r in json.loads(out)["runs"]] == ["blocked", "closed"]
    code, out, _ = cli("revrec", "schedule", "--contract", "C1", "--through", "2026-10-31", "--format", "csv")
    assert code == 0 and out.splitlines()[0] == "month,component,service,account,window_start,amount"
    code, _, err = cli("close", "run", "--company", "OPFI", "--period", "2026-11", "--accept", "billing")
    assert code == 2 and "CHECK=REASON" in err
    code, out, _ = cli("close", "reopen", "--company", "OPFI", "--period", "2026-10", "--reason", "late credit")
    assert code == 0 and "reopened OPFI 2026-10" in out


def test_close_through_the_api(api):
    response = api.call("controller", "POST", "/closes", json={"company": "OPFI", "period": "2026-09"})
    assert response.status_code == 202, response.get_json()
    settings_ = api.app.extensions["ecoledger"]["settings"]
    done = execute(api.db, response.get_json()["id"], worker="test", timing=JobTiming(30, 60),
                   data_dir=settings_.data_path)
    assert done.status == "succeeded", done.error
    assert done.result["outcome"] == "closed"
    assert "rollforward.pdf" in done.result["disclosure_pack"]["files"]
    status = api.call("auditor", "GET", "/closes/OPFI/2026-09").get_json()
    assert status["status"] == "closed" and [r["outcome"] for r in status["runs"]] == ["closed"]
    assert api.call("partner", "GET", "/closes/OPFI/2026-09").status_code == 403
    assert api.call("auditor", "POST", "/closes/OPFI/2026-09/reopen", json={"reason": "x"}).status_code == 403
    missing = api.call("controller", "POST", "/closes/OPFI/2026-09/reopen", json={})
    assert missing.status_code == 422 and missing.get_json()["errors"][0]["field"] == "reason"
    reopened = api.call("controller", "POST", "/closes/OPFI/2026-09/reopen", json={"reason": "a late invoice"})
    assert reopened.status_code == 200 and reopened.get_json()["outcome"] == "reopened"
    bad = api.call("controller", "POST", "/closes", json={"company": "OPFI", "period": "2026-13"})
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "period"
    unknown = api.call("controller", "POST", "/closes", json={"company": "OPFI", "period": "2026-10",
                                                              "accept": {"mood": "fine"}})
    assert unknown.status_code == 422
    assert api.call("auditor", "GET", "/contracts/NOPE/schedule").status_code == 404


# -- reports and the disclosure pack ---------------------------------------------------------


def reports_of(db, period):
    from revrec.reports import build_report

    return {kind: build_report(db, kind, "OPFI", period, ssp=SSP, day_count="actual_days")[0]
            for kind in ("waterfall", "rollforward", "disaggregation", "rpo")}


def test_the_rollforward_reconciles_to_the_ledger_month_by_month(eco):
    start(eco, contract("C1"))
    start(eco, contract("C2", end="2027-03-31", billing={"frequency": "quarterly", "day": 1}))
    closing = {}
    for period, bill in (("2026-10", True), ("2026-11", False), ("2026-12", True)):
        if bill:
            billing.run_billing(eco, "OPFI", period, rules=RULES, actor="t")
        close(eco, period, accept={"billing": "billed later"} if not bill else None)
        report = reports_of(eco, period)["rollforward"]
        assert report.difference_minor == {"EUR": 0}, (period, report)
        for line in report.lines:
            assert line.opening_minor == closing.get(line.contract, 0)  # opens where the last month closed
            assert line.closing_minor == (line.opening_minor + line.billed_minor - line.recognised_minor
                                          - line.drawn_minor)
            closing[line.contract] = line.closing_minor
        assert sum(line.closing_minor for line in report.lines) == report.ledger_minor["EUR"]
    # November was not billed: C1's desk was recognised as a contract asset, billed in December
    # (a billing run bills the periods starting in its month, so November's fee is never
    # invoiced here: the asset stays, as leakage would report)
    assert closing["C1"] == -30000


def test_disaggregation_adds_up_to_the_revenue_accounts_and_rpo_covers_the_rest_of_term(eco):
    start(eco, contract("C1"))
    start(eco, contract("C2", end="2027-03-31"))
    billing.run_billing(eco, "OPFI", "2026-10", rules=RULES, actor="t")
    close(eco, "2026-10")
    found = reports_of(eco, "2026-10")
    disaggregated = found["disaggregation"]
    # C1, open-ended: October's desk and set-up, 450.00 allocated 270 : 180. C2 runs to
    # March: its whole term is allocated at once, 6 x 300 + 150 = 1,950.00 by 1,800 : 200,
    # the set-up 195.00 and the desk 1,755.00, 292.50 a month.
    assert sum(line.amount_minor for line in disaggregated.lines) == disaggregated.totals_minor["EUR"] == 93750
    assert {(line.service, line.timing) for line in disaggregated.lines} == {("desk", "over_time"),
                                                                              ("onboarding", "point_in_time")}
    # C2's November to March remain: five months of 292.50
    [line] = found["rpo"].lines
    assert (line.contract, line.bands_minor["within_12_months"], line.total_minor) == ("C2", 146250, 146250)
    [fall] = found["waterfall"]
    assert fall.totals()["2026-10"] == 93750 and fall.totals()["2027-03"] == 29250


def test_reports_and_the_pack_through_the_cli(ready, tmp_path, monkeypatch):
    cli = ready
    (tmp_path / "ssp.yaml").write_text(SSP_TEXT)
    monkeypatch.setenv("ECOLEDGER_SSP_TABLE", str(tmp_path / "ssp.yaml"))
    (tmp_path / "eco.json").write_text(json.dumps({
        "customers": [{"code": "ACME", "name": "Acme", "billing_company": "OPFI", "currency": "EUR"}],
        "contracts": [contract(end="2027-09-30")]}))
    assert cli("load", str(tmp_path / "eco.json"))[0] == 0
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps({"id": "a1", "type": "activated", "contract": "C1", "date": "2026-10-01"}) + "\n")
    assert cli("import", "events", str(events))[0] == 0
    assert cli("billing", "run", "--company", "OPFI", "--period", "2026-10")[0] == 0
    code, out, err = cli("close", "run", "--company", "OPFI", "--period", "2026-10", "--format", "json")
    assert code == 0, err
    pack = json.loads(out)["disclosure_pack"]
    manifest = json.loads((tmp_path / pack["directory"] / "manifest.json").read_text())
    assert {f["name"] for f in manifest["files"]} == {f"{k}.{x}" for k in ("waterfall", "rollforward",
                                                                           "disaggregation", "rpo", "contract_costs")
                                                      for x in ("json", "csv", "pdf")} | {"waterfall.png"}
    import hashlib

    for item in manifest["files"]:
        data = (tmp_path / pack["directory"] / item["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == item["sha256"]
    code, out, _ = cli("report", "rollforward", "--company", "OPFI", "--period", "2026-10", "--format", "json")
    assert code == 0 and json.loads(out)["difference"] == {"EUR": "0.00"}
    code, out, _ = cli("report", "rpo", "--company", "OPFI", "--period", "2026-10", "--format", "csv")
    # a twelve-month term: 3,750.00 allocated by 3,600 : 200, the desk 3,552.63, of which
    # 296.06 was October's
    assert code == 0 and out.splitlines()[1].startswith("C1,EUR,3256.57")
    code, out, _ = cli("report", "waterfall", "--company", "OPFI", "--period", "2026-10", "--format", "png",
                       "--out", str(tmp_path / "w.png"))
    assert code == 0 and (tmp_path / "w.png").read_bytes().startswith(b"\x89PNG")
    code, _, err = cli("report", "rpo", "--company", "OPFI", "--period", "2026-10", "--format", "png")
    assert code == 2  # the chart is the waterfall's
    code, _, err = cli("report", "disaggregation", "--company", "NOPE", "--period", "2026-10")
    assert code == 1 and "NOPE" in err


def test_reports_through_the_api(api):
    for kind in ("waterfall", "rollforward", "disaggregation", "rpo"):
        response = api.call("auditor", "GET", f"/reports/{kind}", query_string={"company": "OPFI", "period": "2026-10"})
        assert response.status_code == 200, response.get_json()
        pdf = api.call("controller", "GET", f"/reports/{kind}",
                       query_string={"company": "OPFI", "period": "2026-10", "format": "pdf"})
        assert pdf.mimetype == "application/pdf" and pdf.get_data().startswith(b"%PDF")
        assert api.call("partner", "GET", f"/reports/{kind}",
                        query_string={"company": "OPFI", "period": "2026-10"}).status_code == 403
    png = api.call("auditor", "GET", "/reports/waterfall",
                   query_string={"company": "OPFI", "period": "2026-10", "format": "png"})
    assert png.mimetype == "image/png" and png.get_data().startswith(b"\x89PNG")
    bad = api.call("auditor", "GET", "/reports/rpo", query_string={"company": "OPFI", "period": "2026-10",
                                                                     "format": "png"})
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "format"
    csv_ = api.call("auditor", "GET", "/reports/rollforward", query_string={"company": "OPFI", "period": "2026-10",
                                                                            "format": "csv"})
    assert csv_.mimetype == "text/csv" and csv_.get_data(as_text=True).startswith("contract,currency,opening")


@pytest.fixture
def empty_db_factory(db_url, request, tmp_path):
    """A fresh empty database per hypothesis example (SQLite files; schemas on PostgreSQL)."""
    from ecoledger.schema import metadata
    from ledger.database import Database

    from conftest import BACKEND, fresh_pg_schema

    counter = iter(range(10_000))
    made = []

    def make():
        url = f"sqlite:///{tmp_path / f'rr{next(counter)}.db'}" if BACKEND == "sqlite" else fresh_pg_schema(request)
        db = Database(url)
        made.append(db)
        metadata.create_all(db.engine)
        return db

    yield make
    for db in made:
        db.dispose()


@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=4))
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_sequence_of_billing_closes_and_reopenings_keeps_the_ledger_on_the_schedules(empty_db_factory, months):
    """Reference model: after every close, each contract's revenue in the ledger is what
    its schedule recognises through the month, the roll-forward reconciles, and verify is
    clean, whether months are billed or not and whether the last close is reopened."""
    db = empty_db_factory()
    companies.add_company(db, "OPFI", "Operator", "EUR", actor="t", roles=["operator"], open_date=dt.date(2026, 1, 1))
    service.save_customer(db, {"code": "ACME", "name": "Acme", "billing_company": "OPFI", "currency": "EUR"},
                          actor="t")
    start(db, contract("C1", setup={"pattern": "over_time", "months": 3, "reason": "nothing distinct"}))
    start(db, contract("C2", end="2027-06-30", billing={"frequency": "quarterly", "day": 15}))
    period = dt.date(2026, 10, 1)
    for bill, reopen in months:
        name = f"{period:%Y-%m}"
        if bill:
            billing.run_billing(db, "OPFI", name, rules=RULES, actor="t")
        assert close(db, name, accept={"billing": "not billed this month"}).outcome == "closed"
        if reopen:
            reopen_close(db, "OPFI", name, reason="check", ssp=SSP, day_count="actual_days", actor="t")
            assert close(db, name, accept={"billing": "not billed"}).outcome == "closed"
        end = (period.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
        for code in ("C1", "C2"):
            expected: dict[str, int] = {}
            for (_, account), amount in schedule_of(db, code, through=end, ssp=SSP,
                                                    day_count="actual_days").recognised(name).items():
                expected[account] = expected.get(account, 0) + amount
            assert {k: v for k, v in revenue(db, code).items() if v} == {k: v for k, v in expected.items() if v}
        assert reports_of(db, name)["rollforward"].difference_minor in ({}, {"EUR": 0})
        period = end + dt.timedelta(days=1)
    assert verify(db).ok


def test_the_demo_ecosystem_closed_month_by_month_for_a_year(empty_db):
    """The ecosystem story: the demo's operator, partners and contracts, a year of monthly
    billing, clearing and closes, with a termination in February. After every close each
    contract's revenue in the ledger is what its schedule recognises, the roll-forward
    reconciles to the ledger to the cent, and verify is clean."""
    from clearing.run import run_clearing
    from contracts.ecosystem import load_ecosystem
    from ecoledger.demo import ECOSYSTEM_FILE, EVENTS
    from ecoledger.documents import parse_document
    from revrec.ssp import load_ssp_table
    from usage.lines import RawLine
    from usage.service import Options, import_usage

    db = empty_db
    load_ecosystem(db, parse_document(ECOSYSTEM_FILE.read_bytes(), str(ECOSYSTEM_FILE)), actor="t")
    events = [*EVENTS, {"id": "SD-C-17-terminated", "type": "terminated", "contract": "SD-C-17", "date": "2027-02-14"}]
    assert import_events(db, enumerate(events), rules=RULES, actor="t").rejected == 0
    shipped = load_ssp_table()
    month = dt.date(2026, 10, 1)
    for _month in range(12):
        period = f"{month:%Y-%m}"
        visits = [RawLine(str(n), "", {"id": f"visit-{period}-{code}", "timestamp": f"{period}-10T09:00:00Z",
                                       "contract": code, "service": "field-service", "quantity": "2", "unit": "hour",
                                       "attributes": {"employee_level": "technician", "shift": "day"}})
                  for n, code in enumerate(("SD-C-23", "SD-C-42"), start=1)]
        assert import_usage(db, visits, options=Options(rules=RULES, actor="t"), source=f"{period}.jsonl",
                            file_format="jsonl").posted == 2
        billing.run_billing(db, "OPFI", period, rules=RULES, actor="t")
        run_clearing(db, period, rules=RULES, actor="t")
        report = run_close(db, "OPFI", period, ssp=shipped, day_count="actual_days", actor="controller")
        assert report.outcome == "closed", [(c.name, c.detail) for c in report.checks if c.status != "passed"]
        end = (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
        for code in ("SD-C-17", "SD-C-23", "SD-C-42"):
            expected: dict[str, int] = {}
            for (_, account), amount in schedule_of(db, code, through=end, ssp=shipped,
                                                    day_count="actual_days").recognised(period).items():
                expected[account] = expected.get(account, 0) + amount
            if code == "SD-C-17":  # the card reader charged by an event: revenue when posted, not scheduled
                expected["Income:OneOff"] += 8000
            assert {k: v for k, v in revenue(db, code).items() if v} == {k: v for k, v in expected.items() if v}, (
                period, code)
        rolled = reports_of_with(db, period, shipped)["rollforward"]
        assert rolled.difference_minor == {"EUR": 0}, (period, rolled)
        # ChannelOne's acquisition commission on SD-C-42 (5% of 3,600.00) over 36 months
        [costs] = reports_of_with(db, period, shipped, "contract_costs")["contract_costs"].lines
        assert costs.closing_minor == 18000 - 500 * (_month + 1) and costs.amortised_minor == 500, (period, costs)
        month = end + dt.timedelta(days=1)
    # SD-C-17 ended in February: nothing recognised after it, nothing left to recognise
    assert schedule_of(db, "SD-C-17", through=dt.date(2027, 9, 30), ssp=shipped,
                       day_count="actual_days").recognised("2027-09") == schedule_of(
        db, "SD-C-17", through=dt.date(2027, 2, 28), ssp=shipped, day_count="actual_days").recognised("2027-02")
    assert verify(db).ok


def reports_of_with(db, period, ssp, *kinds):
    from revrec.reports import build_report

    return {kind: build_report(db, kind, "OPFI", period, ssp=ssp, day_count="actual_days")[0]
            for kind in kinds or ("rollforward",)}


# -- contract modifications (IFRS 15.18-21) ----------------------------------------------------


def fixed_term(path=None):
    """A year of a desk at 300 a month from October; from January, 390 a month."""
    amendment = {"version": 2, "effective_from": "2027-01-01", "components": [
        {"code": "DESK", "type": "recurring_fee", "service": "desk", "amount": "390.00", "timing": "in_advance"}]}
    if path:
        amendment["modification"] = {"path": path, "reason": f"judged {path}"}
    return {"code": "F1", "customer": "ACME", "billing_company": "OPFI", "currency": "EUR", "start": "2026-10-01",
            "end": "2027-09-30", "components": [{"code": "DESK", "type": "recurring_fee", "service": "desk",
                                                 "amount": "300.00", "timing": "in_advance"}],
            "amendments": [amendment]}


def monthly(db, code="F1", through="2027-09-30"):
    schedule = schedule_of(db, code, through=dt.date.fromisoformat(through), ssp=SSP, day_count="actual_days")
    found: dict[str, int] = {}
    for line in schedule.lines:
        found[line.month] = found.get(line.month, 0) + line.amount_minor
    return found, schedule


def test_a_prospective_modification_changes_only_the_months_after_it(eco):
    start(eco, fixed_term("prospective"))
    months, schedule = monthly(eco)
    assert [months[m] for m in ("2026-10", "2026-12", "2027-01", "2027-09")] == [30000, 30000, 39000, 39000]
    assert sum(months.values()) == 3 * 30000 + 9 * 39000
    assert schedule.modifications == [(2, dt.date(2027, 1, 1), "prospective", "judged prospective")]


def test_a_separate_contract_keeps_the_original_allocation(eco):
    start(eco, fixed_term("separate_contract"))
    assert monthly(eco)[0] == monthly_of_prospective(eco)


def monthly_of_prospective(db):
    document = fixed_term("prospective")
    document["code"] = "F2"
    start(db, document)
    return monthly(db, "F2")[0]


def test_a_cumulative_catch_up_lands_in_the_modifications_month(eco):
    # IFRS 15.21(b) (Illustrative Example 8's mechanics): the year is one obligation whose
    # price becomes 3 x 300 + 9 x 390 = 4,410.00, measured by days elapsed. By the end of
    # January 123 of 365 days have passed: 4,410.00 x 123 / 365 = 1,486.11 is due, of which
    # 900.00 was recognised: January catches up 586.11 (not 390.00).
    start(eco, fixed_term("cumulative_catch_up"))
    months, schedule = monthly(eco)
    assert [months[m] for m in ("2026-10", "2026-11", "2026-12")] == [30000, 30000, 30000]
    assert months["2027-01"] == 148611 - 90000
    assert sum(months.values()) == 441000
    # February: 151 days elapsed, 4,410.00 x 151 / 365 = 1,824.41, less 1,486.11
    assert months["2027-02"] == 182441 - 148611
    # the close recognises it: January's catch-up is in January's batch
    for period in ("2026-10", "2026-11", "2026-12", "2027-01"):
        billing.run_billing(eco, "OPFI", period, rules=RULES, actor="t")
        close(eco, period)
    assert revenue(eco, "F1") == {"Income:Subscriptions": 148611}
    assert reports_of(eco, "2027-01")["rollforward"].difference_minor == {"EUR": 0}


def test_a_catch_up_needs_a_fixed_term_and_a_stored_judgement_does_not_change(eco):
    document = fixed_term("cumulative_catch_up")
    document.pop("end")
    with pytest.raises(LedgerError) as caught:
        service.save_contract(eco, document, actor="t")
    assert caught.value.problems[0].field == "amendments[0].modification.path"
    start(eco, fixed_term("prospective"))
    assert service.save_contract(eco, fixed_term("prospective"), actor="t")[0] == "unchanged"
    with pytest.raises(LedgerError) as caught:
        service.save_contract(eco, fixed_term("cumulative_catch_up"), actor="t")
    assert caught.value.problems[0].field == "amendments[version 2]"
    bad = fixed_term("prospective")
    bad["amendments"][0]["modification"] = {"path": "retroactive", "reason": "x"}
    with pytest.raises(LedgerError) as caught:
        service.save_contract(eco, bad, actor="t")
    assert caught.value.problems[0].field.endswith("modification.path")


def test_disaggregation_by_region_follows_the_customer_or_its_organisation(eco):
    # ACME has no region; NORD (Nordics) is an organisation whose unit NORD-FI inherits it,
    # and SOUTH-ES records its own.
    for code, extra in (("NORD", {"region": "NORDICS"}), ("NORD-FI", {"parent": "NORD"}),
                        ("SOUTH-ES", {"region": "IBERIA"})):
        service.save_customer(eco, {"code": code, "name": code, "billing_company": "OPFI", "currency": "EUR",
                                    **extra}, actor="t")
    start(eco, contract("C1"))
    start(eco, {**contract("C2"), "customer": "NORD-FI"})
    start(eco, {**contract("C3"), "customer": "SOUTH-ES"})
    billing.run_billing(eco, "OPFI", "2026-10", rules=RULES, actor="t")
    close(eco, "2026-10")
    report = reports_of(eco, "2026-10")["disaggregation"]
    by_region = {}
    for line in report.lines:
        by_region[line.region] = by_region.get(line.region, 0) + line.amount_minor
    assert by_region == {None: 45000, "NORDICS": 45000, "IBERIA": 45000}
    assert sum(by_region.values()) == report.totals_minor["EUR"]
    assert [c.region for c in service.list_customers(eco) if c.code.startswith("NORD")] == ["NORDICS", None]
    # a customer loaded before regions existed hashes as it did: loading it again changes nothing
    assert service.save_customer(eco, {"code": "ACME", "name": "Acme", "billing_company": "OPFI", "currency": "EUR"},
                                 actor="t") == "unchanged"
