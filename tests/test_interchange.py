"""The interchange format: strict parsing, every problem named by field, bounded memory."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config import limits
from ledger.interchange import parse_entry, read_json_lines
from ledger.records import EntryDraft, PostingDraft, Refused
from ledger.reports import get_entry
from ledger.schemas import EntryDocumentSchema

from helpers import entry, jsonl, post


def problems_of(document) -> list[tuple[str, str | None]]:
    result = parse_entry(document, 1)
    assert isinstance(result, Refused), result
    return [(p.code, p.field) for p in result.problems]


def test_valid_entry_becomes_a_draft():
    doc = entry(
        "usage-2026-10-000123",
        "2026-10-31",
        ("OPFI", "Assets:Receivables:Unbilled", "100.00", "EUR", {"service": "desk", "customer": "C-17"}),
        ("OPFI", "Income:Usage", "-100", "EUR"),
        source={"type": "usage", "id": "batch-17"},
        metadata={"batch": "17"},
    )
    draft = parse_entry(doc, 7)
    assert draft == EntryDraft(
        external_id="usage-2026-10-000123",
        effective_date=dt.date(2026, 10, 31),
        postings=(
            PostingDraft("OPFI", "Assets:Receivables:Unbilled", 10000, "EUR", (("customer", "C-17"), ("service", "desk"))),
            PostingDraft("OPFI", "Income:Usage", -10000, "EUR", ()),
        ),
        description="test",
        source_type="usage",
        source_id="batch-17",
        metadata=(("batch", "17"),),
        ref=7,
    )


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda d: d.pop("id"), [("missing_field", "id")]),
        (lambda d: d.update(id=17), [("malformed", "id")]),
        (lambda d: d.update(id="has space"), [("invalid_value", "id")]),
        (lambda d: d.update(id="x" * 201), [("too_long", "id")]),
        (lambda d: d.update(id=""), [("invalid_value", "id")]),
        (lambda d: d.pop("date"), [("missing_field", "date")]),
        (lambda d: d.update(date="2026-02-30"), [("invalid_value", "date")]),
        (lambda d: d.update(date="20261031"), [("invalid_value", "date")]),
        (lambda d: d.update(date="2026-10-31T00:00"), [("invalid_value", "date")]),
        (lambda d: d.update(description=None), [("malformed", "description")]),
        (lambda d: d.update(description="x" * 10_000_000), [("too_long", "description")]),
        (lambda d: d.update(description="nul\x00byte"), [("invalid_value", "description")]),
        (lambda d: d.update(description="lone \ud800 surrogate"), [("invalid_value", "description")]),
        (lambda d: d.update(postings=[]), [("invalid_value", "postings")]),
        (lambda d: d.pop("postings"), [("missing_field", "postings")]),
        (lambda d: d.update(postings={"a": 1}), [("malformed", "postings")]),
        (lambda d: d.update(postings=["x"]), [("malformed", "postings[0]")]),
        (lambda d: d.update(extra=1), [("unknown_field", "extra")]),
        (lambda d: d["postings"][1].update(amount=-100.0), [("malformed", "postings[1].amount")]),
        (lambda d: d["postings"][1].update(amount="-1e2"), [("amount_format", "postings[1].amount")]),
        (lambda d: d["postings"][1].update(amount="NaN"), [("amount_format", "postings[1].amount")]),
        (lambda d: d["postings"][1].update(amount="-100.001"), [("amount_precision", "postings[1].amount")]),
        (lambda d: d["postings"][1].update(amount="-" + "9" * 20), [("amount_range", "postings[1].amount")]),
        (lambda d: d["postings"][1].pop("amount"), [("missing_field", "postings[1].amount")]),
        (lambda d: d["postings"][1].update(currency="EURO"), [("unknown_currency", "postings[1].currency")]),
        (lambda d: d["postings"][1].update(currency="XAU"), [("unknown_currency", "postings[1].currency")]),
        (lambda d: d["postings"][0].pop("company"), [("missing_field", "postings[0].company")]),
        (lambda d: d["postings"][0].update(account=["A"]), [("malformed", "postings[0].account")]),
        (lambda d: d["postings"][0].update(dimension={"a": "b"}), [("unknown_field", "postings[0].dimension")]),
        (lambda d: d["postings"][0].update(dimensions={"Customer": "C"}), [("invalid_value", "postings[0].dimensions")]),
        (lambda d: d["postings"][0].update(dimensions={"x": "C"}), [("invalid_value", "postings[0].dimensions")]),
        (lambda d: d["postings"][0].update(dimensions={"customer": 17}), [("malformed", "postings[0].dimensions.customer")]),
        (lambda d: d["postings"][0].update(dimensions=["customer"]), [("malformed", "postings[0].dimensions")]),
        (lambda d: d.update(source={"type": "Usage!"}), [("invalid_value", "source.type")]),
        (lambda d: d.update(source={"kind": "usage"}), [("unknown_field", "source.kind")]),
        (lambda d: d.update(metadata={"k" * 70: "v"}), [("invalid_value", "metadata")]),
    ],
)
def test_each_bad_field_is_named(change, expected):
    doc = entry("e1")
    change(doc)
    assert problems_of(doc) == expected


def test_all_problems_of_an_entry_are_reported():
    doc = entry("e1")
    doc["date"] = "yesterday"
    doc["postings"][0]["amount"] = "1.001"
    doc["postings"][1]["currency"] = "ZZZ"
    assert problems_of(doc) == [
        ("invalid_value", "date"),
        ("amount_precision", "postings[0].amount"),
        ("unknown_currency", "postings[1].currency"),
    ]


def test_too_many_postings():
    doc = entry("e1")
    doc["postings"] = doc["postings"] * (limits.POSTINGS_PER_ENTRY_MAX // 2 + 1)
    assert problems_of(doc) == [("too_long", "postings")]


def lines_of(data: bytes) -> list:
    return list(read_json_lines(io.BytesIO(data)))


@pytest.mark.parametrize(
    "line, message",
    [
        (b"{not json}", "invalid JSON"),
        (b'{"id": "a", "id": "b"}', "duplicate key 'id'"),
        (b'{"id": "a", "amount": NaN}', "NaN is not a JSON number"),
        (b'{"id": "a", "amount": -Infinity}', "-Infinity is not a JSON number"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"id": "\xff\xfe"}', "not valid UTF-8"),
        (b"[1, 2]", "an entry is a JSON object"),
        (b'"just a string"', "an entry is a JSON object"),
    ],
)
def test_malformed_lines_are_refused_by_line_number(line, message):
    good = json.dumps(entry("ok")).encode()
    results = lines_of(good + b"\n" + line + b"\n" + good)
    assert isinstance(results[0], EntryDraft) and isinstance(results[2], EntryDraft)
    refused = results[1]
    assert isinstance(refused, Refused) and refused.ref == 2
    assert message in refused.problems[0].message


def test_overlong_line_is_skipped_without_reading_it_whole(monkeypatch):
    monkeypatch.setattr(limits, "LINE_BYTES_MAX", 1000)
    huge = b'{"id": "big", "description": "' + b"x" * 50_000 + b'"}'
    good = json.dumps(entry("ok")).encode()
    results = lines_of(huge + b"\n" + good + b"\n")
    assert isinstance(results[0], Refused) and results[0].problems[0].code == "too_long"
    assert isinstance(results[1], EntryDraft) and results[1].ref == 2


def test_blank_lines_bom_and_missing_final_newline():
    data = b"\xef\xbb\xbf" + jsonl(entry("a")) + b"\n   \n" + json.dumps(entry("b")).encode()
    results = lines_of(data)
    assert [r.external_id for r in results] == ["a", "b"]
    assert [r.ref for r in results] == [1, 4]


def test_stored_entry_document_parses_back_to_the_same_content(db):
    """The marshmallow output schema and the parser describe the same format."""
    doc = entry(
        "round-trip",
        "2026-10-05",
        ("OPFI", "Assets:Receivables:Unbilled", "12.34", "EUR", {"customer": "C-17"}),
        ("OPFI", "Income:Usage", "-12.34"),
        description='quotes " and \\ and newlines\nand ünïcödé',
        source={"type": "usage", "id": "b-1"},
        metadata={"batch": "1"},
    )
    assert post(db, doc).accepted == 1
    dumped = EntryDocumentSchema().dump(get_entry(db, "round-trip"))
    interchange = {k: dumped[k] for k in ("id", "date", "description", "source", "metadata", "postings")}
    for line in interchange["postings"]:
        if not line["dimensions"]:
            del line["dimensions"]
    assert parse_entry(json.loads(json.dumps(interchange)), 0) == parse_entry(doc, 0)


posting_values = st.one_of(
    st.none(), st.integers(), st.floats(allow_nan=True), st.booleans(), st.lists(st.integers(), max_size=2),
    st.text(max_size=8),
)
amounts = st.one_of(
    st.from_regex(r"-?[0-9]{1,21}(\.[0-9]{0,6})?", fullmatch=True),
    st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
    posting_values,
)
dimension_sets = st.one_of(
    st.none(),
    st.dictionaries(st.sampled_from(["customer", "counterparty", "x", "Bad", "service"]), st.one_of(st.text(max_size=5), st.integers()), max_size=3),
    posting_values,
)


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "company": st.one_of(st.sampled_from(["OPFI", "", "A" * 40, "ÖP", "X\x00"]), posting_values),
            "account": st.one_of(st.sampled_from(["Assets:Bank", "", "Assets:Bänk", "A" * 201]), posting_values),
            "amount": amounts,
            "currency": st.one_of(st.sampled_from(["EUR", "JPY", "KWD", "CLF", "XXX", "eur"]), posting_values),
            "dimensions": dimension_sets,
            "extra": st.integers(),
        },
    )
)
@settings(max_examples=500)
def test_fast_and_careful_posting_paths_agree(raw):
    from ledger.interchange import _fast_posting, _parse_posting_carefully

    parse_entry({"id": "warm", "date": "2026-10-01", "postings": [{"company": "A", "account": "Assets:A", "amount": "1", "currency": "EUR", "dimensions": {"customer": "c", "counterparty": "c", "service": "s"}}]})
    careful = _parse_posting_carefully(raw, 0, [])
    fast = _fast_posting(raw)
    if fast is not None:
        assert fast == careful
