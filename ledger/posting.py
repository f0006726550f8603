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
import difflib
import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import NoReturn

from sqlalchemy import Connection, and_, bindparam, func, select, tuple_, update

from config import limits
from ledger import audit
from ledger.database import BulkWriter, Database, rows_matching
from ledger.hashing import GENESIS, chain_hash, pairs_json, payload_hash, recorded_at_text
from ledger.money import INT64_MAX
from ledger.queries import journal_head
from ledger.records import (
    ACCEPTED,
    DUPLICATE,
    E_CONFLICT,
    E_NOT_POSTED,
    REJECTED,
    EntryDraft,
    LedgerError,
    Outcome,
    Problem,
    Refused,
)
from ledger.rules import (
    EXTERNAL_ID_CHARS_MAX,
    AccountInfo,
    BalanceTimeline,
    check_entry,
    constraint_problem,
    posting_window,
    texts_storable,
)
from ledger.schema import (
    accounts,
    balances,
    closed_periods,
    companies,
    daily_balances,
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
        """A duplicate or rejected entry (accepted ones are counted by record_batch)."""
        if outcome.status == DUPLICATE:
            self.duplicates += 1
        else:
            self.rejected += 1
            if len(self.rejections) < limits.REJECTIONS_REPORTED_MAX:
                self.rejections.append(outcome)
            else:
                self.rejections_omitted += 1
        if self.results is not None:
            self.results.append(outcome)

    def record_batch(
        self, outcomes: list[Outcome], accepted: int, first_seq: int | None, last_seq: int
    ) -> None:
        """A batch's outcomes in input order (accepted ones only when collecting results)
        and its count of accepted entries."""
        for outcome in outcomes:
            if outcome.status == ACCEPTED:
                if self.results is not None:
                    self.results.append(outcome)
            else:
                self.record(outcome)
        if accepted:
            self.accepted += accepted
            if self.first_entry_seq is None:
                self.first_entry_seq = first_seq
            self.last_entry_seq = last_seq

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
    rejected). ``progress`` is called with the number of entries handled so far, after each
    batch.
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
                        progress(report.total)
                if report.rejected:
                    raise _Rollback
                audit_post(conn, actor, report.accepted, writer.first_seq, writer.last_seq, request_id)
        except _Rollback:
            report.roll_back()
    else:
        for batch in batches:
            with db.write() as conn:
                writer = JournalWriter(conn)
                before = report.accepted
                writer.post_batch(batch, report)
                if report.accepted > before:
                    audit_post(conn, actor, report.accepted - before, writer.first_seq, writer.last_seq, request_id)
            if progress:
                progress(report.total)
    return report


def post_single(writer: JournalWriter, draft: EntryDraft, what: str) -> int:
    """Post one entry a use case builds (an invoice, a payment, a cancellation, a clearing
    item) inside the caller's transaction; returns its journal position, or raises
    LedgerError with the problems named under ``what``. The caller audits."""
    report = PostingReport(all_or_nothing=True, results=[])
    writer.post_batch([draft], report)
    outcome = report.results[0]
    if outcome.status != ACCEPTED:
        raise LedgerError(*(p.under(what) for p in outcome.problems or
                            (Problem(E_CONFLICT, "entry", f"entry {draft.external_id} exists already"),)))
    return outcome.entry_seq


def audit_post(
    conn: Connection,
    actor: str,
    accepted: int,
    first_seq: int | None,
    last_seq: int,
    request_id: str | None = None,
) -> None:
    """One audit row per transaction that wrote entries: how many, at which positions."""
    audit.record(
        conn,
        actor=actor,
        action="entries.post",
        target=f"journal {first_seq}..{last_seq}",
        details={"accepted": accepted, "first_entry_seq": first_seq, "last_entry_seq": last_seq},
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
        self.recorded_at = recorded_at or dt.datetime.now(dt.UTC)
        self.recorded_text = recorded_at_text(self.recorded_at)
        self.last_seq, head_hash = journal_head(conn)
        self.last_hash = head_hash or GENESIS
        self.first_seq: int | None = None  # first position this writer appended
        self.accounts: dict[tuple[str, str], AccountInfo] = {}
        self.companies: dict[str, int] = {}
        self.closed_through: dict[int, dt.date] = {}
        # (company, account) -> (id, company id, currencies, first day, last day, AccountInfo):
        # everything the hot loop needs about an account in one lookup. The first and last
        # days fold the open and close dates and the company's closed periods together.
        self.postable: dict[tuple[str, str], tuple] = {}
        self._dimensions_json: dict = {}  # memo: dimension sets repeat across entries
        self._metadata_json: dict = {}  # memo: metadata of rule-made entries repeats too
        self._names: dict[str | None, list[str]] = {}  # for suggestions in error messages
        self._entries = BulkWriter(conn, journal_entries, ENTRY_COLUMNS)
        self._postings = BulkWriter(conn, postings, POSTING_COLUMNS)
        self._daily = BulkWriter(
            conn, daily_balances, ("account_id", "currency", "balance_date", "balance_minor")
        )
        self._balances = BulkWriter(conn, balances, ("account_id", "currency", "balance_minor"))
        # Rows are written prepared: a date is converted for the driver once, not per row.
        self._date_param = self._postings.converter("effective_date")
        self._recorded_param = self._entries.converter("recorded_at")(self.recorded_at)

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
        loaded: list[AccountInfo] = []
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
                loaded.append(
                    AccountInfo(
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
        for account in loaded:  # closed periods of every company they belong to are known now
            key = (account.company_code, account.name)
            first, last = posting_window(account, self.closed_through.get(account.company_id))
            self.accounts[key] = account
            self.postable[key] = (account.id, account.company_id, account.currencies, first, last, account)

    def _suggest(self, company: str | None, name: str) -> str | None:
        """The closest existing account name of ``company`` (or company code), for messages.
        Names are read once per company and kept: a file of typos costs one query each."""
        if company not in self._names:
            if company is None:
                query = select(companies.c.code)
            else:
                query = (
                    select(accounts.c.name)
                    .join(companies, companies.c.id == accounts.c.company_id)
                    .where(companies.c.code == company)
                )
            self._names[company] = list(self.conn.execute(query).scalars())
        matches = difflib.get_close_matches(name, self._names[company], n=1, cutoff=0.75)
        return matches[0] if matches else None

    def _existing(self, external_ids: list[str]) -> dict[str, tuple[int, str]]:
        """(journal position, payload hash) of the ids already in the journal."""
        rows = rows_matching(self.conn, "SELECT external_id, id, payload_hash FROM journal_entries WHERE external_id",
                             external_ids, limits.SQL_IN_PARAMS_MAX)
        return {external_id: (seq, content_hash) for external_id, seq, content_hash in rows}

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
        # One pass over the postings: which accounts the batch names, and from which day.
        first_days: dict[tuple[str, str, str], dt.date] = {}
        external_ids = []
        for item in batch:
            if type(item) is EntryDraft:
                if type(item.external_id) is str:  # anything else is refused by the rules
                    external_ids.append(item.external_id)
                day = item.effective_date
                for company, account, _, currency, _ in item.postings:
                    key = (company, account, currency)
                    known = first_days.get(key)
                    if known is None or day < known:
                        first_days[key] = day
        self._load_chart({(company, account) for company, account, _ in first_days})
        existing = self._existing(external_ids)
        # Exact, entry-by-entry balance checks for constrained accounts; everything else is
        # summed per day and checked once (the 64-bit range) when the batch is complete.
        exact: dict[tuple[int, str], dt.date] = {}
        for (company, name, currency), day in first_days.items():
            account = self.accounts.get((company, name))
            if account is not None and account.constraint:
                key = (account.id, currency)
                exact[key] = min(day, exact.get(key, day))
        collect = report.results is not None
        plan = self._plan(batch, existing, exact, collect)
        overflowing = self._finish_balances(plan)
        if overflowing:
            # Rare: some sum would leave 64 bits. Re-judge the batch with exact checks on
            # those accounts too, so that exactly the entries that cross the limit fail.
            for key, day in overflowing.items():
                exact[key] = min(day, exact.get(key, day))
            plan = self._plan(batch, existing, exact, collect)
            self._finish_balances(plan)
        self._write(plan)
        report.record_batch(plan.outcomes, plan.accepted, plan.first_seq, plan.last_seq)

    def _resolve(self, draft: EntryDraft) -> tuple[list, list]:
        """The entry's canonical lines (account id, amount, currency, dimensions JSON) and
        their accounts, or raise _Refused with its problems.

        One pass for the common case: each account's window (its open and close dates and
        its company's closed periods folded together) and the sums per company and currency.
        Anything doubtful goes to rules.check_entry, the reference, which also explains;
        tests/test_posting.py holds both to the same verdicts."""
        day = draft.effective_date
        external_id = draft.external_id
        if (
            type(day) is not dt.date
            or not draft.postings
            or type(external_id) is not str
            or not 0 < len(external_id) <= EXTERNAL_ID_CHARS_MAX
            or not texts_storable(draft)
        ):
            self._refuse(draft)
        postable, memo = self.postable, self._dimensions_json
        lines: list[tuple] = []
        line_accounts: list[AccountInfo] = []
        sums: dict[tuple[int, str], int] = {}
        for company, name, amount, currency, dimensions in draft.postings:
            found = postable.get((company, name))
            if found is None:
                self._refuse(draft)
            account_id, company_id, currencies, first, last, account = found
            if (
                currency not in currencies
                or day < first
                or day > last
                or type(amount) is not int
                or not -INT64_MAX <= amount <= INT64_MAX
            ):
                self._refuse(draft)
            if dimensions:
                dimensions_json = memo.get(dimensions)
                if dimensions_json is None:
                    if len(memo) >= 10_000:  # bounded; dimension sets repeat
                        memo.clear()
                    dimensions_json = memo[dimensions] = pairs_json(dimensions)
            else:
                dimensions_json = None
            lines.append((account_id, amount, currency, dimensions_json))
            line_accounts.append(account)
            key = (company_id, currency)
            sums[key] = sums.get(key, 0) + amount
        if any(sums.values()):
            self._refuse(draft)
        return lines, line_accounts

    def _refuse(self, draft: EntryDraft) -> NoReturn:
        """The careful path: rules.check_entry says what is wrong, with suggestions."""
        problems = check_entry(draft, self.accounts, self.companies, self.closed_through, self._suggest)
        if not problems:
            raise AssertionError(f"entry {draft.external_id!r}: fast path refused what check_entry accepts")
        raise _Refused(problems)

    def _plan(self, batch: list[Item], existing: dict, exact: dict, collect: bool) -> _Plan:
        plan = _Plan(self.last_seq, self.last_hash, self._load_timelines(exact))
        seen: dict[str, tuple[int, str]] = {}
        recorded_text, recorded_param = self.recorded_text, self._recorded_param
        date_param = self._date_param
        outcomes, entry_rows, posting_rows = plan.outcomes, plan.entry_rows, plan.posting_rows
        metadata_memo = self._metadata_json
        deltas, timelines = plan.deltas, plan.timelines
        for item in batch:
            if type(item) is not EntryDraft:
                outcomes.append(Outcome(item.ref, item.external_id, REJECTED, None, item.problems))
                continue
            draft = item
            try:
                lines, line_accounts = self._resolve(draft)
            except _Refused as refused:
                outcomes.append(Outcome(draft.ref, draft.external_id, REJECTED, None, tuple(refused.problems)))
                continue
            external_id, day, _, description, source_type, source_id, metadata, ref, reverses = draft
            metadata_json = metadata_memo.get(metadata) if metadata else None
            if metadata_json is None:
                metadata_json = pairs_json(metadata)
                if metadata and len(metadata_memo) < 10_000:  # bounded; rule-made metadata repeats
                    metadata_memo[metadata] = metadata_json
            content_hash = payload_hash(
                external_id, day, description, source_type, source_id, metadata_json, reverses, lines
            )
            prior = seen.get(external_id) or existing.get(external_id)
            if prior is not None:
                outcomes.append(_repeat(draft, prior, content_hash))
                continue
            if timelines:
                problem = _check_exact(timelines, lines, line_accounts, day)
                if problem is not None:
                    outcomes.append(Outcome(ref, external_id, REJECTED, None, (problem,)))
                    continue
            # Accepted: give it the next journal position and chain link.
            seq = plan.last_seq + 1
            link = chain_hash(plan.last_hash, seq, recorded_text, content_hash)
            plan.last_seq, plan.last_hash = seq, link
            seen[external_id] = (seq, content_hash)
            day_param = date_param(day)
            entry_rows.append(
                (seq, external_id, day_param, recorded_param, description, source_type,
                 source_id, metadata_json, reverses, content_hash, link)
            )
            for line_no, (account_id, amount, currency, dimensions_json) in enumerate(lines, 1):
                posting_rows.append((seq, line_no, account_id, amount, currency, dimensions_json, day_param))
                timeline = timelines.get((account_id, currency)) if timelines else None
                if timeline is not None:
                    timeline.apply(day, amount)
                else:
                    key = (account_id, currency, day)
                    deltas[key] = deltas.get(key, 0) + amount
            plan.accepted += 1
            if plan.first_seq is None:
                plan.first_seq = seq
            if collect:
                outcomes.append(Outcome(ref, external_id, ACCEPTED, seq))
        return plan

    def _finish_balances(self, plan: _Plan) -> dict[tuple[int, str], dt.date]:
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

    def _write(self, plan: _Plan) -> None:
        self._entries.write(plan.entry_rows, prepared=True)
        self._postings.write(plan.posting_rows, prepared=True)
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
        if self.first_seq is None and plan.first_seq is not None:
            self.first_seq = plan.first_seq
        self.last_seq, self.last_hash = plan.last_seq, plan.last_hash


def _update_balances(conn: Connection, table, rows: list[dict], *, day_column: bool) -> None:
    if not rows:
        return
    match = [table.c.account_id == bindparam("a"), table.c.currency == bindparam("c")]
    if day_column:
        match.append(table.c.balance_date == bindparam("d"))
    conn.execute(update(table).where(*match).values(balance_minor=bindparam("b")), rows)


def _check_exact(timelines: dict, lines: list, line_accounts: list, day: dt.date) -> Problem | None:
    """Check an entry's postings on exactly-tracked accounts against their timelines."""
    per_key: dict[tuple[int, str], tuple[AccountInfo, int]] = {}
    for (account_id, amount, currency, _), account in zip(lines, line_accounts):
        key = (account_id, currency)
        if key in timelines:
            _, total = per_key.get(key, (account, 0))
            per_key[key] = (account, total + amount)
    for key, (account, delta) in per_key.items():
        problem = constraint_problem(account, key[1], day, delta, timelines[key])
        if problem is not None:
            return problem
    return None


def _repeat(draft: EntryDraft, prior: tuple[int, str], content_hash: str) -> Outcome:
    """A second submission of an id: duplicate if the payload is the same, else a conflict."""
    prior_seq, prior_hash = prior
    if prior_hash == content_hash:
        return Outcome(draft.ref, draft.external_id, DUPLICATE, prior_seq)
    return Outcome(
        draft.ref,
        draft.external_id,
        REJECTED,
        None,
        (
            Problem(
                E_CONFLICT,
                "id",
                f"entry {draft.external_id!r} was already posted (journal #{prior_seq}) "
                "with a different payload",
            ),
        ),
    )


class _Refused(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems


@dataclasses.dataclass
class _Plan:
    """What one batch will write, computed before anything is written."""

    last_seq: int
    last_hash: str
    timelines: dict[tuple[int, str], BalanceTimeline]
    accepted: int = 0
    first_seq: int | None = None
    outcomes: list[Outcome] = dataclasses.field(default_factory=list)  # all, or all but accepted
    entry_rows: list[tuple] = dataclasses.field(default_factory=list)
    posting_rows: list[tuple] = dataclasses.field(default_factory=list)
    deltas: dict[tuple[int, str, dt.date], int] = dataclasses.field(default_factory=dict)


def _chunks(values: list, size: int = limits.SQL_IN_PARAMS_MAX) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
