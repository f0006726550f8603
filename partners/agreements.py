"""Agreements: what a partner earns or pays, versioned and effective-dated. Pure domain code.

Kinds and their terms (rates are percentages 0 to 100 with up to 4 decimals, as Decimal;
money is integer minor units in the agreement's currency):

- ``vendor_share``: the vendor's part of what the customer pays for what it delivers.
  ``basis`` is ``percent_of_price`` (``percent``), ``per_unit_cost`` (``unit_cost_minor``
  per ``unit``) or ``fixed_cost`` (``fixed_cost_minor`` per ``period``); optional
  ``minimum_guarantee_minor`` per ``period`` (topped up by clearing).
- ``reseller_commission``: ``percent`` of the contract value it sold, or ``tiers`` over the
  period volume (``[{from_minor, percent}]``, the first from 0) applied ``marginal`` or
  ``retroactive``; ``clawback_days``: refunds and credits within that many days of the
  original charge take the commission back. Besides what it earns on each charge, a
  reseller may earn a commission for obtaining a contract, posted when the contract is
  activated: ``acquisition_percent`` of the first year's value of the components it sold
  (their recurring fees over the contract's first twelve months, or its term when shorter,
  and their one-off fees) or a fixed ``acquisition_minor``. It is an incremental cost of
  obtaining the contract, which the operator capitalises (IFRS 15.91, revrec/costs.py).
- ``transfer_price`` between operator entities: ``cost_plus`` (``markup_percent``),
  ``pass_through`` (at cost) or ``resale_minus`` (``margin_percent``).
- ``sla_sharing``: ``pro_rata`` (the partner bears SLA credits in proportion to its share)
  or ``borne_by`` ``operator`` or ``partner``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, NamedTuple

from ledger.records import E_INVALID, Problem

PERIODS = ("month", "quarter", "year")
TIER_MODES = ("marginal", "retroactive")
AGREEMENT_VERSIONS_MAX = 100
TIERS_MAX = 20
CLAWBACK_DAYS_MAX = 3_650


class AgreementVersion(NamedTuple):
    version: int
    effective_from: dt.date
    effective_to: dt.date | None
    terms: dict[str, Any]

    def covers(self, day: dt.date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)


class Agreement(NamedTuple):
    code: str
    kind: str
    company: str
    counterparty: str
    currency: str
    versions: tuple[AgreementVersion, ...]

    def in_force(self, day: dt.date) -> AgreementVersion | None:
        """The version that applies to an event of this date, or None (not in force)."""
        for version in self.versions:
            if version.covers(day):
                return version
        return None


def check_versions(versions: Sequence[AgreementVersion], field: str) -> list[Problem]:
    """Versions are numbered 1, 2, ... in the order of their dates and never overlap."""
    problems: list[Problem] = []
    if not versions:
        return [Problem(E_INVALID, field, "an agreement needs at least one version")]
    if len(versions) > AGREEMENT_VERSIONS_MAX:
        return [Problem(E_INVALID, field, f"has {len(versions)} versions; at most {AGREEMENT_VERSIONS_MAX}")]
    ordered = sorted(versions, key=lambda v: v.version)
    for index, version in enumerate(ordered):
        where = f"{field}[{index}]"
        if version.version != index + 1:
            problems.append(Problem(E_INVALID, f"{where}.version", f"versions are numbered 1, 2, ...; found {version.version} at position {index + 1}"))
        if version.effective_to is not None and version.effective_to < version.effective_from:
            problems.append(Problem(E_INVALID, f"{where}.effective_to", f"{version.effective_to} is before effective_from {version.effective_from}"))
        if index:
            previous = ordered[index - 1]
            if previous.effective_to is None or previous.effective_to >= version.effective_from:
                ends = "is open-ended" if previous.effective_to is None else f"runs to {previous.effective_to}"
                problems.append(Problem(
                    E_INVALID, f"{where}.effective_from",
                    f"version {version.version} from {version.effective_from} overlaps version {previous.version}, "
                    f"which {ends}; end version {previous.version} the day before",
                ))
    return problems


def check_terms(kind: str, terms: dict[str, Any], field: str) -> list[Problem]:
    """Rules between fields that a field-by-field schema cannot say."""
    problems: list[Problem] = []

    def need(name: str, why: str) -> None:
        if terms.get(name) is None:
            problems.append(Problem(E_INVALID, f"{field}.{name}", f"required {why}"))

    def refuse(name: str, why: str) -> None:
        if terms.get(name) is not None:
            problems.append(Problem(E_INVALID, f"{field}.{name}", f"not allowed {why}"))

    if kind == "vendor_share":
        basis = terms.get("basis")
        for name, wanted in (("percent", "percent_of_price"), ("unit_cost_minor", "per_unit_cost"),
                             ("fixed_cost_minor", "fixed_cost")):
            (need if basis == wanted else refuse)(name, f"when basis is {basis}")
        (need if basis == "per_unit_cost" else refuse)("unit", f"when basis is {basis}")
        if basis == "fixed_cost" or terms.get("minimum_guarantee_minor") is not None:
            need("period", "for a fixed cost or a minimum guarantee")
    elif kind == "reseller_commission":
        has_percent, tiers = terms.get("percent") is not None, terms.get("tiers")
        if has_percent == bool(tiers):
            problems.append(Problem(E_INVALID, f"{field}.percent", "give either percent or tiers, not both or neither"))
        if tiers:
            need("tier_mode", "with tiers")
            need("period", "with tiers (the volume they count)")
            starts = [tier["from_minor"] for tier in tiers]
            if starts[0] != 0:
                problems.append(Problem(E_INVALID, f"{field}.tiers[0].from", "the first tier starts at 0"))
            for index in range(1, len(starts)):
                if starts[index] <= starts[index - 1]:
                    problems.append(Problem(E_INVALID, f"{field}.tiers[{index}].from", "tiers start in increasing order"))
        if terms.get("acquisition_percent") is not None and terms.get("acquisition_minor") is not None:
            problems.append(Problem(E_INVALID, f"{field}.acquisition_percent",
                                    "give acquisition_percent or acquisition, not both"))
    elif kind == "transfer_price":
        method = terms.get("method")
        (need if method == "cost_plus" else refuse)("markup_percent", f"when method is {method}")
        (need if method == "resale_minus" else refuse)("margin_percent", f"when method is {method}")
    elif kind == "sla_sharing":
        (need if terms.get("method") == "borne_by" else refuse)("party", f"when method is {terms.get('method')}")
    if kind != "reseller_commission":
        for name in ("acquisition_percent", "acquisition_minor"):
            refuse(name, "except in a reseller_commission")
    return problems

