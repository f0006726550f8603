"""Helpers shared by the resources: cursors, paging arguments, delivering jobs."""

from __future__ import annotations

import base64
import json
from typing import Any

from flask import current_app
from marshmallow import Schema, fields, validate

from api.problems import ApiProblem
from jobs.errors import BrokerUnavailable
from jobs.store import Job

PAGE_ITEMS_MAX = 500


class PageArgsSchema(Schema):
    cursor = fields.String(load_default=None, validate=validate.Length(max=500),
                           metadata={"description": "next_cursor of the previous page"})
    limit = fields.Integer(load_default=100, validate=validate.Range(1, PAGE_ITEMS_MAX))


def encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":"), default=str).encode()).decode().rstrip("=")


def decode_cursor(text: str | None) -> Any:
    """The value a cursor carries, or None for the first page. A cursor is opaque to
    clients; anything that does not decode is a 400."""
    if text is None:
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, TypeError):
        raise ApiProblem(400, "the cursor is not one this API gave out", code="invalid_cursor") from None


def enqueue(job: Job) -> None:
    """Hand a queued job to the workers; 503 if the broker cannot take it now (the job
    stays queued and a worker's reaper sends it when the broker is back)."""
    from jobs.celery_app import create_app
    from jobs.celery_app import enqueue as send

    state = current_app.extensions["ecoledger"]
    try:
        if "celery" not in state:
            state["celery"] = create_app(state["settings"])
        send(state["celery"], job)
    except BrokerUnavailable as exc:
        raise ApiProblem(503, str(exc), code="broker_unavailable", extra={"job_id": job.id}) from exc
