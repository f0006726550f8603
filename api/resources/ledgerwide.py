"""Reports across companies (not for partner keys)."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from api import database
from api.auth import READ_ALL, requires
from ledger import reports
from ledger.schemas import TrialBalanceSchema

blp = Blueprint("ledger", __name__, description="Reports across the ecosystem's companies")


class TrialBalanceArgsSchema(Schema):
    as_of = fields.Date(load_default=None)
    consolidated = fields.Boolean(load_default=False, metadata={"description": "sum account names across companies"})


@blp.route("/trial-balance")
class TrialBalance(MethodView):
    @requires(READ_ALL)
    @blp.arguments(TrialBalanceArgsSchema, location="query")
    @blp.response(200, TrialBalanceSchema)
    def get(self, args):
        """Every company's balances per account (or consolidated) at the end of a day."""
        return reports.trial_balance(database(), as_of=args["as_of"], consolidated=args["consolidated"])
