"""Periods: monthly, closed in order, closed months refuse postings."""

from __future__ import annotations

import datetime as dt

import pytest

from ledger import periods
from ledger.records import LedgerError

from helpers import entry, post


def test_close_and_list(db):
    post(db, entry("a", "2026-09-15"), entry("b", "2026-10-15"))
    closed = periods.close_period(db, "OPFI", "2026-09", actor="ctrl:anna")
    assert (closed.status, closed.closed_by, closed.end) == ("closed", "ctrl:anna", dt.date(2026, 9, 30))
    listed = periods.list_periods(db, "OPFI", today=dt.date(2026, 11, 22))
    assert [(p.period, p.status) for p in listed] == [
        ("2026-09", "closed"),
        ("2026-10", "open"),
        ("2026-11", "open"),
    ]


def test_closing_twice_changes_nothing(db):
    periods.close_period(db, "OPFI", "2026-09", actor="t")
    again = periods.close_period(db, "OPFI", "2026-09", actor="someone")
    assert again.already_closed and again.closed_by == "t"


def test_periods_close_in_order(db):
    post(db, entry("a", "2026-08-15"))
    with pytest.raises(LedgerError, match="2026-08, which is still open"):
        periods.close_period(db, "OPFI", "2026-10", actor="t")
    periods.close_period(db, "OPFI", "2026-08", actor="t")
    periods.close_period(db, "OPFI", "2026-10", actor="t")  # September is empty: fine
    with pytest.raises(LedgerError, match="closed through 2026-10-31"):
        periods.close_period(db, "OPFI", "2026-09", actor="t")
    report = post(db, entry("sep", "2026-09-20"))
    assert report.results[0].problems[0].code == "closed_period"


@pytest.mark.parametrize("bad", ["2026-13", "2026-1", "26-10", "2026-10-01", "", "2026-00", "0000-01"])
def test_bad_period_names(db, bad):
    with pytest.raises(LedgerError) as caught:
        periods.close_period(db, "OPFI", bad, actor="t")
    assert (caught.value.code, caught.value.problems[0].field) == ("invalid_value", "period")


def test_unknown_company(db):
    with pytest.raises(LedgerError) as caught:
        periods.close_period(db, "NOPE", "2026-10", actor="t")
    assert caught.value.code == "unknown_company"
