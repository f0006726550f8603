"""Money as integers in minor units: parsing decimal strings and formatting them back.

Amounts cross ecoledger's boundary as decimal strings in major units (``"100.00"``) and
live inside it as Python ints in minor units. No float ever holds an amount.
"""

from __future__ import annotations

import re

from config.currencies import minor_units
from ledger.records import show as _show

INT64_MAX = 2**63 - 1

# ASCII digits only: \\d would accept other scripts' digits, which int() silently converts.
_AMOUNT_RE = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?")
_POW10 = [10**n for n in range(0, 20)]


class AmountError(ValueError):
    """An amount string that is not a valid amount of its currency."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def parse_amount(text: str, currency: str) -> int:
    """Parse ``"-12.34"`` into minor units of ``currency`` (-1234 for EUR), exactly.

    Refused: anything but an optional minus, ASCII digits and one decimal point; more
    decimals than the currency has (even zeros: ``"1.000"`` is not EUR); values beyond
    64 bits. Raises AmountError with its code (amount_format, amount_precision,
    amount_range, unknown_currency).
    """
    places = minor_units(currency)
    if places is None:
        raise AmountError("unknown_currency", f"unknown currency {currency!r}")
    match = _AMOUNT_RE.fullmatch(text) if len(text) <= 41 else None
    if match is None:
        raise AmountError(
            "amount_format",
            f"{_show(text)} is not a decimal amount like \"-1234.56\" "
            "(digits, one optional point, optional leading minus; no exponent or separators)",
        )
    sign, whole, fraction = match.groups()
    if fraction is None:
        fraction = ""
    if len(fraction) > places:
        raise AmountError(
            "amount_precision",
            f"{_show(text)} has {len(fraction)} decimal places; {currency} has {places}",
        )
    if len(whole) > 19:
        raise AmountError("amount_range", f"{_show(text)} does not fit in 64 bits")
    value = int(whole) * _POW10[places] + (int(fraction.ljust(places, "0")) if places else 0)
    if value > INT64_MAX:
        raise AmountError("amount_range", f"{_show(text)} does not fit in 64 bits of {currency}")
    return -value if sign else value


def format_amount(amount_minor: int, currency: str) -> str:
    """Minor units back to a decimal string with exactly the currency's places."""
    places = minor_units(currency)
    if places is None:
        raise AmountError("unknown_currency", f"unknown currency {currency!r}")
    if places == 0:
        return str(amount_minor)
    sign = "-" if amount_minor < 0 else ""
    whole, fraction = divmod(abs(amount_minor), _POW10[places])
    return f"{sign}{whole}.{fraction:0{places}d}"
