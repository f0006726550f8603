"""Reversals: exact negation, linked, dated explicitly, at most once."""

from __future__ import annotations

import datetime as dt

import pytest

from ledger import periods
from ledger.records import LedgerError
from ledger.reports import get_entry, trial_balance
from ledger.reversal import reverse_entry
from ledger.verify import verify

from helpers import entry, post


def test_reversal_negates_and_links(db):
    post(db, entry("a", "2026-10-05", ("OPFI", "Assets:Receivables:Unbilled", "100.00", "EUR", {"customer": "C-17"}), ("OPFI", "Income:Usage", "-100.00")))
    result = reverse_entry(db, "a", dt.date(2026, 10, 9), actor="t")
    assert result.created and result.reversal_id == "a~reversal" and result.entry_seq == 2
    stored = get_entry(db, "a~reversal")
    assert stored.reverses == "a" and stored.effective_date == dt.date(2026, 10, 9)
    assert [(p.account, p.amount_minor, p.dimensions) for p in stored.postings] == [
        ("Assets:Receivables:Unbilled", -10000, {"customer": "C-17"}),
        ("Income:Usage", 10000, {}),
    ]
    assert get_entry(db, "a").reversed_by == "a~reversal"
    assert all(line.balance_minor == 0 for line in trial_balance(db, company="OPFI").lines)
    assert sum(l.balance_minor for l in trial_balance(db, company="OPFI", as_of=dt.date(2026, 10, 8)).lines if l.account == "Income:Usage") == -10000
    assert verify(db).ok


def test_reversing_again_on_the_same_date_returns_the_reversal(db):
    post(db, entry("a"))
    first = reverse_entry(db, "a", dt.date(2026, 10, 9), actor="t")
    again = reverse_entry(db, "a", dt.date(2026, 10, 9), actor="t")
    assert not again.created and again.entry_seq == first.entry_seq


@pytest.mark.parametrize(
    "setup, target, day, code",
    [
        (lambda db: None, "missing", "2026-10-09", "not_found"),
        (lambda db: reverse_entry(db, "a", dt.date(2026, 10, 9), actor="t"), "a", "2026-10-10", "already_reversed"),
        (lambda db: reverse_entry(db, "a", dt.date(2026, 10, 9), actor="t"), "a~reversal", "2026-10-10", "invalid_value"),
        (lambda db: None, "a", "2026-10-04", "invalid_value"),
        (lambda db: periods.close_period(db, "OPFI", "2026-10", actor="t"), "a", "2026-10-31", "closed_period"),
    ],
)
def test_refusals(db, setup, target, day, code):
    post(db, entry("a"))
    setup(db)
    with pytest.raises(LedgerError) as caught:
        reverse_entry(db, target, dt.date.fromisoformat(day), actor="t")
    assert caught.value.code == code


def test_reversal_into_the_next_open_period(db):
    post(db, entry("a", "2026-10-05"))
    periods.close_period(db, "OPFI", "2026-10", actor="t")
    result = reverse_entry(db, "a", dt.date(2026, 11, 1), actor="t")
    assert result.created
    assert verify(db).ok


def test_reversal_respects_balance_constraints(db):
    """Reversing usage that was already invoiced would take unbilled receivables negative."""
    post(db, entry("usage", "2026-10-05"))
    post(db, entry("invoice", "2026-10-06", ("OPFI", "Assets:Receivables:Customers", "100.00"), ("OPFI", "Assets:Receivables:Unbilled", "-100.00")))
    with pytest.raises(LedgerError) as caught:
        reverse_entry(db, "usage", dt.date(2026, 10, 7), actor="t")
    assert caught.value.code == "balance_constraint"
