"""``ecoledger verify``: recompute every invariant from the stored rows and list violations.

It trusts nothing derived: payload hashes are recomputed from entries and postings, chain
links from the previous link, balances from a replay of every posting. One streaming pass
over the journal (in journal order) does the per-entry checks and the replay; a few SQL
queries check links between rows. Cost: linear in the journal, constant memory per entry.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable
from typing import NamedTuple

from sqlalchemy import Connection, func, select, text

from config import limits
from ledger.database import Database
from ledger.hashing import GENESIS, chain_hash, payload_hash, recorded_at_text
from ledger.money import format_amount
from ledger.queries import journal_stream
from ledger.schema import (
    accounts,
    balances,
    closed_periods,
    companies,
    daily_balances,
    expected_triggers,
    journal_entries,
    postings,
)

CHECKS = {
    "entries_balanced": "every entry sums to zero per company and currency",
    "ledger_balanced": "debits equal credits per currency, over the ledger and per company",
    "balances_replay": "every stored balance equals the replay of its postings",
    "hash_chain": "payload hashes and chain links match the stored rows",
    "journal_structure": "positions contiguous, every entry has postings, dates consistent",
    "reversals": "a reversal negates exactly the entry it reverses, at most once",
    "closed_periods": "no posting entered a period after it was closed",
    "accounts": "postings only on open accounts, in allowed currencies",
    "immutability": "the triggers refusing UPDATE and DELETE are in place",
    "usage": "usage lines, their entries, period counters and import counts agree",
    "billing": "invoices add up to their lines and their usage, are posted, and are numbered without gaps",
    "clearing": "statements add up to their lines and their postings; payments are posted",
}
# Checks of the capabilities' own tables: (check name, module with check(conn, add)). They
# are imported when verify runs, so that the ledger core does not import them.
CAPABILITY_CHECKS = (("usage", "usage.verify"), ("billing", "billing.verify"), ("clearing", "clearing.verify"))


class Violation(NamedTuple):
    check: str
    entry_id: str | None  # the external id of the entry concerned, if any
    message: str


class VerifyReport(NamedTuple):
    entries: int
    postings: int
    head_seq: int
    head_hash: str
    counts: dict[str, int]  # violations per check (exact)
    violations: list[Violation]  # listed, at most VIOLATIONS_REPORTED_MAX per check

    @property
    def ok(self) -> bool:
        return not any(self.counts.values())


class _Collector:
    def __init__(self) -> None:
        self.counts = {name: 0 for name in CHECKS}
        self.listed: list[Violation] = []

    def add(self, check: str, entry_id: str | None, message: str) -> None:
        self.counts[check] += 1
        if self.counts[check] <= limits.VIOLATIONS_REPORTED_MAX:
            self.listed.append(Violation(check, entry_id, message))


class _Account(NamedTuple):
    company_id: int
    company: str
    name: str
    currencies: frozenset[str]
    open_date: dt.date
    close_date: dt.date | None


def verify(db: Database, progress: Callable[[int], None] | None = None) -> VerifyReport:
    """Check every invariant. ``progress`` is called with entries checked so far."""
    found = _Collector()
    with db.read() as conn:
        chart = {
            row.id: _Account(
                row.company_id, row.code, row.name, frozenset(row.currencies), row.open_date, row.close_date
            )
            for row in conn.execute(
                select(accounts, companies.c.code).join(companies, companies.c.id == accounts.c.company_id)
            )
        }
        closes = _closed_periods(conn)
        scan = _scan_journal(conn, chart, closes, found, progress)
        _check_totals(scan.totals, chart, found)
        _check_balances(conn, scan.replay, chart, found)
        _check_reversals(conn, found)
        _check_triggers(conn, db.dialect_name, found)
        for _name, module in CAPABILITY_CHECKS:
            importlib.import_module(module).check(conn, found.add)
    return VerifyReport(scan.entries, scan.postings, scan.head_seq, scan.head_hash, found.counts, found.listed)


def _closed_periods(conn: Connection) -> dict[int, dict[str, tuple[dt.date, int]]]:
    """Per company: period -> (end date, last journal position when it closed)."""
    result: dict[int, dict[str, tuple[dt.date, int]]] = {}
    for row in conn.execute(select(closed_periods)):
        result.setdefault(row.company_id, {})[row.period] = (row.end_date, row.last_entry_id)
    return result


def _scan_journal(conn, chart, closes, found: _Collector, progress):
    def orphan(line: tuple) -> None:
        found.add("journal_structure", None, f"posting {line[0]}/{line[1]} belongs to no entry")

    scan = _JournalScan(chart, closes, found)
    for entry, lines in journal_stream(conn, on_orphan=orphan):
        scan.entry(entry, lines)
        if progress and scan.entries % limits.STREAM_ROWS_PER_FETCH == 0:
            progress(scan.entries)
    if progress:
        progress(scan.entries)
    return scan


class _JournalScan:
    """Per-entry checks, the balance replay and the debit/credit totals, entry by entry."""

    def __init__(self, chart: dict[int, _Account], closes, found: _Collector) -> None:
        self.chart = chart
        self.found = found
        self.company_names = {a.company_id: a.company for a in chart.values()}
        # Per company: the last closed day, and period -> journal position at closing.
        self.closed_through = {cid: max(end for end, _ in periods.values()) for cid, periods in closes.items()}
        self.closes = closes
        self.replay: dict[tuple[int, str, dt.date], int] = {}  # (account, currency, day) -> net
        self.totals: dict[tuple[int, str], list[int]] = {}  # (company, currency) -> [debits, credits]
        self.previous_link = GENESIS
        self.expected_seq = 1
        self.entries = self.postings = 0
        self.head_seq, self.head_hash = 0, GENESIS

    def entry(self, row: tuple, lines: list[tuple]) -> None:
        (seq, name, effective_date, recorded_at, description, source_type, source_id,
         metadata_json, reverses_id, stored_payload, stored_link) = row
        found = self.found
        self.entries += 1
        self.postings += len(lines)
        if seq != self.expected_seq:
            found.add("journal_structure", name, f"journal position {seq} follows {self.expected_seq - 1}")
        self.expected_seq = seq + 1
        if not lines:
            found.add("journal_structure", name, "entry has no postings")
        recomputed = payload_hash(
            name, effective_date, description, source_type, source_id, metadata_json, reverses_id,
            [(line[2], line[3], line[4], line[5]) for line in lines],
        )
        if recomputed != stored_payload:
            found.add("hash_chain", name, f"entry #{seq} content does not match its payload hash: "
                      "an entry or posting row was changed")
        link = chain_hash(self.previous_link, seq, recorded_at_text(recorded_at), stored_payload)
        if link != stored_link:
            found.add("hash_chain", name, f"entry #{seq} chain link broken: the entry, its hash "
                      "or an earlier entry was changed, inserted or removed")
        self.previous_link = stored_link
        self.head_seq, self.head_hash = seq, stored_link
        sums: dict[tuple[int, str], int] = {}
        chart, replay, totals = self.chart, self.replay, self.totals
        for _, line_no, account_id, amount, currency, _, day in lines:
            account = chart.get(account_id)
            if account is None:
                found.add("accounts", name, f"line {line_no} names account id {account_id}, which does not exist")
                continue
            key = (account.company_id, currency)
            sums[key] = sums.get(key, 0) + amount
            side = totals.get(key)
            if side is None:
                side = totals[key] = [0, 0]
            if amount > 0:
                side[0] += amount
            else:
                side[1] -= amount
            replay_key = (account_id, currency, day)
            replay[replay_key] = replay.get(replay_key, 0) + amount
            if day != effective_date:
                found.add("journal_structure", name, f"line {line_no} is dated {day}, the entry {effective_date}")
            if currency not in account.currencies:
                found.add("accounts", name, f"line {line_no}: {account.company} {account.name} does not accept {currency}")
            if day < account.open_date or (account.close_date and day > account.close_date):
                found.add("accounts", name, f"line {line_no}: {account.company} {account.name} is not open on {day}")
            through = self.closed_through.get(account.company_id)
            if through is not None and day <= through:
                close = self.closes[account.company_id].get(f"{day.year:04d}-{day.month:02d}")
                if close is not None and seq > close[1]:
                    found.add("closed_periods", name, f"line {line_no} posts into {account.company} "
                              f"{day:%Y-%m}, closed before this entry was recorded")
        for (company_id, currency), total in sums.items():
            if total:
                found.add("entries_balanced", name, f"{self.company_names[company_id]} {currency} postings sum to "
                          f"{format_amount(total, currency)}")


def _check_totals(totals, chart, found: _Collector) -> None:
    names = {a.company_id: a.company for a in chart.values()}
    by_currency: dict[str, list[int]] = {}
    for (company_id, currency), (debits, credits) in sorted(totals.items()):
        if debits != credits:
            found.add("ledger_balanced", None, f"{names[company_id]} {currency}: debits "
                      f"{format_amount(debits, currency)} != credits {format_amount(credits, currency)}")
        side = by_currency.setdefault(currency, [0, 0])
        side[0] += debits
        side[1] += credits
    for currency, (debits, credits) in sorted(by_currency.items()):
        if debits != credits:
            found.add("ledger_balanced", None, f"ledger {currency}: debits "
                      f"{format_amount(debits, currency)} != credits {format_amount(credits, currency)}")


def _check_balances(conn, replay, chart, found: _Collector) -> None:
    """Cumulative replay per (account, currency) against daily_balances and balances."""
    expected_daily: dict[tuple[int, str, dt.date], int] = {}
    expected_current: dict[tuple[int, str], int] = {}
    running: dict[tuple[int, str], int] = {}
    for account_id, currency, day in sorted(replay):
        pair = (account_id, currency)
        running[pair] = running.get(pair, 0) + replay[(account_id, currency, day)]
        expected_daily[(account_id, currency, day)] = running[pair]
        expected_current[pair] = running[pair]

    def label(account_id: int, currency: str) -> str:
        account = chart.get(account_id)
        return f"{account.company} {account.name} {currency}" if account else f"account id {account_id} {currency}"

    d = daily_balances.c
    stored_daily = {
        (r.account_id, r.currency, r.balance_date): r.balance_minor
        for r in conn.execute(select(d.account_id, d.currency, d.balance_date, d.balance_minor))
    }
    for key in sorted(set(stored_daily) | set(expected_daily)):
        want, have = expected_daily.get(key), stored_daily.get(key)
        if want != have:
            account_id, currency, day = key
            found.add("balances_replay", None, f"{label(account_id, currency)} at the end of {day}: "
                      f"stored {_fmt(have, currency)}, replay {_fmt(want, currency)}")
    b = balances.c
    stored_current = {
        (r.account_id, r.currency): r.balance_minor
        for r in conn.execute(select(b.account_id, b.currency, b.balance_minor))
    }
    for key in sorted(set(stored_current) | set(expected_current)):
        want, have = expected_current.get(key), stored_current.get(key)
        if want != have:
            found.add("balances_replay", None, f"{label(*key)} current balance: stored "
                      f"{_fmt(have, key[1])}, replay {_fmt(want, key[1])}")


def _fmt(amount: int | None, currency: str) -> str:
    return "none" if amount is None else f"{format_amount(amount, currency)} {currency}"


def _check_reversals(conn, found: _Collector) -> None:
    r = journal_entries.alias("r")
    o = journal_entries.alias("o")
    rp = postings.alias("rp")
    op = postings.alias("op")
    pairs = conn.execute(
        select(r.c.id, r.c.external_id, r.c.effective_date, o.c.id.label("oid"), o.c.effective_date.label("odate"))
        .select_from(r)
        .outerjoin(o, o.c.id == r.c.reverses_id)
        .where(r.c.reverses_id.is_not(None))
    ).all()
    for pair in pairs:
        if pair.oid is None:
            found.add("reversals", pair.external_id, "reverses an entry that does not exist")
            continue
        if pair.effective_date < pair.odate:
            found.add("reversals", pair.external_id, f"dated {pair.effective_date}, before the entry it reverses")
    mismatched = conn.execute(
        select(r.c.external_id)
        .select_from(r)
        .join(rp, rp.c.entry_id == r.c.id)
        .outerjoin(op, (op.c.entry_id == r.c.reverses_id) & (op.c.line_no == rp.c.line_no))
        .where(
            r.c.reverses_id.is_not(None),
            (op.c.entry_id.is_(None))
            | (op.c.account_id != rp.c.account_id)
            | (op.c.currency != rp.c.currency)
            | (op.c.amount_minor != -rp.c.amount_minor),
        )
        .distinct()
    ).scalars()
    for external_id in mismatched:
        found.add("reversals", external_id, "postings do not negate the reversed entry's postings")
    counts = conn.execute(
        select(r.c.external_id)
        .select_from(r)
        .where(
            r.c.reverses_id.is_not(None),
            select(func.count()).where(postings.c.entry_id == r.c.id).scalar_subquery()
            != select(func.count()).where(postings.c.entry_id == r.c.reverses_id).scalar_subquery(),
        )
    ).scalars()
    for external_id in counts:
        found.add("reversals", external_id, "has a different number of postings than the reversed entry")
    twice = conn.execute(
        select(journal_entries.c.reverses_id, func.count())
        .where(journal_entries.c.reverses_id.is_not(None))
        .group_by(journal_entries.c.reverses_id)
        .having(func.count() > 1)
    ).all()
    for reverses_id, count in twice:
        found.add("reversals", None, f"entry #{reverses_id} is reversed {count} times")


def _check_triggers(conn, dialect: str, found: _Collector) -> None:
    if dialect == "sqlite":
        rows = conn.execute(text("SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger'"))
    else:
        rows = conn.execute(
            text(
                "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE NOT t.tgisinternal AND t.tgenabled <> 'D' "
                "AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())"
            )
        )
    present = {(table, name) for table, name in rows}
    for table, name in sorted(expected_triggers(dialect) - present):
        found.add("immutability", None, f"trigger {name} on {table} is missing or disabled")
