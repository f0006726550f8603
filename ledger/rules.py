"""Pure validation rules of the ledger: no I/O, state passed in, problems returned as values.

``check_entry`` applies the rules that need only the chart and the period calendar (accounts
exist and are open, currencies allowed, periods open, balanced per company and currency).
``BalanceTimeline`` applies the rules that need balances over time (balance constraints and
the 64-bit range), entry by entry, so that each entry is judged against exactly the entries
accepted before it.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from typing import NamedTuple

from config import limits
from ledger.money import INT64_MAX, format_amount
from ledger.records import (
    E_ACCOUNT_NOT_OPEN,
    E_AMOUNT_RANGE,
    E_BALANCE_CONSTRAINT,
    E_CLOSED_PERIOD,
    E_CURRENCY_NOT_ALLOWED,
    E_INVALID,
    E_UNBALANCED,
    E_UNKNOWN_ACCOUNT,
    E_UNKNOWN_COMPANY,
    EntryDraft,
    Problem,
    show,
)

# journal_entries.external_id holds 255 characters: caller ids (200) plus suffixes that
# ecoledger adds itself (reversals).
EXTERNAL_ID_CHARS_MAX = 255

NON_NEGATIVE = "non_negative"
NON_POSITIVE = "non_positive"


class AccountInfo(NamedTuple):
    id: int
    company_id: int
    company_code: str
    name: str
    type: str
    currencies: frozenset[str]
    constraint: str | None
    open_date: dt.date
    close_date: dt.date | None


class ResolvedPosting(NamedTuple):
    account: AccountInfo
    amount_minor: int
    currency: str
    dimensions_json: str | None


def unstorable(text: str) -> str | None:
    """Why a string cannot be stored as text (PostgreSQL refuses NUL; UTF-8 cannot encode a
    lone surrogate), or None."""
    if "\x00" in text:
        return "contains a NUL character"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "contains an unpaired Unicode surrogate"
    return None


def _texts(draft: EntryDraft) -> Iterator[tuple[str, object]]:
    """Every text an entry stores besides its id, with its field."""
    yield "description", draft.description
    yield "source.type", draft.source_type
    if draft.source_id is not None:
        yield "source.id", draft.source_id
    for key, value in draft.metadata:
        yield "metadata", key
        yield f"metadata.{key}", value
    for index, posting in enumerate(draft.postings):
        for key, value in posting.dimensions:
            yield f"postings[{index}].dimensions", key
            yield f"postings[{index}].dimensions.{key}", value


def _storable(text: object) -> bool:
    return type(text) is str and "\x00" not in text and (text.isascii() or unstorable(text) is None)


_good_pairs: set = set()  # dimension and metadata sets already found storable: they repeat


def _pairs_storable(pairs) -> bool:
    if pairs in _good_pairs:
        return True
    for key, value in pairs:
        if not (_storable(key) and _storable(value)):
            return False
    if len(_good_pairs) >= 10_000:
        _good_pairs.clear()
    _good_pairs.add(pairs)
    return True


def texts_storable(draft: EntryDraft) -> bool:
    """The fast check behind text_problems: True when every text can be stored. Field names
    are only built by text_problems, when something is wrong."""
    if not (_storable(draft.description) and _storable(draft.source_type)
            and (draft.source_id is None or _storable(draft.source_id))):
        return False
    try:
        if not _pairs_storable(draft.metadata):
            return False
        for posting in draft.postings:
            if posting.dimensions and not _pairs_storable(posting.dimensions):
                return False
    except (TypeError, ValueError):  # not pairs, or unhashable: the careful path says what is wrong
        return False
    return len(draft.description) <= limits.DESCRIPTION_CHARS_MAX


def text_problems(draft: EntryDraft) -> list[Problem]:
    """Texts that cannot be stored. Drafts built by code (posting rules, rating) skip the
    interchange parser, which refuses these for files and the API."""
    problems = []
    for field, text in _texts(draft):
        if type(text) is not str:
            problems.append(Problem(E_INVALID, field, f"must be a string, not {type(text).__name__}"))
        elif reason := unstorable(text):
            problems.append(Problem(E_INVALID, field, reason))
    if type(draft.description) is str and len(draft.description) > limits.DESCRIPTION_CHARS_MAX:
        problems.append(Problem(E_INVALID, "description", f"has {len(draft.description)} characters; "
                                f"the limit is {limits.DESCRIPTION_CHARS_MAX}"))
    return problems


def check_entry(
    draft: EntryDraft,
    accounts: Mapping[tuple[str, str], AccountInfo],
    known_companies: Mapping[str, int],
    closed_through: Mapping[int, dt.date],
    suggest: Callable[[str | None, str], str | None] | None = None,
) -> list[Problem]:
    """Problems of ``draft`` against the chart and the closed periods (empty: it may post).

    ``closed_through`` maps a company id to the end of its latest closed period.
    ``suggest(company, name)`` may offer the closest existing account of ``company`` (or,
    with company None, the closest company code) for a name that does not exist.
    """
    problems: list[Problem] = []
    day = draft.effective_date
    # Drafts from code (posting rules, rating) skip the interchange parser: the shapes the
    # parser guarantees are checked again here, cheaply, so that no caller can store them.
    if type(draft.external_id) is not str or not 0 < len(draft.external_id) <= EXTERNAL_ID_CHARS_MAX:
        problems.append(
            Problem(E_INVALID, "id", f"must be a string of 1 to {EXTERNAL_ID_CHARS_MAX} characters")
        )
    if type(day) is not dt.date:
        return problems + [Problem(E_INVALID, "date", f"must be a date, not {type(day).__name__}")]
    if not draft.postings:
        problems.append(Problem(E_INVALID, "postings", "an entry needs at least one posting"))
    problems += text_problems(draft)
    sums: dict[tuple[str, str], int] = {}
    closed_reported: set[int] = set()
    for index, posting in enumerate(draft.postings):
        amount = posting.amount_minor
        if type(amount) is not int or not -INT64_MAX <= amount <= INT64_MAX:
            problems.append(
                Problem(
                    E_AMOUNT_RANGE,
                    f"postings[{index}].amount",
                    f"{show(amount)} is not a whole number of minor units within 64 bits",
                )
            )
            continue
        key = (posting.company, posting.account)
        account = accounts.get(key)
        if account is None:
            if posting.company not in known_companies:
                hint = suggest(None, posting.company) if suggest else None
                problems.append(
                    Problem(
                        E_UNKNOWN_COMPANY,
                        f"postings[{index}].company",
                        f"no company {show(posting.company)}" + (f"; did you mean {hint}?" if hint else ""),
                    )
                )
            else:
                hint = suggest(posting.company, posting.account) if suggest else None
                problems.append(
                    Problem(
                        E_UNKNOWN_ACCOUNT,
                        f"postings[{index}].account",
                        f"company {posting.company} has no account {show(posting.account)}"
                        + (f"; did you mean {hint}?" if hint else ""),
                    )
                )
            continue
        if posting.currency not in account.currencies:
            problems.append(
                Problem(
                    E_CURRENCY_NOT_ALLOWED,
                    f"postings[{index}].currency",
                    f"{posting.company} {account.name} accepts "
                    f"{', '.join(sorted(account.currencies))}, not {posting.currency}",
                )
            )
        if day < account.open_date or (account.close_date is not None and day > account.close_date):
            window = f"from {account.open_date}" + (
                f" to {account.close_date}" if account.close_date else ""
            )
            problems.append(
                Problem(
                    E_ACCOUNT_NOT_OPEN,
                    f"postings[{index}].account",
                    f"{posting.company} {account.name} is open {window}, not on {day}",
                )
            )
        through = closed_through.get(account.company_id)
        if through is not None and day <= through and account.company_id not in closed_reported:
            closed_reported.add(account.company_id)
            problems.append(
                Problem(
                    E_CLOSED_PERIOD,
                    "date",
                    f"{day:%Y-%m} is closed for {posting.company} (closed through {through}); "
                    "post into an open period",
                )
            )
        sum_key = (posting.company, posting.currency)
        sums[sum_key] = sums.get(sum_key, 0) + posting.amount_minor
    for (company, currency), total in sums.items():
        if total:
            problems.append(
                Problem(
                    E_UNBALANCED,
                    "postings",
                    f"{company} postings in {currency} sum to {format_amount(total, currency)}; "
                    "each company's postings must sum to zero per currency",
                )
            )
    return problems


def posting_window(account: AccountInfo, closed_through: dt.date | None) -> tuple[dt.date, dt.date]:
    """First and last day an account accepts postings."""
    first = account.open_date
    if closed_through is not None and closed_through >= first:
        first = closed_through + dt.timedelta(days=1)
    return first, account.close_date or dt.date.max


class BalanceTimeline:
    """Closing balances of one (account, currency) at the end of each day with postings.

    Holds the days from some date on (``base`` is the balance before the first of them) and
    applies deltas: a delta on day d changes the closing balance of d and of every later day.
    """

    __slots__ = ("base", "days", "balances", "changed", "stored_days", "known")

    def __init__(self, base: int | None, rows: list[tuple[dt.date, int]]) -> None:
        # Whether the pair already has a current balance row (any day stored before).
        self.known = base is not None or bool(rows)
        self.base = base or 0
        self.days = [day for day, _ in rows]
        self.balances = [balance for _, balance in rows]
        self.stored_days = frozenset(self.days)  # rows that exist in the database
        self.changed: set[dt.date] = set()

    def _index_for(self, day: dt.date) -> int:
        """Index of ``day``, inserting it (carrying the previous balance) if absent."""
        index = bisect.bisect_left(self.days, day)
        if index == len(self.days) or self.days[index] != day:
            previous = self.balances[index - 1] if index else self.base
            self.days.insert(index, day)
            self.balances.insert(index, previous)
        return index

    def extremes_from(self, day: dt.date, delta: int) -> tuple[int, int]:
        """(lowest, highest) closing balance from ``day`` on if ``delta`` were applied."""
        index = bisect.bisect_left(self.days, day)
        later = self.balances[index:]
        if index == len(self.days) or self.days[index] != day:
            later = [self.balances[index - 1] if index else self.base] + later
        return min(later) + delta, max(later) + delta

    def apply(self, day: dt.date, delta: int) -> None:
        index = self._index_for(day)
        balances = self.balances
        for i in range(index, len(balances)):
            balances[i] += delta
        self.changed.update(self.days[index:])

    def rows(self) -> list[tuple[dt.date, int]]:
        return list(zip(self.days, self.balances))


def constraint_problem(
    account: AccountInfo, currency: str, day: dt.date, delta: int, timeline: BalanceTimeline
) -> Problem | None:
    """Why applying ``delta`` on ``day`` breaks the account's constraint or 64 bits, or None."""
    low, high = timeline.extremes_from(day, delta)
    if low < -INT64_MAX or high > INT64_MAX:
        return Problem(
            E_BALANCE_CONSTRAINT,
            "postings",
            f"{account.company_code} {account.name} {currency} balance would leave the 64-bit range",
        )
    if account.constraint == NON_NEGATIVE and low < 0:
        return Problem(
            E_BALANCE_CONSTRAINT,
            "postings",
            f"{account.company_code} {account.name} must not go below zero; it would reach "
            f"{format_amount(low, currency)} {currency} on or after {day}",
        )
    if account.constraint == NON_POSITIVE and high > 0:
        return Problem(
            E_BALANCE_CONSTRAINT,
            "postings",
            f"{account.company_code} {account.name} must not go above zero; it would reach "
            f"{format_amount(high, currency)} {currency} on or after {day}",
        )
    return None
