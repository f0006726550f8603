"""Errors of the jobs adapters that the CLI (and later the API) report to users. Kept apart
from jobs.celery_app so that catching them does not load Celery."""


class BrokerUnavailable(RuntimeError):
    """A job could not be handed to the broker. It stays queued in the jobs table."""
