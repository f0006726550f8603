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
from collections.abc import Sequence
from json.encoder import encode_basestring_ascii as _quote

from ledger.records import Pairs

HASH_FORMAT_VERSION = 1
GENESIS = "0" * 64

# Canonical JSON is written by hand from already-validated parts: compact, ASCII-only
# (non-ASCII characters as \uXXXX escapes), keys sorted. It is what json.dumps(...,
# separators=(",", ":"), sort_keys=True) would write, at a fraction of the cost on the hot
# path; tests/test_hashing.py holds the two equal.


def pairs_json(pairs: Pairs) -> str | None:
    """Canonical JSON text of a key/value set (already sorted), or None when empty."""
    if not pairs:
        return None
    return "{" + ",".join(f"{_quote(key)}:{_quote(value)}" for key, value in pairs) + "}"


def _optional(value: str | None) -> str:
    return "null" if value is None else _quote(value)


def pairs_from_json(text: str | None) -> Pairs:
    """The key/value set back from its canonical JSON text."""
    return tuple(json.loads(text).items()) if text else ()


_tails: dict[tuple[str, str | None], str] = {}


def _line_tail(currency: str, dimensions: str | None) -> str:
    """The end of a posting's canonical line, memoised: currencies and dimension sets repeat."""
    key = (currency, dimensions)
    tail = _tails.get(key)
    if tail is None:
        if len(_tails) >= 10_000:  # bounded
            _tails.clear()
        tail = _tails[key] = f"{_quote(currency)},{_optional(dimensions)}]"
    return tail


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
    dimensions JSON) in line order. The hashed document is the canonical JSON array
    [version, id, date, description, source type, source id, metadata, reverses, postings]."""
    tails = _tails
    lines = []
    for account_id, amount_minor, currency, dimensions in postings:
        tail = tails.get((currency, dimensions)) or _line_tail(currency, dimensions)
        lines.append(f"[{account_id},{amount_minor},{tail}")
    day = _iso_dates.get(effective_date)
    if day is None:
        if len(_iso_dates) >= 10_000:  # bounded; dates repeat
            _iso_dates.clear()
        day = _iso_dates[effective_date] = effective_date.isoformat()
    document = (
        f'[{HASH_FORMAT_VERSION},{_quote(external_id)},"{day}",{_quote(description)},'
        f"{_quote(source_type)},{_optional(source_id)},{_optional(metadata_json)},"
        f"{'null' if reverses_seq is None else int(reverses_seq)},[{','.join(lines)}]]"
    )
    return hashlib.sha256(document.encode("ascii")).hexdigest()


_iso_dates: dict[dt.date, str] = {}


def recorded_at_text(recorded_at: dt.datetime) -> str:
    """The one text form of a recorded time that the chain covers (UTC, microseconds)."""
    return recorded_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def chain_hash(previous: str, entry_seq: int, recorded_at: str, payload: str) -> str:
    """Next link of the journal's hash chain."""
    return hashlib.sha256(f"{previous}|{entry_seq}|{recorded_at}|{payload}".encode()).hexdigest()


def document_json(value: object) -> str:
    """Canonical JSON of a loaded document (onboarding, contract, event): compact, keys
    sorted, dates and decimals as their text. Stored as is and hashed by document_hash."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def document_hash(value: object) -> str:
    """SHA-256 of a document's canonical JSON: the same document hashes alike whatever its
    key order or spelling of the same values, so that loading it again changes nothing."""
    return hashlib.sha256(document_json(value).encode()).hexdigest()
