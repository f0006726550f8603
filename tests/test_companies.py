"""Companies and accounts: templates, validation, closing accounts."""

from __future__ import annotations

import datetime as dt

import pytest

from ledger import companies
from ledger.chart import load_template, parse_template
from ledger.records import LedgerError

from helpers import entry, post


def test_template_accounts_follow_roles(empty_db):
    vendor = companies.add_company(empty_db, "VEND", "Vendor", "EUR", actor="t", roles=["vendor"])
    names = {a.name for a in companies.list_accounts(empty_db, "VEND")}
    assert "Income:Ecosystem" in names and "Income:Usage" not in names
    assert vendor.account_count == len(names)
    both = companies.add_company(empty_db, "BOTH", "Both", "SEK", actor="t", roles=["vendor", "reseller"], extra_currencies=["EUR"])
    accounts = companies.list_accounts(empty_db, "BOTH")
    assert {"Income:Ecosystem", "Income:Commissions"} <= {a.name for a in accounts}
    assert all(a.currencies == ("SEK", "EUR") for a in accounts)
    assert both.roles == ("reseller", "vendor")


@pytest.mark.parametrize(
    "code, name, currency, roles, template, error, field",
    [
        ("opfi", "x", "EUR", ["operator"], "default", "invalid_value", "code"),
        ("OP FI", "x", "EUR", ["operator"], "default", "invalid_value", "code"),
        ("OP-", "x", "EUR", ["operator"], "default", "invalid_value", "code"),
        ("A" * 33, "x", "EUR", ["operator"], "default", "invalid_value", "code"),
        ("OPFI", "", "EUR", ["operator"], "default", "invalid_value", "name"),
        ("OPFI", "x\x00", "EUR", ["operator"], "default", "invalid_value", "name"),
        ("OPFI", "x", "EURO", ["operator"], "default", "unknown_currency", "currency"),
        ("OPFI", "x", "EUR", ["landlord"], "default", "invalid_value", "roles"),
        ("OPFI", "x", "EUR", ["operator"], "../../etc/passwd", "not_found", "template"),
        ("OPFI", "x", "EUR", ["operator"], "nonexistent", "not_found", "template"),
    ],
)
def test_bad_company_input_writes_nothing(empty_db, code, name, currency, roles, template, error, field):
    with pytest.raises(LedgerError) as caught:
        companies.add_company(empty_db, code, name, currency, actor="t", roles=roles, template=template)
    assert (caught.value.code, caught.value.problems[0].field) == (error, field)
    assert companies.list_companies(empty_db) == []


def test_duplicate_company(db):
    with pytest.raises(LedgerError) as caught:
        companies.add_company(db, "OPFI", "Again", "EUR", actor="t")
    assert caught.value.code == "duplicate"


def test_add_account_and_its_rules(db):
    created = companies.add_account(db, "OPFI", "Assets:Bank:Savings", actor="t", currencies=["EUR", "USD"], constraint="non_negative", open_date=dt.date(2026, 1, 1))
    assert (created.type, created.currencies) == ("asset", ("EUR", "USD"))
    for name in ("Assets", "assets:bank", "Revenue:Sales", "Assets:bank", "Assets::Bank", "Assets:Bank Account"):
        with pytest.raises(LedgerError) as caught:
            companies.add_account(db, "OPFI", name, actor="t")
        assert caught.value.code == "invalid_value", name
    with pytest.raises(LedgerError) as caught:
        companies.add_account(db, "OPFI", "Assets:Bank", actor="t")
    assert caught.value.code == "duplicate"
    with pytest.raises(LedgerError) as caught:
        companies.add_account(db, "NOPE", "Assets:Bank", actor="t")
    assert caught.value.code == "unknown_company"


def test_close_account_refuses_to_hide_money(db):
    post(db, entry("a", "2026-10-05", ("OPFI", "Assets:Bank", "10.00"), ("OPFI", "Income:Usage", "-10.00")))
    with pytest.raises(LedgerError, match="still holds 10.00 EUR"):
        companies.close_account(db, "OPFI", "Assets:Bank", dt.date(2026, 10, 31), actor="t")
    with pytest.raises(LedgerError, match="postings after"):
        companies.close_account(db, "OPFI", "Assets:Bank", dt.date(2026, 10, 1), actor="t")
    post(db, entry("b", "2026-10-06", ("OPFI", "Assets:Bank", "-10.00"), ("OPFI", "Assets:Receivables:Customers", "10.00")))
    companies.close_account(db, "OPFI", "Assets:Bank", dt.date(2026, 10, 31), actor="t")
    closed = next(a for a in companies.list_accounts(db, "OPFI") if a.name == "Assets:Bank")
    assert closed.close_date == dt.date(2026, 10, 31)


def test_shipped_templates_are_valid():
    chart = load_template("default")
    assert len(chart.accounts) > 20
    assert {a.constraint for a in chart.accounts} >= {"non_negative", "non_positive"}


@pytest.mark.parametrize(
    "text",
    [
        "accounts: [{name: Bad}]",
        "accounts: [{name: Assets:Bank}, {name: Assets:Bank}]",
        "accounts: [{name: Assets:Bank, roles: [king]}]",
        "accounts: [{name: Assets:Bank, constraint: positive}]",
        "accounts: [{name: Assets:Bank, colour: red}]",
        "just text",
        "accounts: [",
    ],
)
def test_bad_templates(text):
    with pytest.raises(LedgerError):
        parse_template(text, "test")
