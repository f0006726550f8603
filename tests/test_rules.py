"""Posting rules are checked when loaded: a rule that cannot balance, or names an unknown
role, account or amount, is refused with the reason before any event uses it."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal

import pytest

from contracts.billing_periods import billing_period, prorate
from contracts.rules import DEFAULT_RULES, Context, RuleError, current_rules, evaluate, load_rules, parse_rules

GOOD = """
rules:
  charge:
    version: 2
    amounts:
      price: amount
      cost: vendor_share(price)
    postings:
      - {company: billing, account: Assets:Receivables:Customers, amount: price, dimensions: [customer]}
      - {company: billing, account: Income:OneOff, amount: -price}
      - {company: billing, account: Expenses:CostOfServices, amount: cost, when: vendor}
      - {company: billing, account: Liabilities:Ecosystem:DueTo, amount: -cost, counterparty: vendor}
      - {company: vendor, account: Assets:Ecosystem:DueFrom, amount: cost, counterparty: billing}
      - {company: vendor, account: Income:Ecosystem, amount: -cost}
"""


def context(amount: int, vendor: str | None = "FIXR", percent: str = "60") -> Context:
    return Context(amount, Decimal(1), {"billing": "OPFI", "vendor": vendor, "reseller": None},
                   {"customer": "ACME", "contract": "C-1"},
                   {"vendor_share": lambda x: x * Decimal(percent) / 100 if vendor else Decimal(0),
                    "commission": lambda x: Decimal(0), "sla_share": lambda x: Decimal(0)})


def test_the_shipped_rules_load():
    rules = load_rules(DEFAULT_RULES)
    assert {"activated", "amended", "suspended", "resumed", "terminated", "one_off_charge", "credit",
            "sla_breach"} <= set(rules.rules)


def test_a_rule_evaluates_to_balanced_postings_with_half_up_rounding():
    rule = parse_rules(GOOD, "t").rules["charge"]
    lines = evaluate(rule, context(1001, percent="62.5"))  # 625.625 -> 626
    assert [(p.company, p.account, amount) for p, amount in lines] == [
        ("billing", "Assets:Receivables:Customers", 1001), ("billing", "Income:OneOff", -1001),
        ("billing", "Expenses:CostOfServices", 626), ("billing", "Liabilities:Ecosystem:DueTo", -626),
        ("vendor", "Assets:Ecosystem:DueFrom", 626), ("vendor", "Income:Ecosystem", -626)]
    # No vendor: its postings, and those that depend on it, are left out.
    assert [p.account for p, _ in evaluate(rule, context(1001, vendor=None))] == [
        "Assets:Receivables:Customers", "Income:OneOff"]
    # Negative amounts (credits) round half-up away from zero, symmetrically.
    assert [a for _, a in evaluate(rule, context(-1001, percent="62.5"))][2] == -626


@pytest.mark.parametrize(
    "change, message",
    [
        (("amount: -cost, counterparty: vendor}", "amount: cost, counterparty: vendor}"),
         "cannot balance: in the billing company's books when there is a vendor, cost debits exceed"),
        (("{company: vendor, account: Income:Ecosystem, amount: -cost}", "{company: vendor, account: Income:Ecosystem, amount: -price}"),
         "cannot balance: in the vendor company's books"),
        (("company: vendor, account: Assets", "company: landlord, account: Assets"), "unknown role 'landlord'"),
        (("account: Income:OneOff", "account: Income:Typo"), "'Income:Typo' is not an account of a operator company"),
        (("account: Income:Ecosystem", "account: Income:OneOff"), "'Income:OneOff' is not an account of a vendor company"),
        (("cost: vendor_share(price)", "cost: vendor_share(prise)"), "unknown name 'prise'"),
        (("cost: vendor_share(price)", "cost: __import__('os')"), "calls are vendor_share(x)"),
        (("cost: vendor_share(price)", "cost: price ** 2"), "operator Pow is not allowed"),
        (("cost: vendor_share(price)", "cost: price.real"), "Attribute is not allowed"),
        (("cost: vendor_share(price)", "cost: \"'x'\""), "only numbers are literals"),
        (("price: amount\n      cost: vendor_share(price)", "cost: vendor_share(price)\n      price: amount"), "unknown name 'price'"),
        (("amount: -price}", "amount: -prices}"), "is not [-]NAME of an amount"),
        (("version: 2", "version: 0"), "version must be a positive integer"),
        (("counterparty: vendor}", "counterparty: billing}"), "not its own counterparty"),
        (("when: vendor}", "when: customer}"), "is not an optional role"),
        (("dimensions: [customer]", "dimensions: [colour]"), "dimensions: a list of"),
        (("rules:", "rulez:"), "a rule file is a mapping with 'rules'"),
    ],
)
def test_bad_rules_are_refused_when_loaded(change, message):
    old, new = change
    assert old in GOOD
    with pytest.raises(RuleError) as caught:
        parse_rules(GOOD.replace(old, new, 1), "ecosystem-rules.yaml")
    assert message in str(caught.value) and "ecosystem-rules.yaml" in str(caught.value)


def test_an_edit_without_a_new_version_changes_the_rule_hash():
    before = parse_rules(GOOD, "t").rules["charge"]
    after = parse_rules(GOOD.replace("dimensions: [customer]", "dimensions: [customer, contract]"), "t").rules["charge"]
    assert before.version == after.version and before.content_hash != after.content_hash


@pytest.mark.parametrize(
    "day, start, frequency, billing_day, expected",
    [
        ("2026-10-16", "2026-10-01", "monthly", 1, ("2026-10-01", "2026-10-31")),
        ("2026-10-16", "2026-01-20", "monthly", 20, ("2026-09-20", "2026-10-19")),
        ("2026-02-28", "2026-01-01", "monthly", 28, ("2026-02-28", "2026-03-27")),
        ("2026-11-15", "2026-10-01", "quarterly", 1, ("2026-10-01", "2026-12-31")),
        ("2027-01-01", "2026-10-01", "quarterly", 1, ("2027-01-01", "2027-03-31")),
        ("2026-09-30", "2026-07-15", "quarterly", 15, ("2026-07-15", "2026-10-14")),
        ("2027-06-30", "2026-07-01", "yearly", 1, ("2026-07-01", "2027-06-30")),
    ],
)
def test_billing_periods(day, start, frequency, billing_day, expected):
    period = billing_period(dt.date.fromisoformat(day), start=dt.date.fromisoformat(start), frequency=frequency,
                            billing_day=billing_day)
    assert period == tuple(dt.date.fromisoformat(d) for d in expected)


def test_proration_policies():
    october = (dt.date(2026, 10, 1), dt.date(2026, 10, 31))
    assert prorate(15000, dt.date(2026, 10, 16), dt.date(2026, 10, 31), october, "daily") == 7742  # 150 x 16/31
    assert prorate(-15000, dt.date(2026, 10, 16), dt.date(2026, 10, 31), october, "daily") == -7742
    assert prorate(15000, *october, october, "daily") == 15000
    assert prorate(15000, dt.date(2026, 10, 16), dt.date(2026, 10, 31), october, "none") == 0
    assert prorate(15000, *october, october, "none") == 15000
    assert prorate(15000, dt.date(2026, 11, 1), dt.date(2026, 10, 31), october, "daily") == 0


def test_current_rules_reads_the_file_again_only_when_it_changes(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(GOOD)
    first = current_rules(path)
    assert current_rules(path) is first
    path.write_text(GOOD.replace("version: 2", "version: 3"))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    assert current_rules(path).rules["charge"].version == 3
