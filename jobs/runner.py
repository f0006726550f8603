"""Running one job: claim its lease, keep a heartbeat, let the body report progress, record
the outcome. Used alike by Celery workers and by `ecoledger job run` in the foreground."""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from config import Settings, limits
from jobs import store
from jobs.kinds import JobFailed, kind_of
from jobs.store import Claim, Job
from ledger.database import Database
from ledger.records import LedgerError

log = logging.getLogger("ecoledger.jobs")


class StopJob(Exception):
    """Raised inside a body at a safe point: the job was cancelled, or its lease lost."""

    def __init__(self, cancelled: bool) -> None:
        super().__init__("cancelled" if cancelled else "lease lost")
        self.cancelled = cancelled


@dataclass
class JobTiming:
    heartbeat_seconds: float
    stale_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> JobTiming:
        return cls(settings.job_heartbeat_seconds, settings.job_stale_seconds)


class _Context:
    """The JobContext given to bodies."""

    def __init__(self, db: Database, claim: Claim, data_dir: Path, on_progress: Callable[[Job, int, int | None], None] | None) -> None:
        self.db = db
        self.data_dir = data_dir
        self.actor = f"job:{claim.job.id} ({claim.job.created_by})"[:200]
        self._claim = claim
        self._on_progress = on_progress
        self._last_write = 0.0
        self.stop: StopJob | None = None  # set by the heartbeat thread too

    def progress(self, done: int, total: int | None = None, message: str | None = None) -> None:
        if self._on_progress:
            self._on_progress(self._claim.job, done, total)
        now = time.monotonic()
        if now - self._last_write >= limits.JOB_PROGRESS_WRITE_SECONDS or (total is not None and done >= total):
            self._last_write = now
            self._signals(store.report(self.db, self._claim, done=done, total=total, message=message))
        if self.stop is not None:
            raise self.stop

    def _signals(self, signals: store.Signals) -> None:
        if not signals.lease_held:
            self.stop = StopJob(cancelled=False)
        elif signals.cancel_requested:
            self.stop = StopJob(cancelled=True)


class _Heartbeat(threading.Thread):
    """Writes the run's heartbeat while the body works, even through long steps without
    progress; notices cancellation and a lost lease between safe points."""

    def __init__(self, db: Database, claim: Claim, context: _Context, seconds: float) -> None:
        super().__init__(name=f"heartbeat-{claim.job.id}", daemon=True)
        self._db, self._claim, self._context, self._seconds = db, claim, context, seconds
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(self._seconds):
            try:
                self._context._signals(store.report(self._db, self._claim))
            except Exception:  # a missed beat is not fatal; the next one may pass
                log.warning("heartbeat of job %s failed", self._claim.job.id, exc_info=True)

    def stop(self) -> None:
        self._stopped.set()
        self.join()


def execute(
    db: Database,
    job_id: str,
    *,
    worker: str,
    timing: JobTiming,
    data_dir: Path,
    on_progress: Callable[[Job, int, int | None], None] | None = None,
) -> Job:
    """Run the job if it is ours to run; return it as it stands afterwards."""
    claimed = store.claim(db, job_id, worker=worker, stale_seconds=timing.stale_seconds)
    if not isinstance(claimed, Claim):
        return claimed
    job = claimed.job
    log.info("job %s (%s) run %d started on %s", job.id, job.kind, job.attempts, worker)
    context = _Context(db, claimed, data_dir, on_progress)
    heartbeat = _Heartbeat(db, claimed, context, timing.heartbeat_seconds)
    heartbeat.start()
    try:
        result = kind_of(job.kind).run(context, job.params)
    except StopJob as stop:
        if stop.cancelled:
            store.finish(db, claimed, store.CANCELLED, error="cancelled at a safe point")
        else:
            log.warning("job %s lost its lease; another run owns it now", job.id)
    except JobFailed as failure:
        store.finish(db, claimed, store.FAILED, result=failure.result, error=str(failure))
    except LedgerError as refusal:
        store.finish(db, claimed, store.FAILED, error=str(refusal))
    except KeyboardInterrupt:  # Ctrl-C on a foreground run: the user stopped it
        store.finish(db, claimed, store.CANCELLED, error="interrupted")
        raise
    except Exception as crash:  # recorded, not hidden: the job says what went wrong
        log.exception("job %s failed", job.id)
        store.finish(db, claimed, store.FAILED, error="".join(traceback.format_exception_only(crash)).strip())
    else:
        try:
            recorded = store.finish(db, claimed, store.SUCCEEDED, result=result)
        except ValueError as unstorable:  # a result too large to keep: fails the same way again
            recorded = store.finish(db, claimed, store.FAILED, error=str(unstorable))
        if not recorded:
            log.warning("job %s finished after losing its lease; its result is discarded", job.id)
    finally:
        heartbeat.stop()
    return store.get_job(db, job_id)
