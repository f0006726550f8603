"""Rating against price plans: tier edges, every model, drivers, and the period property."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.schemas import PricePlanSchema
from ledger.schemas import load_document
from usage.rating import RatingError, discount, factor, prepare_plan, rate

TIERS = [{"up_to": "100", "unit_price": "1.00"}, {"up_to": "1000", "unit_price": "0.80"},
         {"up_to": None, "unit_price": "0.50"}]


def plan(model: str, **terms) -> object:
    document = {"code": "P", "currency": "EUR", "unit": "unit", "model": model, **terms}
    return prepare_plan(load_document(PricePlanSchema(), document, "a price plan"))


def charge(p, quantity: str, before: str = "0", line_factor: str = "1", pre_rated: int | None = None) -> int:
    return rate(p, before=Decimal(before), quantity=Decimal(quantity), factor_=Decimal(line_factor),
                pre_rated_minor=pre_rated).gross_minor


@pytest.mark.parametrize(("quantity", "graduated", "volume"), [
    ("0", 0, 0),
    ("1", 100, 100),
    ("100", 10000, 10000),          # the bound is inclusive: unit 100 is still in the first tier
    ("100.000001", 10000, 8000),    # one millionth into the second tier (volume: all at 0.80, rounded)
    ("101", 10080, 8080),
    ("1000", 82000, 80000),
    ("1001", 82050, 50050),
])
def test_graduated_and_volume_tiers_at_their_edges(quantity, graduated, volume):
    assert charge(plan("graduated", tiers=TIERS), quantity) == graduated
    assert charge(plan("volume", tiers=TIERS), quantity) == volume


def test_graduated_against_volume_over_a_period_of_lines():
    """The same month of usage (60 + 60 + 900 units) priced both ways, line by line."""
    graduated = plan("graduated", tiers=TIERS, period="month")
    volume = plan("volume", tiers=TIERS, period="month")
    lines = ["60", "60", "900"]
    before = Decimal(0)
    g, v = [], []
    for quantity in lines:
        g.append(charge(graduated, quantity, str(before)))
        v.append(charge(volume, quantity, str(before)))
        before += Decimal(quantity)
    assert g == [6000, 40 * 100 + 20 * 80, 880 * 80 + 20 * 50]  # 60 @1; 40 @1 + 20 @0.8; 880 @0.8 + 20 @0.5
    assert sum(g) == 100 * 100 + 900 * 80 + 20 * 50
    # volume: 1020 units all at 0.50; the line crossing a tier re-prices the earlier units
    assert v == [6000, 120 * 80 - 6000, 1020 * 50 - 120 * 80]
    assert sum(v) == 1020 * 50


def test_tier_flat_fees_are_charged_once_when_the_tier_is_entered():
    tiers = [{"up_to": "10", "unit_price": "0", "flat_fee": "5.00"}, {"up_to": None, "unit_price": "1.00", "flat_fee": "2.00"}]
    p = plan("graduated", tiers=tiers, period="month")
    assert charge(p, "3") == 500
    assert charge(p, "7", before="3") == 0
    assert charge(p, "1", before="10") == 100 + 200


def test_package_rounds_up_after_free_units():
    p = plan("package", package_size="10", package_price="4.00", free_units="5")
    assert [charge(p, q) for q in ("5", "5.5", "15", "15.000001", "25")] == [0, 400, 400, 800, 800]


def test_percentage_with_minimum_and_maximum():
    p = plan("percentage", percent="2.5", minimum="1.00", maximum="50.00")
    assert charge(p, "1", pre_rated=1000) == 100  # 2.5% of 10.00 = 0.25, raised to the minimum
    assert charge(p, "1", pre_rated=100000) == 2500
    assert charge(p, "1", pre_rated=10_000_000) == 5000
    with pytest.raises(RatingError) as error:
        charge(p, "1")
    assert error.value.field == "amount"


def test_allowance_then_overage_with_a_night_uplift():
    p = plan("allowance", included="5", period="month", overage_unit_price="80.00",
             drivers=[{"attribute": "shift", "values": {"day": "1", "night": "1.5"}}])
    assert charge(p, "4") == 0
    assert charge(p, "2", before="4", line_factor=str(factor(p, {"shift": "night"}, dt.date(2026, 10, 5), lambda d: False))) == 12000
    assert charge(p, "1", before="6") == 8000


def test_drivers_multiply_and_name_what_is_missing():
    p = plan("per_unit", unit_price="95.00", drivers=[
        {"attribute": "employee_level", "values": {"technician": "1", "specialist": "1.4"}},
        {"calendar": "weekend", "multiplier": "1.5"}, {"calendar": "holiday", "multiplier": "2"}])
    saturday, monday = dt.date(2026, 10, 10), dt.date(2026, 10, 5)
    never = lambda day: False  # noqa: E731
    assert factor(p, {"employee_level": "specialist"}, saturday, never) == Decimal("2.1")
    assert factor(p, {"employee_level": "technician"}, monday, lambda day: True) == 2
    with pytest.raises(RatingError, match="has none") as missing:
        factor(p, {}, monday, never)
    assert missing.value.field == "attributes.employee_level"
    with pytest.raises(RatingError, match="'boss' is not"):
        factor(p, {"employee_level": "boss"}, monday, never)


def test_line_rounding_is_half_up_and_discounts_do_not_compound():
    p = plan("per_unit", unit_price="0.125")
    assert charge(p, "1") == 13  # 12.5 cents, half up
    assert discount(1000, (Decimal("10"), Decimal("5"))) == 150
    assert discount(5, (Decimal("10"),)) == 1  # 0.5 cent, half up


@settings(max_examples=200, deadline=None)
@given(model=st.sampled_from(["graduated", "volume", "allowance", "per_unit"]),
       quantities=st.lists(st.decimals(min_value=0, max_value=700, places=2), min_size=1, max_size=12))
def test_a_period_of_lines_adds_up_to_the_price_of_its_total(model, quantities):
    """Whatever the split into lines, the exact line charges add up to P(total); each line
    is rounded once, so the rounded sum is within half a cent per line."""
    terms = {"graduated": {"tiers": TIERS, "period": "month"}, "volume": {"tiers": TIERS, "period": "month"},
             "allowance": {"included": "150", "period": "month", "overage_unit_price": "0.33"},
             "per_unit": {"unit_price": "0.333"}}[model]
    p = plan(model, **terms)
    before, exact_sum, rounded_sum = Decimal(0), Decimal(0), 0
    for quantity in quantities:
        rated = rate(p, before=before, quantity=quantity, factor_=Decimal(1), pre_rated_minor=None)
        exact_sum += rated.exact
        rounded_sum += rated.gross_minor
        before += quantity
    assert exact_sum == p.price(before)
    assert abs(rounded_sum - p.price(before)) <= Decimal("0.5") * len(quantities)
