"""The ecosystem file: companies, partners, customers and contracts loaded in one idempotent
step (docs/ecosystem.md). Everything in it is written in one transaction, or nothing.

    companies: [...]   # operator entities that are not partners (like `ecoledger company add`)
    partners: [...]    # onboarding documents (partners/schemas.py)
    price_plans: [...] # how usage is priced (contracts/schemas.py)
    customers: [...]   # parents before the organisations under them
    contracts: [...]   # contracts with their amendments (contracts/schemas.py)

Loading the same file again changes nothing; a file that adds (partners, agreement versions,
price plans, customers, contracts, amendments) adds that; anything else that differs from what is stored
is a conflict naming the record and field.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from marshmallow import RAISE, Schema, fields, validate
from sqlalchemy import Connection, select

from contracts import service as register
from ledger.chart import ROLES, available_templates
from ledger.companies import create_company
from ledger.database import Database
from ledger.records import E_CONFLICT, E_INVALID, LedgerError, Problem
from ledger.schema import companies
from ledger.schemas import load_document
from partners import service as partners
from partners.schemas import CODE, CURRENCY

SECTIONS = ("companies", "partners", "price_plans", "customers", "contracts")
RECORDS_PER_SECTION_MAX = 10_000


class CompanySpecSchema(Schema):
    class Meta:
        unknown = RAISE

    code = fields.String(required=True, validate=CODE)
    name = fields.String(required=True, validate=validate.Length(1, 200))
    currency = fields.String(required=True, validate=CURRENCY)
    roles = fields.List(fields.String(validate=validate.OneOf(ROLES)), load_default=lambda: ["operator"],
                        validate=validate.Length(1, len(ROLES)))
    template = fields.String(load_default="default", validate=validate.OneOf(available_templates()))
    extra_currencies = fields.List(fields.String(validate=CURRENCY), load_default=list, validate=validate.Length(max=20))
    open_date = fields.Date(load_default=None)


@dataclasses.dataclass
class SectionCounts:
    created: int = 0
    unchanged: int = 0
    updated: int = 0


@dataclasses.dataclass
class LoadReport:
    companies: SectionCounts = dataclasses.field(default_factory=SectionCounts)
    partners: SectionCounts = dataclasses.field(default_factory=SectionCounts)
    price_plans: SectionCounts = dataclasses.field(default_factory=SectionCounts)
    customers: SectionCounts = dataclasses.field(default_factory=SectionCounts)
    contracts: SectionCounts = dataclasses.field(default_factory=SectionCounts)
    # Partner API keys issued by this load: shown once.
    api_keys: list[dict] = dataclasses.field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(getattr(self, s).created or getattr(self, s).updated for s in SECTIONS)


def load_ecosystem(db: Database, document: Any, *, actor: str) -> LoadReport:
    if not isinstance(document, dict):
        raise LedgerError(Problem(E_INVALID, None, "an ecosystem file is a mapping of sections: " + ", ".join(SECTIONS)))
    unknown = sorted(set(document) - set(SECTIONS))
    if unknown:
        raise LedgerError(Problem(E_INVALID, unknown[0], f"unknown section; sections: {', '.join(SECTIONS)}"))
    for section in SECTIONS:
        records = document.get(section) or []
        if not isinstance(records, list) or len(records) > RECORDS_PER_SECTION_MAX:
            raise LedgerError(Problem(E_INVALID, section, f"a list of at most {RECORDS_PER_SECTION_MAX} records"))
    report = LoadReport()
    with db.write() as conn:
        for index, record in enumerate(document.get("companies") or []):
            _in("companies", index, lambda r=record: _company(conn, r, actor, report.companies))
        for index, record in enumerate(document.get("partners") or []):
            _in("partners", index, lambda r=record: _partner(conn, r, actor, report))
        for index, record in enumerate(document.get("price_plans") or []):
            _in("price_plans", index, lambda r=record: _count(report.price_plans, register.upsert_price_plan(conn, r, actor=actor)))
        for index, record in enumerate(document.get("customers") or []):
            _in("customers", index, lambda r=record: _count(report.customers, register.upsert_customer(conn, r, actor=actor)))
        for index, record in enumerate(document.get("contracts") or []):
            _in("contracts", index, lambda r=record: _count(report.contracts, register.upsert_contract(conn, r, actor=actor)[0]))
    return report


def _in(section: str, index: int, action) -> None:
    """Run one record's load; its problems are named by section and position."""
    try:
        action()
    except LedgerError as error:
        raise LedgerError(*(
            p.under(f"{section}[{index}]") for p in error.problems
        )) from None


def _count(counts: SectionCounts, outcome: str) -> None:
    if outcome == register.CREATED:
        counts.created += 1
    elif outcome == register.UNCHANGED:
        counts.unchanged += 1
    else:
        counts.updated += 1


def _company(conn: Connection, record: Any, actor: str, counts: SectionCounts) -> None:
    spec = load_document(CompanySpecSchema(), record, "a company")
    stored = conn.execute(select(companies).where(companies.c.code == spec["code"])).first()
    if stored is None:
        create_company(conn, spec["code"], spec["name"], spec["currency"], actor=actor, roles=spec["roles"],
                       template=spec["template"], extra_currencies=spec["extra_currencies"], open_date=spec["open_date"])
        counts.created += 1
        return
    for field, have, want in (("name", stored.name, spec["name"]), ("currency", stored.functional_currency, spec["currency"]),
                              ("roles", sorted(stored.roles), sorted(set(spec["roles"])))):
        if have != want:
            raise LedgerError(Problem(E_CONFLICT, field, f"company {spec['code']} exists with {have!r}, not {want!r}"))
    counts.unchanged += 1


def _partner(conn: Connection, record: Any, actor: str, report: LoadReport) -> None:
    result = partners.onboard_in(conn, partners.parse_onboarding(record), actor=actor)
    if result.created:
        report.partners.created += 1
    elif result.added_versions:
        report.partners.updated += 1
    else:
        report.partners.unchanged += 1
    if result.token:
        report.api_keys.append({"company": result.partner.code, "api_key_id": result.api_key_id, "token": result.token})
