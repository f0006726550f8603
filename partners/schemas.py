"""The onboarding document (shared by `ecoledger partner onboard`, the ecosystem file and
`POST /partners`) and the JSON shapes of partners and agreements.

An onboarding document, in YAML or JSON:

    code: FIXR
    name: FieldFix Oy
    currency: EUR
    roles: [vendor]
    template: default            # chart of accounts (config/charts)
    open_date: 2026-10-01
    settlement: {currency: EUR, frequency: monthly, payment_terms_days: 30, netting: true}
    api_key: true                # issue a partner key; its token is shown once
    agreements:
      - code: FIXR-SHARE
        kind: vendor_share
        counterparty: OPFI        # the operator entity on the other side
        versions:
          - {version: 1, effective_from: 2026-01-01, effective_to: 2026-10-14,
             terms: {basis: percent_of_price, percent: "60"}}
          - {version: 2, effective_from: 2026-10-15,
             terms: {basis: percent_of_price, percent: "62.5", minimum_guarantee: "1000.00", period: month}}
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from config.currencies import MINOR_UNITS
from ledger.chart import ROLES as COMPANY_ROLES
from ledger.chart import available_templates
from ledger.money import AmountError, parse_amount
from ledger.records import show
from ledger.schemas import major_units
from partners.agreements import CLAWBACK_DAYS_MAX, PERIODS, TIER_MODES, TIERS_MAX
from partners.schema import AGREEMENT_KINDS, SETTLEMENT_FREQUENCIES

CODE = [validate.Length(1, 32), validate.Regexp(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)*$",
                                                 error="upper-case letters, digits and single hyphens, starting with a letter")]
AGREEMENT_CODE = [validate.Length(1, 64), validate.Regexp(r"^[A-Z0-9][A-Z0-9_\-]*$",
                                                           error="upper-case letters, digits, _ and -")]
CURRENCY = validate.OneOf(sorted(MINOR_UNITS), error="not an ISO 4217 currency code")
AGREEMENTS_MAX = 50


_PERCENT_RE = re.compile(r"[0-9]{1,3}(\.[0-9]{1,4})?")
_MONEY_RE = re.compile(r"[0-9]{1,19}(\.[0-9]{1,4})?")


class DecimalText(fields.Field):
    """A decimal written as a string ("62.5") or an integer (60): never a float, whose
    binary value is not the decimal the writer meant."""

    pattern: re.Pattern
    what = "a decimal"

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if type(value) is int:
            value = str(value)
        if type(value) is not str or not self.pattern.fullmatch(value):
            raise ValidationError(f"must be {self.what} as a string like \"62.5\" or an integer, not {show(value)}")
        return value

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else str(value)


class PercentField(DecimalText):
    pattern = _PERCENT_RE
    what = "a percentage from 0 to 100 with up to 4 decimals"

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        number = Decimal(super()._deserialize(value, attr, data, **kwargs))
        if number > 100:
            raise ValidationError("must be between 0 and 100")
        return number


class MoneyField(DecimalText):
    pattern = _MONEY_RE
    what = "a non-negative amount in major units"


def Percent(metadata: dict | None = None, **kwargs) -> PercentField:  # noqa: N802  (a field factory)
    return PercentField(metadata={
        "description": "percentage from 0 to 100, up to 4 decimals",
        "anyOf": [{"type": "string", "pattern": f"^{_PERCENT_RE.pattern}$"}, {"type": "integer", "minimum": 0, "maximum": 100}],
        **(metadata or {}),
    }, **kwargs)


def Money(metadata: dict | None = None, **kwargs) -> MoneyField:  # noqa: N802
    return MoneyField(metadata={
        "description": "amount in major units of the agreement's currency",
        "anyOf": [{"type": "string", "pattern": f"^{_MONEY_RE.pattern}$"}, {"type": "integer", "minimum": 0}],
        **(metadata or {}),
    }, **kwargs)


class Strict(Schema):
    class Meta:
        unknown = RAISE


class TierSchema(Strict):
    from_ = Money(required=True, data_key="from")
    percent = Percent(required=True)


class TermsSchema(Strict):
    """Every term of every kind; check_terms says which belong together."""

    # vendor_share
    basis = fields.String(validate=validate.OneOf(["percent_of_price", "per_unit_cost", "fixed_cost"]))
    unit_cost = Money()
    unit = fields.String(validate=validate.Length(1, 32))
    fixed_cost = Money()
    minimum_guarantee = Money()
    # vendor_share, reseller_commission
    percent = Percent()
    period = fields.String(validate=validate.OneOf(PERIODS))
    # reseller_commission
    tiers = fields.List(fields.Nested(TierSchema), validate=validate.Length(1, TIERS_MAX))
    tier_mode = fields.String(validate=validate.OneOf(TIER_MODES))
    clawback_days = fields.Integer(validate=validate.Range(0, CLAWBACK_DAYS_MAX), strict=True)
    acquisition_percent = Percent(metadata={
        "description": "commission for obtaining a contract: percent of its first year's value of what the reseller sold"})
    acquisition = Money(metadata={"description": "commission for obtaining a contract: a fixed amount per contract"})
    # transfer_price, sla_sharing
    method = fields.String(validate=validate.OneOf(["cost_plus", "pass_through", "resale_minus", "pro_rata", "borne_by"]))
    markup_percent = Percent()
    margin_percent = Percent()
    party = fields.String(validate=validate.OneOf(["operator", "partner"]))


_BASIS_OF_KIND = {
    "vendor_share": ("basis", {"percent_of_price", "per_unit_cost", "fixed_cost"}),
    "transfer_price": ("method", {"cost_plus", "pass_through", "resale_minus"}),
    "sla_sharing": ("method", {"pro_rata", "borne_by"}),
}
_MONEY_TERMS = ("unit_cost", "fixed_cost", "minimum_guarantee", "acquisition")


class VersionSchema(Strict):
    version = fields.Integer(required=True, strict=True, validate=validate.Range(1, 10_000))
    effective_from = fields.Date(required=True)
    effective_to = fields.Date(load_default=None, allow_none=True)
    terms = fields.Nested(TermsSchema, required=True)


class AgreementSchema(Strict):
    code = fields.String(required=True, validate=AGREEMENT_CODE)
    kind = fields.String(required=True, validate=validate.OneOf(AGREEMENT_KINDS))
    counterparty = fields.String(required=True, validate=CODE)
    currency = fields.String(load_default=None, validate=CURRENCY,
                             metadata={"description": "currency of its amounts; default: the settlement currency"})
    versions = fields.List(fields.Nested(VersionSchema), required=True, validate=validate.Length(1, 100))

    @validates_schema(skip_on_field_errors=True)
    def _kind_has_its_basis(self, data: dict, **_: Any) -> None:
        rule = _BASIS_OF_KIND.get(data["kind"])
        for index, version in enumerate(data["versions"]):
            terms = version["terms"]
            if rule and terms.get(rule[0]) not in rule[1]:
                raise ValidationError({"versions": {index: {"terms": {rule[0]: [
                    f"required for {data['kind']}: one of {', '.join(sorted(rule[1]))}"]}}}})


class SettlementSchema(Strict):
    currency = fields.String(load_default=None, validate=CURRENCY, metadata={"description": "default: the company's currency"})
    frequency = fields.String(load_default="monthly", validate=validate.OneOf(SETTLEMENT_FREQUENCIES))
    payment_terms_days = fields.Integer(load_default=30, strict=True, validate=validate.Range(0, 365))
    netting = fields.Boolean(load_default=True, metadata={"description": "positions may be netted with other partners"})


class OnboardingSchema(Strict):
    code = fields.String(required=True, validate=CODE, metadata={"example": "FIXR"})
    name = fields.String(required=True, validate=validate.Length(1, 200))
    currency = fields.String(required=True, validate=CURRENCY)
    roles = fields.List(fields.String(validate=validate.OneOf(COMPANY_ROLES)), required=True,
                        validate=validate.Length(1, len(COMPANY_ROLES)))
    template = fields.String(load_default="default", validate=validate.OneOf(available_templates()))
    extra_currencies = fields.List(fields.String(validate=CURRENCY), load_default=list, validate=validate.Length(max=20))
    open_date = fields.Date(load_default=None)
    settlement = fields.Nested(SettlementSchema, load_default=dict)
    agreements = fields.List(fields.Nested(AgreementSchema), load_default=list, validate=validate.Length(max=AGREEMENTS_MAX))
    api_key = fields.Boolean(load_default=True, metadata={"description": "issue a partner API key (token shown once)"})

    @post_load
    def _settle_defaults_and_money(self, data: dict, **_: Any) -> dict:
        """Fill the currencies that default to others, and turn money terms into minor units
        of their agreement's currency (errors name the field)."""
        settlement = SettlementSchema().load(data["settlement"]) if not data["settlement"] else data["settlement"]
        settlement["currency"] = settlement["currency"] or data["currency"]
        data["settlement"] = settlement
        errors: dict = {}
        for a_index, agreement in enumerate(data["agreements"]):
            agreement["currency"] = agreement["currency"] or settlement["currency"]
            for v_index, version in enumerate(agreement["versions"]):
                terms = version["terms"]
                for name in _MONEY_TERMS:
                    if name in terms:
                        terms[f"{name}_minor"] = to_minor(terms.pop(name), agreement["currency"], errors,
                                                       ("agreements", a_index, "versions", v_index, "terms", name))
                for t_index, tier in enumerate(terms.get("tiers", [])):
                    tier["from_minor"] = to_minor(tier.pop("from_"), agreement["currency"], errors,
                                                ("agreements", a_index, "versions", v_index, "terms", "tiers", t_index, "from"))
                for name, value in list(terms.items()):
                    if isinstance(value, Decimal):
                        terms[name] = canonical_decimal(value)
                for tier in terms.get("tiers", []):
                    tier["percent"] = canonical_decimal(tier["percent"])
        if errors:
            raise ValidationError(errors)
        return data


def canonical_decimal(value: Decimal) -> str:
    """One spelling per number ("62.5", never "62.50" or "6.25E+1"): the same terms hash alike."""
    return format(value.normalize(), "f")


def to_minor(text: str, currency: str, errors: dict, path: tuple) -> int | None:
    """A money field's text in minor units of ``currency``, or None with the reason put in
    marshmallow's error dict at ``path``."""
    try:
        return parse_amount(text, currency)
    except AmountError as exc:
        node = errors
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = [str(exc)]
        return None


def terms_document(terms: dict, currency: str) -> dict:
    """Stored terms as shown: money back to decimal strings of the agreement's currency."""
    return major_units(terms, currency)


class AgreementDocumentSchema(Schema):
    code = fields.String()
    kind = fields.String()
    company = fields.String()
    counterparty = fields.String()
    currency = fields.String()
    versions = fields.Method("_versions")

    def _versions(self, agreement) -> list[dict]:
        return [
            {"version": v.version, "effective_from": v.effective_from.isoformat(),
             "effective_to": v.effective_to.isoformat() if v.effective_to else None,
             "terms": terms_document(v.terms, agreement.currency)}
            for v in agreement.versions
        ]


class SettlementDocumentSchema(Schema):
    currency = fields.String()
    frequency = fields.String()
    payment_terms_days = fields.Integer()
    netting = fields.Boolean()


class PartnerSchema(Schema):
    code = fields.String()
    name = fields.String()
    roles = fields.List(fields.String())
    currency = fields.String()
    status = fields.String()
    settlement = fields.Nested(SettlementDocumentSchema)
    agreements = fields.List(fields.Nested(AgreementDocumentSchema))
    onboarded_at = fields.DateTime()
    onboarded_by = fields.String()
    offboarded_on = fields.Date(allow_none=True)
    offboard_reason = fields.String(allow_none=True)


class OnboardingResultSchema(Schema):
    partner = fields.Nested(PartnerSchema)
    created = fields.Boolean(metadata={"description": "false: this document was onboarded before; nothing changed"})
    added_versions = fields.List(fields.String(), metadata={"description": "agreement versions added by this call"})
    api_key_id = fields.String(allow_none=True)
    token = fields.String(allow_none=True, metadata={"description": "the partner's API key, shown once: store it now"})

