"""The interchange format: one JSON object per entry, used by the CLI and the API.

    {"id": "usage-2026-10-000123", "date": "2026-10-31", "description": "...",
     "source": {"type": "usage", "id": "batch-17"}, "metadata": {"batch": "17"},
     "postings": [{"company": "OPFI", "account": "Assets:Receivables:Unbilled",
                   "amount": "100.00", "currency": "EUR", "dimensions": {"customer": "C-17"}},
                  ...]}

Amounts are decimal strings in major units; JSON numbers are refused (a float cannot hold
money exactly). Unknown fields are refused (a misspelt "dimension" must not vanish), and so
are duplicate keys (two "amount"s in one object are ambiguous).

This parser is hand-written rather than a marshmallow schema because it is the hot path of
bulk posting: marshmallow measured 96 µs per 4-posting entry, four times the whole per-entry
budget (docs/decisions.md). The marshmallow schemas in ``ledger.schemas`` describe the same
format for output and the API documentation; ``tests/test_interchange.py`` keeps them in step.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from config import limits
from config.currencies import MINOR_UNITS
from ledger.money import AmountError, parse_amount
from ledger.records import (
    E_INVALID,
    E_MALFORMED,
    E_MISSING,
    E_TOO_LONG,
    E_UNKNOWN_CURRENCY,
    E_UNKNOWN_FIELD,
    EntryDraft,
    Pairs,
    PostingDraft,
    Problem,
    Refused,
    show,
)
from ledger.rules import unstorable

ENTRY_FIELDS = frozenset({"id", "date", "description", "source", "metadata", "postings"})
POSTING_FIELDS = frozenset({"company", "account", "amount", "currency", "dimensions"})
SOURCE_FIELDS = frozenset({"type", "id"})

# Printable ASCII without spaces: ids are typed in shells and sent in URLs.
ENTRY_ID_RE = re.compile(r"[!-~]{1,%d}" % limits.ENTRY_ID_CHARS_MAX)
# At least two characters: beancount metadata keys need them, and exports must load.
KEY_RE = re.compile(r"[a-z][a-z0-9_]{1,%d}" % (limits.DIMENSION_KEY_CHARS_MAX - 1))
SOURCE_TYPE_RE = re.compile(r"[a-z][a-z0-9_.\-]{0,%d}" % (limits.SOURCE_TYPE_CHARS_MAX - 1))
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

COMPANY_CHARS_MAX = 32
ACCOUNT_CHARS_MAX = 200


def _plain(value: Any, max_chars: int) -> bool:
    """The common case, decided cheaply: a non-empty ASCII string without NUL, short enough.
    Anything else goes through check_text, which also explains what is wrong."""
    return type(value) is str and 0 < len(value) <= max_chars and value.isascii() and "\x00" not in value


def check_text(
    value: Any, field: str, max_chars: int, problems: list[Problem], *, empty_ok: bool = False
) -> bool:
    """Append a problem unless ``value`` is a storable string of 1..max_chars characters."""
    if type(value) is not str:
        if value is None:
            problems.append(Problem(E_MISSING, field, "is required"))
        else:
            problems.append(
                Problem(E_MALFORMED, field, f"must be a string, not {_json_type(value)}")
            )
        return False
    if len(value) > max_chars:
        problems.append(
            Problem(E_TOO_LONG, field, f"has {len(value)} characters; the limit is {max_chars}")
        )
        return False
    if not value and not empty_ok:
        problems.append(Problem(E_INVALID, field, "must not be empty"))
        return False
    reason = unstorable(value)
    if reason:
        problems.append(Problem(E_INVALID, field, reason))
        return False
    return True


def parse_pairs(
    raw: Any, field: str, keys_max: int, value_chars_max: int, problems: list[Problem]
) -> Pairs:
    """A JSON object of string keys and string values, as canonical sorted pairs."""
    if type(raw) is not dict:
        problems.append(
            Problem(E_MALFORMED, field, f"must be an object of strings, not {_json_type(raw)}")
        )
        return ()
    if len(raw) > keys_max:
        problems.append(Problem(E_TOO_LONG, field, f"has {len(raw)} keys; the limit is {keys_max}"))
        return ()
    ok = True
    for key, value in raw.items():
        if key not in _valid_keys:
            if not KEY_RE.fullmatch(key):
                problems.append(
                    Problem(
                        E_INVALID,
                        field,
                        f"key {show(key)} must be lower-case letters, digits and _ "
                        f"starting with a letter, 2 to {limits.DIMENSION_KEY_CHARS_MAX} long",
                    )
                )
                ok = False
                continue
            if len(_valid_keys) < 10_000:  # bounded: keys repeat, hostile input does not
                _valid_keys.add(key)
        if not _plain(value, value_chars_max) and not check_text(
            value, f"{field}.{key}", value_chars_max, problems
        ):
            ok = False
    return tuple(sorted(raw.items())) if ok else ()


_valid_keys: set[str] = set()
_date_cache: dict[str, dt.date] = {}


def parse_date(raw: Any, field: str, problems: list[Problem]) -> dt.date | None:
    """A calendar date written exactly as YYYY-MM-DD."""
    if type(raw) is str:
        cached = _date_cache.get(raw)
        if cached is not None:
            return cached
        if _DATE_RE.fullmatch(raw):
            try:
                value = dt.date.fromisoformat(raw)
            except ValueError:
                pass
            else:
                if len(_date_cache) >= 10_000:  # bounded: dates repeat, hostile input does not
                    _date_cache.clear()
                _date_cache[raw] = value
                return value
        problems.append(Problem(E_INVALID, field, f"{show(raw)} is not a date as YYYY-MM-DD"))
    elif raw is None:
        problems.append(Problem(E_MISSING, field, "is required"))
    else:
        problems.append(Problem(E_MALFORMED, field, f"must be a string, not {_json_type(raw)}"))
    return None


def _unknown_fields(raw: dict, allowed: frozenset[str], where: str | None) -> Problem:
    unknown = sorted(set(raw) - allowed)
    label = f"{where}." if where else ""
    return Problem(
        E_UNKNOWN_FIELD,
        f"{label}{unknown[0]}",
        f"unknown field; allowed: {', '.join(sorted(allowed))}",
    )


# Amounts that certainly fit 64 bits, per number of decimal places: whole part of at most
# 18 - places digits. Longer or odder amounts take the careful path in parse_amount.
_SAFE_AMOUNT = {
    places: re.compile(
        r"(-?)([0-9]{1,%d})" % (18 - places) + (r"(?:\.([0-9]{1,%d}))?" % places if places else "")
    )
    for places in set(MINOR_UNITS.values())
}
_POW10 = {places: 10**places for places in set(MINOR_UNITS.values())}


def _fast_posting(raw: Any) -> PostingDraft | None:
    """The common, valid posting, built with the least work; None means "not sure": the
    careful path decides. Must never accept what the careful path refuses, nor build a
    different draft (tests/test_interchange.py checks both paths agree)."""
    if type(raw) is not dict or not raw.keys() <= POSTING_FIELDS:
        return None
    company = raw.get("company")
    account = raw.get("account")
    currency = raw.get("currency")
    amount = raw.get("amount")
    if not (type(company) is str and 0 < len(company) <= COMPANY_CHARS_MAX and company.isascii() and "\x00" not in company):
        return None
    if not (type(account) is str and 0 < len(account) <= ACCOUNT_CHARS_MAX and account.isascii() and "\x00" not in account):
        return None
    places = MINOR_UNITS.get(currency) if type(currency) is str else None
    if places is None or type(amount) is not str:
        return None
    match = _SAFE_AMOUNT[places].fullmatch(amount)
    if match is None:
        return None
    value = int(match.group(2)) * _POW10[places]
    if places and match.group(3):
        value += int(match.group(3).ljust(places, "0"))
    if match.group(1):
        value = -value
    dimensions = raw.get("dimensions")
    if dimensions is None:
        pairs: Pairs = ()
    else:
        if type(dimensions) is not dict or len(dimensions) > limits.DIMENSIONS_PER_POSTING_MAX:
            return None
        for key, text in dimensions.items():
            if key not in _valid_keys or not _plain(text, limits.DIMENSION_VALUE_CHARS_MAX):
                return None
        pairs = tuple(sorted(dimensions.items()))
    return PostingDraft(company, account, value, currency, pairs)


def _parse_posting(raw: Any, index: int, problems: list[Problem]) -> PostingDraft | None:
    fast = _fast_posting(raw)
    if fast is not None:
        return fast
    return _parse_posting_carefully(raw, index, problems)


def _parse_posting_carefully(raw: Any, index: int, problems: list[Problem]) -> PostingDraft | None:
    where = f"postings[{index}]"
    if type(raw) is not dict:
        problems.append(Problem(E_MALFORMED, where, f"must be an object, not {_json_type(raw)}"))
        return None
    if not raw.keys() <= POSTING_FIELDS:
        problems.append(_unknown_fields(raw, POSTING_FIELDS, where))
        return None
    before = len(problems)
    company = raw.get("company")
    account = raw.get("account")
    currency = raw.get("currency")
    amount = raw.get("amount")
    check_text(company, f"{where}.company", COMPANY_CHARS_MAX, problems)
    check_text(account, f"{where}.account", ACCOUNT_CHARS_MAX, problems)
    if type(currency) is not str or currency not in MINOR_UNITS:
        if currency is None:
            problems.append(Problem(E_MISSING, f"{where}.currency", "is required"))
        else:
            problems.append(
                Problem(
                    E_UNKNOWN_CURRENCY,
                    f"{where}.currency",
                    f"{show(currency)} is not an ISO 4217 currency code",
                )
            )
    elif type(amount) is not str:
        if amount is None:
            problems.append(Problem(E_MISSING, f"{where}.amount", "is required"))
        else:
            problems.append(
                Problem(
                    E_MALFORMED,
                    f"{where}.amount",
                    f"must be a decimal string like \"12.50\", not {_json_type(amount)}",
                )
            )
    else:
        try:
            amount_minor = parse_amount(amount, currency)
        except AmountError as exc:
            problems.append(Problem(exc.code, f"{where}.amount", str(exc)))
    dimensions: Pairs = ()
    raw_dimensions = raw.get("dimensions")
    if raw_dimensions is not None:
        dimensions = parse_pairs(
            raw_dimensions,
            f"{where}.dimensions",
            limits.DIMENSIONS_PER_POSTING_MAX,
            limits.DIMENSION_VALUE_CHARS_MAX,
            problems,
        )
    if len(problems) > before:
        return None
    return PostingDraft(company, account, amount_minor, currency, dimensions)


def _parse_source(raw: Any, problems: list[Problem]) -> tuple[str, str | None]:
    if type(raw) is not dict:
        problems.append(Problem(E_MALFORMED, "source", f"must be an object, not {_json_type(raw)}"))
        return "manual", None
    if not raw.keys() <= SOURCE_FIELDS:
        problems.append(_unknown_fields(raw, SOURCE_FIELDS, "source"))
        return "manual", None
    source_type = raw.get("type")
    source_id = raw.get("id")
    if check_text(source_type, "source.type", limits.SOURCE_TYPE_CHARS_MAX, problems):
        if not SOURCE_TYPE_RE.fullmatch(source_type):
            problems.append(
                Problem(
                    E_INVALID,
                    "source.type",
                    f"{show(source_type)} must be lower-case letters, digits, '_', '.', '-'",
                )
            )
    if source_id is not None:
        check_text(source_id, "source.id", limits.SOURCE_ID_CHARS_MAX, problems)
    return source_type, source_id


def parse_entry(raw: Any, ref: object = None) -> EntryDraft | Refused:
    """Validate one decoded JSON value as an entry. Returns a draft or every problem found."""
    if type(raw) is not dict:
        return Refused(
            ref, None, (Problem(E_MALFORMED, None, f"an entry is a JSON object, not {_json_type(raw)}"),)
        )
    problems: list[Problem] = []
    if not raw.keys() <= ENTRY_FIELDS:
        problems.append(_unknown_fields(raw, ENTRY_FIELDS, None))
    external_id = raw.get("id")
    if type(external_id) is str and ENTRY_ID_RE.fullmatch(external_id):
        pass  # the pattern admits only printable ASCII of the allowed length
    elif check_text(external_id, "id", limits.ENTRY_ID_CHARS_MAX, problems):
        if not ENTRY_ID_RE.fullmatch(external_id):
            problems.append(
                Problem(E_INVALID, "id", "must be printable ASCII without spaces")
            )
    effective_date = parse_date(raw.get("date"), "date", problems)
    description = raw.get("description", "")
    if description is None:
        problems.append(Problem(E_MALFORMED, "description", "must be a string, not null"))
    elif description and not _plain(description, limits.DESCRIPTION_CHARS_MAX):
        check_text(description, "description", limits.DESCRIPTION_CHARS_MAX, problems, empty_ok=True)
    source_type, source_id = "manual", None
    if "source" in raw:
        source_type, source_id = _parse_source(raw["source"], problems)
    metadata: Pairs = ()
    if "metadata" in raw:
        metadata = parse_pairs(
            raw["metadata"],
            "metadata",
            limits.METADATA_KEYS_MAX,
            limits.METADATA_VALUE_CHARS_MAX,
            problems,
        )
    postings: list[PostingDraft] = []
    raw_postings = raw.get("postings")
    if type(raw_postings) is not list:
        if raw_postings is None:
            problems.append(Problem(E_MISSING, "postings", "is required"))
        else:
            problems.append(
                Problem(E_MALFORMED, "postings", f"must be a list, not {_json_type(raw_postings)}")
            )
    elif not raw_postings:
        problems.append(Problem(E_INVALID, "postings", "an entry needs at least one posting"))
    elif len(raw_postings) > limits.POSTINGS_PER_ENTRY_MAX:
        problems.append(
            Problem(
                E_TOO_LONG,
                "postings",
                f"has {len(raw_postings)} postings; the limit is {limits.POSTINGS_PER_ENTRY_MAX}",
            )
        )
    else:
        for index, raw_posting in enumerate(raw_postings):
            posting = _parse_posting(raw_posting, index, problems)
            if posting is not None:
                postings.append(posting)
    shown_id = external_id if type(external_id) is str else None
    if problems:
        return Refused(ref, shown_id, tuple(problems))
    return EntryDraft(
        external_id,
        effective_date,
        tuple(postings),
        description,
        source_type,
        source_id,
        metadata,
        ref,
    )


# -- JSON lines ---------------------------------------------------------------------------


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        duplicate = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise ValueError(f"duplicate key {show(duplicate)} in one object")
    return obj


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number; amounts are decimal strings")


def decode_json(data: bytes | str) -> Any:
    """Strict JSON: no NaN/Infinity, no duplicate keys. Raises ValueError with the reason."""
    try:
        return json.loads(data, object_pairs_hook=_unique_keys, parse_constant=_no_constants)
    except UnicodeDecodeError as exc:
        raise ValueError(f"not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    except RecursionError:
        raise ValueError("nested too deeply") from None


def read_json_lines(stream: BinaryIO) -> Iterator[EntryDraft | Refused]:
    """Stream entries from JSON lines; ``ref`` is the 1-based line number. Memory stays
    bounded by LINE_BYTES_MAX whatever the file holds. Blank lines are skipped."""
    line_no = 0
    while True:
        line = stream.readline(limits.LINE_BYTES_MAX + 1)
        if not line:
            return
        line_no += 1
        if len(line) > limits.LINE_BYTES_MAX and not line.endswith(b"\n"):
            _skip_rest_of_line(stream)
            yield Refused(
                line_no,
                None,
                (
                    Problem(
                        E_TOO_LONG,
                        None,
                        f"line is longer than {limits.LINE_BYTES_MAX} bytes; not read",
                    ),
                ),
            )
            continue
        if line_no == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]  # a UTF-8 byte order mark, as some spreadsheet exports write
        if not line.strip():
            continue
        try:
            raw = decode_json(line)
        except ValueError as exc:
            yield Refused(line_no, None, (Problem(E_MALFORMED, None, f"invalid JSON: {exc}"),))
            continue
        yield parse_entry(raw, line_no)


def _skip_rest_of_line(stream: BinaryIO) -> None:
    while True:
        chunk = stream.readline(limits.LINE_BYTES_MAX)
        if not chunk or chunk.endswith(b"\n"):
            return


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
