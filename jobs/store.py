"""Every state change of a job, each one short transaction on the jobs table.

    start -> queued -> (claim) running -> succeeded | failed | cancelled
                  ^            |
                  +-- reaper --+  (heartbeat stale: the worker died)

A run holds a lease (the claim token). Heartbeats, progress and the result are written only
with the token, so a run that lost its lease (its worker was presumed dead and the job
re-queued) can never overwrite the work of the run that replaced it.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any, NamedTuple

from sqlalchemy import Connection, and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from config import limits
from jobs.schema import ACTIVE_STATUSES, jobs
from ledger import audit
from ledger.database import Database
from ledger.records import E_INVALID, E_NOT_FOUND, LedgerError, Problem, show

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
FINISHED = (SUCCEEDED, FAILED, CANCELLED)


class Job(NamedTuple):
    id: str
    kind: str
    dedup_key: str
    partition_key: str | None
    params: dict[str, Any]
    status: str
    cancel_requested: bool
    progress_done: int
    progress_total: int | None
    progress_message: str | None
    attempts: int
    worker: str | None
    heartbeat_at: dt.datetime | None
    created_at: dt.datetime
    created_by: str
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    result: dict[str, Any] | None
    error: str | None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class Claim(NamedTuple):
    """The lease of one run of a job."""

    job: Job
    token: str


class Signals(NamedTuple):
    """What a running job learns when it reports: whether it still holds its lease, and
    whether someone asked it to stop."""

    lease_held: bool
    cancel_requested: bool


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _job(row) -> Job:
    return Job(
        row.id, row.kind, row.dedup_key, row.partition_key, json.loads(row.parameters), row.status,
        row.cancel_requested, row.progress_done, row.progress_total, row.progress_message,
        row.attempts, row.worker, row.heartbeat_at, row.created_at, row.created_by,
        row.started_at, row.finished_at, json.loads(row.result) if row.result else None, row.error,
    )


def _dump(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    if len(text) > limits.JOB_RESULT_BYTES_MAX:
        raise ValueError(f"job result of {len(text)} bytes exceeds {limits.JOB_RESULT_BYTES_MAX}")
    return text


def _fetch(conn: Connection, job_id: str, *, lock: bool = False) -> Job:
    query = select(jobs).where(jobs.c.id == job_id)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        raise LedgerError(Problem(E_NOT_FOUND, "job", f"no job {show(job_id)}"))
    return _job(row)


def start_job(
    db: Database,
    kind: str,
    params: dict[str, Any],
    *,
    dedup_key: str,
    partition_key: str | None,
    actor: str,
) -> tuple[Job, bool]:
    """Queue a job, or return the queued or running job with the same dedup key.
    Returns (job, created)."""
    now = _now()
    for _ in range(2):  # a concurrent start of the same key may win the insert
        try:
            with db.write(ledger_lock=False) as conn:
                active = conn.execute(
                    select(jobs).where(jobs.c.dedup_key == dedup_key, jobs.c.status.in_(ACTIVE_STATUSES))
                ).first()
                if active is not None:
                    return _job(active), False
                job_id = uuid.uuid4().hex
                conn.execute(
                    insert(jobs).values(
                        id=job_id, kind=kind, dedup_key=dedup_key, partition_key=partition_key,
                        parameters=_dump(params), status=QUEUED, cancel_requested=False,
                        progress_done=0, attempts=0, created_at=now, created_by=actor[:200],
                        updated_at=now,
                    )
                )
                audit.record(conn, actor=actor, action="job.start", target=job_id,
                             details={"kind": kind, "dedup_key": dedup_key, "params": params})
                return _fetch(conn, job_id), True
        except IntegrityError:
            continue
    raise LedgerError(Problem(E_INVALID, "dedup_key", f"could not start a job with key {show(dedup_key)}"))


def get_job(db: Database, job_id: str) -> Job:
    with db.read() as conn:
        return _fetch(conn, job_id)


def list_jobs(
    db: Database, *, status: str | None = None, kind: str | None = None, limit: int = limits.JOBS_LISTED_MAX
) -> list[Job]:
    query = select(jobs).order_by(jobs.c.created_at.desc(), jobs.c.id).limit(min(limit, limits.JOBS_LISTED_MAX))
    if status:
        query = query.where(jobs.c.status == status)
    if kind:
        query = query.where(jobs.c.kind == kind)
    with db.read() as conn:
        return [_job(row) for row in conn.execute(query)]


def claim(db: Database, job_id: str, *, worker: str, stale_seconds: float) -> Claim | Job:
    """Take the lease of a queued job (or of a running one whose worker went silent).

    Returns the Claim, or the Job as it is when there is nothing to run here: finished,
    cancelled before it started, running elsewhere, or another job of its partition is
    running (then it stays queued)."""
    now = _now()
    with db.write(ledger_lock=False) as conn:
        job = _fetch(conn, job_id, lock=True)
        if job.status in FINISHED:
            return job
        stale = job.heartbeat_at is None or job.heartbeat_at < now - dt.timedelta(seconds=stale_seconds)
        if job.status == RUNNING and not stale:
            return job
        if job.cancel_requested:
            _finish(conn, job.id, CANCELLED, error="cancelled before it ran", now=now)
            return _fetch(conn, job_id)
        if job.attempts >= limits.JOB_ATTEMPTS_MAX:
            _finish(conn, job.id, FAILED, now=now,
                    error=f"gave up after {job.attempts} runs that did not finish (workers lost)")
            return _fetch(conn, job_id)
        if job.partition_key is not None and _partition_busy(conn, job, now, stale_seconds):
            return job
        token = uuid.uuid4().hex
        conn.execute(
            update(jobs).where(jobs.c.id == job_id).values(
                status=RUNNING, claim_token=token, worker=worker[:255], attempts=jobs.c.attempts + 1,
                started_at=now, heartbeat_at=now, updated_at=now, progress_done=0,
                progress_total=None, progress_message=None, error=None,
            )
        )
        return Claim(_fetch(conn, job_id), token)


def _partition_busy(conn: Connection, job: Job, now: dt.datetime, stale_seconds: float) -> bool:
    fresh = now - dt.timedelta(seconds=stale_seconds)
    return conn.execute(
        select(jobs.c.id).where(
            jobs.c.partition_key == job.partition_key,
            jobs.c.status == RUNNING,
            jobs.c.id != job.id,
            jobs.c.heartbeat_at >= fresh,
        ).limit(1)
    ).first() is not None


def _leased(claim_: Claim):
    return and_(jobs.c.id == claim_.job.id, jobs.c.claim_token == claim_.token, jobs.c.status == RUNNING)


def report(
    db: Database, claim_: Claim, *, done: int | None = None, total: int | None = None, message: str | None = None
) -> Signals:
    """Heartbeat, and progress when given. Tells the run whether it may go on."""
    now = _now()
    values: dict[str, Any] = {"heartbeat_at": now, "updated_at": now}
    if done is not None:
        values["progress_done"] = done
    if total is not None:
        values["progress_total"] = total
    if message is not None:
        values["progress_message"] = message[:500]
    with db.write(ledger_lock=False) as conn:
        updated = conn.execute(update(jobs).where(_leased(claim_)).values(**values)).rowcount
        cancel = conn.execute(select(jobs.c.cancel_requested).where(jobs.c.id == claim_.job.id)).scalar()
    return Signals(updated == 1, bool(cancel))


def finish(
    db: Database, claim_: Claim, status: str, *, result: Any = None, error: str | None = None
) -> bool:
    """Record the end of a run. False (and nothing written) if the lease was lost."""
    with db.write(ledger_lock=False) as conn:
        return _finish(conn, claim_.job.id, status, result=result, error=error, token=claim_.token)


def _finish(
    conn: Connection, job_id: str, status: str, *, result: Any = None, error: str | None = None,
    token: str | None = None, now: dt.datetime | None = None,
) -> bool:
    now = now or _now()
    condition = jobs.c.id == job_id
    if token is not None:
        condition = and_(condition, jobs.c.claim_token == token, jobs.c.status == RUNNING)
    values: dict[str, Any] = {
        "status": status, "finished_at": now, "updated_at": now, "claim_token": None,
        "result": _dump(result) if result is not None else None, "error": error,
    }
    if status == SUCCEEDED:
        values["progress_done"] = func.coalesce(jobs.c.progress_total, jobs.c.progress_done)
    return conn.execute(update(jobs).where(condition).values(**values)).rowcount == 1


def cancel_job(db: Database, job_id: str, *, actor: str) -> Job:
    """Cancel a queued job now; ask a running job to stop at its next safe point."""
    now = _now()
    with db.write(ledger_lock=False) as conn:
        job = _fetch(conn, job_id, lock=True)
        if job.finished:
            raise LedgerError(Problem(E_INVALID, "job", f"job {job_id} already {job.status}"))
        if job.status == QUEUED:
            _finish(conn, job_id, CANCELLED, error=f"cancelled by {actor}", now=now)
        else:
            conn.execute(update(jobs).where(jobs.c.id == job_id).values(cancel_requested=True, updated_at=now))
        audit.record(conn, actor=actor, action="job.cancel", target=job_id, details={"status": job.status})
        return _fetch(conn, job_id)


def retry_job(db: Database, job_id: str, *, actor: str) -> Job:
    """Queue a failed or cancelled job again, from the start, with a fresh count of runs."""
    now = _now()
    with db.write(ledger_lock=False) as conn:
        job = _fetch(conn, job_id, lock=True)
        if job.status not in (FAILED, CANCELLED):
            raise LedgerError(Problem(E_INVALID, "job", f"job {job_id} is {job.status}; only failed or cancelled jobs are retried"))
        other = conn.execute(
            select(jobs.c.id).where(jobs.c.dedup_key == job.dedup_key, jobs.c.status.in_(ACTIVE_STATUSES))
        ).scalar()
        if other is not None:
            raise LedgerError(Problem(E_INVALID, "job", f"job {other} with the same key is already {QUEUED} or {RUNNING}"))
        conn.execute(
            update(jobs).where(jobs.c.id == job_id).values(
                status=QUEUED, cancel_requested=False, attempts=0, claim_token=None, worker=None,
                error=None, result=None, finished_at=None, progress_done=0, progress_total=None,
                progress_message=None, updated_at=now,
            )
        )
        audit.record(conn, actor=actor, action="job.retry", target=job_id, details={"was": job.status})
        return _fetch(conn, job_id)


def reap(db: Database, *, stale_seconds: float, resend_seconds: float) -> list[Job]:
    """Jobs to send to the broker again: running jobs whose worker went silent (re-queued
    here) and queued jobs nobody claimed for a while (their message may have died with a
    worker). Sending a job twice is harmless: only one run can hold its lease."""
    now = _now()
    stale = now - dt.timedelta(seconds=stale_seconds)
    waiting = now - dt.timedelta(seconds=resend_seconds)
    with db.write(ledger_lock=False) as conn:
        lost = conn.execute(
            update(jobs)
            .where(jobs.c.status == RUNNING, or_(jobs.c.heartbeat_at.is_(None), jobs.c.heartbeat_at < stale))
            .values(
                status=QUEUED, claim_token=None, updated_at=now,
                progress_message=func.coalesce(jobs.c.worker, "a worker") + " stopped answering; re-queued",
            )
            .returning(jobs.c.id)
        ).scalars().all()
        resend = conn.execute(
            update(jobs)
            .where(jobs.c.status == QUEUED, jobs.c.updated_at < waiting)
            .values(updated_at=now)
            .returning(jobs.c.id)
        ).scalars().all()
        ids = sorted(set(lost) | set(resend))
        return [_job(row) for row in conn.execute(select(jobs).where(jobs.c.id.in_(ids)))] if ids else []
