"""Variable consideration (IFRS 15.50-59): the controller's estimates with their method and
constraint, the refund liability the close keeps to them, and IFRS 15 Illustrative
Example 24 (a volume discount) with its numbers."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from sqlalchemy import text
from test_revrec import RULES, close, contract, operator_and_customer, reports_of, start

from billing import service as billing
from contracts.events import import_events
from ledger import reports
from ledger.money import format_amount
from ledger.records import LedgerError
from ledger.verify import verify
from revrec.estimates import Scenario, estimate_percent, list_estimates, record_estimate

from api_helpers import stamp_head


@pytest.fixture
def eco(empty_db):
    return operator_and_customer(empty_db)


def balance(db, account, contract_code=None):
    """OPFI's balance of ``account`` (of one contract), in major units."""
    total = 0
    for line in reports.trial_balance(db, company="OPFI").lines:
        if line.account == account and contract_code is None:
            total += line.balance_minor
    if contract_code is not None:
        with db.read() as conn:
            for amount, dims in conn.execute(text(
                    "SELECT p.amount_minor, p.dimensions FROM postings p JOIN accounts a ON a.id = p.account_id "
                    "WHERE a.name = :name"), {"name": account}):
                if json.loads(dims or "{}").get("contract") == contract_code:
                    total += amount
    return format_amount(total, "EUR")


def estimate(effective_from, scenarios, *, kind="sla_credits", method="expected_value", constraint="0", **extra):
    return {"contract": "C1", "effective_from": effective_from, "kind": kind, "method": method,
            "scenarios": [{"percent": p, "probability": q} for p, q in scenarios], "constraint_percent": constraint,
            "reason": "SLA history of the last eight quarters", **extra}


def event(db, id_, kind, day, **fields):
    report = import_events(db, [(1, {"id": id_, "type": kind, "contract": "C1", "date": day, **fields})],
                           rules=RULES, actor="t")
    assert report.accepted == 1, report.outcomes


def month(db, period, **kwargs):
    billing.run_billing(db, "OPFI", period, rules=RULES, actor="t")
    report = close(db, period, **kwargs)
    assert report.outcome == "closed", [(c.name, c.detail) for c in report.checks if c.status == "failed"]
    return report


def test_the_methods_of_estimating():
    outcomes = (Scenario(Decimal(0), Decimal("0.6")), Scenario(Decimal(5), Decimal("0.3")),
                Scenario(Decimal(10), Decimal("0.1")))
    assert estimate_percent("expected_value", outcomes) == Decimal("2.5")
    assert estimate_percent("most_likely_amount", outcomes) == 0
    tie = (Scenario(Decimal(0), Decimal("0.5")), Scenario(Decimal(8), Decimal("0.5")))
    assert estimate_percent("most_likely_amount", tie) == 8  # a tie takes the larger reduction


def test_example_24_a_volume_discount_changes_the_estimate_and_is_caught_up(eco):
    # Product A at 100 a unit, 90 for the whole year once the customer buys more than 1,000
    # units. First quarter (here October): 75 units; the threshold is not expected to be met,
    # so the most likely discount is nothing. Then the customer grows: 500 units, and the
    # threshold is now expected to be met. Revenue of the second sale: 500 x 90 less the
    # 75 x 10 caught up on the first = 44,250; a refund liability of 5,750.
    start(eco, contract())
    record_estimate(eco, estimate("2026-10", [("0", "0.8"), ("10", "0.2")], kind="rebate",
                                  method="most_likely_amount", services=["product-a"]), actor="controller")
    event(eco, "q1", "one_off_charge", "2026-10-20", amount="7500.00", service="product-a")
    october = month(eco, "2026-10")
    assert [r.refund_minor for r in october.recognitions] == [0]
    record_estimate(eco, estimate("2026-11", [("10", "0.8"), ("0", "0.2")], kind="rebate",
                                  method="most_likely_amount", services=["product-a"]), actor="controller")
    event(eco, "q2", "one_off_charge", "2026-11-20", amount="50000.00", service="product-a")
    november = month(eco, "2026-11")
    assert [r.refund_minor for r in november.recognitions] == [575000]
    disaggregated = reports_of(eco, "2026-11")["disaggregation"]
    product_a = sum(line.amount_minor for line in disaggregated.lines if line.service == "product-a")
    adjustment = sum(line.amount_minor for line in disaggregated.lines if line.timing == "adjustment")
    assert (product_a, adjustment, product_a + adjustment) == (5000000, -575000, 4425000)
    assert balance(eco, "Liabilities:RefundLiabilities") == "-5750.00"
    assert verify(eco).ok


def test_expected_credits_with_a_constraint_are_drawn_down_by_the_credits_granted(eco):
    start(eco, contract())
    # 2.5% expected (0% at 0.6, 5% at 0.3, 10% at 0.1), and 1% more held back: 3.5%
    record_estimate(eco, estimate("2026-10", [("0", "0.6"), ("5", "0.3"), ("10", "0.1")], constraint="1"),
                    actor="controller")
    october = month(eco, "2026-10")
    assert [r.refund_minor for r in october.recognitions] == [1575]  # 3.5% of 450.00 (desk 270, set-up 180)
    event(eco, "sla-1", "credit", "2026-11-12", amount="10.00", reason="four hours down")
    november = month(eco, "2026-11")
    # 3.5% of 750.00 to date is 26.25, of which 10.00 was credited: the liability is 16.25
    assert [r.refund_minor for r in november.recognitions] == [50]
    assert balance(eco, "Liabilities:RefundLiabilities") == "-16.25"
    assert balance(eco, "Income:Adjustments") == "26.25"  # revenue reduced once, not twice
    # The SLA period ends with no more credits due: the estimate is now nothing, the
    # liability released; what stays out of revenue is what was credited.
    record_estimate(eco, estimate("2026-12", [("0", "1")]), actor="controller")
    december = month(eco, "2026-12")
    assert [r.refund_minor for r in december.recognitions] == [-1625]
    assert balance(eco, "Liabilities:RefundLiabilities") == "0.00"
    assert balance(eco, "Income:Adjustments") == "10.00"
    assert reports_of(eco, "2026-12")["rollforward"].difference_minor == {"EUR": 0}
    assert close(eco, "2026-12").outcome == "already_closed" and verify(eco).ok


def test_estimates_are_checked_kept_and_never_changed(eco):
    start(eco, contract())
    with pytest.raises(LedgerError) as caught:
        record_estimate(eco, estimate("2026-10", [("0", "0.5"), ("5", "0.4")]), actor="t")
    assert caught.value.problems[0].field == "scenarios" and "0.9" in caught.value.problems[0].message
    with pytest.raises(LedgerError) as caught:
        record_estimate(eco, estimate("2026-10", [("101", "1")]), actor="t")
    assert caught.value.problems[0].field == "scenarios[0].percent"
    with pytest.raises(LedgerError) as caught:
        record_estimate(eco, {**estimate("2026-10", [("1", "1")]), "contract": "NOPE"}, actor="t")
    assert caught.value.problems[0].field == "contract"
    with pytest.raises(LedgerError) as caught:
        record_estimate(eco, estimate("2026-10", [("1", "1")], reason=""), actor="t")
    assert caught.value.problems[0].field == "reason"
    first, created = record_estimate(eco, estimate("2026-10", [("2", "1")]), actor="t")
    again, created_again = record_estimate(eco, estimate("2026-10", [("2", "1")]), actor="t")
    assert created and not created_again and again == first
    month(eco, "2026-10")
    with pytest.raises(LedgerError) as caught:  # a closed month's books do not change
        record_estimate(eco, estimate("2026-10", [("3", "1")]), actor="t")
    assert caught.value.problems[0].field == "effective_from"
    with pytest.raises(Exception, match="never changed"), eco.write() as conn:
        conn.execute(text("UPDATE revrec_estimates SET reason = 'x'"))
    assert [e.effective_from for e in list_estimates(eco, "C1")] == ["2026-10"]


def test_estimates_from_the_cli(eco, cli):
    start(eco, contract())
    stamp_head(eco)
    code, out, err = cli("revrec", "estimate", "set", "--contract", "C1", "--from", "2026-10", "--kind",
                         "sla_credits", "--method", "expected_value", "--scenario", "0:0.6", "--scenario", "5:0.4",
                         "--constraint", "0.5", "--reason", "SLA history", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["withheld_percent"] == "2.5" and json.loads(out)["outcome"] == "recorded"
    code, out, _ = cli("revrec", "estimate", "list", "--contract", "C1", "--format", "csv")
    assert code == 0 and out.splitlines()[1].startswith("2026-10,sla_credits,expected_value,2,0.5,2.5")
    code, _, err = cli("revrec", "estimate", "set", "--contract", "C1", "--from", "2026-10", "--kind", "rebate",
                       "--method", "expected_value", "--scenario", "5", "--reason", "r")
    assert code != 0 and "PERCENT:PROBABILITY" in err


def test_estimates_through_the_api(api):
    from contracts import service

    service.save_customer(api.db, {"code": "ACME", "name": "Acme", "billing_company": "OPFI", "currency": "EUR"},
                          actor="t")
    service.save_contract(api.db, contract(), actor="t")
    body = {"effective_from": "2026-11", "kind": "rebate", "method": "most_likely_amount",
            "scenarios": [{"percent": "10", "probability": "0.7"}, {"percent": 0, "probability": "0.3"}],
            "reason": "volume threshold expected to be met"}
    created = api.call("controller", "POST", "/contracts/C1/estimates", json=body)
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["estimate_percent"] == "10" and created.get_json()["contract"] == "C1"
    assert api.call("controller", "POST", "/contracts/C1/estimates", json=body).status_code == 200
    listed = api.call("auditor", "GET", "/contracts/C1/estimates")
    assert listed.status_code == 200 and [e["kind"] for e in listed.get_json()] == ["rebate"]
    assert api.call("partner", "GET", "/contracts/C1/estimates").status_code == 403
    assert api.call("auditor", "POST", "/contracts/C1/estimates", json=body).status_code == 403
    bad = api.call("controller", "POST", "/contracts/C1/estimates", json={**body, "scenarios": []})
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "scenarios"
    assert api.call("controller", "POST", "/contracts/NOPE/estimates", json=body).status_code == 404
    assert api.call("controller", "POST", "/contracts/C1/estimates", json=[1]).status_code in (400, 422)
