"""Documents of customers, contracts and contract events (shared by the ecosystem file, the
CLI and the API), and the JSON shapes of contracts.

A contract:

    code: C-1001
    customer: ACME
    billing_company: OPFI
    currency: EUR
    start: 2026-10-01
    end: 2027-09-30                  # optional
    billing: {frequency: monthly, day: 1}
    components:
      - {code: PLAN, type: recurring_fee, service: field-service-plan, amount: "300.00",
         timing: in_advance, proration: daily, vendor: FIXR, reseller: RESL}
      - {code: SETUP, type: one_off_fee, service: onboarding, amount: "150.00", vendor: FIXR}
      - {code: HOURS, type: usage, service: field-service, price_plan: FS-HOURLY, vendor: FIXR}
    amendments:                      # versions 2, 3, ...: the components from that date
      - {version: 2, effective_from: 2026-11-15, components: [...]}

A contract event (one JSON object per line in an events file):

    {"id": "evt-1", "type": "one_off_charge", "contract": "C-1001", "date": "2026-10-20",
     "amount": "80.00", "component": "SETUP", "reason": "replacement part"}
"""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from ledger.money import AmountError, format_amount, parse_amount
from ledger.schemas import OutcomeSchema
from partners.schemas import CODE, CURRENCY, Money, Percent, Strict

LOCAL_CODE = [validate.Length(1, 64), validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9._\-]*$",
                                                       error="letters, digits, '.', '_' and '-', starting with a letter or digit")]
COMPONENT_TYPES = ("recurring_fee", "one_off_fee", "usage", "discount", "minimum_commitment", "prepayment")
TIMINGS = ("in_advance", "in_arrears")
PRORATIONS = ("daily", "none")
FREQUENCIES = ("monthly", "quarterly", "yearly")
COMPONENTS_MAX = 100
AMENDMENTS_MAX = 100
_NEEDS = {
    "recurring_fee": ("amount", "timing"),
    "one_off_fee": ("amount",),
    "usage": ("price_plan",),
    "discount": ("percent",),
    "minimum_commitment": ("amount",),
    "prepayment": ("amount",),
}
_ALLOWED = {
    "recurring_fee": {"amount", "timing", "proration"},
    "one_off_fee": {"amount"},
    "usage": {"price_plan"},
    "discount": {"percent", "applies_to"},
    "minimum_commitment": {"amount"},
    "prepayment": {"amount"},
}
_OPTIONAL_FIELDS = {"amount", "timing", "proration", "price_plan", "percent", "applies_to"}


class CustomerSchema(Strict):
    code = fields.String(required=True, validate=LOCAL_CODE)
    name = fields.String(required=True, validate=validate.Length(1, 200))
    billing_company = fields.String(required=True, validate=CODE)
    currency = fields.String(required=True, validate=CURRENCY)
    parent = fields.String(load_default=None, allow_none=True, validate=LOCAL_CODE,
                           metadata={"description": "the organisation this one belongs to"})
    cost_centre = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 64))


class ComponentSchema(Strict):
    code = fields.String(required=True, validate=LOCAL_CODE)
    type = fields.String(required=True, validate=validate.OneOf(COMPONENT_TYPES))
    service = fields.String(required=True, validate=LOCAL_CODE)
    amount = Money()
    timing = fields.String(validate=validate.OneOf(TIMINGS))
    proration = fields.String(validate=validate.OneOf(PRORATIONS))
    price_plan = fields.String(validate=LOCAL_CODE)
    percent = Percent()
    applies_to = fields.List(fields.String(validate=LOCAL_CODE), validate=validate.Length(1, COMPONENTS_MAX),
                             metadata={"description": "components a discount applies to; default all"})
    vendor = fields.String(load_default=None, allow_none=True, validate=CODE)
    reseller = fields.String(load_default=None, allow_none=True, validate=CODE)

    @validates_schema(skip_on_field_errors=True)
    def _fields_of_its_type(self, data: dict, **_: Any) -> None:
        errors = {}
        for name in _NEEDS[data["type"]]:
            if data.get(name) is None:
                errors[name] = [f"required for a {data['type']} component"]
        for name in _OPTIONAL_FIELDS - _ALLOWED[data["type"]]:
            if data.get(name) is not None:
                errors[name] = [f"not used by a {data['type']} component"]
        if errors:
            raise ValidationError(errors)


class BillingSchema(Strict):
    frequency = fields.String(load_default="monthly", validate=validate.OneOf(FREQUENCIES))
    day = fields.Integer(load_default=1, strict=True, validate=validate.Range(1, 28),
                         metadata={"description": "day of the month billing periods start (1 to 28)"})


class AmendmentSchema(Strict):
    version = fields.Integer(required=True, strict=True, validate=validate.Range(2, 10_000))
    effective_from = fields.Date(required=True)
    components = fields.List(fields.Nested(ComponentSchema), required=True, validate=validate.Length(1, COMPONENTS_MAX))


class ContractSchema(Strict):
    code = fields.String(required=True, validate=LOCAL_CODE)
    customer = fields.String(required=True, validate=LOCAL_CODE)
    billing_company = fields.String(required=True, validate=CODE)
    currency = fields.String(required=True, validate=CURRENCY)
    start = fields.Date(required=True)
    end = fields.Date(load_default=None, allow_none=True)
    billing = fields.Nested(BillingSchema, load_default=lambda: {"frequency": "monthly", "day": 1})
    components = fields.List(fields.Nested(ComponentSchema), required=True, validate=validate.Length(1, COMPONENTS_MAX))
    amendments = fields.List(fields.Nested(AmendmentSchema), load_default=list, validate=validate.Length(max=AMENDMENTS_MAX))

    @post_load
    def _money_in_minor_units(self, data: dict, **_: Any) -> dict:
        errors: dict = {}
        _components_to_minor(data["components"], data["currency"], errors, ("components",))
        for index, amendment in enumerate(data["amendments"]):
            _components_to_minor(amendment["components"], data["currency"], errors, ("amendments", index, "components"))
        if errors:
            raise ValidationError(errors)
        return data


def _components_to_minor(components: list[dict], currency: str, errors: dict, path: tuple) -> None:
    for index, component in enumerate(components):
        component.setdefault("proration", "daily" if component["type"] == "recurring_fee" else None)
        if component.get("percent") is not None:
            component["percent"] = format(component["percent"].normalize(), "f")
        if component.get("amount") is None:
            continue
        try:
            component["amount_minor"] = parse_amount(component.pop("amount"), currency)
        except AmountError as exc:
            node = errors
            for key in (*path, index):
                node = node.setdefault(key, {})
            node["amount"] = [str(exc)]


class EventSchema(Strict):
    id = fields.String(required=True, validate=validate.Regexp(r"^[!-~]{1,200}$", error="1 to 200 printable ASCII characters"))
    type = fields.String(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_]{0,63}$", error="a rule name: a-z, 0-9, _"))
    contract = fields.String(required=True, validate=LOCAL_CODE)
    date = fields.Date(required=True)
    amount = Money(metadata={"description": "amount of a charge or credit, in major units of the contract's currency"})
    quantity = fields.String(validate=validate.Regexp(r"^[0-9]{1,12}(\.[0-9]{1,6})?$", error="a decimal string like \"2.5\""))
    component = fields.String(validate=LOCAL_CODE)
    service = fields.String(validate=LOCAL_CODE)
    version = fields.Integer(strict=True, validate=validate.Range(2, 10_000),
                             metadata={"description": "amended: the contract version that takes effect"})
    reason = fields.String(validate=validate.Length(1, 500))


def component_document(component: dict, currency: str) -> dict:
    shown = {k: v for k, v in component.items() if k != "amount_minor" and v is not None}
    if "amount_minor" in component:
        shown["amount"] = format_amount(component["amount_minor"], currency)
    return shown


class ContractVersionDocumentSchema(Strict):
    version = fields.Integer()
    effective_from = fields.Date()
    components = fields.Method("_components")

    def _components(self, version) -> list[dict]:
        return [component_document(c, version.currency) for c in version.components]


class ContractDocumentSchema(Strict):
    code = fields.String()
    customer = fields.String()
    billing_company = fields.String()
    currency = fields.String()
    status = fields.String()
    status_since = fields.Date(allow_none=True)
    start = fields.Date()
    end = fields.Date(allow_none=True)
    billing_frequency = fields.String()
    billing_day = fields.Integer()
    versions = fields.List(fields.Nested(ContractVersionDocumentSchema))


class CustomerDocumentSchema(Strict):
    code = fields.String()
    name = fields.String()
    billing_company = fields.String()
    currency = fields.String()
    parent = fields.String(allow_none=True)
    cost_centre = fields.String(allow_none=True)



class EventReportSchema(Strict):
    all_or_nothing = fields.Boolean()
    accepted = fields.Integer()
    duplicates = fields.Integer()
    rejected = fields.Integer()
    not_applied = fields.Integer(metadata={"description": "valid events not applied: their all-or-nothing import had a rejection"})
    entries_posted = fields.Integer()
    outcomes = fields.List(fields.Nested(OutcomeSchema), metadata={"description": "duplicates and rejections (the first ones)"})
    outcomes_omitted = fields.Integer()


class SectionCountsSchema(Strict):
    created = fields.Integer()
    unchanged = fields.Integer()
    updated = fields.Integer()


class IssuedPartnerKeySchema(Strict):
    company = fields.String()
    api_key_id = fields.String()
    token = fields.String(allow_none=True, metadata={"description": "shown once: store it now"})


class LoadReportSchema(Strict):
    companies = fields.Nested(SectionCountsSchema)
    partners = fields.Nested(SectionCountsSchema)
    customers = fields.Nested(SectionCountsSchema)
    contracts = fields.Nested(SectionCountsSchema)
    api_keys = fields.List(fields.Nested(IssuedPartnerKeySchema))
