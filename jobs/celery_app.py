"""The Celery adapter: delivers job ids to workers. Nothing about a job lives in Celery.

* One task per job kind (``ecoledger.job.<kind>``), acknowledged late and rejected back
  to the broker when its worker dies, so that RabbitMQ and Redis redeliver it.
* Every worker runs the reaper: jobs whose heartbeat went stale are re-queued and sent
  again, and queued jobs whose message was lost are sent again. A job delivered twice runs
  once: only one run can hold its lease (jobs.store.claim).
* Embedded default: the filesystem broker under the data directory; a broker URL in the
  settings (Redis, RabbitMQ) for production.
* Celery beat runs config/schedule.py when the worker is started with --beat.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import socket
import threading
from urllib.parse import urlsplit, urlunsplit

from celery import Celery, signals
from celery.schedules import crontab

from config import Settings, load_settings
from config.schedule import SCHEDULE
from jobs import service, store
from jobs.errors import BrokerUnavailable
from jobs.kinds import KINDS, kind_of
from jobs.runner import JobTiming, execute
from jobs.store import Job
from ledger.database import Database

log = logging.getLogger("ecoledger.jobs")

TASK_PREFIX = "ecoledger.job."
SCHEDULE_TASK = "ecoledger.schedule.start"
_databases: dict[tuple[int, str], Database] = {}


def database(settings: Settings) -> Database:
    """One Database per process: forked pool workers must not share the parent's sockets."""
    key = (os.getpid(), settings.database_url)
    if key not in _databases:
        _databases[key] = Database(settings.database_url, echo=settings.echo_sql)
    return _databases[key]


def broker_configuration(settings: Settings) -> dict:
    if settings.broker_url.startswith(("redis://", "rediss://")) and importlib.util.find_spec("redis") is None:
        raise BrokerUnavailable("a Redis broker needs the redis package: pip install 'ecoledger[redis]'")
    if settings.broker_url:
        return {
            "broker_url": settings.broker_url,
            "broker_transport_options": {"visibility_timeout": settings.broker_visibility_timeout_seconds},
        }
    # Producer and consumer share one folder: a message is a file, read once.
    # The exchange tables go beside the queue, not into the working directory.
    folder = settings.data_path / "broker" / "queue"
    control = settings.data_path / "broker" / "control"
    folder.mkdir(parents=True, exist_ok=True)
    control.mkdir(parents=True, exist_ok=True)
    return {
        "broker_url": "filesystem://",
        "broker_transport_options": {
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "control_folder": str(control),
        },
    }


def create_app(settings: Settings | None = None) -> Celery:
    settings = settings or load_settings()
    app = Celery("ecoledger", set_as_current=False)
    app.conf.update(
        **broker_configuration(settings),
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_default_queue=settings.job_queue,
        task_serializer="json",
        accept_content=["json"],
        timezone="UTC",
        enable_utc=True,
        broker_connection_retry_on_startup=True,
        worker_send_task_events=False,
        beat_schedule=_beat_schedule() if settings.schedule_enabled else {},
        beat_schedule_filename=str(settings.data_path / "beat-schedule"),
    )
    app.ecoledger_settings = settings
    # Tasks are registered on this app only (shared=False): each closes over its settings.
    for name in KINDS:
        _register_kind(app, name)

    @app.task(name=SCHEDULE_TASK, shared=False)
    def start_scheduled(kind: str, params: dict) -> None:
        if not kind_of(kind).work_due(database(settings)):
            return  # nothing to do: no job row for an idle tick
        job, created = service.start(database(settings), kind, params, actor="schedule")
        if created:
            enqueue(app, job)

    return app


def _register_kind(app: Celery, kind: str) -> None:
    @app.task(
        name=TASK_PREFIX + kind, bind=True, shared=False, acks_late=True, reject_on_worker_lost=True, max_retries=None
    )
    def run_job(task, job_id: str) -> None:
        settings = app.ecoledger_settings
        worker = f"{task.request.hostname or socket.gethostname()}:{os.getpid()}"
        job = execute(database(settings), job_id, worker=worker, timing=JobTiming.from_settings(settings), data_dir=settings.data_path)
        if job.status == store.QUEUED:  # another job of its partition is running: later
            raise task.retry(countdown=settings.job_heartbeat_seconds)


def enqueue(app: Celery, job: Job) -> None:
    """Hand a queued job to the broker. If the broker is unreachable the job stays queued
    and any worker's reaper sends it once the broker is back (job_resend_seconds)."""
    try:
        app.send_task(TASK_PREFIX + job.kind, args=[job.id], queue=app.ecoledger_settings.job_queue, retry=False)
    except Exception as exc:  # kombu raises many kinds; all mean the same here
        raise BrokerUnavailable(
            f"job {job.id} is queued, but the broker {_shown(app)} cannot take it now ({exc.__class__.__name__}: "
            f"{exc}); a worker's reaper will send it when the broker is back"
        ) from exc


def _shown(app: Celery) -> str:
    url = app.ecoledger_settings.broker_url
    return make_url_safe(url) if url else "(embedded filesystem broker)"


def make_url_safe(url: str) -> str:
    """A broker URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def _beat_schedule() -> dict:
    return {
        name: {"task": SCHEDULE_TASK, "schedule": crontab(**entry["cron"]), "args": (entry["kind"], entry["params"])}
        for name, entry in SCHEDULE.items()
    }


def reap_once(app: Celery) -> int:
    settings = app.ecoledger_settings
    jobs_ = store.reap(
        database(settings), stale_seconds=settings.job_stale_seconds, resend_seconds=settings.job_resend_seconds
    )
    for job in jobs_:
        log.warning("job %s (%s) sent again: %s", job.id, job.kind, job.progress_message or "waiting too long")
        enqueue(app, job)
    return len(jobs_)


class Reaper(threading.Thread):
    """Runs in every worker's main process, from start-up: re-queues what crashed."""

    def __init__(self, app: Celery) -> None:
        super().__init__(name="ecoledger-reaper", daemon=True)
        self._app = app
        self._stopped = threading.Event()

    def run(self) -> None:
        interval = self._app.ecoledger_settings.job_reap_interval_seconds
        while True:
            try:
                reap_once(self._app)
            except Exception:  # a database hiccup must not kill the reaper
                log.warning("reaping jobs failed; trying again in %s s", interval, exc_info=True)
            if self._stopped.wait(interval):
                return

    def stop(self) -> None:
        self._stopped.set()


def run_worker(app: Celery, *, concurrency: int | None, beat: bool, loglevel: str) -> None:
    """Start a worker in this process (blocks), with the reaper and optionally beat."""
    reaper = Reaper(app)

    def on_ready(**_kwargs) -> None:
        reaper.start()

    signals.worker_ready.connect(on_ready, weak=False)
    queue = app.ecoledger_settings.job_queue
    argv = ["worker", f"--loglevel={loglevel}", "-Q", queue, "--without-gossip", "--without-mingle"]
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    if beat:
        argv.append("--beat")  # its schedule file: beat_schedule_filename, under data_dir
    try:
        app.worker_main(argv)
    finally:
        reaper.stop()
