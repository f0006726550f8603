"""Trial balance at any date and account statements."""

from __future__ import annotations

import datetime as dt

from ledger.reports import account_statement, trial_balance

from helpers import entry, post


def seed(db):
    post(
        db,
        entry("u1", "2026-10-05"),
        entry("u2", "2026-10-20", ("OPFI", "Assets:Receivables:Unbilled", "50.00"), ("OPFI", "Income:Usage", "-50.00")),
        entry("pay", "2026-10-25", ("OPFI", "Assets:Bank", "30.00", "USD"), ("OPFI", "Income:Usage", "-30.00", "USD")),
        entry("v", "2026-11-02", ("VEND", "Assets:Bank", "7.00"), ("VEND", "Income:Ecosystem", "-7.00")),
    )


def test_trial_balance_at_any_date(db):
    seed(db)
    def lines(**kw):
        return {(l.company, l.account, l.currency): l.balance_minor for l in trial_balance(db, **kw).lines}
    assert lines(as_of=dt.date(2026, 10, 4)) == {}
    assert lines(as_of=dt.date(2026, 10, 19)) == {
        ("OPFI", "Assets:Receivables:Unbilled", "EUR"): 10000,
        ("OPFI", "Income:Usage", "EUR"): -10000,
    }
    everything = lines()
    assert everything[("OPFI", "Income:Usage", "USD")] == -3000
    assert everything[("VEND", "Assets:Bank", "EUR")] == 700
    assert lines(company="VEND", as_of=dt.date(2026, 10, 31)) == {}
    totals = trial_balance(db).totals()
    assert totals == {"EUR": (15700, 15700), "USD": (3000, 3000)}


def test_consolidated_sums_accounts_across_companies(db):
    seed(db)
    consolidated = trial_balance(db, consolidated=True)
    bank = {(l.account, l.currency): l.balance_minor for l in consolidated.lines}
    assert bank[("Assets:Bank", "EUR")] == 700 and bank[("Assets:Bank", "USD")] == 3000
    assert {l.company for l in consolidated.lines} == {"(consolidated)"}


def test_account_statement_running_balance(db):
    seed(db)
    with account_statement(db, "OPFI", "Income:Usage", date_from=dt.date(2026, 10, 10)) as statement:
        assert statement.opening == {"EUR": -10000}
        lines = [(l.entry_id, l.currency, l.amount_minor, l.balance_minor) for l in statement.lines]
    assert lines == [("u2", "EUR", -5000, -15000), ("pay", "USD", -3000, -3000)]
    with account_statement(db, "OPFI", "Income:Usage", date_to=dt.date(2026, 10, 10)) as statement:
        assert statement.opening == {}
        assert [l.entry_id for l in statement.lines] == ["u1"]
