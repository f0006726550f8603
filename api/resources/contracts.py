"""The contract register and its events: customers, contracts, contract events, and the
ecosystem file in one call."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from api import database, settings
from api.auth import ONBOARD, POST, READ_ALL, principal, requires
from api.problems import PROBLEM_CONTENT_TYPE, ApiProblem, ProblemSchema, from_body_error
from api.resources.common import ALL_OR_NOTHING, PARTIAL, batch_body, json_body
from config import limits
from contracts import ecosystem, service
from contracts.events import import_events
from contracts.rules import DEFAULT_RULES, RuleError, current_rules
from contracts.schemas import (
    ContractDocumentSchema,
    ContractSchema,
    CustomerDocumentSchema,
    CustomerSchema,
    EventReportSchema,
    EventSchema,
    LoadReportSchema,
    PricePlanDocumentSchema,
    PricePlanSchema,
)
from ledger.records import E_MALFORMED, LedgerError, Problem, Refused

blp = Blueprint("contracts", __name__, description="Customers, contracts and contract events")


class ContractListArgsSchema(Schema):
    customer = fields.String(load_default=None, validate=validate.Length(1, 64))
    company = fields.String(load_default=None, validate=validate.Length(1, 32))
    status = fields.String(load_default=None, validate=validate.OneOf(["draft", "active", "suspended", "terminated"]))


class SavedSchema(Schema):
    outcome = fields.String(metadata={"description": "created, unchanged or amended"})
    versions_added = fields.List(fields.Integer())


class EventsBatchSchema(Schema):
    events = fields.List(fields.Nested(EventSchema), required=True, validate=validate.Length(1, limits.BATCH_ENTRIES_MAX))
    mode = fields.String(load_default=ALL_OR_NOTHING, validate=validate.OneOf([ALL_OR_NOTHING, PARTIAL]))


class RejectedEventsProblemSchema(ProblemSchema):
    """422 for an all-or-nothing batch of events: the problem, and the report of every event
    when events were checked."""

    report = fields.Nested(EventReportSchema)


class EcosystemSchema(Schema):
    companies = fields.List(fields.Dict(), metadata={"description": "operator entities that are not partners"})
    partners = fields.List(fields.Dict(), metadata={"description": "onboarding documents (see POST /partners)"})
    price_plans = fields.List(fields.Nested(PricePlanSchema))
    customers = fields.List(fields.Nested(CustomerSchema))
    contracts = fields.List(fields.Nested(ContractSchema))


def _saving(action):
    try:
        return action()
    except LedgerError as error:
        raise from_body_error(error) from None


@blp.route("/price-plans")
class PricePlans(MethodView):
    @requires(READ_ALL)
    @blp.response(200, PricePlanDocumentSchema(many=True))
    def get(self):
        """Price plans."""
        return service.list_price_plans(database())

    @requires(ONBOARD)
    @blp.doc(requestBody={"required": True, "content": {"application/json": {"schema": PricePlanSchema}}})
    @blp.response(201, SavedSchema, description="created")
    @blp.alt_response(200, schema=SavedSchema, description="loaded before with the same document: nothing changed")
    def post(self):
        """Add a price plan (never changed once loaded: a new price is a new plan)."""
        outcome = _saving(lambda: service.save_price_plan(database(), json_body(), actor=principal().actor))
        return {"outcome": outcome, "versions_added": []}, 201 if outcome == service.CREATED else 200


@blp.route("/customers")
class Customers(MethodView):
    @requires(READ_ALL)
    @blp.response(200, CustomerDocumentSchema(many=True))
    def get(self):
        """Customers with their billing company and organisation."""
        return service.list_customers(database())

    @requires(ONBOARD)
    @blp.doc(requestBody={"required": True, "content": {"application/json": {"schema": CustomerSchema}}})
    @blp.response(201, SavedSchema, description="created")
    @blp.alt_response(200, schema=SavedSchema, description="loaded before with the same document: nothing changed")
    def post(self):
        """Add a customer (the same document again changes nothing)."""
        outcome = _saving(lambda: service.save_customer(database(), json_body(), actor=principal().actor))
        return {"outcome": outcome, "versions_added": []}, 201 if outcome == service.CREATED else 200


@blp.route("/contracts")
class Contracts(MethodView):
    @requires(READ_ALL)
    @blp.arguments(ContractListArgsSchema, location="query")
    @blp.response(200, ContractDocumentSchema(many=True))
    def get(self, args):
        """Contracts with their versions and status."""
        return service.list_contracts(database(), customer=args["customer"], company=args["company"], status=args["status"])

    @requires(ONBOARD)
    @blp.doc(requestBody={"required": True, "content": {"application/json": {"schema": ContractSchema}}})
    @blp.response(201, SavedSchema, description="created")
    @blp.alt_response(200, schema=SavedSchema, description="unchanged, or the amendments this document adds")
    def post(self):
        """Add a contract, or its new amendments; a contract is never rewritten."""
        outcome, added = _saving(lambda: service.save_contract(database(), json_body(), actor=principal().actor))
        return {"outcome": outcome, "versions_added": list(added)}, 201 if outcome == service.CREATED else 200


@blp.route("/contracts/<code>")
class Contract(MethodView):
    @requires(READ_ALL)
    @blp.response(200, ContractDocumentSchema)
    def get(self, code):
        """One contract with every version of its components."""
        return service.get_contract(database(), code)


@blp.route("/contract-events")
class ContractEvents(MethodView):
    @requires(POST)
    @blp.doc(requestBody={"required": True, "content": {"application/json": {"schema": EventsBatchSchema}}})
    @blp.response(201, EventReportSchema, description="every event accepted or a duplicate")
    @blp.alt_response(200, schema=EventReportSchema, description="partial mode: some events rejected, the others applied")
    @blp.alt_response(422, schema=RejectedEventsProblemSchema, content_type=PROBLEM_CONTENT_TYPE,
                      description="all-or-nothing mode: events rejected (errors name events[i].field); nothing applied")
    def post(self):
        """Apply contract events in order, each posting through its posting rule.

        All-or-nothing (the default) answers 422 and applies nothing if any event is
        rejected; rejections name events[i].field."""
        events, all_or_nothing = batch_body("events")
        try:
            rules = current_rules(settings().posting_rules or DEFAULT_RULES)
        except RuleError as exc:
            raise ApiProblem(503, f"the server's posting rules are refused: {exc}", code="rules_unavailable") from None
        report = import_events(database(), _as_items(events), rules=rules, actor=principal().actor,
                               all_or_nothing=all_or_nothing)
        document = EventReportSchema().dump(report)
        if report.ok:
            return document, 201
        if all_or_nothing:
            errors = [p.under(f"events[{o.ref}]")
                      for o in report.outcomes if o.status == "rejected" for p in o.problems]
            raise ApiProblem(422, f"{report.rejected} of {report.total} events rejected; nothing was applied",
                             code="events_rejected", errors=errors, extra={"report": document})
        return document, 200


def _as_items(events: list):
    for index, item in enumerate(events):
        if isinstance(item, dict):
            yield index, item
        else:
            yield Refused(index, None, (Problem(E_MALFORMED, None, "an event is a JSON object"),))


@blp.route("/ecosystem")
class Ecosystem(MethodView):
    @requires(ONBOARD)
    @blp.doc(requestBody={"required": True, "content": {"application/json": {"schema": EcosystemSchema}}})
    @blp.response(200, LoadReportSchema)
    def post(self):
        """Load an ecosystem document (companies, partners, customers, contracts) in one
        step, all or nothing; the same document again changes nothing. Keys of newly
        onboarded partners are in this response only."""
        return _saving(lambda: ecosystem.load_ecosystem(database(), json_body(), actor=principal().actor))
