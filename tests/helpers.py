"""Helpers shared by the tests: building interchange documents and posting them."""

from __future__ import annotations

import io
import json

from ledger import posting
from ledger.database import Database
from ledger.interchange import parse_entry, read_json_lines


def entry(entry_id: str, day: str = "2026-10-05", *postings: tuple, description: str = "test", **extra) -> dict:
    """An interchange document; postings as (company, account, amount[, currency[, dims]])."""
    if not postings:
        postings = (
            ("OPFI", "Assets:Receivables:Unbilled", "100.00"),
            ("OPFI", "Income:Usage", "-100.00"),
        )
    lines = []
    for line_spec in postings:
        company, account, amount, *rest = line_spec
        line = {"company": company, "account": account, "amount": amount, "currency": rest[0] if rest else "EUR"}
        if len(rest) > 1:
            line["dimensions"] = rest[1]
        lines.append(line)
    return {"id": entry_id, "date": day, "description": description, "postings": lines, **extra}


def post(db: Database, *documents: dict, all_or_nothing: bool = True) -> posting.PostingReport:
    """Post interchange documents through the parser and the posting service."""
    return posting.post_entries(
        db,
        [parse_entry(doc, index) for index, doc in enumerate(documents)],
        actor="test",
        all_or_nothing=all_or_nothing,
        collect_results=True,
    )


def post_lines(db: Database, data: bytes, **options) -> posting.PostingReport:
    """Post raw JSON lines, as `ecoledger post` does."""
    return posting.post_entries(
        db, read_json_lines(io.BytesIO(data)), actor="test", collect_results=True, **options
    )


def jsonl(*documents: dict) -> bytes:
    return "".join(json.dumps(doc) + "\n" for doc in documents).encode()
