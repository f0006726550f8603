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

import re
from decimal import Decimal
from typing import Any

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from ledger.schemas import OutcomeSchema, major_units
from partners.schemas import CODE, CURRENCY, DecimalText, Money, Percent, Strict, canonical_decimal, to_minor

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
    "one_off_fee": {"amount", "recognition"},
    "usage": {"price_plan", "budget"},
    "discount": {"percent", "applies_to"},
    "minimum_commitment": {"amount"},
    "prepayment": {"amount"},
}
_OPTIONAL_FIELDS = {"amount", "timing", "proration", "price_plan", "percent", "applies_to", "budget", "recognition"}


PRICE_MODELS = ("per_unit", "graduated", "volume", "package", "percentage", "allowance")
PERIODS = ("month", "quarter", "year")
TIERS_MAX = 50
DRIVERS_MAX = 20
_SIX_PLACES = re.compile(r"[0-9]{1,12}(\.[0-9]{1,6})?")


class QuantityField(DecimalText):
    pattern = _SIX_PLACES
    what = "a non-negative decimal with up to 6 decimals"


class MultiplierField(DecimalText):
    pattern = re.compile(r"[0-9]{1,3}(\.[0-9]{1,4})?")
    what = "a multiplier like \"1.5\" (up to 4 decimals)"


def _decimal_field(cls, description: str, **kwargs):
    return cls(metadata={"description": description, "anyOf": [
        {"type": "string", "pattern": f"^{cls.pattern.pattern}$"}, {"type": "integer", "minimum": 0}]}, **kwargs)


def Quantity(description: str = "quantity in the plan's unit", **kwargs) -> QuantityField:  # noqa: N802
    return _decimal_field(QuantityField, description, **kwargs)


def UnitPrice(description: str = "price per unit in major units, up to 6 decimals", **kwargs) -> QuantityField:  # noqa: N802
    return _decimal_field(QuantityField, description, **kwargs)


class PriceTierSchema(Strict):
    up_to = Quantity("upper bound of the tier, inclusive; null for the last tier", required=True, allow_none=True)
    unit_price = UnitPrice(required=True)
    flat_fee = Money(metadata={"description": "charged once when the tier is reached"})


class DriverSchema(Strict):
    """A price driver of service work: the unit price is multiplied by the factor of the
    usage line's attribute value (work type, employee level, shift), or by the factor of a
    calendar day (weekend, holiday). Factors of several drivers multiply."""

    attribute = fields.String(validate=validate.Regexp(r"^[a-z][a-z0-9_]{0,31}$", error="a-z, 0-9 and _"))
    values = fields.Dict(keys=fields.String(validate=validate.Length(1, 64)),
                         values=MultiplierField(), validate=validate.Length(1, 50))
    calendar = fields.String(validate=validate.OneOf(["weekend", "holiday"]))
    multiplier = MultiplierField()

    @validates_schema(skip_on_field_errors=True)
    def _one_kind(self, data: dict, **_: Any) -> None:
        if ("attribute" in data) == ("calendar" in data):
            raise ValidationError("a driver is either {attribute, values} or {calendar, multiplier}")
        if "attribute" in data and "values" not in data:
            raise ValidationError({"values": ["required with attribute"]})
        if "calendar" in data and "multiplier" not in data:
            raise ValidationError({"multiplier": ["required with calendar"]})


_PLAN_NEEDS = {
    "per_unit": ("unit_price",),
    "graduated": ("tiers",),
    "volume": ("tiers",),
    "package": ("package_size", "package_price"),
    "percentage": ("percent",),
    "allowance": ("included", "period", "overage_unit_price"),
}
_PLAN_FIELDS = {"unit_price", "tiers", "package_size", "package_price", "free_units", "percent", "minimum", "maximum",
                "included", "period", "overage_unit_price"}
_PLAN_ALLOWED = {
    "per_unit": {"unit_price"},
    "graduated": {"tiers", "period"},
    "volume": {"tiers", "period"},
    "package": {"package_size", "package_price", "free_units"},
    "percentage": {"percent", "minimum", "maximum"},
    "allowance": {"included", "period", "overage_unit_price"},
}


class PricePlanSchema(Strict):
    """How a usage service is priced (rated by the usage capability). Models:

    per_unit (unit_price); graduated and volume (tiers, each with up_to and unit_price;
    graduated prices each unit at its tier's price, volume prices all units at the price of
    the tier the period's total reaches; optional period, default the line); package
    (package_size units for package_price, rounded up, after free_units); percentage
    (percent of a pre-rated amount, with optional minimum and maximum); allowance (included
    units per period, then overage_unit_price). Drivers multiply the unit price."""

    code = fields.String(required=True, validate=LOCAL_CODE)
    currency = fields.String(required=True, validate=CURRENCY)
    unit = fields.String(required=True, validate=validate.Length(1, 32), metadata={"example": "hour"})
    model = fields.String(required=True, validate=validate.OneOf(PRICE_MODELS))
    description = fields.String(load_default="", validate=validate.Length(max=500))
    unit_price = UnitPrice()
    tiers = fields.List(fields.Nested(PriceTierSchema), validate=validate.Length(1, TIERS_MAX))
    package_size = Quantity("units in one package")
    package_price = Money(metadata={"description": "price of one package"})
    free_units = Quantity("units free before packages are counted")
    percent = Percent()
    minimum = Money(metadata={"description": "least charge per line"})
    maximum = Money(metadata={"description": "greatest charge per line"})
    included = Quantity("units included per period")
    period = fields.String(validate=validate.OneOf(PERIODS))
    overage_unit_price = UnitPrice("price per unit beyond the included units")
    drivers = fields.List(fields.Nested(DriverSchema), load_default=list, validate=validate.Length(max=DRIVERS_MAX))

    @validates_schema(skip_on_field_errors=True)
    def _fields_of_its_model(self, data: dict, **_: Any) -> None:
        errors: dict = {}
        model = data["model"]
        for name in _PLAN_NEEDS[model]:
            if data.get(name) is None:
                errors[name] = [f"required for the {model} model"]
        for name in _PLAN_FIELDS - _PLAN_ALLOWED[model]:
            if data.get(name) is not None:
                errors[name] = [f"not used by the {model} model"]
        if errors:
            raise ValidationError(errors)
        # The rules between fields of the model's own terms.
        tiers = data.get("tiers") or []
        for index, tier in enumerate(tiers):
            last = index == len(tiers) - 1
            if (tier["up_to"] is None) != last:
                errors.setdefault("tiers", {})[index] = {"up_to": ["only the last tier is open-ended (null)" if not last
                                                                   else "the last tier is open-ended: null"]}
            elif index and not last and Decimal(tier["up_to"]) <= Decimal(tiers[index - 1]["up_to"]):
                errors.setdefault("tiers", {})[index] = {"up_to": ["tiers go up: above the previous tier's up_to"]}
        if data.get("minimum") is not None and data.get("maximum") is not None and (
                Decimal(data["minimum"]) > Decimal(data["maximum"])):
            errors["maximum"] = ["must not be below the minimum"]
        if data.get("package_size") is not None and Decimal(data["package_size"]) == 0:
            errors["package_size"] = ["must be above 0"]
        if errors:
            raise ValidationError(errors)

    @post_load
    def _canonical(self, data: dict, **_: Any) -> dict:
        """Money in minor units of the plan's currency (precision checked); the percentage
        in one spelling."""
        errors: dict = {}
        if data.get("percent") is not None:
            data["percent"] = canonical_decimal(data["percent"])
        for name in ("package_price", "minimum", "maximum"):
            if data.get(name) is not None:
                data[f"{name}_minor"] = to_minor(data.pop(name), data["currency"], errors, (name,))
        for index, tier in enumerate(data.get("tiers") or []):
            if tier.get("flat_fee") is not None:
                tier["flat_fee_minor"] = to_minor(tier.pop("flat_fee"), data["currency"], errors, ("tiers", index, "flat_fee"))
        if errors:
            raise ValidationError(errors)
        return data



class CustomerSchema(Strict):
    code = fields.String(required=True, validate=LOCAL_CODE)
    name = fields.String(required=True, validate=validate.Length(1, 200))
    billing_company = fields.String(required=True, validate=CODE)
    currency = fields.String(required=True, validate=CURRENCY)
    parent = fields.String(load_default=None, allow_none=True, validate=LOCAL_CODE,
                           metadata={"description": "the organisation this one belongs to"})
    cost_centre = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 64))
    # No load_default: a customer without a region hashes as it did before the field.
    region = fields.String(validate=LOCAL_CODE, metadata={
        "description": "where the customer is served (revenue disaggregation); default: its organisation's"})


class RecognitionSchema(Strict):
    """The accounting judgement on how a one-off fee is recognised (IFRS 15), with its
    reason: ``point_in_time`` when the fee buys a distinct good or service delivered on its
    date (the default), ``over_time`` over ``months`` of the service it relates to when it
    buys nothing distinct (an up-front fee, 15.B48-B51)."""

    pattern = fields.String(required=True, validate=validate.OneOf(["point_in_time", "over_time"]))
    months = fields.Integer(strict=True, validate=validate.Range(1, 600),
                            metadata={"description": "over_time: the months of service the fee relates to"})
    reason = fields.String(required=True, validate=validate.Length(1, 500),
                           metadata={"description": "why: the judgement, for the auditors"})

    @validates_schema(skip_on_field_errors=True)
    def _months_with_over_time(self, data: dict, **_: Any) -> None:
        if (data["pattern"] == "over_time") != (data.get("months") is not None):
            raise ValidationError({"months": ["required with over_time, and only with it"]})


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
    budget = Money(metadata={"description": "usage: the customer's budget per rating period; alerts when "
                                            "rated usage reaches the alert thresholds of it"})
    recognition = fields.Nested(RecognitionSchema, metadata={
        "description": "one_off_fee: the judgement on its recognition pattern, with the reason"})
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


MODIFICATION_PATHS = ("separate_contract", "prospective", "cumulative_catch_up")


class ModificationSchema(Strict):
    """How revenue recognition treats an amendment (IFRS 15.18-21), with the reason:
    ``separate_contract`` (distinct services added at their standalone selling prices,
    15.20), ``prospective`` (the remaining services are distinct: the old contract ends and a
    new one starts, 15.21(a); the default), or ``cumulative_catch_up`` (the remaining services
    are not distinct, one obligation over the fixed term whose revenue is caught up in the
    modification's month, 15.21(b))."""

    path = fields.String(required=True, validate=validate.OneOf(MODIFICATION_PATHS))
    reason = fields.String(required=True, validate=validate.Length(1, 500))


class ContractCostJudgementSchema(Strict):
    """The judgement on the costs of obtaining the contract (IFRS 15.99): the months they are
    amortised over, the expected duration of the customer relationship with the renewals
    anticipated, and why."""

    amortisation_months = fields.Integer(required=True, strict=True, validate=validate.Range(1, 600))
    reason = fields.String(required=True, validate=validate.Length(1, 500))


class AmendmentSchema(Strict):
    version = fields.Integer(required=True, strict=True, validate=validate.Range(2, 10_000))
    effective_from = fields.Date(required=True)
    components = fields.List(fields.Nested(ComponentSchema), required=True, validate=validate.Length(1, COMPONENTS_MAX))
    modification = fields.Nested(ModificationSchema, metadata={
        "description": "the accounting judgement on this amendment, with its reason; default prospective"})


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
    # No load_default: a contract without the judgement hashes as it did before the field.
    contract_costs = fields.Nested(ContractCostJudgementSchema, metadata={
        "description": "the judgement on amortising the costs of obtaining the contract, with the reason; "
                       "default: its fixed term"})

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
            component["percent"] = canonical_decimal(component["percent"])
        for name in ("amount", "budget"):
            if component.get(name) is not None:
                component[f"{name}_minor"] = to_minor(component.pop(name), currency, errors, (*path, index, name))


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
    return major_units({k: v for k, v in component.items() if v is not None}, currency)


class ContractVersionDocumentSchema(Strict):
    version = fields.Integer()
    effective_from = fields.Date()
    components = fields.Method("_components")
    modification = fields.Dict(allow_none=True, metadata={"description": "the amendment's path and reason, if given"})

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
    contract_costs = fields.Dict(allow_none=True, metadata={"description": "amortisation months and reason, if given"})
    versions = fields.List(fields.Nested(ContractVersionDocumentSchema))


class PricePlanDocumentSchema(Strict):
    code = fields.String()
    currency = fields.String()
    model = fields.String()
    document = fields.Method("_document", metadata={"description": "the plan as loaded; money in major units"})

    def _document(self, plan) -> dict:
        return price_plan_document(plan.document)


def price_plan_document(document: dict) -> dict:
    """A stored plan as shown: money back in major units."""
    return major_units(document, document["currency"])


class CustomerDocumentSchema(Strict):
    code = fields.String()
    name = fields.String()
    billing_company = fields.String()
    currency = fields.String()
    parent = fields.String(allow_none=True)
    cost_centre = fields.String(allow_none=True)
    region = fields.String(allow_none=True, metadata={"description": "as loaded (an organisation's applies when none)"})



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
    price_plans = fields.Nested(SectionCountsSchema)
    customers = fields.Nested(SectionCountsSchema)
    contracts = fields.Nested(SectionCountsSchema)
    api_keys = fields.List(fields.Nested(IssuedPartnerKeySchema))
