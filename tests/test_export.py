"""beancount as the independent oracle: exports load with zero errors and beancount's own
balances equal ecoledger's trial balance, to the cent."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from beancount import loader
from beancount.core import data, realization

from ledger import companies, periods, reversal
from ledger.export import export_beancount
from ledger.money import format_amount
from ledger.reports import trial_balance

from helpers import entry, post

HOSTILE = 'quote " backslash \\ newline\n tab\t return\r unicode ünïcödé 🚀 and "\\n" literal'


def build(db) -> None:
    companies.add_company(db, "RESL", "Reseller AB", "SEK", actor="t", roles=["reseller"], extra_currencies=["EUR"], open_date=dt.date(2026, 1, 1))
    post(
        db,
        entry("u1", "2026-09-05",
              ("OPFI", "Assets:Receivables:Unbilled", "100.00", "EUR", {"customer": "C-17", "service": HOSTILE}),
              ("OPFI", "Income:Usage", "-100.00", "EUR", {"lineno": "7", "filename": "x"}),
              ("OPFI", "Expenses:CostOfServices", "60.00"),
              ("OPFI", "Liabilities:Ecosystem:DueTo", "-60.00", "EUR", {"counterparty": "VEND"}),
              ("VEND", "Assets:Ecosystem:DueFrom", "60.00", "EUR", {"counterparty": "OPFI"}),
              ("VEND", "Income:Ecosystem", "-60.00"),
              description=HOSTILE, metadata={"note": HOSTILE}),
        entry("u2", "2026-10-05", ("OPFI", "Assets:Bank", "12.34", "USD"), ("OPFI", "Income:Usage", "-12.34", "USD")),
        entry("c1", "2026-10-06",
              ("OPFI", "Expenses:Commissions", "10.00"), ("OPFI", "Liabilities:Ecosystem:DueTo", "-10.00"),
              ("RESL", "Assets:Ecosystem:DueFrom", "10.00"), ("RESL", "Income:Commissions", "-10.00")),
        entry("s1", "2026-10-07", ("RESL", "Assets:Bank", "1000.00", "SEK"), ("RESL", "Equity:OpeningBalances", "-1000.00", "SEK")),
    )
    reversal.reverse_entry(db, "u2", dt.date(2026, 10, 8), actor="t")
    periods.close_period(db, "OPFI", "2026-09", actor="t")
    periods.close_period(db, "VEND", "2026-09", actor="t")
    periods.close_period(db, "OPFI", "2026-10", actor="t")


def load(path: Path):
    entries, errors, options = loader.load_file(str(path))
    assert errors == [], [e.message for e in errors]
    assert options["tolerance_multiplier"] == 0
    return entries


def beancount_balances(entries, company: str | None) -> dict[tuple[str, str, str], Decimal]:
    """Balances as beancount computes them, keyed like ecoledger's (company, account, currency)."""
    root = realization.realize(entries)
    result = {}
    for real in realization.iter_children(root):
        for position in real.balance:
            name = real.account
            if company is None:
                top, code, rest = name.split(":", 2)
                key = (code, f"{top}:{rest}")
            else:
                key = (company, name)
            result[(*key, position.units.currency)] = position.units.number
    return result


def ecoledger_balances(db, company: str | None) -> dict[tuple[str, str, str], Decimal]:
    return {
        (l.company, l.account, l.currency): Decimal(format_amount(l.balance_minor, l.currency))
        for l in trial_balance(db, company=company).lines
        if l.balance_minor
    }


@pytest.mark.parametrize("company", [None, "OPFI", "RESL"])
def test_beancount_loads_the_export_and_agrees_on_every_balance(db, tmp_path, company):
    build(db)
    path = tmp_path / "ledger.beancount"
    with path.open("w", encoding="utf-8") as out:
        summary = export_beancount(db, out, company=company)
    entries = load(path)
    assert summary.entries == sum(isinstance(e, data.Transaction) for e in entries)
    assert beancount_balances(entries, company) == ecoledger_balances(db, company)
    assert summary.balance_assertions == sum(isinstance(e, data.Balance) for e in entries) > 0


def test_strings_survive_the_round_trip(db, tmp_path):
    build(db)
    path = tmp_path / "ledger.beancount"
    with path.open("w", encoding="utf-8") as out:
        export_beancount(db, out)
    transaction = next(e for e in load(path) if isinstance(e, data.Transaction) and e.meta.get("entry-id") == "u1")
    assert transaction.narration == HOSTILE
    assert transaction.meta["note"] == HOSTILE
    assert transaction.meta["entry-source"] == "manual"
    assert transaction.postings[0].meta["service"] == HOSTILE
    assert transaction.postings[1].meta["dim-lineno"] == "7"  # beancount owns 'lineno'


def test_balance_assertions_catch_a_wrong_export(db, tmp_path):
    """The assertions really are checked exactly: a cent off is an error."""
    build(db)
    path = tmp_path / "ledger.beancount"
    with path.open("w", encoding="utf-8") as out:
        export_beancount(db, out)
    text = path.read_text(encoding="utf-8")
    assertion = "2026-10-01 balance Assets:OPFI:Receivables:Unbilled  100.00 EUR"
    assert text.count(assertion) == 1
    path.write_text(text.replace(assertion, assertion.replace("100.00", "100.01")), encoding="utf-8")
    _, errors, _ = loader.load_file(str(path))
    assert len(errors) == 1 and "Balance failed" in errors[0].message


def test_fava_opens_the_export(db, tmp_path):
    fava_core = pytest.importorskip("fava.core", reason="fava is in the [test] extra")
    build(db)
    path = tmp_path / "ledger.beancount"
    with path.open("w", encoding="utf-8") as out:
        export_beancount(db, out)
    ledger = fava_core.FavaLedger(str(path))
    assert list(ledger.load_errors) == []


def test_empty_ledger_exports_a_valid_file(empty_db, tmp_path):
    path = tmp_path / "empty.beancount"
    with path.open("w", encoding="utf-8") as out:
        summary = export_beancount(empty_db, out)
    assert summary == (0, 0, 0)
    load(path)
