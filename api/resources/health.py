"""Liveness and readiness, for load balancers and orchestrators (no key needed)."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy import text

from api import database
from api.auth import PUBLIC, requires
from api.problems import ApiProblem
from ecoledger import migrate

blp = Blueprint("health", __name__, description="Health and readiness")


class HealthSchema(Schema):
    status = fields.String(required=True)
    schema = fields.String(allow_none=True)


@blp.route("/health")
class Health(MethodView):
    @requires(PUBLIC)
    @blp.doc(security=[])
    @blp.response(200, HealthSchema)
    def get(self):
        """The process answers."""
        return {"status": "ok", "schema": None}


@blp.route("/ready")
class Ready(MethodView):
    @requires(PUBLIC)
    @blp.doc(security=[])
    @blp.response(200, HealthSchema)
    def get(self):
        """The database answers and its schema is this version's."""
        db = database()
        try:
            with db.read() as conn:
                conn.execute(text("SELECT 1"))
            current, head = migrate.current_revision(db), migrate.head_revision()
        except Exception as exc:  # any failure to reach the database means: not ready
            raise ApiProblem(503, f"database unavailable: {exc.__class__.__name__}", code="not_ready") from None
        if current != head:
            raise ApiProblem(503, f"database schema is {current}, this version needs {head}: run `ecoledger init`", code="not_ready")
        return {"status": "ready", "schema": current}
