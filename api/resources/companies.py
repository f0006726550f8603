"""Companies and their accounts, balances, statements and periods."""

from __future__ import annotations

import datetime as dt

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from api import database
from api.auth import CLOSE, ONBOARD, POST, READ, principal, requires, visible_company
from api.problems import ApiProblem
from api.resources.common import PageArgsSchema, decode_cursor, encode_cursor
from config.currencies import MINOR_UNITS
from ledger import companies as service
from ledger import periods, reports
from ledger.chart import CONSTRAINTS, ROLES, available_templates
from ledger.money import format_amount
from ledger.records import E_UNKNOWN_COMPANY, LedgerError, Problem, show
from ledger.schemas import AccountSchema, CompanySchema, PeriodSchema, StatementLineSchema, TrialBalanceSchema

blp = Blueprint("companies", __name__, url_prefix="/companies", description="Companies, accounts, balances and periods")

# beancount account names (ASCII spelling; the service also accepts Unicode letters).
ACCOUNT_NAME = [validate.Length(1, 200),
                validate.Regexp(r"^(Assets|Liabilities|Equity|Income|Expenses)(:[A-Z0-9][A-Za-z0-9\-]*)+$")]
CURRENCY = fields.String(validate=validate.OneOf(sorted(MINOR_UNITS)), metadata={"description": "ISO 4217 code"})


class CompanyInputSchema(Schema):
    code = fields.String(required=True, validate=[validate.Length(1, 32), validate.Regexp(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)*$")],
                         metadata={"example": "FIXR"})
    name = fields.String(required=True, validate=validate.Length(1, 200))
    currency = fields.String(required=True, validate=validate.OneOf(sorted(MINOR_UNITS)))
    roles = fields.List(fields.String(validate=validate.OneOf(ROLES)), load_default=["operator"],
                        validate=validate.Length(1, len(ROLES)))
    template = fields.String(load_default="default", allow_none=True,
                             validate=validate.OneOf(available_templates()),
                             metadata={"description": "chart template; null for no accounts"})
    extra_currencies = fields.List(fields.String(validate=validate.OneOf(sorted(MINOR_UNITS))), load_default=[],
                                   validate=validate.Length(max=20))
    open_date = fields.Date(load_default=None)


class AccountInputSchema(Schema):
    name = fields.String(required=True, validate=ACCOUNT_NAME, metadata={"example": "Assets:Bank:Savings"})
    currencies = fields.List(CURRENCY, load_default=[], validate=validate.Length(max=20))
    constraint = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(CONSTRAINTS))
    open_date = fields.Date(load_default=None)
    description = fields.String(load_default="", validate=validate.Length(max=500))


class CloseAccountSchema(Schema):
    date = fields.Date(required=True, metadata={"description": "last day the account may be posted to"})


class AsOfSchema(Schema):
    as_of = fields.Date(load_default=None, metadata={"description": "balances at the end of this day"})


class StatementArgsSchema(PageArgsSchema):
    date_from = fields.Date(load_default=None, data_key="from")
    date_to = fields.Date(load_default=None, data_key="to")


class StatementPageSchema(Schema):
    company = fields.String()
    account = fields.String()
    opening = fields.Dict(keys=fields.String(), values=fields.String(), metadata={"description": "per currency, before the first line of this page"})
    lines = fields.List(fields.Nested(StatementLineSchema))
    next_cursor = fields.String(allow_none=True)


def _company(code: str) -> service.Company:
    visible_company(code)
    found = [c for c in service.list_companies(database()) if c.code == code]
    if not found:
        raise LedgerError(Problem(E_UNKNOWN_COMPANY, "company", f"no company {show(code)}"))
    return found[0]


@blp.route("")
class Companies(MethodView):
    @requires(READ)
    @blp.response(200, CompanySchema(many=True))
    def get(self):
        """Companies (a partner key sees its own)."""
        own = principal().partner_company
        return [c for c in service.list_companies(database()) if own is None or c.code == own]

    @requires(ONBOARD)
    @blp.arguments(CompanyInputSchema)
    @blp.response(201, CompanySchema)
    def post(self, body):
        """Create a company with the accounts of a chart template."""
        return service.add_company(
            database(), body["code"], body["name"], body["currency"], actor=principal().actor,
            roles=body["roles"], template=body["template"], extra_currencies=body["extra_currencies"],
            open_date=body["open_date"],
        )


@blp.route("/<code>")
class Company(MethodView):
    @requires(READ)
    @blp.response(200, CompanySchema)
    def get(self, code):
        """One company."""
        return _company(code)


@blp.route("/<code>/accounts")
class Accounts(MethodView):
    @requires(READ)
    @blp.response(200, AccountSchema(many=True))
    def get(self, code):
        """A company's accounts."""
        return service.list_accounts(database(), visible_company(code))

    @requires(POST)
    @blp.arguments(AccountInputSchema)
    @blp.response(201, AccountSchema)
    def post(self, body, code):
        """Open an account; its type follows from the root of its name."""
        return service.add_account(database(), visible_company(code), body["name"], actor=principal().actor,
                                   currencies=body["currencies"], constraint=body["constraint"],
                                   open_date=body["open_date"], description=body["description"])


@blp.route("/<code>/accounts/<name>/close")
class CloseAccount(MethodView):
    @requires(POST)
    @blp.arguments(CloseAccountSchema)
    @blp.response(200, AccountSchema)
    def post(self, body, code, name):
        """Close an account after a date; refused while it holds a balance."""
        service.close_account(database(), visible_company(code), name, body["date"], actor=principal().actor)
        return next(a for a in service.list_accounts(database(), code) if a.name == name)


@blp.route("/<code>/accounts/<name>/statement")
class AccountStatement(MethodView):
    @requires(READ)
    @blp.arguments(StatementArgsSchema, location="query")
    @blp.response(200, StatementPageSchema)
    def get(self, args, code, name):
        """An account's postings with their running balance, a page at a time."""
        after = decode_cursor(args["cursor"])
        if after is not None:
            after = _statement_cursor(after)
        page = reports.statement_page(database(), visible_company(code), name, date_from=args["date_from"],
                                      date_to=args["date_to"], after=after, limit=args["limit"])
        return {
            "company": code,
            "account": name,
            "opening": {c: format_amount(v, c) for c, v in sorted(page.opening.items())},
            "lines": page.lines,
            "next_cursor": encode_cursor([page.next_after[0].isoformat(), *page.next_after[1:]]) if page.next_after else None,
        }


def _statement_cursor(value):
    try:
        day, seq, line_no = value
        return dt.date.fromisoformat(day), int(seq), int(line_no)
    except (TypeError, ValueError):
        raise ApiProblem(400, "the cursor is not one this API gave out", code="invalid_cursor") from None


@blp.route("/<code>/trial-balance")
class CompanyTrialBalance(MethodView):
    @requires(READ)
    @blp.arguments(AsOfSchema, location="query")
    @blp.response(200, TrialBalanceSchema)
    def get(self, args, code):
        """A company's balances per account at the end of a day (default: all postings)."""
        return reports.trial_balance(database(), company=visible_company(code), as_of=args["as_of"])


@blp.route("/<code>/periods")
class Periods(MethodView):
    @requires(READ)
    @blp.response(200, PeriodSchema(many=True))
    def get(self, code):
        """A company's months and their status."""
        return periods.list_periods(database(), visible_company(code))


@blp.route("/<code>/periods/<period>/close")
class ClosePeriod(MethodView):
    @requires(CLOSE)
    @blp.response(200, PeriodSchema)
    def post(self, code, period):
        """Close a month (in order); closing a closed month changes nothing."""
        return periods.close_period(database(), visible_company(code), period, actor=principal().actor)
