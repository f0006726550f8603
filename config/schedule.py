"""Recurring jobs, run by Celery beat (`ecoledger worker --beat`) when schedule_enabled.

Each entry: the job kind, its parameters, and when (cron fields, UTC). Monthly billing and
clearing join this table with their job kinds (issues 5 and 6).
"""

SCHEDULE = {
    "nightly-verify": {
        "kind": "verify",
        "params": {},
        "cron": {"minute": "0", "hour": "2"},
    },
    # Webhooks wait after a failure on their own clock; a tick starts a job only when one is due.
    "webhooks": {
        "kind": "deliver-webhooks",
        "params": {},
        "cron": {"minute": "*/5"},
    },
}
