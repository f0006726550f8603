"""Partner onboarding and offboarding: one service function per use case, each one
transaction. Onboarding creates the company with its chart of accounts, its settlement
terms, its agreements and its API key together, or nothing at all.

Onboarding is idempotent: the same document again changes nothing. A document that only
adds (new agreements, new versions after the existing ones, an end date on an open-ended
version) adds that; anything else that differs from what was onboarded is a conflict that
names the field, because what a partner earned under terms already in force must not
change behind its back.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any, NamedTuple

from sqlalchemy import Connection, insert, select, update

from access.keys import PARTNER, create_key
from ledger import audit
from ledger.companies import create_company
from ledger.database import Database
from ledger.hashing import document_hash, document_json
from ledger.interchange import check_text
from ledger.records import (
    E_CONFLICT,
    E_DUPLICATE,
    E_INVALID,
    E_NOT_FOUND,
    E_UNKNOWN_COMPANY,
    LedgerError,
    Problem,
    show,
)
from ledger.schema import companies
from ledger.schemas import load_document
from partners.agreements import Agreement, AgreementVersion, check_terms, check_versions
from partners.schema import agreement_versions, agreements, partners
from partners.schemas import OnboardingSchema

ACTIVE, OFFBOARDED = "active", "offboarded"
OFFBOARD_REASON_CHARS_MAX = 500

# The company role an agreement of each kind needs on the partner's side. The counterparty
# is always an operator entity.
_PARTNER_ROLE_OF_KIND = {
    "vendor_share": "vendor",
    "sla_sharing": "vendor",
    "reseller_commission": "reseller",
    "transfer_price": "operator",
}


class Settlement(NamedTuple):
    currency: str
    frequency: str
    payment_terms_days: int
    netting: bool


class Partner(NamedTuple):
    code: str
    name: str
    roles: tuple[str, ...]
    currency: str
    status: str
    settlement: Settlement
    agreements: tuple[Agreement, ...]
    onboarded_at: dt.datetime
    onboarded_by: str
    offboarded_on: dt.date | None
    offboard_reason: str | None


class OnboardingResult(NamedTuple):
    partner: Partner
    created: bool
    added_versions: tuple[str, ...]  # "CODE v2"
    api_key_id: str | None
    token: str | None  # shown once


def parse_onboarding(document: Any) -> dict:
    """The onboarding document checked field by field; errors name the field's path."""
    spec = load_document(OnboardingSchema(), document, "an onboarding document")
    problems: list[Problem] = []
    check_text(spec["name"], "name", 200, problems)
    seen: set[str] = set()
    for index, agreement in enumerate(spec["agreements"]):
        where = f"agreements[{index}]"
        if agreement["code"] in seen:
            problems.append(Problem(E_DUPLICATE, f"{where}.code", f"agreement {agreement['code']} appears twice"))
        seen.add(agreement["code"])
        if agreement["counterparty"] == spec["code"]:
            problems.append(Problem(E_INVALID, f"{where}.counterparty", "an agreement is between two companies"))
        wanted = _PARTNER_ROLE_OF_KIND[agreement["kind"]]
        if wanted not in spec["roles"]:
            problems.append(Problem(E_INVALID, f"{where}.kind", f"a {agreement['kind']} agreement needs the partner role {wanted}"))
        versions = _versions(agreement["versions"])
        problems += check_versions(versions, f"{where}.versions")
        for v_index, version in enumerate(agreement["versions"]):
            problems += check_terms(agreement["kind"], version["terms"], f"{where}.versions[{v_index}].terms")
    if problems:
        raise LedgerError(*problems)
    return spec


def _versions(raw: Iterable[dict]) -> tuple[AgreementVersion, ...]:
    return tuple(sorted((AgreementVersion(v["version"], v["effective_from"], v["effective_to"], v["terms"]) for v in raw),
                        key=lambda v: v.version))


def onboard_partner(db: Database, document: Any, *, actor: str) -> OnboardingResult:
    """Onboard a partner from its document (see partners/schemas.py), in one transaction."""
    spec = parse_onboarding(document)
    with db.write() as conn:
        return onboard_in(conn, spec, actor=actor)


def onboard_in(conn: Connection, spec: dict, *, actor: str) -> OnboardingResult:
    """onboard_partner inside a caller's transaction, from a parsed document (the ecosystem
    file loads partners, customers and contracts as one unit)."""
    spec_hash = document_hash({k: v for k, v in spec.items() if k != "api_key"})
    existing = conn.execute(select(companies).where(companies.c.code == spec["code"])).first()
    if existing is None:
        result = _create(conn, spec, spec_hash, actor)
    else:
        result = _converge(conn, existing, spec, spec_hash, actor)
    return result._replace(partner=_load_partner(conn, spec["code"]))


def _create(conn: Connection, spec: dict, spec_hash: str, actor: str) -> OnboardingResult:
    company = create_company(conn, spec["code"], spec["name"], spec["currency"], actor=actor, roles=spec["roles"],
                             template=spec["template"], extra_currencies=spec["extra_currencies"],
                             open_date=spec["open_date"])
    settlement = spec["settlement"]
    now = dt.datetime.now(dt.UTC)
    conn.execute(insert(partners).values(
        company_id=company.id, status=ACTIVE, settlement_currency=settlement["currency"],
        settlement_frequency=settlement["frequency"], payment_terms_days=settlement["payment_terms_days"],
        netting_allowed=settlement["netting"], spec_hash=spec_hash, onboarded_at=now, onboarded_by=actor[:200],
    ))
    added: list[str] = []
    for index, agreement in enumerate(spec["agreements"]):
        agreement_id = _insert_agreement(conn, company.id, agreement, f"agreements[{index}]", now)
        added += _insert_versions(conn, agreement_id, agreement["code"], agreement["versions"], actor, now)
    issued = None
    if spec["api_key"]:
        issued = create_key(conn, name=f"{spec['code']} partner key", role=PARTNER, actor=actor, company=spec["code"])
    audit.record(conn, actor=actor, action="partner.onboard", target=spec["code"], details={
        "roles": spec["roles"], "settlement": settlement, "agreements": [a["code"] for a in spec["agreements"]],
        "api_key": issued.key.id if issued else None, "spec_hash": spec_hash,
    })
    return OnboardingResult(None, True, tuple(added), issued.key.id if issued else None,  # type: ignore[arg-type]
                            issued.token if issued else None)


def _insert_agreement(conn: Connection, partner_id: int, agreement: dict, where: str, now: dt.datetime) -> int:
    counterparty = conn.execute(select(companies.c.id, companies.c.roles).where(
        companies.c.code == agreement["counterparty"])).first()
    if counterparty is None:
        raise LedgerError(Problem(E_UNKNOWN_COMPANY, f"{where}.counterparty", f"no company {show(agreement['counterparty'])}"))
    if "operator" not in counterparty.roles:
        raise LedgerError(Problem(E_INVALID, f"{where}.counterparty",
                                  f"{agreement['counterparty']} is not an operator entity; agreements are with one"))
    taken = conn.execute(select(agreements.c.company_id).where(agreements.c.code == agreement["code"])).first()
    if taken is not None:
        raise LedgerError(Problem(E_DUPLICATE, f"{where}.code", f"agreement {agreement['code']} belongs to another partner"))
    return conn.execute(insert(agreements).values(
        code=agreement["code"], kind=agreement["kind"], company_id=partner_id, counterparty_id=counterparty.id,
        currency=agreement["currency"], created_at=now,
    ).returning(agreements.c.id)).scalar_one()


def _insert_versions(conn: Connection, agreement_id: int, code: str, versions: Iterable[dict], actor: str,
                     now: dt.datetime) -> list[str]:
    rows = [
        {"agreement_id": agreement_id, "version": v["version"], "effective_from": v["effective_from"],
         "effective_to": v["effective_to"], "terms": document_json(v["terms"]),
         "terms_hash": document_hash(v["terms"]), "created_at": now, "created_by": actor[:200]}
        for v in versions
    ]
    if rows:
        conn.execute(insert(agreement_versions), rows)
    return [f"{code} v{row['version']}" for row in rows]


def _converge(conn: Connection, company, spec: dict, spec_hash: str, actor: str) -> OnboardingResult:
    partner = conn.execute(select(partners).where(partners.c.company_id == company.id)).first()
    if partner is None:
        raise LedgerError(Problem(E_DUPLICATE, "code", f"company {spec['code']} already exists and is not a partner"))
    if partner.spec_hash == spec_hash:
        return OnboardingResult(None, False, (), None, None)  # type: ignore[arg-type]
    if partner.status == OFFBOARDED:
        raise LedgerError(Problem(E_CONFLICT, "code", f"partner {spec['code']} was offboarded on {partner.offboarded_on}"))
    problems: list[Problem] = []
    for field, stored, wanted in (
        ("name", company.name, spec["name"]),
        ("currency", company.functional_currency, spec["currency"]),
        ("roles", sorted(company.roles), sorted(set(spec["roles"]))),
        ("settlement.currency", partner.settlement_currency, spec["settlement"]["currency"]),
        ("settlement.frequency", partner.settlement_frequency, spec["settlement"]["frequency"]),
        ("settlement.payment_terms_days", partner.payment_terms_days, spec["settlement"]["payment_terms_days"]),
        ("settlement.netting", partner.netting_allowed, spec["settlement"]["netting"]),
    ):
        if stored != wanted:
            problems.append(Problem(E_CONFLICT, field, f"{spec['code']} was onboarded with {show(stored)}, not {show(wanted)}"))
    stored_agreements = {a.code: a for a in _agreements(conn, [company.id])}
    now = dt.datetime.now(dt.UTC)
    added: list[str] = []
    plan: list[tuple[str, Any]] = []
    for index, agreement in enumerate(spec["agreements"]):
        where = f"agreements[{index}]"
        stored = stored_agreements.pop(agreement["code"], None)
        if stored is None:
            plan.append(("new", (agreement, where)))
            continue
        if (stored.kind, stored.counterparty, stored.currency) != (agreement["kind"], agreement["counterparty"], agreement["currency"]):
            problems.append(Problem(E_CONFLICT, where, f"agreement {stored.code} was onboarded as {stored.kind} with "
                                    f"{stored.counterparty} in {stored.currency}; add a new agreement instead"))
            continue
        wanted = {v["version"]: v for v in agreement["versions"]}
        for version in stored.versions:
            new = wanted.pop(version.version, None)
            v_where = f"{where}.versions[version {version.version}]"
            if new is None:
                problems.append(Problem(E_CONFLICT, where, f"version {version.version} of {stored.code} is stored; it cannot be removed"))
            elif new["terms"] != version.terms or new["effective_from"] != version.effective_from:
                problems.append(Problem(E_CONFLICT, v_where, f"version {version.version} of {stored.code} is stored with other "
                                        "terms or dates; add a new version instead"))
            elif new["effective_to"] != version.effective_to:
                if version.effective_to is not None:
                    problems.append(Problem(E_CONFLICT, f"{v_where}.effective_to",
                                            f"version {version.version} of {stored.code} ends on {version.effective_to}"))
                else:
                    plan.append(("end", (stored.code, version.version, new["effective_to"])))
        if wanted:
            plan.append(("versions", (stored.code, list(wanted.values()))))
    for code in stored_agreements:
        problems.append(Problem(E_CONFLICT, "agreements", f"agreement {code} is stored; it cannot be removed"))
    if problems:
        raise LedgerError(*problems)
    for action, payload in plan:
        if action == "new":
            agreement, where = payload
            agreement_id = _insert_agreement(conn, company.id, agreement, where, now)
            added += _insert_versions(conn, agreement_id, agreement["code"], agreement["versions"], actor, now)
        elif action == "end":
            code, version, effective_to = payload
            conn.execute(update(agreement_versions).where(
                agreement_versions.c.agreement_id == _agreement_id(conn, code), agreement_versions.c.version == version,
                agreement_versions.c.effective_to.is_(None)).values(effective_to=effective_to))
        else:
            code, versions = payload
            added += _insert_versions(conn, _agreement_id(conn, code), code, versions, actor, now)
    conn.execute(update(partners).where(partners.c.company_id == company.id).values(spec_hash=spec_hash))
    audit.record(conn, actor=actor, action="partner.update", target=spec["code"],
                 details={"added_versions": added, "ended": [p[1][:2] for p in plan if p[0] == "end"], "spec_hash": spec_hash})
    return OnboardingResult(None, False, tuple(added), None, None)  # type: ignore[arg-type]


def _agreement_id(conn: Connection, code: str) -> int:
    return conn.execute(select(agreements.c.id).where(agreements.c.code == code)).scalar_one()


def offboard_partner(db: Database, code: str, *, on: dt.date, reason: str, actor: str) -> Partner:
    """Stop new contracts from ``on``. History stays; the final clearing runs as usual.
    Offboarding an offboarded partner changes nothing."""
    problems: list[Problem] = []
    check_text(reason, "reason", OFFBOARD_REASON_CHARS_MAX, problems)
    if not isinstance(on, dt.date):
        problems.append(Problem(E_INVALID, "date", f"{show(on)} is not a date"))
    if problems:
        raise LedgerError(*problems)
    with db.write() as conn:
        partner = _load_partner(conn, code)
        if partner.status == ACTIVE:
            conn.execute(update(partners).where(partners.c.company_id == _company_id(conn, code)).values(
                status=OFFBOARDED, offboarded_on=on, offboarded_at=dt.datetime.now(dt.UTC),
                offboarded_by=actor[:200], offboard_reason=reason))
            audit.record(conn, actor=actor, action="partner.offboard", target=code, details={"on": on, "reason": reason})
        return _load_partner(conn, code)


def list_partners(db: Database, *, status: str | None = None) -> list[Partner]:
    with db.read() as conn:
        query = select(companies.c.code).join(partners, partners.c.company_id == companies.c.id).order_by(companies.c.code)
        if status is not None:
            query = query.where(partners.c.status == status)
        return [_load_partner(conn, code) for code in conn.execute(query).scalars()]


def get_partner(db: Database, code: str) -> Partner:
    with db.read() as conn:
        return _load_partner(conn, code)


def agreement_in_force(db: Database, code: str, day: dt.date) -> tuple[Agreement, AgreementVersion | None]:
    """An agreement and the version that applies to an event of ``day`` (None: not in force)."""
    with db.read() as conn:
        found = _agreements(conn, None, code=code)
    if not found:
        raise LedgerError(Problem(E_NOT_FOUND, "agreement", f"no agreement {show(code)}"))
    return found[0], found[0].in_force(day)


def _company_id(conn: Connection, code: str) -> int:
    return conn.execute(select(companies.c.id).where(companies.c.code == code)).scalar_one()


def _load_partner(conn: Connection, code: str) -> Partner:
    row = conn.execute(
        select(companies, partners).join(partners, partners.c.company_id == companies.c.id).where(companies.c.code == code)
    ).first()
    if row is None:
        raise LedgerError(Problem(E_NOT_FOUND, "partner", f"no partner {show(code)}"))
    return Partner(
        row.code, row.name, tuple(row.roles), row.functional_currency, row.status,
        Settlement(row.settlement_currency, row.settlement_frequency, row.payment_terms_days, row.netting_allowed),
        tuple(_agreements(conn, [row.company_id])), row.onboarded_at, row.onboarded_by, row.offboarded_on,
        row.offboard_reason,
    )


def _agreements(conn: Connection, company_ids: list[int] | None, *, code: str | None = None) -> list[Agreement]:
    party, other = companies.alias("party"), companies.alias("other")
    query = (
        select(agreements, party.c.code.label("party_code"), other.c.code.label("other_code"),
               agreement_versions.c.version, agreement_versions.c.effective_from, agreement_versions.c.effective_to,
               agreement_versions.c.terms)
        .join(party, party.c.id == agreements.c.company_id)
        .join(other, other.c.id == agreements.c.counterparty_id)
        .join(agreement_versions, agreement_versions.c.agreement_id == agreements.c.id)
        .order_by(agreements.c.code, agreement_versions.c.version)
    )
    if company_ids is not None:
        query = query.where(agreements.c.company_id.in_(company_ids))
    if code is not None:
        query = query.where(agreements.c.code == code)
    grouped: dict[str, list] = {}
    for row in conn.execute(query):
        grouped.setdefault(row.code, []).append(row)
    return [
        Agreement(code_, rows[0].kind, rows[0].party_code, rows[0].other_code, rows[0].currency,
                  tuple(AgreementVersion(r.version, r.effective_from, r.effective_to, json.loads(r.terms)) for r in rows))
        for code_, rows in grouped.items()
    ]



def agreements_of(conn: Connection, company: str) -> list[Agreement]:
    """Every agreement of a company (as the partner side), with all its versions."""
    company_id = conn.execute(select(companies.c.id).where(companies.c.code == company)).scalar()
    return [] if company_id is None else _agreements(conn, [company_id])
