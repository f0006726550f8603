"""Contract costs (IFRS 15.91-104): a reseller's acquisition commission capitalised when the
contract is activated, amortised by the close over the judged period or the term, expensed
under the one-year practical expedient, written off at termination, and reported."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_revrec import RULES, SSP, close, contract, operator_and_customer, start

from billing import service as billing
from clearing.run import run_clearing
from contracts.events import import_events
from ledger import reports
from ledger.money import format_amount
from ledger.records import LedgerError
from ledger.verify import verify
from partners.service import onboard_partner
from revrec.costs import CostPolicy, amortised_through
from revrec.reports import contract_costs

from api_helpers import stamp_head


@pytest.fixture
def eco(empty_db):
    return operator_and_customer(empty_db)


JUDGED = {"amortisation_months": 24, "reason": "customers renew once on average (churn study 2026)"}


def reseller(code="CHAN", **terms):
    return {"code": code, "name": f"{code} Oy", "currency": "EUR", "roles": ["reseller"], "open_date": "2026-01-01",
            "api_key": False, "agreements": [{"code": f"{code}-COMM", "kind": "reseller_commission",
                                              "counterparty": "OPFI", "versions": [
                                                  {"version": 1, "effective_from": "2026-01-01",
                                                   "terms": {"percent": "5", **terms}}]}]}


def sold_by(document, code="CHAN"):
    for component in document["components"]:
        component["reseller"] = code
    return document


def balance(db, company, account):
    rows = {line.account: line for line in reports.trial_balance(db, company=company).lines}
    return format_amount(rows[account].balance_minor, "EUR") if account in rows else "0.00"


def month(db, period, **kwargs):
    billing.run_billing(db, "OPFI", period, rules=RULES, actor="t")
    run_clearing(db, period, rules=RULES, actor="t")
    return close(db, period, **kwargs)


def test_an_acquisition_commission_is_capitalised_and_amortised_over_the_judged_months(eco):
    onboard_partner(eco, reseller(acquisition_percent="10"), actor="t")
    start(eco, sold_by(contract(contract_costs=JUDGED)))
    # The first year's value: 12 x 300.00 of desk and the 150.00 set-up, 3,750.00; 10% of it.
    entry = reports.get_entry(eco, "event:a-C1")
    assert [(p.company, p.account, format_amount(p.amount_minor, "EUR"), p.dimensions.get("counterparty"))
            for p in entry.postings if "Contract" in p.account or p.company == "CHAN"] == [
        ("CHAN", "Assets:Ecosystem:DueFrom", "7.50", "OPFI"), ("CHAN", "Income:Commissions", "-7.50", None),
        ("OPFI", "Assets:ContractCosts", "375.00", "CHAN"),
        ("CHAN", "Assets:Ecosystem:DueFrom", "375.00", "OPFI"), ("CHAN", "Income:Commissions", "-375.00", None)]
    october = month(eco, "2026-10")
    assert october.outcome == "closed", october.checks
    assert [(r.contract, r.amortised_minor) for r in october.recognitions] == [("C1", 1563)]  # 375 / 24, half-up
    november = month(eco, "2026-11")
    assert [r.amortised_minor for r in november.recognitions] == [1562]  # 31.25 through November
    assert balance(eco, "OPFI", "Assets:ContractCosts") == "343.75"
    assert balance(eco, "OPFI", "Expenses:ContractCostAmortisation") == "31.25"
    report = contract_costs(eco, "OPFI", "2026-11", ssp=SSP, day_count="actual_days")
    [line] = report.lines
    assert (line.contract, line.resellers, line.basis, line.months) == ("C1", ["CHAN"], "judgement", 24)
    assert (line.opening_minor, line.capitalised_minor, line.amortised_minor, line.closing_minor) == (
        35937, 0, 1562, 34375)
    assert report.ledger_minor == {"EUR": 34375} and report.difference_minor == {"EUR": 0}
    assert close(eco, "2026-11").outcome == "already_closed"
    assert verify(eco).ok


def test_the_practical_expedient_expenses_costs_amortised_over_a_year_or_less(eco):
    onboard_partner(eco, reseller(acquisition="120.00"), actor="t")
    start(eco, sold_by(contract(end="2027-09-30")))  # a twelve-month term, no judgement
    october = month(eco, "2026-10")
    assert [r.amortised_minor for r in october.recognitions] == [12000]
    assert balance(eco, "OPFI", "Assets:ContractCosts") == "0.00"


def test_without_the_expedient_a_twelve_month_term_amortises_monthly(eco):
    onboard_partner(eco, reseller(acquisition="120.00"), actor="t")
    start(eco, sold_by(contract(end="2027-09-30")))
    october = month(eco, "2026-10", cost_expedient=False)
    assert [r.amortised_minor for r in october.recognitions] == [1000]
    report = contract_costs(eco, "OPFI", "2026-10", ssp=SSP, day_count="actual_days")
    assert [(line.basis, line.months, line.closing_minor) for line in report.lines] == [("term", 12, 11000)]


def test_an_open_ended_contract_without_a_judgement_blocks_the_close_until_accepted(eco):
    onboard_partner(eco, reseller(acquisition="120.00"), actor="t")
    start(eco, sold_by(contract()))
    blocked = month(eco, "2026-10")
    assert blocked.outcome == "blocked" and blocked.recognitions == []
    [check] = [c for c in blocked.checks if c.status == "failed"]
    assert check.name == "contract_costs" and "C1" in check.detail
    accepted = close(eco, "2026-10", accept={"contract_costs": "commission immaterial; expensed"})
    assert accepted.outcome == "closed"
    assert [r.amortised_minor for r in accepted.recognitions] == [12000]  # expensed: no period was judged


def test_a_termination_writes_off_what_remains(eco):
    onboard_partner(eco, reseller(acquisition="240.00"), actor="t")
    start(eco, sold_by(contract(contract_costs=JUDGED)))
    assert [r.amortised_minor for r in month(eco, "2026-10").recognitions] == [1000]
    report = import_events(eco, [(1, {"id": "t1", "type": "terminated", "contract": "C1", "date": "2026-11-15"})],
                           rules=RULES, actor="t")
    assert report.accepted == 1, report.outcomes
    november = month(eco, "2026-11")
    assert [r.amortised_minor for r in november.recognitions] == [23000]
    assert balance(eco, "OPFI", "Assets:ContractCosts") == "0.00"
    assert verify(eco).ok


def test_tiered_commissions_leave_acquisition_commissions_out_of_what_was_accrued(eco):
    tiers = {"tiers": [{"from": "0", "percent": "5"}, {"from": "500.00", "percent": "10"}],
             "tier_mode": "retroactive", "period": "month", "acquisition": "100.00"}
    document = reseller("TIER")
    document["agreements"][0]["versions"][0]["terms"] = tiers
    onboard_partner(eco, document, actor="t")
    start(eco, sold_by(contract(contract_costs=JUDGED), "TIER"))
    billing.run_billing(eco, "OPFI", "2026-10", rules=RULES, actor="t")
    cleared = run_clearing(eco, "2026-10", rules=RULES, actor="t")
    # 450.00 of volume (the desk billed, the set-up charged) stays in the 5% tier that the
    # charges accrued at: no true-up, and the acquisition commission is not taken back.
    assert [(i.kind, i.amount_minor) for i in cleared.items] == [] and cleared.unchanged == 1
    assert balance(eco, "TIER", "Assets:Ecosystem:DueFrom") == "122.50"


@pytest.mark.parametrize("kind, terms, field", [
    ("reseller_commission", {"percent": "5", "acquisition": "10.00", "acquisition_percent": "3"}, "acquisition_percent"),
    ("vendor_share", {"basis": "percent_of_price", "percent": "60", "acquisition": "10.00"}, "acquisition_minor"),
])
def test_acquisition_terms_are_checked(eco, kind, terms, field):
    document = reseller()
    document["roles"] = ["reseller", "vendor"]
    document["agreements"][0].update(kind=kind)
    document["agreements"][0]["versions"][0]["terms"] = terms
    with pytest.raises(LedgerError) as caught:
        onboard_partner(eco, document, actor="t")
    assert any(p.field.endswith(field) for p in caught.value.problems), caught.value.problems


def test_the_judgement_is_checked_and_shown(eco, cli):
    from contracts import service

    with pytest.raises(LedgerError) as caught:
        service.save_contract(eco, contract(contract_costs={"amortisation_months": 0, "reason": "x"}), actor="t")
    assert caught.value.problems[0].field == "contract_costs.amortisation_months"
    with pytest.raises(LedgerError) as caught:
        service.save_contract(eco, contract(contract_costs={"amortisation_months": 24}), actor="t")
    assert caught.value.problems[0].field == "contract_costs.reason"
    service.save_contract(eco, contract(contract_costs=JUDGED), actor="t")
    assert service.get_contract(eco, "C1").contract_costs == JUDGED


@given(st.lists(st.tuples(st.integers(0, 30), st.integers(-10**9, 10**9)), min_size=1, max_size=5),
       st.integers(1, 60), st.integers(0, 80))
@settings(max_examples=300, deadline=None)
def test_amortisation_never_overshoots_never_goes_back_and_ends_at_the_whole(costs, months, later):
    base = dt.date(2026, 1, 15)
    days = [(_add_months(base, offset), amount) for offset, amount in costs]
    policy = CostPolicy(months, "judgement", "")
    through = _add_months(base, later)
    for day, amount in days:  # each cost: between 0 and itself, on its side, growing to itself
        one = amortised_through([(day, amount)], policy, through)
        assert abs(one) <= abs(amount) and (one == 0 or (one > 0) == (amount > 0))
        assert abs(amortised_through([(day, amount)], policy, _add_months(through, 1))) >= abs(one)
        assert amortised_through([(day, amount)], policy, _add_months(day, months - 1)) == amount
    together = amortised_through(days, policy, through)
    assert together == sum(amortised_through([cost], policy, through) for cost in days)
    # a contract that has ended leaves nothing to amortise
    assert amortised_through(days, policy, through, ended=through) == sum(a for d, a in days if d <= through)


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, day.day)


def test_the_contract_costs_report_from_the_cli(eco, cli):
    onboard_partner(eco, reseller(acquisition_percent="10"), actor="t")
    start(eco, sold_by(contract(contract_costs=JUDGED)))
    month(eco, "2026-10")
    stamp_head(eco)
    code, out, err = cli("report", "contract_costs", "--company", "OPFI", "--period", "2026-10", "--format", "json")
    assert code == 0, err
    found = json.loads(out)
    assert found["lines"][0]["closing"] == "359.37" and found["difference"] == {"EUR": "0.00"}
    code, out, _ = cli("report", "contract_costs", "--company", "OPFI", "--period", "2026-10", "--format", "csv")
    assert code == 0 and out.splitlines()[0].startswith("contract,currency,obtained by,basis,months")
    code, out, _ = cli("report", "contract_costs", "--company", "OPFI", "--period", "2026-10")
    assert code == 0 and "Contract cost assets" in out and "difference from the lines 0.00" in out


def test_the_contract_costs_report_through_the_api(api):
    response = api.call("auditor", "GET", "/reports/contract_costs?company=OPFI&period=2026-10")
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"company": "OPFI", "period": "2026-10", "lines": [], "ledger": {}, "difference": {}}
    assert api.call("partner", "GET", "/reports/contract_costs?company=OPFI&period=2026-10").status_code == 403
    pdf = api.call("controller", "GET", "/reports/contract_costs?company=OPFI&period=2026-10&format=pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
