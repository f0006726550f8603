"""Webhooks: the URLs usage alerts are pushed to (docs/usage.md). The same services as
`ecoledger webhook ...`. Registering and disabling is an operator admin's; the secret is
answered once, when the webhook is added."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from api import database
from api.auth import JOBS_RUN, ONBOARD, READ_ALL, principal, requires
from api.resources.common import json_body, start_job
from ledger.schemas import JobSchema
from usage.schemas import WebhookCreatedSchema, WebhookDeliverySchema, WebhookDocumentSchema
from usage.webhooks import WebhookSchema, add_webhook, disable_webhook, list_deliveries, list_webhooks

blp = Blueprint("webhooks", __name__, description="Webhooks: usage alerts pushed to URLs, signed")


class DeliveryArgsSchema(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 1_000))


@blp.route("/webhooks")
class Webhooks(MethodView):
    @requires(READ_ALL)
    @blp.response(200, WebhookDocumentSchema(many=True))
    def get(self):
        """Webhooks, with their place in the alerts and their failures (never their secrets)."""
        return list_webhooks(database())

    @requires(ONBOARD)
    @blp.doc(requestBody={"required": True, "content": {"application/json": {"schema": WebhookSchema}}})
    @blp.response(201, WebhookCreatedSchema, description="added; the signing secret is in this answer only")
    def post(self):
        """Register a webhook: it is sent the alerts raised from now on."""
        found, secret = add_webhook(database(), json_body(), actor=principal().actor)
        return {**found._asdict(), "secret": secret}, 201


@blp.route("/webhooks/<name>")
class Webhook(MethodView):
    @requires(ONBOARD)
    @blp.response(200, WebhookDocumentSchema, description="disabled (or already)")
    def delete(self, name):
        """Disable a webhook; it is kept with its deliveries, for the record."""
        return disable_webhook(database(), name, actor=principal().actor)


@blp.route("/webhooks/<name>/deliveries")
class WebhookDeliveries(MethodView):
    @requires(READ_ALL)
    @blp.arguments(DeliveryArgsSchema, location="query")
    @blp.response(200, WebhookDeliverySchema(many=True))
    def get(self, args, name):
        """A webhook's latest delivery attempts, newest first."""
        return list_deliveries(database(), name, limit=args["limit"])


@blp.route("/webhook-deliveries")
class DeliveryRuns(MethodView):
    @requires(JOBS_RUN)
    @blp.response(202, JobSchema, description="queued (or the queued or running delivery)")
    def post(self):
        """Deliver the alerts due to every webhook now, as a job (the worker's schedule does
        it every five minutes)."""
        return start_job("deliver-webhooks", {})
