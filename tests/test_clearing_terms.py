"""The agreement arithmetic of clearing runs, at the tier boundaries."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clearing.terms import guarantee_top_up, tiered_commission, window

TIERS = [{"from_minor": 0, "percent": "5"}, {"from_minor": 1_000_000, "percent": "7"},
         {"from_minor": 5_000_000, "percent": "10"}]


@pytest.mark.parametrize(("volume", "marginal", "retroactive"), [
    (0, 0, 0),
    (999_999, 50_000, 50_000),  # 9,999.99 at 5%
    (1_000_000, 50_000, 70_000),  # the boundary reaches the tier: retroactively 7% of all
    (1_000_001, 50_000, 70_000),  # one cent at 7%: 0.07 cents, rounded away
    (3_000_000, 50_000 + 140_000, 210_000),
    (5_000_000, 50_000 + 280_000, 500_000),
    (6_000_000, 50_000 + 280_000 + 100_000, 600_000),
    (-200_000, -10_000, -10_000),  # more credited than sold: the first rate, negative
])
def test_tiers_at_their_boundaries(volume, marginal, retroactive):
    assert tiered_commission(volume, TIERS, "marginal") == marginal
    assert tiered_commission(volume, TIERS, "retroactive") == retroactive


@given(st.integers(0, 10**10))
def test_marginal_never_exceeds_retroactive_and_both_grow_with_volume(volume):
    marginal, retroactive = tiered_commission(volume, TIERS, "marginal"), tiered_commission(volume, TIERS, "retroactive")
    assert marginal <= retroactive
    assert tiered_commission(volume + 100, TIERS, "marginal") >= marginal


def test_a_guarantee_tops_up_and_windows_follow_the_agreement_period():
    assert guarantee_top_up(60_000, 100_000) == 40_000 and guarantee_top_up(120_000, 100_000) == 0
    october = (dt.date(2026, 10, 1), dt.date(2026, 10, 31))
    december = (dt.date(2026, 12, 1), dt.date(2026, 12, 31))
    assert window(*october, "month") == october
    assert window(*october, "quarter") is None and window(*december, "quarter") == (dt.date(2026, 10, 1), december[1])
    assert window(*december, "year") == (dt.date(2026, 1, 1), december[1])
