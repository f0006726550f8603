"""The posting service: every entry accepted, duplicate or rejected, and nothing half-written."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from ledger import audit, companies, periods
from ledger.interchange import parse_entry
from ledger.money import INT64_MAX, format_amount
from ledger.posting import JournalWriter, _Refused, post_entries
from ledger.records import EntryDraft, PostingDraft
from ledger.reports import trial_balance
from ledger.rules import check_entry
from ledger.schema import audit_log, daily_balances, journal_entries, postings
from ledger.verify import verify

from helpers import entry, post, post_lines


def rows(db, table) -> int:
    with db.read() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def balance(db, company: str, account: str, currency: str = "EUR", as_of=None) -> int:
    lines = trial_balance(db, company=company, as_of=as_of).lines
    return sum(l.balance_minor for l in lines if l.account == account and l.currency == currency)


def statuses(report) -> list[str]:
    return [o.status for o in report.results]


def codes(report) -> list[list[str]]:
    return [[p.code for p in o.problems] for o in report.results]


def test_accepted_entries_get_positions_and_move_balances(db):
    report = post(db, entry("a"), entry("b", "2026-10-06"))
    assert statuses(report) == ["accepted", "accepted"]
    assert [o.entry_seq for o in report.results] == [1, 2]
    assert balance(db, "OPFI", "Assets:Receivables:Unbilled") == 20000
    assert balance(db, "OPFI", "Income:Usage") == -20000
    assert balance(db, "OPFI", "Income:Usage", as_of=dt.date(2026, 10, 5)) == -10000
    assert rows(db, postings) == 4
    assert verify(db).ok


def test_same_id_and_same_meaning_is_a_duplicate(db):
    post(db, entry("a"))
    equivalent = entry("a", "2026-10-05", ("OPFI", "Assets:Receivables:Unbilled", "100.0"), ("OPFI", "Income:Usage", "-100"))
    report = post(db, equivalent)
    assert statuses(report) == ["duplicate"]
    assert report.results[0].entry_seq == 1
    assert rows(db, journal_entries) == 1


def test_same_id_with_another_payload_is_a_conflict(db):
    post(db, entry("a"))
    changed = entry("a", "2026-10-05", ("OPFI", "Assets:Receivables:Unbilled", "100.01"), ("OPFI", "Income:Usage", "-100.01"))
    report = post(db, changed)
    assert codes(report) == [["idempotency_conflict"]]
    assert report.results[0].problems[0].field == "id"
    assert balance(db, "OPFI", "Income:Usage") == -10000


def test_same_id_twice_in_one_batch(db):
    report = post(db, entry("a"), entry("a"), all_or_nothing=False)
    assert statuses(report) == ["accepted", "duplicate"]
    other = entry("b", "2026-10-07")
    report = post(db, entry("b"), other, all_or_nothing=False)
    assert statuses(report) == ["accepted", "rejected"]
    assert codes(report)[1] == ["idempotency_conflict"]


def test_all_or_nothing_writes_nothing_when_one_entry_is_rejected(db):
    bad = entry("bad", "2026-10-05", ("OPFI", "Assets:Bank", "1.00"), ("OPFI", "Income:Usage", "-2.00"))
    report = post(db, entry("a"), bad, entry("c"))
    assert (report.accepted, report.not_posted, report.rejected) == (0, 2, 1)
    assert statuses(report) == ["rejected", "rejected", "rejected"]
    assert codes(report) == [["batch_not_posted"], ["unbalanced"], ["batch_not_posted"]]
    assert rows(db, journal_entries) == rows(db, postings) == rows(db, daily_balances) == 0
    assert rows(db, audit_log) == 2  # the two companies, no post


def test_partial_posts_the_valid_entries(db):
    bad = entry("bad", "2026-10-05", ("OPFI", "Assets:Bank", "1.00"), ("OPFI", "Income:Usage", "-2.00"))
    report = post(db, entry("a"), bad, entry("c"), all_or_nothing=False)
    assert statuses(report) == ["accepted", "rejected", "accepted"]
    assert rows(db, journal_entries) == 2
    assert verify(db).ok


def test_rejection_in_a_later_batch_undoes_earlier_batches(db):
    docs = [entry(f"e{i}") for i in range(7)]
    docs[6] = entry("e6", "2026-10-05", ("OPFI", "Nope:Account", "1.00"), ("OPFI", "Income:Usage", "-1.00"))
    report = post_entries(db, [parse_entry(d, i) for i, d in enumerate(docs)], actor="t", batch_entries=2)
    assert (report.accepted, report.not_posted, report.rejected) == (0, 6, 1)
    assert rows(db, journal_entries) == 0
    report = post_entries(db, [parse_entry(d, i) for i, d in enumerate(docs)], actor="t", batch_entries=2, all_or_nothing=False)
    assert (report.accepted, report.rejected) == (6, 1)
    assert verify(db).ok


@pytest.mark.parametrize(
    "postings_, code, field",
    [
        ((("NOPE", "Assets:Bank", "1.00"), ("OPFI", "Assets:Bank", "-1.00")), "unknown_company", "postings[0].company"),
        ((("OPFI", "Assets:Nope", "1.00"), ("OPFI", "Assets:Bank", "-1.00")), "unknown_account", "postings[0].account"),
        ((("VEND", "Assets:Bank", "1.00", "USD"), ("VEND", "Income:Ecosystem", "-1.00", "USD")), "currency_not_allowed", "postings[0].currency"),
        ((("OPFI", "Assets:Bank", "1.00"), ("VEND", "Assets:Bank", "-1.00")), "unbalanced", "postings"),
        ((("OPFI", "Assets:Bank", "1.00", "EUR"), ("OPFI", "Assets:Bank", "-1.00", "USD")), "unbalanced", "postings"),
    ],
)
def test_ledger_rules_name_the_field(db, postings_, code, field):
    report = post(db, entry("x", "2026-10-05", *postings_))
    problem = report.results[0].problems[0]
    assert (problem.code, problem.field) == (code, field)
    assert rows(db, journal_entries) == 0


def test_multi_company_multi_currency_entry_balances_per_company_and_currency(db):
    report = post(
        db,
        entry(
            "fx",
            "2026-10-05",
            ("OPFI", "Assets:Bank", "10.00", "USD"),
            ("OPFI", "Income:Usage", "-10.00", "USD"),
            ("OPFI", "Expenses:CostOfServices", "6.00"),
            ("OPFI", "Liabilities:Ecosystem:DueTo", "-6.00", "EUR", {"counterparty": "VEND"}),
            ("VEND", "Assets:Ecosystem:DueFrom", "6.00", "EUR", {"counterparty": "OPFI"}),
            ("VEND", "Income:Ecosystem", "-6.00"),
        ),
    )
    assert report.accepted == 1
    assert balance(db, "OPFI", "Assets:Bank", "USD") == 1000
    assert verify(db).ok


def test_account_must_be_open_on_the_date(db):
    report = post(db, entry("early", "2025-12-31"))
    assert codes(report) == [["account_not_open", "account_not_open"]]
    companies.close_account(db, "OPFI", "Assets:Bank", dt.date(2026, 6, 30), actor="t")
    report = post(db, entry("late", "2026-07-01", ("OPFI", "Assets:Bank", "1.00"), ("OPFI", "Income:Usage", "-1.00")))
    assert codes(report) == [["account_not_open"]]


def test_closed_period_refuses_postings(db):
    periods.close_period(db, "OPFI", "2026-09", actor="t")
    report = post(db, entry("in-closed", "2026-09-30"), entry("in-open", "2026-10-01"), all_or_nothing=False)
    assert statuses(report) == ["rejected", "accepted"]
    problem = report.results[0].problems[0]
    assert (problem.code, problem.field) == ("closed_period", "date")
    assert "2026-09 is closed for OPFI" in problem.message
    # The vendor's books are still open in September.
    vendor = entry("vendor-sep", "2026-09-30", ("VEND", "Assets:Bank", "1.00"), ("VEND", "Income:Ecosystem", "-1.00"))
    assert post(db, vendor).accepted == 1


def test_balance_constraint_is_checked_entry_by_entry(db):
    # Assets:Receivables:Unbilled must not go below zero (default chart).
    invoice = entry("invoice", "2026-10-10", ("OPFI", "Assets:Receivables:Customers", "150.00"), ("OPFI", "Assets:Receivables:Unbilled", "-150.00"))
    report = post(db, invoice)
    assert codes(report) == [["balance_constraint"]]
    assert "must not go below zero" in report.results[0].problems[0].message
    # With enough usage before it in the same batch, it passes; the order of entries counts.
    report = post(db, entry("u1", "2026-10-05"), entry("u2", "2026-10-06"), invoice, all_or_nothing=False)
    assert statuses(report) == ["accepted", "accepted", "accepted"]
    assert balance(db, "OPFI", "Assets:Receivables:Unbilled") == 5000


def test_back_dated_entry_may_not_break_a_later_day(db):
    post(db, entry("u1", "2026-10-05"))
    invoice = entry("invoice", "2026-10-20", ("OPFI", "Assets:Receivables:Customers", "100.00"), ("OPFI", "Assets:Receivables:Unbilled", "-100.00"))
    assert post(db, invoice).accepted == 1
    # A credit on the 1st would make the 1st..4th negative, though "now" stays at zero.
    early = entry("early", "2026-10-01", ("OPFI", "Assets:Receivables:Unbilled", "-1.00"), ("OPFI", "Income:Usage", "1.00"))
    assert codes(post(db, early)) == [["balance_constraint"]]
    # A debit back-dated into the month is fine and moves every later day's balance.
    extra = entry("extra", "2026-10-03", ("OPFI", "Assets:Receivables:Unbilled", "5.00"), ("OPFI", "Income:Usage", "-5.00"))
    assert post(db, extra).accepted == 1
    assert balance(db, "OPFI", "Assets:Receivables:Unbilled", as_of=dt.date(2026, 10, 4)) == 500
    assert balance(db, "OPFI", "Assets:Receivables:Unbilled", as_of=dt.date(2026, 10, 19)) == 10500
    assert balance(db, "OPFI", "Assets:Receivables:Unbilled") == 500
    assert verify(db).ok


def test_balances_stay_within_64_bits(db):
    biggest = format_amount(INT64_MAX, "EUR")
    first = entry("max", "2026-10-05", ("OPFI", "Assets:Bank", biggest), ("OPFI", "Income:Usage", "-" + biggest))
    second = entry("more", "2026-10-06", ("OPFI", "Assets:Bank", "0.01"), ("OPFI", "Income:Usage", "-0.01"))
    other = entry("other", "2026-10-06", ("OPFI", "Expenses:CostOfServices", "0.01"), ("OPFI", "Assets:Receivables:Customers", "-0.01"))
    report = post(db, first, second, other, all_or_nothing=False)
    assert statuses(report) == ["accepted", "rejected", "accepted"]
    assert "64-bit" in report.results[1].problems[0].message
    assert balance(db, "OPFI", "Assets:Bank") == INT64_MAX
    assert verify(db).ok


def test_ten_megabyte_description_is_refused_and_nothing_written(db):
    huge = entry("huge", description="x" * 10_000_000)
    report = post_lines(db, (json.dumps(huge) + "\n").encode())
    assert codes(report) == [["too_long"]]
    assert rows(db, journal_entries) == 0


def test_every_post_is_audited(db):
    post(db, entry("a"), entry("b"))
    with db.read() as conn:
        latest = audit.entries(conn, limit=1)[0]
    assert latest["action"] == "entries.post"
    assert latest["actor"] == "test"
    assert latest["details"] == {"accepted": 2, "first_entry_seq": 1, "last_entry_seq": 2}
    assert latest["target"] == "journal 1..2"


def test_partial_mode_audits_each_transaction_with_its_own_counts(db):
    docs = [entry(f"e{i}") for i in range(5)]
    post_entries(db, [parse_entry(d, i) for i, d in enumerate(docs)], actor="t", all_or_nothing=False, batch_entries=2)
    with db.read() as conn:
        rows = [r for r in audit.entries(conn, limit=10) if r["action"] == "entries.post"]
    assert [(r["target"], r["details"]["accepted"]) for r in reversed(rows)] == [
        ("journal 1..2", 2), ("journal 3..4", 2), ("journal 5..5", 1)
    ]


def test_report_counts_add_up(db):
    data = b"\n".join(
        [
            json.dumps(entry("a")).encode(),
            b"{broken",
            json.dumps(entry("a")).encode(),
            json.dumps(entry("b")).encode(),
        ]
    )
    report = post_lines(db, data, all_or_nothing=False)
    assert (report.accepted, report.duplicates, report.rejected) == (2, 1, 1)
    assert report.total == 4
    assert [o.ref for o in report.rejections] == [2]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["OPFI", "VEND", "NOPE"]),
            st.sampled_from(["Assets:Bank", "Income:Usage", "Income:Ecosystem", "Assets:Old", "Assets:Nope"]),
            st.integers(-500, 500),
            st.sampled_from(["EUR", "USD"]),
        ),
        min_size=1,
        max_size=5,
    ),
    st.dates(min_value=dt.date(2025, 12, 25), max_value=dt.date(2026, 11, 5)),
)
def test_fast_resolution_agrees_with_check_entry(chart_db, postings_, day):
    """The fused fast path of the posting service never accepts what rules.check_entry
    refuses, and never refuses what it accepts."""
    db = chart_db
    draft = EntryDraft("x", day, tuple(PostingDraft(c, a, amount, cur) for c, a, amount, cur in postings_))
    with db.write() as conn:
        writer = JournalWriter(conn)
        writer._load_chart({(p.company, p.account) for p in draft.postings})
        problems = check_entry(draft, writer.accounts, writer.companies, writer.closed_through)
        try:
            lines, _ = writer._resolve(draft)
        except _Refused as refused:
            assert refused.problems == problems and problems
        else:
            assert problems == [] and len(lines) == len(draft.postings)


@pytest.fixture
def chart_db(db):
    companies.add_account(db, "OPFI", "Assets:Old", actor="t", currencies=["EUR", "USD"], open_date=dt.date(2026, 1, 1))
    companies.close_account(db, "OPFI", "Assets:Old", dt.date(2026, 6, 30), actor="t")
    periods.close_period(db, "VEND", "2026-03", actor="t")
    return db


@pytest.mark.parametrize(
    "draft, code, field",
    [
        (EntryDraft("f", dt.date(2026, 10, 5), (PostingDraft("OPFI", "Assets:Bank", 1.5, "EUR"), PostingDraft("OPFI", "Income:Usage", -1.5, "EUR"))), "amount_range", "postings[0].amount"),
        (EntryDraft("g", dt.date(2026, 10, 5), (PostingDraft("OPFI", "Assets:Bank", 2**63, "EUR"), PostingDraft("OPFI", "Income:Usage", -(2**63), "EUR"))), "amount_range", "postings[0].amount"),
        (EntryDraft("h", dt.datetime(2026, 10, 5, 12), (PostingDraft("OPFI", "Assets:Bank", 1, "EUR"),)), "invalid_value", "date"),
        (EntryDraft("i", dt.date(2026, 10, 5), ()), "invalid_value", "postings"),
        (EntryDraft(17, dt.date(2026, 10, 5), (PostingDraft("OPFI", "Assets:Bank", 1, "EUR"), PostingDraft("OPFI", "Income:Usage", -1, "EUR"))), "invalid_value", "id"),
        (EntryDraft("x" * 256, dt.date(2026, 10, 5), (PostingDraft("OPFI", "Assets:Bank", 1, "EUR"), PostingDraft("OPFI", "Income:Usage", -1, "EUR"))), "invalid_value", "id"),
    ],
)
def test_drafts_from_code_are_checked_too(db, draft, code, field):
    """Posting rules hand drafts over without the parser; the service still refuses what
    could not be stored exactly."""
    report = post_entries(db, [draft], actor="t", collect_results=True)
    problem = report.results[0].problems[0]
    assert (problem.code, problem.field) == (code, field)
    assert rows(db, journal_entries) == 0


@pytest.mark.parametrize(
    "change, field",
    [
        ({"description": "late\x00line"}, "description"),
        ({"description": "x" * 1001}, "description"),
        ({"source_id": "batch\ud800"}, "source.id"),
        ({"metadata": (("note", "a\x00b"),)}, "metadata.note"),
        ({"metadata": (("note", 7),)}, "metadata.note"),
    ],
)
def test_drafts_built_by_code_cannot_store_unstorable_text(db, change, field):
    """Drafts from code (posting rules, rating) skip the parser: the posting service refuses
    what PostgreSQL or UTF-8 cannot store, naming the field, and writes nothing."""
    lines = (PostingDraft("OPFI", "Assets:Bank", 100, "EUR"), PostingDraft("OPFI", "Income:Usage", -100, "EUR"))
    draft = EntryDraft("coded-1", dt.date(2026, 10, 5), lines, source_type="usage")._replace(**change)
    report = post_entries(db, [draft], actor="t", collect_results=True)
    assert report.rejected == 1
    assert any(p.field == field for p in report.results[0].problems), report.results[0].problems
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(journal_entries)).scalar_one() == 0


def test_dimensions_built_by_code_are_checked_too(db):
    lines = (PostingDraft("OPFI", "Assets:Bank", 100, "EUR", (("customer", "C\x00-17"),)),
             PostingDraft("OPFI", "Income:Usage", -100, "EUR"))
    report = post_entries(db, [EntryDraft("coded-2", dt.date(2026, 10, 5), lines)], actor="t", collect_results=True)
    assert report.results[0].problems[0].field == "postings[0].dimensions.customer"
