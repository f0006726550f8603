"""Allocation of a transaction price to performance obligations (IFRS 15.73-86). Pure.

Amounts are integer minor units. Every split uses the largest-remainder method, so that
the parts add up exactly to the whole (invariant 10): each part gets the floor of its exact
share, and the cents left over go one by one to the parts with the largest remainders, ties
to the earlier part (a stable, documented order).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction


def split(total_minor: int, weights: Sequence[int | Fraction]) -> list[int]:
    """``total_minor`` split in proportion to ``weights`` (non-negative, not all zero), by
    largest remainder. A negative total splits as its opposite, negated."""
    if total_minor < 0:
        return [-part for part in split(-total_minor, weights)]
    if not weights:
        raise ValueError("nothing to split over")
    if any(w < 0 for w in weights):
        raise ValueError("weights must not be negative")
    scaled = integer_weights(weights)
    whole = sum(scaled)
    if whole == 0:
        raise ValueError("weights must not all be zero")
    # integer arithmetic: each part's floor and remainder of total x weight / whole
    parts, remainders = [], []
    for weight in scaled:
        part, remainder = divmod(total_minor * weight, whole)
        parts.append(part)
        remainders.append(remainder)
    left = total_minor - sum(parts)
    if left:
        order = sorted(range(len(parts)), key=lambda i: (-remainders[i], i))
        for index in order[:left]:
            parts[index] += 1
    return parts


def integer_weights(weights: Sequence[int | Fraction]) -> list[int]:
    """Weights as integers with the same proportions (fractions scaled by their common
    denominator)."""
    if all(type(w) is int for w in weights):
        return list(weights)
    denominator = 1
    for weight in weights:
        d = Fraction(weight).denominator
        denominator = denominator * d // math.gcd(denominator, d)
    return [int(Fraction(w) * denominator) for w in weights]


def allocate(stated_minor: Sequence[int], ssp_minor: Sequence[int], discounts: Sequence[tuple[int, Sequence[int]]] = ()
             ) -> list[int]:
    """The transaction price allocated to each obligation.

    ``stated_minor``: each obligation's price as the contract states it, before discounts;
    ``ssp_minor``: its standalone selling price; ``discounts``: (amount, indexes of the
    obligations it applies to) for each discount (IFRS 15.82: a discount is allocated to the
    obligations it relates to when observable evidence says so; the contract's
    ``applies_to`` records that judgement). The transaction price is the sum of the stated
    prices less the discounts. It is allocated in two steps:

    1. each discount that applies to some obligations only is allocated to those, by their
       standalone selling prices (IFRS 15.82), and their part of the price is what remains;
    2. the rest of the price (the obligations no such discount names, with every discount
       applying to all) is allocated to them by relative standalone selling price (15.76).
    """
    count = len(stated_minor)
    if count != len(ssp_minor):
        raise ValueError("one standalone selling price per obligation")
    everyone = tuple(range(count))
    targeted = [(amount, tuple(sorted(set(to)))) for amount, to in discounts if tuple(sorted(set(to))) != everyone]
    general = sum(amount for amount, to in discounts if tuple(sorted(set(to))) == everyone)
    allocated = [0] * count
    named: set[int] = set()
    for group, amount in _groups(targeted):
        named |= set(group)
        # obligations sharing targeted discounts are allocated together: their stated
        # prices less those discounts, spread by SSP
        price = sum(stated_minor[i] for i in group) - amount
        for index, part in zip(group, _by_ssp(price, [ssp_minor[i] for i in group], [stated_minor[i] for i in group]),
                               strict=True):
            allocated[index] = part
    rest = [i for i in everyone if i not in named]
    if rest:
        price = sum(stated_minor[i] for i in rest) - general
        for index, part in zip(rest, _by_ssp(price, [ssp_minor[i] for i in rest], [stated_minor[i] for i in rest]),
                               strict=True):
            allocated[index] = part
    elif general:
        # every obligation is named by a targeted discount: a general one spreads over all
        for index, part in enumerate(split(-general, ssp_minor if any(ssp_minor) else [1] * count)):
            allocated[index] += part
    return allocated


def _groups(targeted: list[tuple[int, tuple[int, ...]]]) -> list[tuple[list[int], int]]:
    """Targeted discounts merged where they share obligations: (obligations, discount)."""
    groups: list[tuple[set[int], int]] = []
    for amount, to in targeted:
        members, total = set(to), amount
        for other in [g for g in groups if g[0] & members]:
            groups.remove(other)
            members |= other[0]
            total += other[1]
        groups.append((members, total))
    return [(sorted(members), total) for members, total in groups]


def _by_ssp(price_minor: int, ssp_minor: Sequence[int], stated_minor: Sequence[int]) -> list[int]:
    """``price_minor`` by relative SSP; with no SSP at all, by stated price; with neither,
    evenly."""
    if any(ssp_minor):
        return split(price_minor, ssp_minor)
    if any(stated_minor):
        return split(price_minor, stated_minor)
    return split(price_minor, [1] * len(ssp_minor))
