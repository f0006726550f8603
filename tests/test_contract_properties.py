"""Property: whatever the agreement rates and the charges, credits and SLA breaches, the
vendor's and the reseller's books hold exactly what a simple reference model computes
(half-up per event), every intercompany pair is equal and opposite, and the ledger
verifies."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import ROUND_HALF_UP, Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import service
from contracts.events import import_events
from contracts.rules import load_rules
from ecoledger.schema import metadata
from ledger import companies, reports
from ledger.database import Database
from ledger.verify import verify
from partners.service import onboard_partner

RULES = load_rules()
_counter = itertools.count()

rates = st.decimals(min_value=0, max_value=100, places=2)
cents = st.integers(min_value=1, max_value=10_000_000)
events = st.lists(st.tuples(st.sampled_from(["one_off_charge", "credit", "sla_breach"]), cents), min_size=1, max_size=12)


def half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def build(db: Database, share: Decimal, commission: Decimal) -> None:
    start = dt.date(2026, 1, 1)
    companies.add_company(db, "OPFI", "Operator", "EUR", actor="t", roles=["operator"], open_date=start)
    agreement = {"counterparty": "OPFI", "versions": [{"version": 1, "effective_from": "2026-01-01"}]}
    onboard_partner(db, {"code": "FIXR", "name": "Vendor", "currency": "EUR", "roles": ["vendor"], "open_date": "2026-01-01",
                         "api_key": False, "agreements": [
                             {**agreement, "code": "S", "kind": "vendor_share", "versions": [
                                 {**agreement["versions"][0], "terms": {"basis": "percent_of_price", "percent": str(share)}}]},
                             {**agreement, "code": "L", "kind": "sla_sharing", "versions": [
                                 {**agreement["versions"][0], "terms": {"method": "pro_rata"}}]}]}, actor="t")
    onboard_partner(db, {"code": "RESL", "name": "Reseller", "currency": "EUR", "roles": ["reseller"],
                         "open_date": "2026-01-01", "api_key": False, "agreements": [
                             {**agreement, "code": "C", "kind": "reseller_commission", "versions": [
                                 {**agreement["versions"][0], "terms": {"percent": str(commission)}}]}]}, actor="t")
    service.save_customer(db, {"code": "ACME", "name": "Acme", "billing_company": "OPFI", "currency": "EUR"}, actor="t")
    service.save_contract(db, {"code": "K", "customer": "ACME", "billing_company": "OPFI", "currency": "EUR",
                               "start": "2026-01-01", "components": [
                                   {"code": "X", "type": "one_off_fee", "service": "s", "amount": "0", "vendor": "FIXR",
                                    "reseller": "RESL"}]}, actor="t")
    report = import_events(db, enumerate([{"id": "start", "type": "activated", "contract": "K", "date": "2026-01-01"}]),
                           rules=RULES, actor="t")
    assert report.ok


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(share=rates, commission=rates, happenings=events)
def test_partner_books_match_the_reference_model(tmp_path_factory, share, commission, happenings):
    db = Database(f"sqlite:///{tmp_path_factory.mktemp('p')}/l{next(_counter)}.db")
    metadata.create_all(db.engine)
    try:
        build(db, share, commission)
        batch = [{"id": f"e{i}", "type": kind, "contract": "K", "date": "2026-02-01", "amount": f"{amount // 100}.{amount % 100:02d}",
                  "component": "X"} for i, (kind, amount) in enumerate(happenings)]
        report = import_events(db, enumerate(batch), rules=RULES, actor="t")
        assert report.ok, report.outcomes
        vendor = reseller = 0
        for kind, amount in happenings:
            if kind == "one_off_charge":
                vendor += half_up(Decimal(amount) * share / 100)
                reseller += half_up(Decimal(amount) * commission / 100)
            elif kind == "sla_breach":
                vendor -= half_up(Decimal(amount) * share / 100)
        balances = {(line.company, line.account): line.balance_minor for line in reports.trial_balance(db).lines}
        assert balances.get(("FIXR", "Assets:Ecosystem:DueFrom"), 0) == vendor
        assert balances.get(("RESL", "Assets:Ecosystem:DueFrom"), 0) == reseller
        assert balances.get(("OPFI", "Liabilities:Ecosystem:DueTo"), 0) == -(vendor + reseller)
        assert verify(db).ok
    finally:
        db.dispose()
