"""The hand-written canonical JSON equals what the json module writes, for any content."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

from hypothesis import given
from hypothesis import strategies as st

from ledger.hashing import HASH_FORMAT_VERSION, chain_hash, pairs_from_json, pairs_json, payload_hash

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
keys = st.from_regex(r"[a-z][a-z0-9_]{1,10}", fullmatch=True)
pairs = st.dictionaries(keys, text, max_size=4).map(lambda d: tuple(sorted(d.items())))


def canonical(value) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


@given(pairs)
def test_pairs_json_is_canonical_json(value):
    written = pairs_json(value)
    if not value:
        assert written is None
    else:
        assert written == canonical(dict(value))
        assert pairs_from_json(written) == value


@given(
    text, st.dates(), text, text, st.none() | text, st.none() | pairs.map(pairs_json),
    st.none() | st.integers(1, 2**62),
    st.lists(st.tuples(st.integers(1, 10**6), st.integers(-(2**63) + 1, 2**63 - 1), st.sampled_from(["EUR", "USD"]), st.none() | pairs.map(pairs_json)), max_size=5),
)
def test_payload_hash_is_the_hash_of_canonical_json(entry_id, day, description, source_type, source_id, metadata, reverses, lines):
    document = [HASH_FORMAT_VERSION, entry_id, day.isoformat(), description, source_type, source_id, metadata, reverses, [list(l) for l in lines]]
    expected = hashlib.sha256(canonical(document).encode()).hexdigest()
    assert payload_hash(entry_id, day, description, source_type, source_id, metadata, reverses, lines) == expected


def test_any_change_changes_the_hash():
    base = ("e1", dt.date(2026, 10, 5), "d", "manual", None, None, None, [(1, 100, "EUR", None), (2, -100, "EUR", None)])
    variants = [
        ("e2", *base[1:]),
        (base[0], dt.date(2026, 10, 6), *base[2:]),
        (*base[:2], "d ", *base[3:]),
        (*base[:7], [(1, 101, "EUR", None), (2, -101, "EUR", None)]),
        (*base[:7], [(2, -100, "EUR", None), (1, 100, "EUR", None)]),
        (*base[:6], 7, base[7]),
    ]
    hashes = {payload_hash(*v) for v in [base, *variants]}
    assert len(hashes) == len(variants) + 1
    assert chain_hash("0" * 64, 1, "t", "p") != chain_hash("0" * 64, 2, "t", "p")
