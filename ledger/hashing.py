"""Content hashes: the idempotency key's payload hash and the journal's hash chain.

payload hash
    SHA-256 over a canonical JSON array of everything an entry says: external id, date,
    description, source, metadata, the entry it reverses and, per posting, account id,
    amount in minor units, currency and dimensions. Two submissions that mean the same thing
    ("100.0" and "100.00" EUR) hash the same; anything else differs. Computed from the
    draft when posting and from the stored rows by ``verify``.

chain hash
    SHA-256 over the previous entry's chain hash, the entry's journal position, its
    recorded time and its payload hash. One chain runs over the whole journal, in journal
    order, starting from GENESIS. Changing, inserting or removing any stored entry or
    posting breaks every later link; ``verify`` names the first entry that no longer
    matches and prints the head so that it can be recorded outside the database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Sequence

from ledger.records import Pairs

HASH_FORMAT_VERSION = 1
GENESIS = "0" * 64

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def pairs_json(pairs: Pairs) -> str | None:
    """Canonical JSON text of a key/value set (already sorted), or None when empty."""
    if not pairs:
        return None
    return _dumps(dict(pairs))


def pairs_from_json(text: str | None) -> Pairs:
    """The key/value set back from its canonical JSON text."""
    return tuple(json.loads(text).items()) if text else ()


def payload_hash(
    external_id: str,
    effective_date: dt.date,
    description: str,
    source_type: str,
    source_id: str | None,
    metadata_json: str | None,
    reverses_seq: int | None,
    postings: Sequence[tuple[int, int, str, str | None]],
) -> str:
    """Hash of an entry's content; postings are (account id, amount_minor, currency,
    dimensions JSON) in line order."""
    document = _dumps(
        [
            HASH_FORMAT_VERSION,
            external_id,
            effective_date.isoformat(),
            description,
            source_type,
            source_id,
            metadata_json,
            reverses_seq,
            postings,
        ]
    )
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


def recorded_at_text(recorded_at: dt.datetime) -> str:
    """The one text form of a recorded time that the chain covers (UTC, microseconds)."""
    return recorded_at.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def chain_hash(previous: str, entry_seq: int, recorded_at: str, payload: str) -> str:
    """Next link of the journal's hash chain."""
    return hashlib.sha256(f"{previous}|{entry_seq}|{recorded_at}|{payload}".encode()).hexdigest()
