"""JSON shapes of API keys, shared by `ecoledger api-key --format json` and the API."""

from __future__ import annotations

from marshmallow import Schema, fields


class ApiKeySchema(Schema):
    id = fields.String()
    name = fields.String()
    role = fields.String()
    company = fields.String(allow_none=True)
    created_at = fields.DateTime()
    created_by = fields.String()
    expires_at = fields.DateTime(allow_none=True)
    revoked_at = fields.DateTime(allow_none=True)
    rotated_from = fields.String(allow_none=True)
    active = fields.Function(lambda key: key.active())


class IssuedKeySchema(Schema):
    key = fields.Nested(ApiKeySchema)
    token = fields.String(metadata={"description": "the secret, shown once: store it now"})
