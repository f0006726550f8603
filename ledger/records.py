"""Immutable records of the ledger domain. Plain named tuples: cheap to build by the million.

Problems are values, not exceptions: validation returns them, reports carry them, and the
CLI and API render them. Each names its error code, the field it is about and a message.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

Pairs = tuple[tuple[str, str], ...]
"""A key/value set in canonical form: sorted by key, keys unique (dimensions, metadata)."""


class PostingDraft(NamedTuple):
    """One line of an entry to post. ``amount_minor`` is signed: debit > 0, credit < 0."""

    company: str
    account: str
    amount_minor: int
    currency: str
    dimensions: Pairs = ()


class EntryDraft(NamedTuple):
    """An entry as a caller submits it, already parsed. ``ref`` says where it came from
    (a line number, a list index) and only serves reports."""

    external_id: str
    effective_date: dt.date
    postings: tuple[PostingDraft, ...]
    description: str = ""
    source_type: str = "manual"
    source_id: str | None = None
    metadata: Pairs = ()
    ref: object = None
    reverses_seq: int | None = None  # journal position of the entry this one reverses


def show(value: object, limit_chars: int = 40) -> str:
    """Quote a (possibly hostile or huge) value for an error message, shortened."""
    text = repr(value)
    return text if len(text) <= limit_chars else text[:limit_chars] + "…"


class Problem(NamedTuple):
    """Why something was refused: a stable error code, the field (a JSON path within the
    record, e.g. ``postings[1].amount``; None for the record as a whole) and a message."""

    code: str
    field: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message

    def under(self, path: str) -> Problem:
        """The same problem about a record inside a larger one: under("entries[3]") turns
        the field "postings[0].amount" into "entries[3].postings[0].amount"."""
        return self._replace(field=f"{path}.{self.field}" if self.field else path)


class Refused(NamedTuple):
    """An input record that never became a draft (malformed JSON, wrong types)."""

    ref: object
    external_id: str | None
    problems: tuple[Problem, ...]


ACCEPTED = "accepted"
DUPLICATE = "duplicate"
REJECTED = "rejected"


class Outcome(NamedTuple):
    """What became of one submitted entry."""

    ref: object
    external_id: str | None
    status: str  # ACCEPTED, DUPLICATE or REJECTED
    entry_seq: int | None = None  # journal position of the stored (or original) entry
    problems: tuple[Problem, ...] = ()


# Error codes. Stable: the API and scripts match on them.
E_MALFORMED = "malformed"  # not JSON, not an object, wrong type
E_MISSING = "missing_field"
E_UNKNOWN_FIELD = "unknown_field"
E_INVALID = "invalid_value"
E_TOO_LONG = "too_long"
E_AMOUNT_FORMAT = "amount_format"
E_AMOUNT_PRECISION = "amount_precision"
E_AMOUNT_RANGE = "amount_range"
E_UNKNOWN_CURRENCY = "unknown_currency"
E_UNKNOWN_COMPANY = "unknown_company"
E_UNKNOWN_ACCOUNT = "unknown_account"
E_CURRENCY_NOT_ALLOWED = "currency_not_allowed"
E_ACCOUNT_NOT_OPEN = "account_not_open"
E_UNBALANCED = "unbalanced"
E_CLOSED_PERIOD = "closed_period"
E_BALANCE_CONSTRAINT = "balance_constraint"
E_CONFLICT = "idempotency_conflict"
E_NOT_POSTED = "batch_not_posted"  # valid, but its all-or-nothing batch had a rejection
E_NOT_FOUND = "not_found"
E_ALREADY_REVERSED = "already_reversed"


class LedgerError(Exception):
    """A use case refused its input. Carries problems like a rejected entry does."""

    def __init__(self, *problems: Problem) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems

    @property
    def code(self) -> str:
        return self.problems[0].code


E_DUPLICATE = "duplicate"  # a company or account that already exists
