"""Starting a job: the one use case shared by the CLI, the schedule and (later) the API."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from jobs import store
from jobs.kinds import kind_of
from jobs.runner import JobTiming, execute
from jobs.store import Job
from ledger.database import Database
from ledger.records import E_INVALID, LedgerError, Problem


def start(
    db: Database, kind: str, raw_params: dict[str, Any], *, actor: str, dedup_key: str | None = None
) -> tuple[Job, bool]:
    """Validate the parameters and queue the job, or return the queued or running job with
    the same dedup key. Returns (job, created). Delivering it to a worker is the caller's
    part (jobs.celery_app.enqueue), or the caller runs it itself (jobs.runner.execute)."""
    job_kind = kind_of(kind)
    params = job_kind.load_params(raw_params)
    if dedup_key is not None and not 0 < len(dedup_key) <= 255:
        raise LedgerError(Problem(E_INVALID, "dedup_key", "must have 1 to 255 characters"))
    return store.start_job(
        db,
        job_kind.name,
        params,
        dedup_key=dedup_key or job_kind.dedup_key(params),
        partition_key=job_kind.partition_key(params),
        actor=actor,
    )


def run(
    db: Database,
    kind: str,
    raw_params: dict[str, Any],
    *,
    actor: str,
    worker: str,
    timing: JobTiming,
    data_dir: Path,
    dedup_key: str | None = None,
    on_progress: Callable[[Job, int, int | None], None] | None = None,
) -> Job:
    """Start a job and run it in this process, through the jobs table like any other run.
    If a worker already runs the same job, it is returned as it stands (still running)."""
    job, _ = start(db, kind, raw_params, actor=actor, dedup_key=dedup_key)
    return execute(db, job.id, worker=worker, timing=timing, data_dir=data_dir, on_progress=on_progress)
