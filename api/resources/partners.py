"""Partners: onboard in one step, list, get, offboard."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from api import database
from api.auth import ONBOARD, READ, READ_ALL, principal, requires, visible_company
from api.problems import from_body_error
from api.resources.common import json_body
from ledger.records import LedgerError
from partners import service
from partners.schemas import OnboardingResultSchema, OnboardingSchema, PartnerSchema

blp = Blueprint("partners", __name__, url_prefix="/partners", description="Partner onboarding and agreements")


class PartnerListArgsSchema(Schema):
    status = fields.String(load_default=None, validate=validate.OneOf([service.ACTIVE, service.OFFBOARDED]))


class OffboardSchema(Schema):
    date = fields.Date(required=True, metadata={"description": "no new contracts from this day"})
    reason = fields.String(required=True, validate=validate.Length(1, service.OFFBOARD_REASON_CHARS_MAX))


@blp.route("")
class Partners(MethodView):
    @requires(READ_ALL)
    @blp.arguments(PartnerListArgsSchema, location="query")
    @blp.response(200, PartnerSchema(many=True))
    def get(self, args):
        """Partners with their settlement terms and agreements."""
        return service.list_partners(database(), status=args["status"])

    @requires(ONBOARD)
    @blp.doc(requestBody={"required": True, "content": {"application/json": {"schema": OnboardingSchema}}})
    @blp.response(201, OnboardingResultSchema, description="onboarded; the partner's API key token is shown only here")
    @blp.alt_response(200, schema=OnboardingResultSchema,
                      description="onboarded before: nothing changed, or the agreements or versions the document adds")
    def post(self):
        """Onboard a partner in one step: its company and chart of accounts, settlement terms,
        agreements and API key, all or nothing. The same document again changes nothing."""
        try:
            result = service.onboard_partner(database(), json_body(), actor=principal().actor)
        except LedgerError as error:
            raise from_body_error(error) from None
        return result, 201 if result.created else 200


@blp.route("/<code>")
class Partner(MethodView):
    @requires(READ)
    @blp.response(200, PartnerSchema)
    def get(self, code):
        """One partner (a partner key: itself) with every version of its agreements."""
        return service.get_partner(database(), visible_company(code))


@blp.route("/<code>/offboard")
class Offboard(MethodView):
    @requires(ONBOARD)
    @blp.arguments(OffboardSchema)
    @blp.response(200, PartnerSchema)
    def post(self, body, code):
        """Offboard: no new contracts from the date; history stays and the final clearing runs."""
        return service.offboard_partner(database(), code, on=body["date"], reason=body["reason"], actor=principal().actor)
