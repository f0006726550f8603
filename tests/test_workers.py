"""Real worker processes on the embedded filesystem broker, Redis and RabbitMQ.

The crash test: a worker is killed with SIGKILL in the middle of a job; a new worker
starts; the job completes exactly once, with the result of an uninterrupted run, and the
ledger verifies. Redis and RabbitMQ tests skip with the reason when the server is not
reachable, except under CI (CI=true), where they must run.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest

from config import Settings
from ecoledger import migrate
from jobs import service, store
from jobs.celery_app import create_app, enqueue
from ledger import companies
from ledger.database import Database, scratch_postgres_schema
from ledger.posting import post_entries
from ledger.records import EntryDraft, PostingDraft
from ledger.schemas import VerifyReportSchema
from ledger.verify import verify

from conftest import BACKEND, IN_CI, POSTGRES_URL, require_postgres

ENTRIES = 60_000  # verify takes seconds: long enough to be killed in the middle
BROKERS = {
    "filesystem": "",
    "redis": os.environ.get("ECOLEDGER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
    "rabbitmq": os.environ.get("ECOLEDGER_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//"),
}
EXECUTABLE = os.path.join(os.path.dirname(sys.executable), "ecoledger")
WAIT_SECONDS = 120


def require_broker(name: str) -> str:
    url = BROKERS[name]
    if url:
        parsed = urlparse(url)
        try:
            socket.create_connection((parsed.hostname, parsed.port or {"redis": 6379, "amqp": 5672}[parsed.scheme]), timeout=3).close()
        except OSError as exc:
            reason = f"{name} not reachable at {parsed.hostname}:{parsed.port}: {exc}"
            if IN_CI:
                pytest.fail(f"{reason} (CI=true: broker tests must run, not skip)")
            pytest.skip(reason)
    return url


@pytest.fixture(scope="module")
def ledger_url(tmp_path_factory, request):
    """A ledger of ENTRIES entries, built once for the module's tests (which only read it)."""
    if BACKEND == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('ledger') / 'ledger.db'}"
    else:
        require_postgres()
        url, drop = scratch_postgres_schema(POSTGRES_URL, prefix="w")
        request.addfinalizer(drop)
    db = Database(url)
    migrate.upgrade(db)  # as `ecoledger init` does: workers refuse a database without it
    companies.add_company(db, "OPFI", "Operator", "EUR", actor="t", roles=["operator"], open_date=dt.date(2026, 1, 1))
    companies.add_company(db, "VEND", "Vendor", "EUR", actor="t", roles=["vendor"], open_date=dt.date(2026, 1, 1))
    day = dt.date(2026, 10, 5)
    drafts = (
        EntryDraft(f"usage-{n}", day, (
            PostingDraft("OPFI", "Expenses:CostOfServices", 100 + n % 997, "EUR"),
            PostingDraft("OPFI", "Liabilities:Ecosystem:DueTo", -(100 + n % 997), "EUR", (("counterparty", "VEND"),)),
            PostingDraft("VEND", "Assets:Ecosystem:DueFrom", 100 + n % 997, "EUR", (("counterparty", "OPFI"),)),
            PostingDraft("VEND", "Income:Ecosystem", -(100 + n % 997), "EUR"),
        ))
        for n in range(ENTRIES)
    )
    assert post_entries(db, drafts, actor="t").accepted == ENTRIES
    db.dispose()
    return url


class Workers:
    """Starts ecoledger workers as separate processes sharing one ledger, broker and queue."""

    def __init__(self, ledger_url: str, broker_url: str, folder: Path) -> None:
        self.folder = folder
        self.env = {
            **os.environ,
            "ECOLEDGER_DATABASE_URL": ledger_url,
            "ECOLEDGER_BROKER_URL": broker_url,
            "ECOLEDGER_DATA_DIR": str(folder / "data"),
            "ECOLEDGER_JOB_QUEUE": f"test-{uuid.uuid4().hex[:8]}",
            "ECOLEDGER_JOB_HEARTBEAT_SECONDS": "0.5",
            "ECOLEDGER_JOB_STALE_SECONDS": "3",
            "ECOLEDGER_JOB_REAP_INTERVAL_SECONDS": "0.5",
            "ECOLEDGER_JOB_RESEND_SECONDS": "5",
            "ECOLEDGER_SCHEDULE_ENABLED": "false",
        }
        self.env.pop("ECOLEDGER_SETTINGS", None)
        self.settings = Settings(
            database_url=ledger_url, broker_url=broker_url, data_dir=self.env["ECOLEDGER_DATA_DIR"],
            job_queue=self.env["ECOLEDGER_JOB_QUEUE"], schedule_enabled=False,
        )
        self.db = Database(ledger_url)
        self.processes: list[subprocess.Popen] = []

    def start(self) -> subprocess.Popen:
        log = open(self.folder / f"worker-{len(self.processes)}.log", "wb")
        process = subprocess.Popen(
            [EXECUTABLE, "worker", "--concurrency", "1", "--loglevel", "info"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.processes.append(process)
        return process

    def kill(self, process: subprocess.Popen) -> None:
        """SIGKILL to the worker and its pool: nothing gets to clean up."""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def submit(self, kind: str, params: dict | None = None) -> str:
        # Its own dedup key: tests share one ledger and must not merge into each other's jobs.
        job, created = service.start(self.db, kind, params or {}, actor="test", dedup_key=f"{kind}-{uuid.uuid4().hex}")
        assert created
        enqueue(create_app(self.settings), job)
        return job.id

    def wait(self, job_id: str, until, what: str):
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            job = store.get_job(self.db, job_id)
            if until(job):
                return job
            for process in self.processes:
                if process.poll() not in (None, -signal.SIGKILL):
                    pytest.fail(f"worker exited with {process.returncode}: {self.logs()}")
            time.sleep(0.02)
        pytest.fail(f"job {job_id} never {what}: {store.get_job(self.db, job_id)}\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.folder.glob("worker-*.log")))

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
        self.db.dispose()


@pytest.fixture
def workers(request, tmp_path):
    broker = require_broker(request.param)  # before building the ledger, which takes seconds
    pool = Workers(request.getfixturevalue("ledger_url"), broker, tmp_path)
    yield pool
    pool.close()


@pytest.mark.parametrize("workers", list(BROKERS), indirect=True)
def test_a_killed_worker_s_job_completes_once_with_the_same_result(workers):
    expected = VerifyReportSchema().dump(verify(workers.db))
    before = {j.id for j in store.list_jobs(workers.db)}
    first = workers.start()
    job_id = workers.submit("verify")
    workers.wait(job_id, lambda j: j.status == "running" and 0 < j.progress_done < ENTRIES, "got half-way")
    workers.kill(first)
    assert store.get_job(workers.db, job_id).status == "running"  # killed mid-job, as intended
    workers.start()
    done = workers.wait(job_id, lambda j: j.finished, "finished")
    assert done.status == "succeeded", (done.error, workers.logs())
    assert done.attempts == 2  # the killed run and the one that finished
    assert done.result == expected
    assert {j.id for j in store.list_jobs(workers.db)} - before == {job_id}  # the crash made no other job
    assert verify(workers.db).ok


@pytest.mark.parametrize("workers", ["filesystem"], indirect=True)
def test_cancel_stops_a_worker_s_job_at_a_safe_point(workers):
    workers.start()
    job_id = workers.submit("verify")
    workers.wait(job_id, lambda j: j.status == "running" and j.progress_done > 0, "started")
    store.cancel_job(workers.db, job_id, actor="test")
    done = workers.wait(job_id, lambda j: j.finished, "stopped")
    # Stopped at a safe point: no result. (How far it got depends on the machine's load: a
    # fast scan may have read every entry before the cancellation was seen, at the checks
    # after it.)
    assert done.status == "cancelled" and done.progress_done <= ENTRIES and done.result is None
    assert done.error == "cancelled at a safe point"


@pytest.mark.parametrize("workers", ["filesystem"], indirect=True)
def test_export_through_a_worker(workers):
    workers.start()
    job_id = workers.submit("export-beancount", {"out": "ledger.beancount"})
    done = workers.wait(job_id, lambda j: j.finished, "finished")
    assert done.status == "succeeded", done.error
    assert Path(done.result["path"]).is_file() and done.result["entries"] == ENTRIES


def test_schedule_starts_jobs_through_the_jobs_table(db_url, tmp_path):
    """Beat's entries come from config/schedule.py; the task they fire starts a job (once)."""
    from celery.schedules import crontab

    from ecoledger.schema import metadata
    from jobs.celery_app import SCHEDULE_TASK

    db = Database(db_url)
    metadata.create_all(db.engine)
    settings = Settings(database_url=db_url, data_dir=str(tmp_path / "data"), schedule_enabled=True)
    app = create_app(settings)
    nightly = app.conf.beat_schedule["nightly-verify"]
    assert nightly["task"] == SCHEDULE_TASK and nightly["args"] == ("verify", {})
    assert nightly["schedule"] == crontab(minute="0", hour="2")
    app.tasks[SCHEDULE_TASK].run("verify", {})
    app.tasks[SCHEDULE_TASK].run("verify", {})  # the second fire finds the first still queued
    scheduled = store.list_jobs(db)
    assert [(j.kind, j.status, j.created_by) for j in scheduled] == [("verify", "queued", "schedule")]
    assert len(list((tmp_path / "data" / "broker" / "queue").iterdir())) == 1  # one message sent
    assert create_app(Settings(database_url=db_url, data_dir=str(tmp_path), schedule_enabled=False)).conf.beat_schedule == {}
    db.dispose()


def test_worker_with_beat_starts(tmp_path, db_url):
    """`ecoledger worker --beat` comes up with the schedule loaded, and stops cleanly."""
    database = Database(db_url)
    migrate.upgrade(database)
    database.dispose()
    env = {**os.environ, "ECOLEDGER_DATABASE_URL": db_url, "ECOLEDGER_DATA_DIR": str(tmp_path / "data"),
           "ECOLEDGER_BROKER_URL": "", "ECOLEDGER_JOB_QUEUE": f"test-{uuid.uuid4().hex[:8]}"}
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        process = subprocess.Popen([EXECUTABLE, "worker", "--beat", "--concurrency", "1", "--loglevel", "debug"],
                                   env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        # The schedule is logged a moment after beat starts: wait for both.
        while not all(s in log.read_text(errors="replace") for s in ("beat: Starting", "nightly-verify")) \
                and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text(errors="replace")
            time.sleep(0.2)
        text = log.read_text(errors="replace")
        assert "beat: Starting" in text and "nightly-verify" in text, text[-3000:]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
