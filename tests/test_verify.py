"""verify: clean on an honest ledger, and names what was changed behind its back."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from ledger import periods, reversal
from ledger.database import Database
from ledger.hashing import payload_hash
from ledger.schema import protection_ddl
from ledger.verify import CHECKS, verify

from helpers import entry, post


def tamper(db: Database, *statements: str) -> None:
    """Run raw SQL past the immutability triggers, then put them back, as an attacker with
    database access would."""
    with db.engine.begin() as conn:
        if db.is_sqlite:
            names = [row[0] for row in conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))]
            for name in names:
                conn.execute(text(f"DROP TRIGGER {name}"))
            for statement in statements:
                conn.execute(text(statement))
            for ddl in protection_ddl("sqlite"):
                conn.execute(text(ddl))
        else:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            for statement in statements:
                conn.execute(text(statement))


@pytest.fixture
def ledger(db):
    post(
        db,
        entry("first", "2026-10-01"),
        entry("second", "2026-10-02", ("OPFI", "Assets:Bank", "50.00"), ("OPFI", "Income:Usage", "-50.00")),
        entry("third", "2026-10-03"),
    )
    reversal.reverse_entry(db, "first", dt.date(2026, 10, 4), actor="t")
    assert verify(db).ok
    return db


def failed(report) -> dict[str, set]:
    result: dict[str, set] = {}
    for violation in report.violations:
        result.setdefault(violation.check, set()).add(violation.entry_id)
    return result


def test_honest_ledger_verifies(ledger):
    report = verify(ledger)
    assert report.ok and report.entries == 4 and report.postings == 8 and report.head_seq == 4
    assert set(report.counts) == set(CHECKS)


def test_changed_posting_amount_is_named(ledger):
    tamper(ledger, "UPDATE postings SET amount_minor = 5001 WHERE entry_id = 2 AND line_no = 1",
           "UPDATE postings SET amount_minor = -5001 WHERE entry_id = 2 AND line_no = 2")
    report = verify(ledger)
    assert not report.ok
    found = failed(report)
    assert found["hash_chain"] == {"second"}
    assert "balances_replay" in found  # the stored balances no longer match the postings
    assert "entries_balanced" not in found


def test_unbalancing_edit_is_named(ledger):
    tamper(ledger, "UPDATE postings SET amount_minor = 1 WHERE entry_id = 3 AND line_no = 1")
    found = failed(verify(ledger))
    assert found["entries_balanced"] == {"third"}
    assert found["hash_chain"] == {"third"}
    assert found["ledger_balanced"] == {None}


def test_changed_description_is_named(ledger):
    tamper(ledger, "UPDATE journal_entries SET description = 'nothing to see' WHERE id = 2")
    assert failed(verify(ledger)) == {"hash_chain": {"second"}}


def test_rehashed_entry_breaks_the_chain_at_that_entry(ledger):
    """An attacker who also recomputes the payload hash is caught by the chain link."""
    with ledger.read() as conn:
        lines = conn.execute(
            text("SELECT account_id, amount_minor, currency, dimensions FROM postings WHERE entry_id = 2 ORDER BY line_no")
        ).all()
    forged = payload_hash("second", dt.date(2026, 10, 2), "forged", "manual", None, None, None,
                          [tuple(line) for line in lines])
    tamper(ledger, f"UPDATE journal_entries SET description = 'forged', payload_hash = '{forged}' WHERE id = 2")
    report = verify(ledger)
    assert failed(report) == {"hash_chain": {"second"}}
    assert [v.message.split(": ")[0] for v in report.violations] == ["entry #2 chain link broken"]


def test_removed_entry_is_detected(ledger):
    tamper(ledger, "DELETE FROM postings WHERE entry_id = 3", "DELETE FROM journal_entries WHERE id = 3")
    found = failed(verify(ledger))
    assert "first~reversal" in found["hash_chain"]  # the next link no longer follows
    assert "first~reversal" in found["journal_structure"]  # position 4 follows 2
    assert "balances_replay" in found


def test_changed_balance_row_is_detected(ledger):
    with ledger.engine.begin() as conn:
        conn.execute(text("UPDATE balances SET balance_minor = balance_minor + 1 WHERE account_id = 1"))
    report = verify(ledger)
    assert failed(report) == {"balances_replay": {None}}
    assert "current balance" in report.violations[0].message


def test_changed_reversal_is_detected(ledger):
    tamper(ledger, "UPDATE postings SET amount_minor = -1 WHERE entry_id = 4 AND line_no = 1",
           "UPDATE postings SET amount_minor = 1 WHERE entry_id = 4 AND line_no = 2")
    found = failed(verify(ledger))
    assert "first~reversal" in found["reversals"]


def test_posting_into_a_closed_period_is_detected(ledger):
    """A period reopened behind the ledger's back, posted into, and closed again."""
    periods.close_period(ledger, "OPFI", "2026-10", actor="t")
    with ledger.engine.begin() as conn:
        saved = conn.execute(text("SELECT * FROM closed_periods")).mappings().one()
    tamper(ledger, "DELETE FROM closed_periods")
    post(ledger, entry("sneaky", "2026-10-30"))
    with ledger.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO closed_periods (company_id, period, start_date, end_date, closed_at, closed_by, last_entry_id) "
                "VALUES (:company_id, :period, :start_date, :end_date, :closed_at, :closed_by, :last_entry_id)"
            ),
            dict(saved),
        )
    assert failed(verify(ledger)) == {"closed_periods": {"sneaky"}}


def test_missing_trigger_is_detected(ledger):
    with ledger.engine.begin() as conn:
        if ledger.is_sqlite:
            conn.execute(text("DROP TRIGGER postings_no_update"))
        else:
            conn.execute(text("ALTER TABLE postings DISABLE TRIGGER postings_no_update"))
    report = verify(ledger)
    assert failed(report) == {"immutability": {None}}
    assert "postings" in report.violations[0].message


def test_dangling_postings_are_detected(ledger):
    """Postings have no foreign keys (docs/decisions.md); verify stands in for them."""
    tamper(
        ledger,
        "INSERT INTO postings (entry_id, line_no, account_id, amount_minor, currency, effective_date) "
        "VALUES (99, 1, 1, 5, 'EUR', '2026-10-05')",
        "INSERT INTO postings (entry_id, line_no, account_id, amount_minor, currency, effective_date) "
        "VALUES (2, 3, 9999, 0, 'EUR', '2026-10-02')",
    )
    report = verify(ledger)
    messages = [v.message for v in report.violations]
    assert "posting 99/1 belongs to no entry" in messages
    assert any("account id 9999, which does not exist" in m for m in messages)
    assert failed(report)["hash_chain"] == {"second"}
