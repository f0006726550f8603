"""The jobs table. Celery only delivers job ids; everything about a job lives here."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Column, Index, Integer, String, Table, Text, text

from ledger.schema import metadata
from ledger.types import UTCDateTime

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
ACTIVE_STATUSES = ("queued", "running")

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(64), nullable=False),
    # Starting a job whose dedup key belongs to a queued or running job returns that job.
    Column("dedup_key", String(255), nullable=False),
    # Jobs with the same partition (a company, a partner) never run at the same time;
    # different partitions run in parallel on as many workers as there are.
    Column("partition_key", String(255), nullable=True),
    Column("parameters", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("cancel_requested", Boolean, nullable=False),
    Column("progress_done", BigInteger, nullable=False),
    Column("progress_total", BigInteger, nullable=True),
    Column("progress_message", String(500), nullable=True),
    Column("attempts", Integer, nullable=False),
    # The lease of the run in progress: only the holder of the token may write progress or
    # the result, so a worker presumed dead that wakes up cannot overwrite anything.
    Column("claim_token", String(32), nullable=True),
    Column("worker", String(255), nullable=True),
    Column("heartbeat_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("started_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("result", Text, nullable=True),
    Column("error", Text, nullable=True),
    CheckConstraint(
        "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')", name="status_known"
    ),
    Index(
        "uq_jobs_active_dedup_key",
        "dedup_key",
        unique=True,
        sqlite_where=text("status IN ('queued', 'running')"),
        postgresql_where=text("status IN ('queued', 'running')"),
    ),
    Index(None, "status", "heartbeat_at"),
    Index(None, "created_at"),
)
