"""Rating: the price of a usage line from its contract's price plan. Pure functions.

Every model is a price function P(q): the charge, in minor units (exact decimals, not yet
rounded), for the first q units of a rating period. A line that takes the period's counter
from q0 to q1 is charged P(q1) - P(q0), times the factors of its price drivers, rounded
half-up to the minor unit (line-level rounding; the unrounded amount is kept for billing
runs that round per document). Over a period the lines add up to P(total) whatever their
order, so tiers and allowances are priced exactly; rating the same lines in the same order
gives the same amounts.

Models (contracts/schemas.py, PricePlanSchema):

- per_unit: P(q) = q x unit_price.
- graduated: each unit at the price of the tier it falls in; a tier's flat fee once the
  period's quantity enters it.
- volume: all units of the period at the price of the tier the total reaches (plus its flat
  fee). The line that takes the total into a cheaper tier carries the re-pricing of the
  period's earlier units, so its charge can be negative; the period's sum stays exact.
- package: ceil((q - free_units) / package_size) packages at package_price, per line.
- percentage: percent of the line's pre-rated amount, clamped to minimum and maximum.
- allowance: the included units of the period free, then overage_unit_price per unit.

Tier bounds are inclusive: with ``up_to: 100``, unit 100 is in the first tier and unit
100.000001 in the next.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import NamedTuple

from config.currencies import minor_units

MICRO = Decimal("0.000001")
_ZERO = Decimal(0)
_ONE = Decimal(1)
_HUNDRED = Decimal(100)

# A plan's rating period (``period: month|quarter|year``) as billing-period frequencies.
PLAN_PERIOD_FREQUENCY = {"month": "monthly", "quarter": "quarterly", "year": "yearly"}


class RatingError(ValueError):
    """A line the plan cannot price; ``field`` names the line's field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class Plan(NamedTuple):
    """A stored price plan, prepared for rating: prices in minor units as exact decimals."""

    code: str
    currency: str
    unit: str
    model: str
    period: str | None  # month, quarter, year: the plan counts per period; None: per line
    price: Callable[[Decimal], Decimal]  # P(q), minor units, unrounded
    percent: Decimal | None
    minimum_minor: int | None
    maximum_minor: int | None
    included: Decimal | None  # allowance: units included per period
    attribute_drivers: tuple[tuple[str, Mapping[str, Decimal]], ...]
    calendar_drivers: tuple[tuple[str, Decimal], ...]


class Rated(NamedTuple):
    gross_minor: int
    exact: Decimal  # unrounded, minor units
    factor: Decimal


def prepare_plan(document: Mapping) -> Plan:
    """A plan document as stored (contracts.schemas.PricePlanSchema, money in minor units)."""
    currency = document["currency"]
    scale = Decimal(10) ** minor_units(currency)
    model = document["model"]

    def minor(major_text: str | None) -> Decimal | None:
        return None if major_text is None else Decimal(major_text) * scale

    if model == "per_unit":
        unit_price = minor(document["unit_price"])
        price = _per_unit(unit_price)
    elif model in ("graduated", "volume"):
        tiers = [(None if t["up_to"] is None else Decimal(t["up_to"]), minor(t["unit_price"]),
                  Decimal(t.get("flat_fee_minor") or 0)) for t in document["tiers"]]
        price = _graduated(tiers) if model == "graduated" else _volume(tiers)
    elif model == "package":
        price = _package(Decimal(document["package_size"]), Decimal(document["package_price_minor"]),
                         Decimal(document.get("free_units") or 0))
    elif model == "allowance":
        price = _allowance(Decimal(document["included"]), minor(document["overage_unit_price"]))
    elif model == "percentage":
        price = _per_unit(_ZERO)  # priced from the line's amount, see rate()
    else:
        raise ValueError(f"unknown price model {model!r}")
    attribute_drivers, calendar_drivers = [], []
    for driver in document.get("drivers") or ():
        if "attribute" in driver:
            attribute_drivers.append((driver["attribute"], {k: Decimal(v) for k, v in driver["values"].items()}))
        else:
            calendar_drivers.append((driver["calendar"], Decimal(driver["multiplier"])))
    return Plan(
        document["code"], currency, document["unit"], model, document.get("period"), price,
        None if document.get("percent") is None else Decimal(document["percent"]),
        document.get("minimum_minor"), document.get("maximum_minor"),
        None if model != "allowance" else Decimal(document["included"]),
        tuple(attribute_drivers), tuple(calendar_drivers))


def _per_unit(unit_price: Decimal) -> Callable[[Decimal], Decimal]:
    return lambda q: q * unit_price


def _graduated(tiers: list[tuple[Decimal | None, Decimal, Decimal]]) -> Callable[[Decimal], Decimal]:
    def price(q: Decimal) -> Decimal:
        total, lower = _ZERO, _ZERO
        for up_to, unit_price, flat_fee in tiers:
            if q <= lower and (q == 0 or lower > 0):
                break  # the period has not entered this tier (the first one is entered by any unit)
            upper = q if up_to is None else min(q, up_to)
            total += (upper - lower) * unit_price + flat_fee
            if up_to is None:
                break
            lower = up_to
        return total

    return price


def _volume(tiers: list[tuple[Decimal | None, Decimal, Decimal]]) -> Callable[[Decimal], Decimal]:
    def price(q: Decimal) -> Decimal:
        if q == 0:
            return _ZERO
        for up_to, unit_price, flat_fee in tiers:
            if up_to is None or q <= up_to:
                return q * unit_price + flat_fee
        raise AssertionError("the last tier is open-ended")  # PricePlanSchema guarantees it

    return price


def _package(size: Decimal, package_price: Decimal, free: Decimal) -> Callable[[Decimal], Decimal]:
    def price(q: Decimal) -> Decimal:
        billable = q - free
        if billable <= 0:
            return _ZERO
        return (billable / size).to_integral_value(rounding=ROUND_CEILING) * package_price

    return price


def _allowance(included: Decimal, overage: Decimal) -> Callable[[Decimal], Decimal]:
    return lambda q: max(q - included, _ZERO) * overage


def factor(plan: Plan, attributes: Mapping[str, str], day: dt.date, is_holiday: Callable[[dt.date], bool]) -> Decimal:
    """The product of the line's driver factors: one per attribute driver (the line must
    carry the attribute, with a listed value), and each calendar multiplier whose day it is."""
    result = _ONE
    for attribute, values in plan.attribute_drivers:
        value = attributes.get(attribute)
        if value is None:
            raise RatingError(f"attributes.{attribute}", f"price plan {plan.code} prices by {attribute}; "
                              f"the line has none (values: {', '.join(sorted(values))})")
        found = values.get(value)
        if found is None:
            raise RatingError(f"attributes.{attribute}", f"{value!r} is not a {attribute} of price plan {plan.code} "
                              f"(values: {', '.join(sorted(values))})")
        result *= found
    for calendar, multiplier in plan.calendar_drivers:
        if (calendar == "weekend" and day.weekday() >= 5) or (calendar == "holiday" and is_holiday(day)):
            result *= multiplier
    return result


def rate(plan: Plan, *, before: Decimal, quantity: Decimal, factor_: Decimal, pre_rated_minor: int | None) -> Rated:
    """The gross charge of one line that moves its period's counter from ``before`` by
    ``quantity`` (``before`` is 0 for plans that price per line)."""
    if plan.model == "percentage":
        if pre_rated_minor is None:
            raise RatingError("amount", f"price plan {plan.code} charges a percentage of the line's amount; "
                              "the line has none")
        exact = Decimal(pre_rated_minor) * plan.percent / _HUNDRED
        if plan.minimum_minor is not None:
            exact = max(exact, Decimal(plan.minimum_minor))
        if plan.maximum_minor is not None:
            exact = min(exact, Decimal(plan.maximum_minor))
        return Rated(round_half_up(exact), exact, _ONE)
    start = before if plan.period else _ZERO
    exact = (plan.price(start + quantity) - plan.price(start)) * factor_
    return Rated(round_half_up(exact), exact, factor_)


def discount(gross_minor: int, percents: tuple[Decimal, ...]) -> int:
    """The discount on a line: each discount component's percent of the gross, rounded
    half-up, summed (discounts do not compound)."""
    return sum(round_half_up(Decimal(gross_minor) * p / _HUNDRED) for p in percents)


def round_half_up(value: Decimal) -> int:
    """Half away from zero, the ledger's default rounding (GUIDE.md, conventions)."""
    return int(value.quantize(_ONE, rounding=ROUND_HALF_UP))
