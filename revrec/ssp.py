"""The standalone selling price table (IFRS 15.76-80), read from YAML (config/ssp.yaml).

Each price names its service, customer segment, currency, the day it takes effect, its
amount per month of service (``per: month``) or per occurrence (``per: unit``), and the
method that established it: ``observable`` (sold separately), ``adjusted_market``,
``expected_cost_plus_margin``, or ``residual`` (15.79(c): no amount; the obligation gets what
the transaction price leaves after the others' standalone selling prices). The table is an
input of the controller's judgement: the schedule names, for each obligation, the entry and
method it used.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from marshmallow import ValidationError, fields, validate, validates_schema

from contracts.schemas import LOCAL_CODE
from ledger.records import E_INVALID, LedgerError, Problem
from partners.schemas import CURRENCY, Money, Strict, to_minor

DEFAULT_SSP_TABLE = Path(__file__).resolve().parent.parent / "config" / "ssp.yaml"
METHODS = ("observable", "adjusted_market", "expected_cost_plus_margin", "residual")
PER = ("month", "unit")
DEFAULT_SEGMENT = "default"
SSP_PRICES_MAX = 100_000
SSP_TABLE_BYTES_MAX = 16 * 1024 * 1024


class SspPrice(NamedTuple):
    service: str
    segment: str
    currency: str
    effective_from: dt.date
    amount_minor: int | None  # None with the residual method
    per: str
    method: str
    note: str


class _PriceSchema(Strict):
    service = fields.String(required=True, validate=LOCAL_CODE)
    segment = fields.String(load_default=DEFAULT_SEGMENT, validate=LOCAL_CODE)
    currency = fields.String(required=True, validate=CURRENCY)
    effective_from = fields.Date(required=True)
    amount = Money()
    per = fields.String(required=True, validate=validate.OneOf(PER))
    method = fields.String(required=True, validate=validate.OneOf(METHODS))
    note = fields.String(load_default="", validate=validate.Length(max=500))

    @validates_schema(skip_on_field_errors=True)
    def _amount_unless_residual(self, data: dict, **_: Any) -> None:
        if data["method"] == "residual" and data.get("amount") is not None:
            raise ValidationError({"amount": ["not used by the residual method: the price is what the others leave"]})
        if data["method"] != "residual" and data.get("amount") is None:
            raise ValidationError({"amount": [f"required for the {data['method']} method"]})


class _TableSchema(Strict):
    segments = fields.Dict(keys=fields.String(validate=LOCAL_CODE),
                           values=fields.List(fields.String(validate=LOCAL_CODE), validate=validate.Length(max=100_000)),
                           load_default=dict)
    prices = fields.List(fields.Nested(_PriceSchema), required=True, validate=validate.Length(max=SSP_PRICES_MAX))


class SspTable:
    """Prices by (service, segment, currency), latest effective date last."""

    def __init__(self, prices: list[SspPrice], segments: dict[str, str], source: str) -> None:
        self.source = source
        self.segment_of_customer = segments
        self._prices: dict[tuple[str, str, str], list[SspPrice]] = {}
        for price in sorted(prices, key=lambda p: p.effective_from):
            self._prices.setdefault((price.service, price.segment, price.currency), []).append(price)

    def segment(self, customers: tuple[str, ...]) -> str:
        """The segment of a customer, given it and the organisations above it, nearest first."""
        for code in customers:
            if code in self.segment_of_customer:
                return self.segment_of_customer[code]
        return DEFAULT_SEGMENT

    def price(self, service: str, segment: str, currency: str, day: dt.date) -> SspPrice | None:
        """The entry in force on ``day``: the segment's own, else the default segment's."""
        for seg in dict.fromkeys((segment, DEFAULT_SEGMENT)):
            found = None
            for price in self._prices.get((service, seg, currency), ()):
                if price.effective_from <= day:
                    found = price
            if found is not None:
                return found
        return None


def parse_ssp_table(text: str, source: str) -> SspTable:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise LedgerError(Problem(E_INVALID, "ssp_table", f"{source}: not YAML: {exc}")) from None
    try:
        data = _TableSchema().load(raw if isinstance(raw, dict) else {"prices": raw})
    except ValidationError as exc:
        raise LedgerError(*_problems(exc.messages, source)) from None
    problems: list[Problem] = []
    prices = []
    for index, price in enumerate(data["prices"]):
        errors: dict = {}
        amount = to_minor(price["amount"], price["currency"], errors, ("prices", index, "amount")) if (
            price.get("amount") is not None) else None
        if errors:
            problems += _problems(errors, source)
            continue
        prices.append(SspPrice(price["service"], price["segment"], price["currency"], price["effective_from"], amount,
                               price["per"], price["method"], price["note"]))
    segments: dict[str, str] = {}
    for segment, customers in data["segments"].items():
        for customer in customers:
            if segments.setdefault(customer, segment) != segment:
                problems.append(Problem(E_INVALID, f"segments.{segment}", f"{source}: customer {customer} is also "
                                        f"in segment {segments[customer]}"))
    if problems:
        raise LedgerError(*problems)
    return SspTable(prices, segments, source)


def load_ssp_table(path: str | Path | None = None) -> SspTable:
    path = Path(path or DEFAULT_SSP_TABLE)
    try:
        if path.stat().st_size > SSP_TABLE_BYTES_MAX:
            raise LedgerError(Problem(E_INVALID, "ssp_table", f"{path}: larger than {SSP_TABLE_BYTES_MAX} bytes"))
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LedgerError(Problem(E_INVALID, "ssp_table", f"{path}: cannot read: {exc}")) from None
    return parse_ssp_table(text, str(path))


def _problems(messages: Any, source: str, path: str = "") -> list[Problem]:
    """marshmallow's nested messages as problems naming the field path."""
    if isinstance(messages, dict):
        found = []
        for key, value in messages.items():
            found += _problems(value, source, f"{path}.{key}" if path else str(key))
        return found
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [Problem(E_INVALID, path or "ssp_table", f"{source}: {'; '.join(messages)}")]
    return [Problem(E_INVALID, path or "ssp_table", f"{source}: {messages}")]
