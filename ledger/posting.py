"""Posting service: validate batches of entries and write them in one transaction each.

Every submitted entry ends as exactly one of: accepted (written), duplicate (its id was
posted before with the same payload; the original is returned and nothing is written) or
rejected (with problems naming the field). Nothing is ever posted twice: the id is the
idempotency key and is bound to the payload hash (invariant 6).

Modes:

* all-or-nothing (default): one transaction for the whole input. If any entry is
  rejected, nothing is written, and the valid entries are reported as not posted.
* partial: one transaction per batch of BATCH_ENTRIES_MAX entries; valid entries are
  written, rejected ones are reported. Re-submitting the same input after fixing the
  rejections posts only what is missing (the rest are duplicates), so a crash part-way
  loses nothing either.

Speed: entries are validated in memory against the chart and the balances read once per
batch, and written with one bulk statement per table (executemany on SQLite, COPY on
PostgreSQL). See benchmarks/post_entries.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from typing import Callable, Iterable, Iterator

from sqlalchemy import Connection, and_, bindparam, func, select, tuple_, update

from config import limits
from ledger import audit
from ledger.database import BulkWriter, Database
from ledger.hashing import GENESIS, chain_hash, pairs_json, payload_hash, recorded_at_text
from ledger.money import INT64_MAX
from ledger.records import (
    ACCEPTED,
    DUPLICATE,
    E_CONFLICT,
    E_NOT_POSTED,
    REJECTED,
    EntryDraft,
    Outcome,
    Problem,
    Refused,
)
from ledger.rules import AccountInfo, BalanceTimeline, check_entry, constraint_problem
from ledger.schema import (
    accounts,
    balances,
    daily_balances,
    closed_periods,
    companies,
    journal_entries,
    postings,
)

ENTRY_COLUMNS = (
    "id",
    "external_id",
    "effective_date",
    "recorded_at",
    "description",
    "source_type",
    "source_id",
    "metadata_json",
    "reverses_id",
    "payload_hash",
    "chain_hash",
)
POSTING_COLUMNS = (
    "entry_id",
    "line_no",
    "account_id",
    "amount_minor",
    "currency",
    "dimensions",
    "effective_date",
)

Item = EntryDraft | Refused


@dataclasses.dataclass
class PostingReport:
    """Counts add up to the input: accepted + duplicates + rejected + not_posted."""

    all_or_nothing: bool
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    not_posted: int = 0
    rejections: list[Outcome] = dataclasses.field(default_factory=list)
    rejections_omitted: int = 0
    results: list[Outcome] | None = None
    first_entry_seq: int | None = None
    last_entry_seq: int | None = None

    @property
    def total(self) -> int:
        return self.accepted + self.duplicates + self.rejected + self.not_posted

    @property
    def ok(self) -> bool:
        return self.rejected == 0

    def record(self, outcome: Outcome) -> None:
        if outcome.status == ACCEPTED:
            self.accepted += 1
            if self.first_entry_seq is None:
                self.first_entry_seq = outcome.entry_seq
            self.last_entry_seq = outcome.entry_seq
        elif outcome.status == DUPLICATE:
            self.duplicates += 1
        else:
            self.rejected += 1
            if len(self.rejections) < limits.REJECTIONS_REPORTED_MAX:
                self.rejections.append(outcome)
            else:
                self.rejections_omitted += 1
        if self.results is not None:
            self.results.append(outcome)

    def roll_back(self) -> None:
        """The all-or-nothing transaction was rolled back: accepted entries were not posted."""
        self.not_posted, self.accepted = self.accepted, 0
        self.first_entry_seq = self.last_entry_seq = None
        if self.results is not None:
            reason = (
                Problem(
                    E_NOT_POSTED,
                    None,
                    f"valid, but not posted: {self.rejected} entr"
                    f"{'y was' if self.rejected == 1 else 'ies were'} rejected and the "
                    "batch is all-or-nothing",
                ),
            )
            self.results = [
                o._replace(status=REJECTED, entry_seq=None, problems=reason)
                if o.status == ACCEPTED
                else o
                for o in self.results
            ]


class _Rollback(Exception):
    """Raised inside the write transaction to undo an all-or-nothing batch."""


def post_entries(
    db: Database,
    items: Iterable[Item],
    *,
    actor: str,
    all_or_nothing: bool = True,
    collect_results: bool = False,
    progress: Callable[[int], None] | None = None,
    request_id: str | None = None,
    batch_entries: int = limits.BATCH_ENTRIES_MAX,
) -> PostingReport:
    """Post entries (drafts, or inputs already refused by the parser, which count as
    rejected). ``progress`` is called with the number of entries handled after each batch.
    ``collect_results`` keeps one outcome per entry in input order (bounded inputs only)."""
    if not 1 <= batch_entries <= limits.BATCH_ENTRIES_MAX:
        raise ValueError(f"batch_entries must be 1..{limits.BATCH_ENTRIES_MAX}")
    report = PostingReport(all_or_nothing, results=[] if collect_results else None)
    batches = _batched(items, batch_entries)
    if all_or_nothing:
        try:
            with db.write() as conn:
                writer = JournalWriter(conn)
                for batch in batches:
                    writer.post_batch(batch, report)
                    if progress:
                        progress(len(batch))
                if report.rejected:
                    raise _Rollback
                audit_post(conn, actor, report, request_id)
        except _Rollback:
            report.roll_back()
    else:
        for batch in batches:
            with db.write() as conn:
                before = report.accepted
                JournalWriter(conn).post_batch(batch, report)
                if report.accepted > before:
                    audit_post(conn, actor, report, request_id, since=before)
            if progress:
                progress(len(batch))
    return report


def audit_post(
    conn: Connection, actor: str, report: PostingReport, request_id: str | None, since: int = 0
) -> None:
    audit.record(
        conn,
        actor=actor,
        action="entries.post",
        target=f"journal {report.first_entry_seq}..{report.last_entry_seq}",
        details={
            "accepted": report.accepted - since,
            "duplicates": report.duplicates,
            "rejected": report.rejected,
            "last_entry_seq": report.last_entry_seq,
        },
        request_id=request_id,
    )


def _batched(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


class JournalWriter:
    """Appends to the journal inside one write transaction (the write lock is held)."""

    def __init__(self, conn: Connection, recorded_at: dt.datetime | None = None) -> None:
        self.conn = conn
        self.recorded_at = recorded_at or dt.datetime.now(dt.timezone.utc)
        self.recorded_text = recorded_at_text(self.recorded_at)
        head = conn.execute(
            select(journal_entries.c.id, journal_entries.c.chain_hash)
            .order_by(journal_entries.c.id.desc())
            .limit(1)
        ).first()
        self.last_seq, self.last_hash = (head.id, head.chain_hash) if head else (0, GENESIS)
        self.accounts: dict[tuple[str, str], AccountInfo] = {}
        self.companies: dict[str, int] = {}
        self.closed_through: dict[int, dt.date] = {}
        self._entries = BulkWriter(conn, journal_entries, ENTRY_COLUMNS)
        self._postings = BulkWriter(conn, postings, POSTING_COLUMNS)
        self._daily = BulkWriter(
            conn, daily_balances, ("account_id", "currency", "balance_date", "balance_minor")
        )
        self._balances = BulkWriter(conn, balances, ("account_id", "currency", "balance_minor"))

    # -- reading the state a batch is validated against -------------------------------------

    def _load_chart(self, keys: set[tuple[str, str]]) -> None:
        """Cache the accounts named by ``keys`` (and their companies and closed periods)."""
        codes = {company for company, _ in keys} - set(self.companies)
        for chunk in _chunks(sorted(codes)):
            for row in self.conn.execute(
                select(companies.c.code, companies.c.id).where(companies.c.code.in_(chunk))
            ):
                self.companies[row.code] = row.id
        wanted = sorted(key for key in keys if key not in self.accounts and key[0] in self.companies)
        for chunk in _chunks(wanted):
            query = (
                select(
                    accounts.c.id,
                    accounts.c.company_id,
                    companies.c.code,
                    accounts.c.name,
                    accounts.c.type,
                    accounts.c.currencies,
                    accounts.c.balance_constraint,
                    accounts.c.open_date,
                    accounts.c.close_date,
                )
                .join(companies, companies.c.id == accounts.c.company_id)
                .where(tuple_(companies.c.code, accounts.c.name).in_(chunk))
            )
            for row in self.conn.execute(query):
                self.accounts[(row.code, row.name)] = AccountInfo(
                    row.id,
                    row.company_id,
                    row.code,
                    row.name,
                    row.type,
                    frozenset(row.currencies),
                    row.balance_constraint,
                    row.open_date,
                    row.close_date,
                )
        company_ids = sorted({self.companies[c] for c in codes if c in self.companies})
        for chunk in _chunks(company_ids):
            query = (
                select(closed_periods.c.company_id, func.max(closed_periods.c.end_date))
                .where(closed_periods.c.company_id.in_(chunk))
                .group_by(closed_periods.c.company_id)
            )
            for company_id, end_date in self.conn.execute(query):
                self.closed_through[company_id] = end_date

    def _existing(self, external_ids: list[str]) -> dict[str, tuple[int, str]]:
        found: dict[str, tuple[int, str]] = {}
        table = journal_entries.c
        for chunk in _chunks(sorted(set(external_ids))):
            query = select(table.external_id, table.id, table.payload_hash).where(
                table.external_id.in_(chunk)
            )
            for row in self.conn.execute(query):
                found[row.external_id] = (row.id, row.payload_hash)
        return found

    def _load_timelines(self, first_days: dict[tuple[int, str], dt.date]) -> dict:
        """Balance timelines of (account id, currency) pairs from their first affected day."""
        timelines: dict[tuple[int, str], BalanceTimeline] = {}
        ab = daily_balances.c
        for (account_id, currency), first_day in first_days.items():
            same = and_(ab.account_id == account_id, ab.currency == currency)
            base = self.conn.execute(
                select(ab.balance_minor)
                .where(same, ab.balance_date < first_day)
                .order_by(ab.balance_date.desc())
                .limit(1)
            ).scalar()
            rows = self.conn.execute(
                select(ab.balance_date, ab.balance_minor)
                .where(same, ab.balance_date >= first_day)
                .order_by(ab.balance_date)
            ).all()
            timelines[(account_id, currency)] = BalanceTimeline(base, [tuple(r) for r in rows])
        return timelines

    # -- validating and writing one batch ---------------------------------------------------

    def post_batch(self, batch: list[Item], report: PostingReport) -> None:
        drafts = [item for item in batch if type(item) is EntryDraft]
        self._load_chart({(p.company, p.account) for d in drafts for p in d.postings})
        existing = self._existing([d.external_id for d in drafts])
        # Exact, entry-by-entry balance checks for constrained accounts; everything else is
        # summed per day and checked once (the 64-bit range) when the batch is complete.
        exact = self._constrained_first_days(drafts)
        plan = self._plan(batch, existing, exact)
        overflowing = self._finish_balances(plan)
        if overflowing:
            # Rare: some sum would leave 64 bits. Re-judge the batch with exact checks on
            # those accounts too, so that exactly the entries that cross the limit fail.
            for key, day in overflowing.items():
                exact[key] = min(day, exact.get(key, day))
            plan = self._plan(batch, existing, exact)
            self._finish_balances(plan)
        self._write(plan)
        for outcome in plan.outcomes:
            report.record(outcome)

    def _constrained_first_days(self, drafts: list[EntryDraft]) -> dict[tuple[int, str], dt.date]:
        first: dict[tuple[int, str], dt.date] = {}
        accounts_by_key = self.accounts
        for draft in drafts:
            for posting in draft.postings:
                account = accounts_by_key.get((posting.company, posting.account))
                if account is not None and account.constraint:
                    key = (account.id, posting.currency)
                    if key not in first or draft.effective_date < first[key]:
                        first[key] = draft.effective_date
        return first

    def _plan(self, batch: list[Item], existing: dict, exact: dict) -> "_Plan":
        plan = _Plan(self.last_seq, self.last_hash, self._load_timelines(exact))
        seen: dict[str, tuple[int, str]] = {}
        accounts_by_key = self.accounts
        recorded_text = self.recorded_text
        for item in batch:
            if type(item) is not EntryDraft:
                plan.outcomes.append(Outcome(item.ref, item.external_id, REJECTED, None, item.problems))
                continue
            draft = item
            problems = check_entry(draft, accounts_by_key, self.companies, self.closed_through)
            if problems:
                plan.outcomes.append(
                    Outcome(draft.ref, draft.external_id, REJECTED, None, tuple(problems))
                )
                continue
            resolved = [
                (accounts_by_key[(p.company, p.account)], p.amount_minor, p.currency, pairs_json(p.dimensions))
                for p in draft.postings
            ]
            metadata_json = pairs_json(draft.metadata)
            content_hash = payload_hash(
                draft.external_id,
                draft.effective_date,
                draft.description,
                draft.source_type,
                draft.source_id,
                metadata_json,
                draft.reverses_seq,
                [(a.id, amount, currency, dims) for a, amount, currency, dims in resolved],
            )
            prior = seen.get(draft.external_id) or existing.get(draft.external_id)
            if prior is not None:
                prior_seq, prior_hash = prior
                if prior_hash == content_hash:
                    plan.outcomes.append(Outcome(draft.ref, draft.external_id, DUPLICATE, prior_seq))
                else:
                    plan.outcomes.append(
                        Outcome(
                            draft.ref,
                            draft.external_id,
                            REJECTED,
                            None,
                            (
                                Problem(
                                    E_CONFLICT,
                                    "id",
                                    f"entry {draft.external_id!r} was already posted (journal "
                                    f"#{prior_seq}) with a different payload",
                                ),
                            ),
                        )
                    )
                continue
            day = draft.effective_date
            problem = None
            if plan.timelines:
                problem = _check_exact(plan.timelines, resolved, day)
            if problem is not None:
                plan.outcomes.append(Outcome(draft.ref, draft.external_id, REJECTED, None, (problem,)))
                continue
            # Accepted: give it the next journal position and chain link.
            seq = plan.last_seq + 1
            link = chain_hash(plan.last_hash, seq, recorded_text, content_hash)
            plan.last_seq, plan.last_hash = seq, link
            seen[draft.external_id] = (seq, content_hash)
            plan.entry_rows.append(
                (
                    seq,
                    draft.external_id,
                    day,
                    self.recorded_at,
                    draft.description,
                    draft.source_type,
                    draft.source_id,
                    metadata_json,
                    draft.reverses_seq,
                    content_hash,
                    link,
                )
            )
            deltas = plan.deltas
            timelines = plan.timelines
            for line_no, (account, amount, currency, dims) in enumerate(resolved, 1):
                plan.posting_rows.append((seq, line_no, account.id, amount, currency, dims, day))
                key = (account.id, currency)
                timeline = timelines.get(key)
                if timeline is not None:
                    timeline.apply(day, amount)
                else:
                    day_key = (account.id, currency, day)
                    deltas[day_key] = deltas.get(day_key, 0) + amount
            plan.outcomes.append(Outcome(draft.ref, draft.external_id, ACCEPTED, seq))
        return plan

    def _finish_balances(self, plan: "_Plan") -> dict[tuple[int, str], dt.date]:
        """Apply the summed deltas to timelines; return pairs that would overflow 64 bits."""
        first_days: dict[tuple[int, str], dt.date] = {}
        for account_id, currency, day in plan.deltas:
            key = (account_id, currency)
            if key not in first_days or day < first_days[key]:
                first_days[key] = day
        loaded = self._load_timelines(first_days)
        for (account_id, currency, day), delta in sorted(plan.deltas.items()):
            loaded[(account_id, currency)].apply(day, delta)
        overflowing = {
            key: first_days[key]
            for key, timeline in loaded.items()
            if any(abs(balance) > INT64_MAX for balance in timeline.balances)
        }
        plan.timelines.update(loaded)
        return overflowing

    def _write(self, plan: "_Plan") -> None:
        self._entries.write(plan.entry_rows)
        self._postings.write(plan.posting_rows)
        new_days: list[tuple] = []
        changed_days: list[dict] = []
        new_pairs: list[tuple] = []
        changed_pairs: list[dict] = []
        for (account_id, currency), timeline in plan.timelines.items():
            if not timeline.changed:
                continue
            for day, balance in timeline.rows():
                if day not in timeline.changed:
                    continue
                if day in timeline.stored_days:
                    changed_days.append({"a": account_id, "c": currency, "d": day, "b": balance})
                else:
                    new_days.append((account_id, currency, day, balance))
            current = timeline.balances[-1]  # the latest day: the balance over all postings
            if timeline.known:
                changed_pairs.append({"a": account_id, "c": currency, "b": current})
            else:
                new_pairs.append((account_id, currency, current))
        _update_balances(self.conn, daily_balances, changed_days, day_column=True)
        _update_balances(self.conn, balances, changed_pairs, day_column=False)
        self._daily.write(new_days)
        self._balances.write(new_pairs)
        self.last_seq, self.last_hash = plan.last_seq, plan.last_hash


def _update_balances(conn: Connection, table, rows: list[dict], *, day_column: bool) -> None:
    if not rows:
        return
    match = [table.c.account_id == bindparam("a"), table.c.currency == bindparam("c")]
    if day_column:
        match.append(table.c.balance_date == bindparam("d"))
    conn.execute(update(table).where(*match).values(balance_minor=bindparam("b")), rows)


def _check_exact(timelines: dict, resolved: list, day: dt.date) -> Problem | None:
    """Check an entry's postings on exactly-tracked accounts against their timelines."""
    per_key: dict[tuple[int, str], tuple[AccountInfo, int]] = {}
    for account, amount, currency, _ in resolved:
        key = (account.id, currency)
        if key in timelines:
            _, total = per_key.get(key, (account, 0))
            per_key[key] = (account, total + amount)
    for (account_id, currency), (account, delta) in per_key.items():
        problem = constraint_problem(account, currency, day, delta, timelines[(account_id, currency)])
        if problem is not None:
            return problem
    return None


@dataclasses.dataclass
class _Plan:
    """What one batch will write, computed before anything is written."""

    last_seq: int
    last_hash: str
    timelines: dict[tuple[int, str], BalanceTimeline]
    outcomes: list[Outcome] = dataclasses.field(default_factory=list)
    entry_rows: list[tuple] = dataclasses.field(default_factory=list)
    posting_rows: list[tuple] = dataclasses.field(default_factory=list)
    deltas: dict[tuple[int, str, dt.date], int] = dataclasses.field(default_factory=dict)


def _chunks(values: list, size: int = limits.SQL_IN_PARAMS_MAX) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
