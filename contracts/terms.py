"""The agreement functions posting rules call: vendor_share(x), commission(x), sla_share(x),
bound to a contract, its parties and a date. Shared by contract events and usage lines.

Each applies the partner's agreement version in force on the date, with the contract's
billing company as counterparty. A partner named on a component without the agreement
kind a rule needs is refused (LedgerError naming ``component.<role>``): a share nobody
agreed to is never guessed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

from sqlalchemy import Connection

from contracts.service import Contract
from ledger.records import E_INVALID, E_NOT_FOUND, LedgerError, Problem
from partners.agreements import Agreement
from partners.service import agreements_of

_ZERO = Decimal(0)
_HUNDRED = Decimal(100)


class AgreementTerms:
    """Agreements of the partners met so far, read once per partner (per transaction)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._agreements: dict[str, list[Agreement]] = {}
        # (partner, kind, counterparty, day) -> terms or None: usage lines repeat them
        self._found: dict[tuple, dict | None] = {}

    def terms(self, contract: Contract, partner: str | None, kind: str, day: dt.date) -> dict | None:
        if partner is None:
            return None
        key = (partner, kind, contract.billing_company, day, contract.currency)
        if key in self._found:
            return self._found[key]
        if partner not in self._agreements:
            self._agreements[partner] = agreements_of(self.conn, partner)
        found = None
        for agreement in self._agreements[partner]:
            if agreement.kind == kind and agreement.counterparty == contract.billing_company:
                version = agreement.in_force(day)
                if version is not None:
                    if agreement.currency != contract.currency and any(k.endswith("_minor") for k in version.terms):
                        raise LedgerError(Problem(E_INVALID, "contract", f"agreement {agreement.code} is in "
                                                  f"{agreement.currency}, contract {contract.code} in {contract.currency}"))
                    found = version.terms
                    break
        if len(self._found) >= 100_000:
            self._found.clear()
        self._found[key] = found
        return found

    def functions(self, contract: Contract, parties: dict, day: dt.date,
                  quantity: Decimal | Callable[[], Decimal]) -> dict[str, Callable[[Decimal], Decimal]]:
        """The functions for one date and set of parties. ``quantity`` is the event's, or a
        callable giving the current line's, so that the functions can be built once for
        many usage lines of a day."""
        terms = self.terms

        def required(role: str, kind: str) -> dict | None:
            found = terms(contract, parties.get(role), kind, day)
            if found is None and parties.get(role) is not None:
                raise LedgerError(Problem(E_NOT_FOUND, f"component.{role}", f"no {kind} agreement of {parties[role]} "
                                          f"with {contract.billing_company} in force on {day}"))
            return found

        def vendor_share(price: Decimal) -> Decimal:
            found = required("vendor", "vendor_share")
            if found is None:
                return _ZERO
            if found["basis"] == "percent_of_price":
                return price * Decimal(found["percent"]) / _HUNDRED
            if found["basis"] == "per_unit_cost":
                units = quantity() if callable(quantity) else quantity
                return units * found["unit_cost_minor"] * (1 if price >= 0 else -1)
            return _ZERO  # a fixed cost per period accrues in the clearing run, not per event

        def commission(price: Decimal) -> Decimal:
            found = required("reseller", "reseller_commission")
            if found is None:
                return _ZERO
            # Tiers depend on the period's volume: events accrue at the first tier's rate and
            # the clearing run trues up to the tier reached.
            rate = found.get("percent") or found["tiers"][0]["percent"]
            return price * Decimal(rate) / _HUNDRED

        def sla_share(credit: Decimal) -> Decimal:
            found = terms(contract, parties.get("vendor"), "sla_sharing", day)
            if found is None:
                return _ZERO  # no SLA agreement: the operator bears the credit
            if found["method"] == "borne_by":
                return credit if found["party"] == "partner" else _ZERO
            share = required("vendor", "vendor_share")
            if share is None or share["basis"] != "percent_of_price":
                raise LedgerError(Problem(E_INVALID, "component.vendor", f"pro rata SLA sharing of {parties['vendor']} "
                                          "needs a percent_of_price vendor share in force"))
            return credit * Decimal(share["percent"]) / _HUNDRED

        return {"vendor_share": vendor_share, "commission": commission, "sla_share": sla_share}
