"""Exchange rates fixed for a netting cycle: the rate table netting converts positions with.

A rate says how many units of ``to_currency`` one unit of ``currency`` buys for the cycle
(a month), with the day it was fixed on and its source (the ECB reference rate, a bank's
fixing). Once recorded for a cycle a rate never changes: the cycle is settled at it. The
same rate again is a duplicate that records nothing; another rate for the same cycle and
pair is a conflict.

Conversion rounds half-up to the target currency's minor units, after scaling between the
two currencies' exponents (JPY has none, EUR two).
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple

from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import Connection, insert, select

from clearing.schema import fx_rates
from config.currencies import MINOR_UNITS
from ledger import audit
from ledger.database import Database
from ledger.records import E_CONFLICT, LedgerError, Problem
from ledger.schemas import PERIOD, load_document
from partners.schemas import CURRENCY, DecimalText, canonical_decimal

RATES_PER_CYCLE_MAX = 500


class FxRate(NamedTuple):
    cycle: str
    currency: str
    to_currency: str
    rate: Decimal  # units of to_currency per unit of currency
    rate_date: dt.date
    source: str
    recorded_at: dt.datetime
    recorded_by: str


class RateField(DecimalText):
    pattern = re.compile(r"[0-9]{1,12}(\.[0-9]{1,10})?")
    what = "a positive rate with up to 10 decimals"

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        number = Decimal(super()._deserialize(value, attr, data, **kwargs))
        if number <= 0:
            raise ValidationError("must be above 0")
        return number


class FxRateSchema(Schema):
    class Meta:
        unknown = "raise"

    cycle = fields.String(required=True, validate=PERIOD, metadata={"description": "the netting cycle (YYYY-MM)"})
    currency = fields.String(required=True, validate=CURRENCY, metadata={"description": "converted from"})
    to_currency = fields.String(required=True, validate=CURRENCY, metadata={"description": "converted to"})
    rate = RateField(required=True, metadata={"description": "units of to_currency per unit of currency",
                                              "anyOf": [{"type": "string"}, {"type": "integer"}]})
    rate_date = fields.Date(required=True, metadata={"description": "the day the rate was fixed"})
    source = fields.String(required=True, validate=validate.Length(1, 200))

    @validates_schema(skip_on_field_errors=True)
    def _two_currencies(self, data: dict, **_: Any) -> None:
        if data["currency"] == data["to_currency"]:
            raise ValidationError({"to_currency": ["a rate converts between two currencies"]})


def record_rate(db: Database, document: Any, *, actor: str) -> tuple[FxRate, bool]:
    """Fix a rate for a cycle; (the rate, whether it is new)."""
    spec = load_document(FxRateSchema(), document, "an exchange rate")
    with db.write() as conn:
        stored = rates_of(conn, spec["cycle"]).get((spec["currency"], spec["to_currency"]))
        if stored is not None:
            if (stored.rate, stored.rate_date, stored.source) == (spec["rate"], spec["rate_date"], spec["source"]):
                return stored, False
            raise LedgerError(Problem(E_CONFLICT, "rate", f"{spec['currency']}/{spec['to_currency']} is fixed for "
                                      f"{spec['cycle']} at {canonical_decimal(stored.rate)} ({stored.source}, "
                                      f"{stored.rate_date}); a cycle's rate never changes"))
        values = {**spec, "rate": canonical_decimal(spec["rate"]), "recorded_at": dt.datetime.now(dt.UTC),
                  "recorded_by": actor[:200]}
        conn.execute(insert(fx_rates).values(**values))
        audit.record(conn, actor=actor, action="fx.rate", target=f"{spec['cycle']} {spec['currency']}/"
                     f"{spec['to_currency']}", details={"rate": values["rate"], "source": spec["source"]})
        return FxRate(**{**values, "rate": spec["rate"]}), True


def rates_of(conn: Connection, cycle: str) -> dict[tuple[str, str], FxRate]:
    """The cycle's rates by (currency, to_currency)."""
    f = fx_rates.c
    return {(row.currency, row.to_currency): FxRate(row.cycle, row.currency, row.to_currency, Decimal(row.rate),
                                                    row.rate_date, row.source, row.recorded_at, row.recorded_by)
            for row in conn.execute(select(fx_rates).where(f.cycle == cycle).order_by(f.currency, f.to_currency)
                                    .limit(RATES_PER_CYCLE_MAX))}


def list_rates(db: Database, cycle: str | None = None) -> list[FxRate]:
    f = fx_rates.c
    query = select(fx_rates).order_by(f.cycle, f.currency, f.to_currency)
    if cycle is not None:
        query = query.where(f.cycle == cycle)
    with db.read() as conn:
        return [FxRate(row.cycle, row.currency, row.to_currency, Decimal(row.rate), row.rate_date, row.source,
                       row.recorded_at, row.recorded_by) for row in conn.execute(query)]


def convert(amount_minor: int, currency: str, to_currency: str, rate: Decimal) -> int:
    """``amount_minor`` of ``currency`` in minor units of ``to_currency``, half-up."""
    major = Decimal(amount_minor).scaleb(-MINOR_UNITS[currency])
    return int((major * rate).scaleb(MINOR_UNITS[to_currency]).quantize(Decimal(1), rounding=ROUND_HALF_UP))
