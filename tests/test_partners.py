"""Partner onboarding: one step, idempotent, all or nothing; agreements versioned and
effective-dated; offboarding keeps history."""

from __future__ import annotations

import copy
import datetime as dt
import json

import pytest
from sqlalchemy import func, select

from access.keys import authenticate, list_keys
from ecoledger.schema import metadata
from ledger import companies
from ledger.records import LedgerError
from partners import service
from partners.schema import agreement_versions, agreements, partners

VENDOR = {
    "code": "FIXR",
    "name": "FieldFix Oy",
    "currency": "EUR",
    "roles": ["vendor"],
    "open_date": "2026-01-01",
    "settlement": {"frequency": "monthly", "payment_terms_days": 30, "netting": True},
    "agreements": [
        {
            "code": "FIXR-SHARE",
            "kind": "vendor_share",
            "counterparty": "OPFI",
            "versions": [
                {"version": 1, "effective_from": "2026-01-01", "effective_to": "2026-10-14",
                 "terms": {"basis": "percent_of_price", "percent": "60"}},
                {"version": 2, "effective_from": "2026-10-15",
                 "terms": {"basis": "percent_of_price", "percent": "62.50", "minimum_guarantee": "1000.00", "period": "month"}},
            ],
        },
        {
            "code": "FIXR-SLA",
            "kind": "sla_sharing",
            "counterparty": "OPFI",
            "versions": [{"version": 1, "effective_from": "2026-01-01", "terms": {"method": "pro_rata"}}],
        },
    ],
}

RESELLER = {
    "code": "RESL",
    "name": "Channel Partners Ab",
    "currency": "SEK",
    "roles": ["reseller"],
    "settlement": {"currency": "EUR", "frequency": "quarterly", "payment_terms_days": 45, "netting": False},
    "agreements": [
        {
            "code": "RESL-COMM",
            "kind": "reseller_commission",
            "counterparty": "OPFI",
            "versions": [{"version": 1, "effective_from": "2026-01-01", "terms": {
                "tiers": [{"from": "0", "percent": "8"}, {"from": "10000.00", "percent": "10"}],
                "tier_mode": "marginal", "period": "quarter", "clawback_days": 90}}],
        }
    ],
}


@pytest.fixture
def eco(empty_db):
    companies.add_company(empty_db, "OPFI", "Operator", "EUR", actor="t", roles=["operator"], open_date=dt.date(2026, 1, 1))
    return empty_db


def counts(db) -> dict[str, int]:
    with db.read() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in metadata.sorted_tables}


def test_onboarding_creates_everything_in_one_step(eco):
    result = service.onboard_partner(eco, VENDOR, actor="ops")
    assert result.created and result.token.startswith("eco_")
    partner = result.partner
    assert (partner.code, partner.status, partner.roles) == ("FIXR", "active", ("vendor",))
    assert partner.settlement == service.Settlement("EUR", "monthly", 30, True)
    assert result.added_versions == ("FIXR-SHARE v1", "FIXR-SHARE v2", "FIXR-SLA v1")
    # its chart of accounts, for its roles
    names = {a.name for a in companies.list_accounts(eco, "FIXR")}
    assert {"Assets:Ecosystem:DueFrom", "Income:Ecosystem"} <= names
    # its key works, is a partner key of FIXR, and only its hash is stored
    key = authenticate(eco, result.token)
    assert key is not None and (key.role, key.company) == ("partner", "FIXR")
    # the version in force at an event's date applies; money in minor units
    share = {a.code: a for a in partner.agreements}["FIXR-SHARE"]
    assert share.in_force(dt.date(2026, 10, 14)).terms == {"basis": "percent_of_price", "percent": "60"}
    assert share.in_force(dt.date(2026, 10, 15)).terms == {
        "basis": "percent_of_price", "percent": "62.5", "minimum_guarantee_minor": 100000, "period": "month"}
    assert share.in_force(dt.date(2025, 12, 31)) is None


def test_onboarding_is_idempotent(eco):
    first = service.onboard_partner(eco, VENDOR, actor="ops")
    before = counts(eco)
    again = service.onboard_partner(eco, copy.deepcopy(VENDOR), actor="ops")
    assert not again.created and again.token is None and again.added_versions == ()
    assert again.partner == first.partner
    assert counts(eco) == before  # no second key, no audit row, nothing
    assert len(list_keys(eco)) == 1


def test_a_document_that_adds_versions_adds_them(eco):
    service.onboard_partner(eco, RESELLER, actor="ops")
    grown = copy.deepcopy(RESELLER)
    grown["agreements"][0]["versions"][0]["effective_to"] = "2026-12-31"
    grown["agreements"][0]["versions"].append(
        {"version": 2, "effective_from": "2027-01-01", "terms": {"percent": "9", "clawback_days": 60}})
    result = service.onboard_partner(eco, grown, actor="ops")
    assert result.added_versions == ("RESL-COMM v2",) and result.token is None
    agreement, version = service.agreement_in_force(eco, "RESL-COMM", dt.date(2027, 3, 1))
    assert version.version == 2 and agreement.versions[0].effective_to == dt.date(2026, 12, 31)
    assert service.agreement_in_force(eco, "RESL-COMM", dt.date(2026, 12, 31))[1].version == 1


@pytest.mark.parametrize(
    "change, field, message",
    [
        (lambda d: d["agreements"][0]["versions"][1]["terms"].update(percent="65"), "agreements[0].versions[version 2]",
         "other terms"),
        (lambda d: d.update(name="Other Oy"), "name", "was onboarded with"),
        (lambda d: d["settlement"].update(payment_terms_days=60), "settlement.payment_terms_days", "was onboarded with"),
        (lambda d: d["agreements"].pop(1), "agreements", "cannot be removed"),
    ],
)
def test_changing_what_was_onboarded_is_a_conflict(eco, change, field, message):
    service.onboard_partner(eco, VENDOR, actor="ops")
    before = counts(eco)
    changed = copy.deepcopy(VENDOR)
    change(changed)
    with pytest.raises(LedgerError) as caught:
        service.onboard_partner(eco, changed, actor="ops")
    assert any(p.field == field and message in p.message for p in caught.value.problems), caught.value.problems
    assert counts(eco) == before


def _invalid(update):
    document = copy.deepcopy(VENDOR)
    update(document)
    return document


@pytest.mark.parametrize(
    "document, field, message",
    [
        (_invalid(lambda d: d.update(template="nope")), "template", "Must be one of"),
        (_invalid(lambda d: d["agreements"][0]["versions"][1]["terms"].update(percent="-1")),
         "agreements[0].versions[1].terms.percent", "a percentage from 0 to 100"),
        (_invalid(lambda d: d["agreements"][0]["versions"][1]["terms"].update(percent="100.01")),
         "agreements[0].versions[1].terms.percent", "between 0 and 100"),
        (_invalid(lambda d: d["agreements"][0]["versions"][1].update(effective_from="2026-10-14")),
         "agreements[0].versions[1].effective_from", "overlaps version 1"),
        (_invalid(lambda d: d["agreements"][0]["versions"][0].update(effective_to=None)),
         "agreements[0].versions[1].effective_from", "open-ended"),
        (_invalid(lambda d: d["agreements"][0]["versions"][1]["terms"].update(minimum_guarantee="10.001")),
         "agreements[0].versions[1].terms.minimum_guarantee", "EUR has 2"),
        (_invalid(lambda d: d["agreements"][0]["versions"][1]["terms"].update(percent=None)),
         "agreements[0].versions[1].terms.percent", "Field may not be null"),
        (_invalid(lambda d: d["agreements"][0].update(kind="reseller_commission")),
         "agreements[0].kind", "needs the partner role reseller"),
        (_invalid(lambda d: d["agreements"][0].update(counterparty="NOPE")), "agreements[0].counterparty", "no company"),
        (_invalid(lambda d: d.update(roles=["landlord"])), "roles[0]", "Must be one of"),
        (_invalid(lambda d: d.update(surprise=1)), "surprise", "Unknown field"),
        (_invalid(lambda d: d.pop("currency")), "currency", "Missing data"),
        (_invalid(lambda d: d.update(name="\x00evil")), "name", "NUL character"),
        (_invalid(lambda d: d["settlement"].update(payment_terms_days="30")), "settlement.payment_terms_days", "Not a valid integer"),
        (_invalid(lambda d: d["agreements"][0]["versions"][0]["terms"].update(percent=60.5)),
         "agreements[0].versions[0].terms.percent", "not 60.5"),
        (_invalid(lambda d: d["agreements"][0]["versions"][0]["terms"].update(percent=True)),
         "agreements[0].versions[0].terms.percent", "not True"),
    ],
)
def test_invalid_onboarding_leaves_nothing_behind(eco, document, field, message):
    before = counts(eco)
    with pytest.raises(LedgerError) as caught:
        service.onboard_partner(eco, document, actor="ops")
    assert any(p.field == field and message in p.message for p in caught.value.problems), caught.value.problems
    assert counts(eco) == before


def test_a_failure_after_the_company_was_written_rolls_everything_back(eco):
    service.onboard_partner(eco, VENDOR, actor="ops")
    before = counts(eco)
    # A second partner whose agreement code belongs to FIXR: found only after its company
    # and accounts were inserted in the same transaction.
    other = copy.deepcopy(VENDOR)
    other.update(code="FIX2", name="FieldFix Two Oy")
    with pytest.raises(LedgerError) as caught:
        service.onboard_partner(eco, other, actor="ops")
    assert caught.value.problems[0].field == "agreements[0].code"
    assert counts(eco) == before
    assert "FIX2" not in {c.code for c in companies.list_companies(eco)}


def test_duplicate_company_code(eco):
    with pytest.raises(LedgerError) as caught:
        service.onboard_partner(eco, {**VENDOR, "code": "OPFI", "agreements": []}, actor="ops")
    assert "not a partner" in caught.value.problems[0].message


def test_offboarding_keeps_history(eco):
    service.onboard_partner(eco, VENDOR, actor="ops")
    partner = service.offboard_partner(eco, "FIXR", on=dt.date(2026, 12, 31), reason="contract ended", actor="ops")
    assert (partner.status, partner.offboarded_on, partner.offboard_reason) == ("offboarded", dt.date(2026, 12, 31), "contract ended")
    assert len(partner.agreements) == 2  # history stays
    assert service.offboard_partner(eco, "FIXR", on=dt.date(2027, 1, 31), reason="again", actor="ops").offboarded_on == dt.date(2026, 12, 31)
    assert [p.code for p in service.list_partners(eco, status="active")] == []
    changed = copy.deepcopy(VENDOR)
    changed["settlement"]["netting"] = False
    with pytest.raises(LedgerError, match="offboarded"):
        service.onboard_partner(eco, changed, actor="ops")


def test_the_database_keeps_the_partner_register_immutable(eco):
    service.onboard_partner(eco, VENDOR, actor="ops")
    for statement, message in [
        (agreements.update().values(currency="USD"), "agreements never change"),
        (agreements.delete(), "agreements never change"),
        (agreement_versions.update().values(terms="{}"), "agreement versions never change"),
        (agreement_versions.delete(), "agreement versions never change"),
        (partners.delete(), "partners are never deleted"),
    ]:
        with pytest.raises(Exception, match=message):
            with eco.write() as conn:
                conn.execute(statement)
    # The one change allowed: ending the open version (as onboarding does when a document adds one).
    with eco.write() as conn:
        conn.execute(agreement_versions.update().where(agreement_versions.c.effective_to.is_(None))
                     .values(effective_to=dt.date(2027, 1, 31)))


def test_the_database_refuses_what_the_service_refuses(eco):
    service.onboard_partner(eco, VENDOR, actor="ops")
    with eco.write() as conn:
        agreement_id = conn.execute(select(agreements.c.id).where(agreements.c.code == "FIXR-SHARE")).scalar_one()
    bad = [
        (partners.update().values(payment_terms_days=400)),
        (partners.update().values(status="offboarded")),  # without a date
        (agreement_versions.update().where(agreement_versions.c.agreement_id == agreement_id)
         .values(effective_to=dt.date(2020, 1, 1))),
    ]
    for statement in bad:
        with pytest.raises(Exception, match="(?i)check|constraint|never change"):
            with eco.write() as conn:
                conn.execute(statement)


# --- through the API ------------------------------------------------------------------------


def test_api_onboarding_answers_the_token_once(api):
    response = api.call("operator_admin", "POST", "/partners", json=RESELLER, headers={"Idempotency-Key": "onboard-resl"})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["created"] and body["token"].startswith("eco_") and body["partner"]["code"] == "RESL"
    tiers = body["partner"]["agreements"][0]["versions"][0]["terms"]["tiers"]
    assert tiers == [{"from": "0.00", "percent": "8"}, {"from": "10000.00", "percent": "10"}]
    # A replay of the same request answers the same document, without the secret.
    replay = api.call("operator_admin", "POST", "/partners", json=RESELLER, headers={"Idempotency-Key": "onboard-resl"})
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json()["token"] is None and replay.get_json()["partner"] == body["partner"]
    # The same document again, without the header: nothing changes.
    again = api.call("operator_admin", "POST", "/partners", json=RESELLER)
    assert again.status_code == 200 and again.get_json()["created"] is False and again.get_json()["token"] is None
    # The new partner's key reaches its own record, and nobody else's.
    own = api.client.get("/partners/RESL", headers={"Authorization": f"Bearer {body['token']}"})
    assert own.status_code == 200 and own.get_json()["settlement"]["payment_terms_days"] == 45
    assert api.client.get("/partners/VEND", headers={"Authorization": f"Bearer {body['token']}"}).status_code == 404
    assert api.client.get("/partners", headers={"Authorization": f"Bearer {body['token']}"}).status_code == 403


@pytest.mark.parametrize(
    "document, status, field",
    [
        ({**RESELLER, "agreements": [{**RESELLER["agreements"][0], "counterparty": "NOPE"}]}, 422, "agreements[0].counterparty"),
        ({**RESELLER, "roles": ["vendor"]}, 422, "agreements[0].kind"),
        ({**RESELLER, "code": "VEND", "agreements": []}, 409, "code"),
        ({**RESELLER, "settlement": {"payment_terms_days": 400}}, 422, "settlement.payment_terms_days"),
    ],
)
def test_api_onboarding_refusals(api, document, status, field):
    response = api.call("operator_admin", "POST", "/partners", json=document)
    assert response.status_code == status, response.get_json()
    assert response.content_type == "application/problem+json"
    assert field in [e["field"] for e in response.get_json()["errors"]]
    assert api.call("operator_admin", "GET", "/partners").get_json() == []


def test_api_offboarding(api):
    api.call("operator_admin", "POST", "/partners", json=RESELLER)
    response = api.call("operator_admin", "POST", "/partners/RESL/offboard", json={"date": "2026-12-31", "reason": "ended"})
    assert response.status_code == 200 and response.get_json()["status"] == "offboarded"
    listed = api.call("auditor", "GET", "/partners?status=active").get_json()
    assert listed == []
    assert api.call("operator_admin", "POST", "/partners/NOPE/offboard", json={"date": "2026-12-31", "reason": "x"}).status_code == 404


# --- through the CLI ------------------------------------------------------------------------

VENDOR_YAML = """\
code: FIXR
name: FieldFix Oy
currency: EUR
roles: [vendor]
open_date: 2026-01-01
settlement: {frequency: monthly, payment_terms_days: 30, netting: true}
agreements:
  - code: FIXR-SHARE
    kind: vendor_share
    counterparty: OPFI
    versions:
      - {version: 1, effective_from: 2026-01-01, terms: {basis: percent_of_price, percent: 62.5, minimum_guarantee: 1000}}
"""


def test_cli_partner_commands(ready, tmp_path):
    path = tmp_path / "fixr.yaml"
    path.write_text(VENDOR_YAML.replace("62.5, minimum_guarantee: 1000", "62.5, minimum_guarantee: 1000, period: month"))
    code, out, err = ready("partner", "onboard", str(path))
    assert code == 0 and "onboarded FIXR (vendor) with 1 agreements" in out and "shown only now" in err
    assert out.splitlines()[-1].startswith("eco_")
    code, out, _ = ready("partner", "onboard", str(path), "--format", "json")
    assert code == 0 and json.loads(out)["created"] is False and json.loads(out)["token"] is None
    code, out, _ = ready("partner", "show", "FIXR", "--format", "json")
    terms = json.loads(out)["agreements"][0]["versions"][0]["terms"]
    assert terms == {"basis": "percent_of_price", "percent": "62.5", "minimum_guarantee": "1000.00", "period": "month"}
    code, out, _ = ready("partner", "list", "--format", "csv")
    assert out.splitlines()[1] == "FIXR,FieldFix Oy,vendor,active,EUR,monthly,30,yes,1"
    code, out, _ = ready("partner", "offboard", "FIXR", "--date", "2026-12-31", "--reason", "ended")
    assert code == 0 and "offboarded on 2026-12-31" in out


def test_cli_onboarding_errors_name_the_field(ready, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(VENDOR_YAML)  # a minimum guarantee without its period
    code, out, err = ready("partner", "onboard", str(path))
    assert code == 1 and "agreements[0].versions[0].terms.period: required for a fixed cost or a minimum guarantee" in err
    path.write_text("code: [unclosed\n")
    code, _, err = ready("partner", "onboard", str(path))
    assert code == 1 and "not YAML or JSON" in err
    path.write_text("- just\n- a list\n")
    code, _, err = ready("partner", "onboard", str(path))
    assert code == 1 and "mapping of fields" in err
    assert json.loads(ready("partner", "list", "--format", "json")[1]) == []
