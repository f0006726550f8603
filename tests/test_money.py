"""Money: decimal strings in, integer minor units inside, the same strings out."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.currencies import MINOR_UNITS
from ledger.money import INT64_MAX, AmountError, format_amount, parse_amount


@pytest.mark.parametrize(
    "text, currency, minor",
    [
        ("100.00", "EUR", 10000),
        ("100.0", "EUR", 10000),
        ("100", "EUR", 10000),
        ("-0.01", "EUR", -1),
        ("-0", "EUR", 0),
        ("007.50", "EUR", 750),
        ("1234", "JPY", 1234),
        ("1.234", "KWD", 1234),
        ("0.0001", "CLF", 1),
        ("92233720368547758.07", "EUR", INT64_MAX),
        ("-92233720368547758.07", "EUR", -INT64_MAX),
    ],
)
def test_parses_exactly(text, currency, minor):
    assert parse_amount(text, currency) == minor


@pytest.mark.parametrize(
    "text, currency, code",
    [
        ("1.001", "EUR", "amount_precision"),
        ("1.000", "EUR", "amount_precision"),  # even zeros: EUR has two places
        ("1.5", "JPY", "amount_precision"),
        ("NaN", "EUR", "amount_format"),
        ("Infinity", "EUR", "amount_format"),
        ("-inf", "EUR", "amount_format"),
        ("1e3", "EUR", "amount_format"),
        ("1E-2", "EUR", "amount_format"),
        ("+5", "EUR", "amount_format"),
        ("5.", "EUR", "amount_format"),
        (".5", "EUR", "amount_format"),
        (" 5", "EUR", "amount_format"),
        ("5 ", "EUR", "amount_format"),
        ("1,000.00", "EUR", "amount_format"),
        ("0x10", "EUR", "amount_format"),
        ("", "EUR", "amount_format"),
        ("١٠٠", "EUR", "amount_format"),  # Arabic-Indic digits, which int() would accept
        ("92233720368547758.08", "EUR", "amount_range"),
        ("99999999999999999999", "EUR", "amount_range"),
        ("9" * 5000, "EUR", "amount_format"),
        ("1.00", "XXX", "unknown_currency"),
    ],
)
def test_refuses_with_a_code(text, currency, code):
    with pytest.raises(AmountError) as caught:
        parse_amount(text, currency)
    assert caught.value.code == code


def test_format_pads_to_the_currency():
    assert format_amount(-1, "EUR") == "-0.01"
    assert format_amount(1234, "JPY") == "1234"
    assert format_amount(1234, "KWD") == "1.234"
    assert format_amount(0, "EUR") == "0.00"


@given(
    st.sampled_from(sorted(MINOR_UNITS)),
    st.integers(min_value=-INT64_MAX, max_value=INT64_MAX),
)
def test_round_trip(currency, minor):
    text = format_amount(minor, currency)
    assert parse_amount(text, currency) == minor
    assert Decimal(text) * 10 ** MINOR_UNITS[currency] == minor


def test_well_known_minor_units():
    assert (MINOR_UNITS["EUR"], MINOR_UNITS["JPY"], MINOR_UNITS["BHD"], MINOR_UNITS["CLF"]) == (2, 0, 3, 4)
    assert all(len(code) == 3 and code.isupper() for code in MINOR_UNITS)
