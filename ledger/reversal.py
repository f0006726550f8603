"""Reversing an entry: a new entry with every posting negated, linked to the original and
dated explicitly. Posted entries never change (invariant 4); each is reversed at most once
(invariant 7, also a unique constraint in the database)."""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from sqlalchemy import select

from config import limits
from ledger.database import Database
from ledger.hashing import pairs_from_json
from ledger.posting import JournalWriter, PostingReport, audit_post
from ledger.queries import entry_lines
from ledger.records import (
    ACCEPTED,
    E_ALREADY_REVERSED,
    E_INVALID,
    E_NOT_FOUND,
    EntryDraft,
    LedgerError,
    PostingDraft,
    Problem,
    show,
)
from ledger.schema import journal_entries

REVERSAL_SOURCE = "reversal"


class Reversal(NamedTuple):
    original_id: str
    reversal_id: str
    entry_seq: int
    effective_date: dt.date
    created: bool  # False: the entry was already reversed on that date; nothing new posted


def reversal_id_for(external_id: str) -> str:
    return f"{external_id}~reversal"


def reverse_entry(
    db: Database,
    external_id: str,
    effective_date: dt.date,
    *,
    actor: str,
    description: str | None = None,
    request_id: str | None = None,
) -> Reversal:
    """Post the reversal of ``external_id`` on ``effective_date``. Asking again for the same
    date returns the existing reversal; another date is refused (already reversed)."""
    e = journal_entries.c
    with db.write() as conn:
        original = conn.execute(select(journal_entries).where(e.external_id == external_id)).first()
        if original is None:
            raise LedgerError(Problem(E_NOT_FOUND, "entry", f"no entry {show(external_id)}"))
        if original.reverses_id is not None:
            raise LedgerError(
                Problem(
                    E_INVALID,
                    "entry",
                    f"{external_id} is itself a reversal; post a new entry to restore its effect",
                )
            )
        previous = conn.execute(select(journal_entries).where(e.reverses_id == original.id)).first()
        if previous is not None:
            if previous.effective_date == effective_date:
                return Reversal(external_id, previous.external_id, previous.id, effective_date, False)
            raise LedgerError(
                Problem(
                    E_ALREADY_REVERSED,
                    "entry",
                    f"{external_id} was already reversed by {previous.external_id} "
                    f"on {previous.effective_date}",
                )
            )
        if effective_date < original.effective_date:
            raise LedgerError(
                Problem(
                    E_INVALID,
                    "date",
                    f"a reversal cannot precede its entry ({original.effective_date})",
                )
            )
        lines = entry_lines(conn, original.id)
        text = description or f"Reversal of {external_id}: {original.description}"
        draft = EntryDraft(
            external_id=reversal_id_for(external_id),
            effective_date=effective_date,
            postings=tuple(
                PostingDraft(
                    line.code,
                    line.name,
                    -line.amount_minor,
                    line.currency,
                    pairs_from_json(line.dimensions),
                )
                for line in lines
            ),
            description=text[: limits.DESCRIPTION_CHARS_MAX],
            source_type=REVERSAL_SOURCE,
            source_id=external_id,
            reverses_seq=original.id,
        )
        report = PostingReport(all_or_nothing=True, results=[])
        writer = JournalWriter(conn)
        writer.post_batch([draft], report)
        outcome = report.results[0]
        if outcome.status != ACCEPTED:
            raise LedgerError(*outcome.problems)
        audit_post(conn, actor, 1, outcome.entry_seq, outcome.entry_seq, request_id)
    return Reversal(external_id, draft.external_id, outcome.entry_seq, effective_date, True)
