"""API keys and the audit log."""

from __future__ import annotations

import json

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from access import keys
from access.schema import ROLES
from access.schemas import ApiKeySchema, IssuedKeySchema
from api import database
from api.auth import AUDIT, KEYS, principal, requires
from api.problems import ApiProblem
from api.resources.common import PageArgsSchema, decode_cursor, encode_cursor
from ledger.schema import audit_log

blp = Blueprint("access", __name__, description="API keys and the audit log")


class KeyInputSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 200))
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    company = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 32))
    expires_at = fields.AwareDateTime(load_default=None, allow_none=True)


class RotateSchema(Schema):
    grace_hours = fields.Float(load_default=keys.ROTATION_GRACE_HOURS, validate=validate.Range(0, 24 * 30))


class AuditEntrySchema(Schema):
    id = fields.Integer()
    at = fields.DateTime()
    actor = fields.String()
    action = fields.String()
    target = fields.String()
    details = fields.Dict()
    request_id = fields.String(allow_none=True)


class AuditArgsSchema(PageArgsSchema):
    action = fields.String(load_default=None, validate=validate.Length(1, 64))


class AuditPageSchema(Schema):
    items = fields.List(fields.Nested(AuditEntrySchema))
    next_cursor = fields.String(allow_none=True)


@blp.route("/api-keys")
class ApiKeys(MethodView):
    @requires(KEYS)
    @blp.response(200, ApiKeySchema(many=True))
    def get(self):
        """API keys (never their secrets)."""
        return keys.list_keys(database())

    @requires(KEYS)
    @blp.arguments(KeyInputSchema)
    @blp.response(201, IssuedKeySchema)
    def post(self, body):
        """Issue a key; the token is in this response only."""
        return keys.issue_key(database(), name=body["name"], role=body["role"], actor=principal().actor,
                              company=body["company"], expires_at=body["expires_at"])


@blp.route("/api-keys/<key_id>")
class ApiKey(MethodView):
    @requires(KEYS)
    @blp.response(200, ApiKeySchema)
    def get(self, key_id):
        """One key."""
        return keys.get_key(database(), key_id)


@blp.route("/api-keys/<key_id>/revoke")
class RevokeKey(MethodView):
    @requires(KEYS)
    @blp.response(200, ApiKeySchema)
    def post(self, key_id):
        """Revoke a key now."""
        if key_id == principal().key.id:
            raise ApiProblem(409, "a key cannot revoke itself; use another operator admin key", code="conflict")
        return keys.revoke_key(database(), key_id, actor=principal().actor)


@blp.route("/api-keys/<key_id>/rotate")
class RotateKey(MethodView):
    @requires(KEYS)
    @blp.arguments(RotateSchema)
    @blp.response(201, IssuedKeySchema)
    def post(self, body, key_id):
        """A new key in place of this one; the old one keeps working for grace_hours."""
        return keys.rotate_key(database(), key_id, actor=principal().actor, grace_hours=body["grace_hours"])


@blp.route("/audit-log")
class AuditLog(MethodView):
    @requires(AUDIT)
    @blp.arguments(AuditArgsSchema, location="query")
    @blp.response(200, AuditPageSchema)
    def get(self, args):
        """Who did what, when: newest first."""
        before = decode_cursor(args["cursor"])
        if before is not None and (not isinstance(before, int) or before < 1):
            raise ApiProblem(400, "the cursor is not one this API gave out", code="invalid_cursor")
        query = select(audit_log).order_by(audit_log.c.id.desc()).limit(args["limit"] + 1)
        if before is not None:
            query = query.where(audit_log.c.id < before)
        if args["action"]:
            query = query.where(audit_log.c.action == args["action"])
        with database().read() as conn:
            rows = conn.execute(query).all()
        more = len(rows) > args["limit"]
        rows = rows[: args["limit"]]
        items = [{**row._asdict(), "details": json.loads(row.details)} for row in rows]
        return {"items": items, "next_cursor": encode_cursor(rows[-1].id) if more else None}
