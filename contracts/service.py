"""The contract register: customers and versioned contracts, loaded idempotently.

The same document again changes nothing; a contract document that only adds amendments
(new versions after the stored ones) adds them; anything else that differs is a conflict
naming the field: a contract in force is changed by an amendment, never rewritten.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, NamedTuple

from sqlalchemy import Connection, insert, select

from contracts.schema import contract_versions, contracts, customers, price_plans
from contracts.schemas import ContractSchema, CustomerSchema, PricePlanSchema
from ledger import audit
from ledger.database import Database
from ledger.hashing import document_hash, document_json
from ledger.interchange import check_text
from ledger.records import E_CONFLICT, E_INVALID, E_NOT_FOUND, E_UNKNOWN_COMPANY, LedgerError, Problem, show
from ledger.schema import accounts, companies
from ledger.schemas import load_document
from partners.schema import partners

CREATED, UNCHANGED, AMENDED = "created", "unchanged", "amended"
RECEIVABLES = "Assets:Receivables:Customers"


class Customer(NamedTuple):
    code: str
    name: str
    billing_company: str
    currency: str
    parent: str | None
    cost_centre: str | None
    region: str | None = None  # as loaded; customer_regions resolves inheritance


class ContractVersion(NamedTuple):
    version: int
    effective_from: dt.date
    components: tuple[dict, ...]
    currency: str
    modification: dict | None = None  # an amendment's path and reason (revrec)

    def component(self, code: str) -> dict | None:
        return next((c for c in self.components if c["code"] == code), None)


class Contract(NamedTuple):
    id: int
    code: str
    customer: str
    billing_company: str
    currency: str
    start: dt.date
    end: dt.date | None
    billing_frequency: str
    billing_day: int
    status: str
    status_since: dt.date | None
    versions: tuple[ContractVersion, ...]
    contract_costs: dict | None = None  # amortisation months and reason (revrec/costs.py)

    def version_at(self, day: dt.date) -> ContractVersion:
        """The version in force on ``day`` (version 1 before the first amendment)."""
        found = self.versions[0]
        for version in self.versions:
            if version.effective_from <= day:
                found = version
        return found


# --- customers -------------------------------------------------------------------------------


def save_customer(db: Database, document: Any, *, actor: str) -> str:
    with db.write() as conn:
        return upsert_customer(conn, document, actor=actor)


def upsert_customer(conn: Connection, document: Any, *, actor: str) -> str:
    """Create a customer, or confirm one loaded with the same document (CREATED, UNCHANGED)."""
    spec = load_document(CustomerSchema(), document, "a customer")
    problems: list[Problem] = []
    check_text(spec["name"], "name", 200, problems)
    if problems:
        raise LedgerError(*problems)
    digest = document_hash(spec)
    stored = conn.execute(select(customers.c.document_hash).where(customers.c.code == spec["code"])).first()
    if stored is not None:
        if stored.document_hash == digest:
            return UNCHANGED
        raise LedgerError(Problem(E_CONFLICT, "code", f"customer {spec['code']} was loaded with other data"))
    billing = _operator_company(conn, spec["billing_company"], "billing_company")
    _check_currency_billable(conn, billing, spec["billing_company"], spec["currency"], "currency")
    parent_id = None
    if spec["parent"] is not None:
        parent_id = conn.execute(select(customers.c.id).where(customers.c.code == spec["parent"])).scalar()
        if parent_id is None:
            raise LedgerError(Problem(E_NOT_FOUND, "parent", f"no customer {show(spec['parent'])} (load parents first)"))
    conn.execute(insert(customers).values(
        code=spec["code"], name=spec["name"], billing_company_id=billing, currency=spec["currency"], parent_id=parent_id,
        cost_centre=spec["cost_centre"], region=spec.get("region"), document_hash=digest,
        created_at=dt.datetime.now(dt.UTC)))
    audit.record(conn, actor=actor, action="customer.add", target=spec["code"],
                 details={"billing_company": spec["billing_company"], "parent": spec["parent"]})
    return CREATED


def list_customers(db: Database) -> list[Customer]:
    parent = customers.alias("parent")
    query = (select(customers.c.code, customers.c.name, companies.c.code.label("billing"), customers.c.currency,
                    parent.c.code.label("parent_code"), customers.c.cost_centre, customers.c.region)
             .join(companies, companies.c.id == customers.c.billing_company_id)
             .outerjoin(parent, parent.c.id == customers.c.parent_id)
             .order_by(customers.c.code))
    with db.read() as conn:
        return [Customer(*row) for row in conn.execute(query)]


def _operator_company(conn: Connection, code: str, field: str) -> int:
    row = conn.execute(select(companies.c.id, companies.c.roles).where(companies.c.code == code)).first()
    if row is None:
        raise LedgerError(Problem(E_UNKNOWN_COMPANY, field, f"no company {show(code)}"))
    if "operator" not in row.roles:
        raise LedgerError(Problem(E_INVALID, field, f"{code} is not an operator entity; only those bill customers"))
    return row.id


def _check_currency_billable(conn: Connection, company_id: int, code: str, currency: str, field: str) -> None:
    allowed = conn.execute(select(accounts.c.currencies).where(
        accounts.c.company_id == company_id, accounts.c.name == RECEIVABLES)).scalar()
    if allowed is None:
        raise LedgerError(Problem(E_INVALID, field, f"{code} has no {RECEIVABLES} account to bill from"))
    if currency not in allowed:
        raise LedgerError(Problem(E_INVALID, field, f"{code} does not bill in {currency} (its {RECEIVABLES} takes "
                                  f"{', '.join(allowed)})"))


# --- price plans -----------------------------------------------------------------------------


class PricePlan(NamedTuple):
    code: str
    currency: str
    model: str
    document: dict


def save_price_plan(db: Database, document: Any, *, actor: str) -> str:
    with db.write() as conn:
        return upsert_price_plan(conn, document, actor=actor)


def upsert_price_plan(conn: Connection, document: Any, *, actor: str) -> str:
    """Create a price plan, or confirm one loaded with the same document. A plan never
    changes: a new price is a new plan, named by a contract amendment."""
    spec = load_document(PricePlanSchema(), document, "a price plan")
    digest = document_hash(spec)
    stored = conn.execute(select(price_plans.c.document_hash).where(price_plans.c.code == spec["code"])).first()
    if stored is not None:
        if stored.document_hash == digest:
            return UNCHANGED
        raise LedgerError(Problem(E_CONFLICT, "code", f"price plan {spec['code']} was loaded with other terms; "
                                  "a new price is a new plan"))
    conn.execute(insert(price_plans).values(code=spec["code"], currency=spec["currency"], model=spec["model"],
                                            document=document_json(spec), document_hash=digest,
                                            created_at=dt.datetime.now(dt.UTC)))
    audit.record(conn, actor=actor, action="price_plan.add", target=spec["code"], details={"model": spec["model"]})
    return CREATED


def list_price_plans(db: Database) -> list[PricePlan]:
    with db.read() as conn:
        rows = conn.execute(select(price_plans).order_by(price_plans.c.code)).all()
    return [PricePlan(r.code, r.currency, r.model, json.loads(r.document)) for r in rows]


# --- contracts -------------------------------------------------------------------------------


def save_contract(db: Database, document: Any, *, actor: str) -> tuple[str, tuple[int, ...]]:
    with db.write() as conn:
        return upsert_contract(conn, document, actor=actor)


def upsert_contract(conn: Connection, document: Any, *, actor: str) -> tuple[str, tuple[int, ...]]:
    """Create a contract, confirm it, or add its new amendments: (CREATED | UNCHANGED |
    AMENDED, versions added)."""
    spec = load_document(ContractSchema(), document, "a contract")
    versions = [(1, spec["start"], spec["components"], None)] + [
        (a["version"], a["effective_from"], a["components"], a.get("modification"))
        for a in sorted(spec["amendments"], key=lambda a: a["version"])]
    _check_contract(conn, spec, versions)
    digest = document_hash({k: v for k, v in spec.items() if k != "amendments"})
    stored = conn.execute(select(contracts).where(contracts.c.code == spec["code"])).first()
    now = dt.datetime.now(dt.UTC)
    if stored is None:
        customer = conn.execute(select(customers.c.id).where(customers.c.code == spec["customer"])).scalar()
        if customer is None:
            raise LedgerError(Problem(E_NOT_FOUND, "customer", f"no customer {show(spec['customer'])}"))
        contract_id = conn.execute(insert(contracts).values(
            code=spec["code"], customer_id=customer, billing_company_id=_company_id(conn, spec["billing_company"]),
            currency=spec["currency"], start_date=spec["start"], end_date=spec["end"],
            billing_frequency=spec["billing"]["frequency"], billing_day=spec["billing"]["day"], status="draft",
            status_since=None, document_hash=digest, created_at=now,
            contract_costs=document_json(spec["contract_costs"]) if spec.get("contract_costs") else None,
        ).returning(contracts.c.id)).scalar_one()
        _insert_versions(conn, contract_id, versions, actor, now)
        audit.record(conn, actor=actor, action="contract.add", target=spec["code"],
                     details={"customer": spec["customer"], "versions": len(versions)})
        return CREATED, tuple(v[0] for v in versions)
    if stored.document_hash != digest:
        raise LedgerError(Problem(E_CONFLICT, "code", f"contract {spec['code']} was loaded with other terms; "
                                  "change it with an amendment (a new version)"))
    known = {row.version: row for row in conn.execute(
        select(contract_versions).where(contract_versions.c.contract_id == stored.id))}
    new = []
    for number, effective_from, components, modification in versions:
        row = known.get(number)
        if row is None:
            new.append((number, effective_from, components, modification))
        elif (row.effective_from != effective_from or row.components != document_json(components)
              or row.modification != (document_json(modification) if modification else None)):
            raise LedgerError(Problem(E_CONFLICT, f"amendments[version {number}]",
                                      f"version {number} of {spec['code']} is stored with other terms; add a new version"))
    if len(new) + len(known) != len(versions):
        raise LedgerError(Problem(E_CONFLICT, "amendments", f"stored versions of {spec['code']} cannot be removed"))
    if not new:
        return UNCHANGED, ()
    _insert_versions(conn, stored.id, new, actor, now)
    audit.record(conn, actor=actor, action="contract.amend", target=spec["code"], details={"versions": [v[0] for v in new]})
    return AMENDED, tuple(v[0] for v in new)


def _insert_versions(conn: Connection, contract_id: int, versions: list, actor: str, now: dt.datetime) -> None:
    conn.execute(insert(contract_versions), [
        {"contract_id": contract_id, "version": number, "effective_from": effective_from,
         "components": document_json(components), "created_at": now, "created_by": actor[:200],
         "modification": document_json(modification) if modification else None}
        for number, effective_from, components, modification in versions
    ])


def _company_id(conn: Connection, code: str) -> int:
    return conn.execute(select(companies.c.id).where(companies.c.code == code)).scalar_one()


def _check_contract(conn: Connection, spec: dict, versions: list) -> None:
    problems: list[Problem] = []
    if spec["end"] is not None and spec["end"] < spec["start"]:
        problems.append(Problem(E_INVALID, "end", f"{spec['end']} is before start {spec['start']}"))
    previous = spec["start"]
    for index, (number, effective_from, components, modification) in enumerate(versions):
        if modification and modification["path"] == "cumulative_catch_up" and spec["end"] is None:
            problems.append(Problem(E_INVALID, f"amendments[{index - 1}].modification.path",
                                    "a cumulative catch-up needs the contract's fixed term: it has no end date"))
        where = "components" if index == 0 else f"amendments[{index - 1}]"
        if number != index + 1:
            problems.append(Problem(E_INVALID, f"{where}.version", f"amendments are versions 2, 3, ...; found {number}"))
        if index and not (previous < effective_from and (spec["end"] is None or effective_from <= spec["end"])):
            problems.append(Problem(E_INVALID, f"{where}.effective_from",
                                    f"{effective_from} must be after the previous version ({previous}) and within the contract"))
        previous = effective_from
        codes = [c["code"] for c in components]
        for c_index, component in enumerate(components):
            c_where = f"{where}.components[{c_index}]" if index else f"components[{c_index}]"
            if codes.count(component["code"]) > 1:
                problems.append(Problem(E_INVALID, f"{c_where}.code", f"component {component['code']} appears twice"))
            if component.get("price_plan"):
                plan_currency = conn.execute(select(price_plans.c.currency).where(
                    price_plans.c.code == component["price_plan"])).scalar()
                if plan_currency is None:
                    problems.append(Problem(E_NOT_FOUND, f"{c_where}.price_plan", f"no price plan {show(component['price_plan'])}"))
                elif plan_currency != spec["currency"]:
                    problems.append(Problem(E_INVALID, f"{c_where}.price_plan",
                                            f"price plan {component['price_plan']} is in {plan_currency}, the contract in {spec['currency']}"))
            for other in component.get("applies_to") or []:
                if other not in codes:
                    problems.append(Problem(E_INVALID, f"{c_where}.applies_to", f"no component {show(other)} in this version"))
            for role in ("vendor", "reseller"):
                if component.get(role):
                    problem = _check_party(conn, component[role], role, spec["start"], f"{c_where}.{role}")
                    if problem:
                        problems.append(problem)
    billing = conn.execute(select(companies.c.id).where(companies.c.code == spec["billing_company"])).scalar()
    if billing is None:
        problems.append(Problem(E_UNKNOWN_COMPANY, "billing_company", f"no company {show(spec['billing_company'])}"))
    if problems:
        raise LedgerError(*problems)
    _operator_company(conn, spec["billing_company"], "billing_company")
    _check_currency_billable(conn, billing, spec["billing_company"], spec["currency"], "currency")


def _check_party(conn: Connection, code: str, role: str, start: dt.date, field: str) -> Problem | None:
    row = conn.execute(
        select(companies.c.roles, partners.c.status, partners.c.offboarded_on)
        .outerjoin(partners, partners.c.company_id == companies.c.id).where(companies.c.code == code)
    ).first()
    if row is None:
        return Problem(E_UNKNOWN_COMPANY, field, f"no company {show(code)}")
    if role not in row.roles:
        return Problem(E_INVALID, field, f"{code} is not a {role}")
    if row.status is None:
        return Problem(E_INVALID, field, f"{code} is not an onboarded partner (ecoledger partner onboard)")
    if row.offboarded_on is not None and row.offboarded_on <= start:
        return Problem(E_INVALID, field, f"{code} was offboarded on {row.offboarded_on}: no new contracts")
    return None


def list_contracts(db: Database, *, customer: str | None = None, company: str | None = None,
                   status: str | None = None) -> list[Contract]:
    with db.read() as conn:
        query = _contract_query()
        if customer is not None:
            query = query.where(customers.c.code == customer)
        if company is not None:
            query = query.where(companies.c.code == company)
        if status is not None:
            query = query.where(contracts.c.status == status)
        return [_contract(conn, row) for row in conn.execute(query.order_by(contracts.c.code))]


def get_contract(db: Database, code: str) -> Contract:
    with db.read() as conn:
        return load_contract(conn, code)


def load_contract(conn: Connection, code: str, field: str = "contract") -> Contract:
    row = conn.execute(_contract_query().where(contracts.c.code == code)).first()
    if row is None:
        raise LedgerError(Problem(E_NOT_FOUND, field, f"no contract {show(code)}"))
    return _contract(conn, row)


def contracts_billed_by(conn: Connection, company_id: int, started_by: dt.date) -> list[Contract]:
    """Every contract the company bills that starts on or before ``started_by``, in code
    order, with its versions: two queries however many contracts (the close reads them all)."""
    rows = conn.execute(_contract_query().where(contracts.c.billing_company_id == company_id,
                                                contracts.c.start_date <= started_by)
                        .order_by(contracts.c.code)).all()
    versions: dict[int, list[ContractVersion]] = {}
    query = (select(contract_versions).join(contracts, contracts.c.id == contract_versions.c.contract_id)
             .where(contracts.c.billing_company_id == company_id, contracts.c.start_date <= started_by)
             .order_by(contract_versions.c.contract_id, contract_versions.c.version))
    currency = {row.id: row.currency for row in rows}
    for v in conn.execute(query):
        versions.setdefault(v.contract_id, []).append(
            ContractVersion(v.version, v.effective_from, tuple(json.loads(v.components)), currency[v.contract_id],
                            json.loads(v.modification) if v.modification else None))
    return [Contract(row.id, row.code, row.customer_code, row.billing_code, row.currency, row.start_date, row.end_date,
                     row.billing_frequency, row.billing_day, row.status, row.status_since,
                     tuple(versions.get(row.id, ())), json.loads(row.contract_costs) if row.contract_costs else None)
            for row in rows]


def customer_parents(conn: Connection) -> dict[str, str | None]:
    """Every customer's code with its parent organisation's code (None at the top)."""
    parent = customers.alias("parent")
    return dict(conn.execute(select(customers.c.code, parent.c.code).select_from(customers)
                             .outerjoin(parent, parent.c.id == customers.c.parent_id)).all())


def customer_regions(conn: Connection) -> dict[str, str | None]:
    """Every customer's region: its own, else the nearest organisation's above it."""
    parent = customers.alias("parent")
    rows = {code: (up, region) for code, up, region in conn.execute(
        select(customers.c.code, parent.c.code, customers.c.region).select_from(customers)
        .outerjoin(parent, parent.c.id == customers.c.parent_id))}
    found: dict[str, str | None] = {}
    for code in rows:
        seen, current = set(), code
        while current is not None and current in rows and current not in seen and rows[current][1] is None:
            seen.add(current)
            current = rows[current][0]
        found[code] = rows[current][1] if current in rows else None
    return found


def _contract_query():
    return (select(contracts, customers.c.code.label("customer_code"), companies.c.code.label("billing_code"))
            .join(customers, customers.c.id == contracts.c.customer_id)
            .join(companies, companies.c.id == contracts.c.billing_company_id))


def _contract(conn: Connection, row) -> Contract:
    versions = tuple(
        ContractVersion(v.version, v.effective_from, tuple(json.loads(v.components)), row.currency,
                        json.loads(v.modification) if v.modification else None)
        for v in conn.execute(select(contract_versions).where(contract_versions.c.contract_id == row.id)
                              .order_by(contract_versions.c.version))
    )
    return Contract(row.id, row.code, row.customer_code, row.billing_code, row.currency, row.start_date, row.end_date,
                    row.billing_frequency, row.billing_day, row.status, row.status_since, versions,
                    json.loads(row.contract_costs) if row.contract_costs else None)
