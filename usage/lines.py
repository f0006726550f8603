"""Usage lines as they arrive: CSV or JSON lines, streamed, checked field by field.

A line (JSON)::

    {"id": "u-1001", "timestamp": "2026-10-05T22:30:00+03:00", "contract": "SD-C-17",
     "service": "field-service", "quantity": "2.5", "unit": "hour",
     "attributes": {"employee_level": "technician", "shift": "night"}}

The same in CSV: a header row naming the columns, attributes as ``attributes.NAME``
columns (an empty cell is an absent value)::

    id,timestamp,contract,service,quantity,unit,attributes.employee_level,attributes.shift
    u-1001,2026-10-05T22:30:00+03:00,SD-C-17,field-service,2.5,hour,technician,night

Fields: ``id`` (1-200 printable ASCII characters, unique for ever), ``timestamp`` (ISO 8601
with a UTC offset, or a date), ``contract``, ``service``, ``component`` (optional: which
usage component when the contract has several for the service), ``quantity`` (a decimal
with up to 6 places, as text or an integer, never a binary float), ``unit`` (optional;
checked against the plan's unit), ``price`` (optional: a pre-rated price per unit in major
units) or ``amount`` (optional: a pre-rated amount of the line, or the base of a
percentage plan), ``attributes`` (text values for the plan's price drivers).

This module is the hot path of an import: it is hand-written instead of a marshmallow
schema (which costs 30 times as much per line), and tests/test_usage_lines.py holds it to
the documented rules field by field.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import NamedTuple

from ledger.interchange import decode_json
from ledger.records import E_MALFORMED, E_MISSING, E_UNKNOWN_FIELD, Problem, show

# One line of a usage file. A usage line is ~200 bytes; 16 KiB leaves room for attributes
# while a multi-GB line without a newline cannot exhaust memory.
USAGE_LINE_BYTES_MAX = 16 * 1024
ATTRIBUTES_MAX = 20
# A line's quantity: a plausible upper bound for one record of use (hours, GB, API calls).
# A meter reporting more in one line is broken, or should report more often.
QUANTITY_PER_LINE_MAX = Decimal(1_000_000_000)

FIELDS = ("id", "timestamp", "contract", "service", "component", "quantity", "unit", "price", "amount", "attributes")
REQUIRED = ("id", "timestamp", "contract", "service", "quantity")
_ID = re.compile(r"[!-~]{1,200}")
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,63}")
_UNIT = re.compile(r"[!-~]{1,32}")
_QUANTITY = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,6})?")
_MONEY = re.compile(r"-?[0-9]{1,15}(?:\.[0-9]{1,6})?")
_ATTRIBUTE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_ATTRIBUTE_VALUE = re.compile(r"[^\x00-\x1f\x7f]{1,64}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MICRO = Decimal(1_000_000)


class LineError(ValueError):
    def __init__(self, *problems: Problem) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


class UsageLine(NamedTuple):
    id: str
    used_at: dt.datetime  # aware
    usage_date: dt.date  # the date in the timestamp's own offset
    contract: str
    service: str
    component: str | None
    quantity: Decimal
    quantity_micro: int
    unit: str | None
    price: str | None  # major units, pre-rated per unit
    amount: str | None  # major units, pre-rated for the line
    attributes: tuple[tuple[str, str], ...]  # sorted
    raw: str  # canonical JSON of the line as read
    payload_hash: str


class RawLine(NamedTuple):
    """A line as read, before checks: where it was (line number), its text for the rejects
    store, and its fields (None when it could not be read as a record)."""

    ref: str
    text: str
    record: dict | None
    problem: Problem | None = None


def read_json_lines(stream: Iterable[str]) -> Iterator[RawLine]:
    for number, line in enumerate(stream, start=1):
        if len(line) > USAGE_LINE_BYTES_MAX:
            yield RawLine(str(number), line[:200], None,
                          Problem(E_MALFORMED, None, f"line longer than {USAGE_LINE_BYTES_MAX} bytes"))
            continue
        if not line.strip():
            continue
        try:
            value = decode_json(line)
        except ValueError as exc:
            yield RawLine(str(number), line.rstrip("\r\n"), None, Problem(E_MALFORMED, None, f"not JSON: {exc}"))
            continue
        if not isinstance(value, dict):
            yield RawLine(str(number), line.rstrip("\r\n"), None, Problem(E_MALFORMED, None, "a usage line is a JSON object"))
            continue
        yield RawLine(str(number), line.rstrip("\r\n"), value)


class HeaderError(ValueError):
    """A CSV header that cannot be read: nothing of the file is imported."""


def read_csv(stream: Iterable[str]) -> Iterator[RawLine]:
    """Rows of a CSV file with a header, as records: empty cells are absent values and
    ``attributes.NAME`` columns gather into ``attributes``. Line numbers count the header as
    line 1."""
    reader = csv.reader(_bounded(stream))
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise HeaderError(f"line 1: not CSV: {exc}") from None
    columns: list[tuple[str, str | None]] = []
    for name in header:
        name = name.strip()
        if name.startswith("attributes."):
            columns.append(("attributes", name[len("attributes."):]))
        elif name in FIELDS and name != "attributes":
            columns.append((name, None))
        else:
            raise HeaderError(f"line 1: unknown column {show(name)}; columns: "
                              f"{', '.join(f for f in FIELDS if f != 'attributes')} and attributes.NAME")
    if len({c for c in columns}) != len(columns):
        raise HeaderError("line 1: a column is named twice")
    missing = [f for f in REQUIRED if (f, None) not in columns]
    if missing:
        raise HeaderError(f"line 1: missing column(s) {', '.join(missing)}")
    width = len(columns)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield RawLine(str(reader.line_num), "", None, Problem(E_MALFORMED, None, f"not CSV: {exc}"))
            continue
        number = str(reader.line_num)
        if not row or row == [""]:
            continue
        if len(row) != width:
            yield RawLine(number, ",".join(row)[:USAGE_LINE_BYTES_MAX], None,
                          Problem(E_MALFORMED, None, f"{len(row)} cells; the header has {width}"))
            continue
        record: dict = {}
        attributes: dict = {}
        for (name, attribute), cell in zip(columns, row):
            if cell == "":
                continue
            if attribute is None:
                record[name] = cell
            else:
                attributes[attribute] = cell
        if attributes:
            record["attributes"] = attributes
        yield RawLine(number, "", record)


def _bounded(stream: Iterable[str]) -> Iterator[str]:
    for line in stream:
        if len(line) > USAGE_LINE_BYTES_MAX:
            # csv would buffer it; cut it so that the row fails its checks instead
            yield line[:USAGE_LINE_BYTES_MAX] + "\n"
        else:
            yield line


def canonical(record: dict) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def check_line(record: dict) -> UsageLine:
    """A record's fields checked and typed, or LineError naming every field at fault."""
    problems: list[Problem] = []
    for name in record:
        if name not in FIELDS:
            problems.append(Problem(E_UNKNOWN_FIELD, str(name)[:64], f"unknown field; fields: {', '.join(FIELDS)}"))
    for name in REQUIRED:
        if record.get(name) is None:
            problems.append(Problem(E_MISSING, name, "required"))
    if problems:
        raise LineError(*problems)
    line_id = _text(record, "id", _ID, "1 to 200 printable ASCII characters", problems)
    contract = _text(record, "contract", _CODE, "a contract code", problems)
    service = _text(record, "service", _CODE, "a service code", problems)
    component = _text(record, "component", _CODE, "a component code", problems)
    unit = _text(record, "unit", _UNIT, "a unit such as hour (1 to 32 printable characters)", problems)
    price = _text(record, "price", _MONEY, 'a decimal like "95.50"', problems)
    amount = _text(record, "amount", _MONEY, 'a decimal like "95.50"', problems)
    if price is not None and amount is not None:
        problems.append(Problem(E_MALFORMED, "price", "give price (per unit) or amount (for the line), not both"))
    quantity = _quantity(record.get("quantity"), problems)
    used_at = _timestamp(record.get("timestamp"), problems)
    attributes = _attributes(record.get("attributes"), problems)
    if problems:
        raise LineError(*problems)
    raw = canonical(record)
    return UsageLine(line_id, used_at, used_at.date(), contract, service, component, quantity,
                     int(quantity * _MICRO), unit, price, amount, attributes, raw,
                     hashlib.sha256(raw.encode()).hexdigest())


def _text(record: dict, name: str, pattern: re.Pattern, what: str, problems: list[Problem]) -> str | None:
    value = record.get(name)
    if value is None:
        return None
    if type(value) is int and name in ("price", "amount"):
        value = str(value)
    if type(value) is not str or pattern.fullmatch(value) is None:
        problems.append(Problem(E_MALFORMED, name, f"{show(value)} is not {what}"))
        return None
    return value


def _quantity(value: object, problems: list[Problem]) -> Decimal:
    if type(value) is int and 0 <= value:
        value = str(value)
    if type(value) is not str or _QUANTITY.fullmatch(value) is None:
        problems.append(Problem(E_MALFORMED, "quantity", f"{show(value)} is not a quantity: a decimal string like "
                                '"2.5" (up to 6 decimals, not negative) or an integer'))
        return Decimal(0)
    quantity = Decimal(value)
    if quantity > QUANTITY_PER_LINE_MAX:
        problems.append(Problem(E_MALFORMED, "quantity", f"{value} is more than {QUANTITY_PER_LINE_MAX} units in one "
                                "line; a meter that reports this much is broken"))
    return quantity


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _timestamp(value: object, problems: list[Problem]) -> dt.datetime:
    if type(value) is str and len(value) <= 40:
        if len(value) == 10 and _DATE.fullmatch(value):
            try:
                day = dt.date.fromisoformat(value)
                return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
            except ValueError:
                pass
        else:
            try:
                moment = dt.datetime.fromisoformat(value)
            except ValueError:
                moment = None
            if moment is not None and moment.tzinfo is not None and 1900 <= moment.year <= 9998:
                return moment
            if moment is not None and moment.tzinfo is None:
                problems.append(Problem(E_MALFORMED, "timestamp", f"{show(value)} has no UTC offset: "
                                        'add one, as in "2026-10-05T22:30:00+03:00" or "...Z"'))
                return _EPOCH
    problems.append(Problem(E_MALFORMED, "timestamp", f"{show(value)} is not an ISO 8601 timestamp with a UTC "
                            'offset ("2026-10-05T22:30:00+03:00") or a date ("2026-10-05")'))
    return _EPOCH


def _attributes(value: object, problems: list[Problem]) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        problems.append(Problem(E_MALFORMED, "attributes", "an object of name: text"))
        return ()
    if len(value) > ATTRIBUTES_MAX:
        problems.append(Problem(E_MALFORMED, "attributes", f"{len(value)} attributes; at most {ATTRIBUTES_MAX}"))
        return ()
    pairs = []
    for name, text in value.items():
        if _ATTRIBUTE.fullmatch(name) is None:
            problems.append(Problem(E_MALFORMED, f"attributes.{show(name, 32)}", "a name of a-z, 0-9 and _ (32 at most)"))
        elif type(text) is not str or _ATTRIBUTE_VALUE.fullmatch(text) is None:
            problems.append(Problem(E_MALFORMED, f"attributes.{name}", f"{show(text)} is not 1 to 64 characters of text"))
        else:
            pairs.append((name, text))
    return tuple(sorted(pairs))


class DecodedLines:
    """Text lines of a binary stream, decoded as UTF-8 one by one (a byte-order mark at the
    start is skipped), so that one badly encoded line is rejected on its own instead of
    ending the import. ``bad`` holds the numbers of lines that were not UTF-8; they are
    passed on with replacement characters, and their records are refused."""

    def __init__(self, binary: Iterable[bytes]) -> None:
        self._binary = binary
        self.bad: set[int] = set()

    def __iter__(self) -> Iterator[str]:
        for number, chunk in enumerate(self._binary, start=1):
            if number == 1 and chunk.startswith(b"\xef\xbb\xbf"):
                chunk = chunk[3:]
            try:
                yield chunk.decode("utf-8")
            except UnicodeDecodeError:
                self.bad.add(number)
                yield chunk.decode("utf-8", errors="replace")


def read_lines(binary: Iterable[bytes], file_format: str) -> Iterator[RawLine]:
    """The lines of a usage file in ``file_format`` (csv or jsonl), each with its number."""
    lines = DecodedLines(binary)
    reader = read_csv(lines) if file_format == "csv" else read_json_lines(lines)
    for raw in reader:
        if lines.bad and int(raw.ref) in lines.bad:
            raw = RawLine(raw.ref, raw.text or canonical(raw.record or {}), None,
                          Problem(E_MALFORMED, None, "not UTF-8 text"))
        yield raw


def guess_format(name: str) -> str:
    """csv for *.csv, jsonl otherwise (*.jsonl, *.ndjson, *.json)."""
    return "csv" if name.lower().endswith(".csv") else "jsonl"
