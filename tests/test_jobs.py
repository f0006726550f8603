"""Jobs without Celery: the jobs table's states, leases, cancellation, the reaper, and the
job kinds run in the foreground."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from marshmallow import Schema, fields
from sqlalchemy import text, update

from jobs import kinds, service, store
from jobs.kinds import JobKind
from jobs.runner import JobTiming, execute
from jobs.schema import jobs
from ledger.records import LedgerError
from ledger.schemas import VerifyReportSchema
from ledger.verify import verify

from helpers import entry, post

TIMING = JobTiming(heartbeat_seconds=30, stale_seconds=60)


def run(db, job_id, tmp_path, **options):
    return execute(db, job_id, worker="test", timing=options.pop("timing", TIMING), data_dir=tmp_path, **options)


def start(db, kind="verify", params=None, **options):
    return service.start(db, kind, params or {}, actor="tester", **options)


@pytest.fixture
def ledger(db):
    post(db, *(entry(f"e{i}", f"2026-10-{i % 28 + 1:02d}") for i in range(30)))
    return db


def age(db, job_id: str, seconds: float, column="heartbeat_at") -> None:
    """Make a job look as if its last heartbeat (or update) was ``seconds`` ago."""
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)
    with db.engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.id == job_id).values(**{column: past}))


def test_starting_the_same_job_twice_gives_one_job(ledger, tmp_path):
    first, created = start(ledger)
    again, created_again = start(ledger)
    assert created and not created_again and again.id == first.id
    assert run(ledger, first.id, tmp_path).status == "succeeded"
    # Finished: the key is free again, so tomorrow's verify is a new job.
    later, created_later = start(ledger)
    assert created_later and later.id != first.id


def test_verify_job_result_is_the_verify_report(ledger, tmp_path):
    job, _ = start(ledger)
    done = run(ledger, job.id, tmp_path)
    assert done.status == "succeeded" and done.attempts == 1
    assert done.result == VerifyReportSchema().dump(verify(ledger))
    assert (done.progress_done, done.progress_total) == (30, 30)


def test_verify_job_that_finds_violations_fails_and_keeps_the_report(ledger, tmp_path):
    with ledger.engine.begin() as conn:
        conn.execute(text(
            "UPDATE balances SET balance_minor = balance_minor + 1 "
            "WHERE account_id = (SELECT MIN(account_id) FROM balances)"
        ))
    job, _ = start(ledger)
    done = run(ledger, job.id, tmp_path)
    assert done.status == "failed" and done.error == "verification found 1 violation"
    assert done.result["ok"] is False and done.result["counts"]["balances_replay"] == 1


def test_export_job_is_atomic_and_repeatable(ledger, tmp_path):
    job, _ = start(ledger, "export-beancount", {"out": "books.beancount", "company": "OPFI"})
    first = run(ledger, job.id, tmp_path)
    target = tmp_path / "exports" / "books.beancount"
    assert first.status == "succeeded" and first.result["path"] == str(target) and target.exists()
    assert not list(target.parent.glob("*.partial"))
    again, _ = start(ledger, "export-beancount", {"out": "books.beancount", "company": "OPFI"})
    second = run(ledger, again.id, tmp_path)
    assert second.result == first.result  # same ledger, same bytes


@pytest.mark.parametrize(
    "kind, params, field",
    [
        ("export-beancount", {}, "params.out"),
        ("export-beancount", {"out": "x", "colour": "red"}, "params.colour"),
        ("export-beancount", {"out": ""}, "params.out"),
        ("verify", {"deep": True}, "params.deep"),
    ],
)
def test_bad_parameters_are_refused_before_anything_is_queued(db, kind, params, field):
    with pytest.raises(LedgerError) as caught:
        start(db, kind, params)
    assert caught.value.problems[0].field == field
    assert store.list_jobs(db) == []


def test_unknown_kind(db):
    with pytest.raises(LedgerError, match="no job kind 'nope'"):
        start(db, "nope")


def test_a_job_failing_in_its_body_records_the_error(ledger, tmp_path):
    job, _ = start(ledger, "export-beancount", {"out": "/proc/not-writable/x.beancount"})
    done = run(ledger, job.id, tmp_path)
    assert done.status == "failed" and "cannot create /proc/not-writable" in done.error


def test_a_run_that_lost_its_lease_cannot_write(ledger, tmp_path):
    job, _ = start(ledger)
    first = store.claim(ledger, job.id, worker="a", stale_seconds=60)
    assert isinstance(first, store.Claim)
    assert not isinstance(store.claim(ledger, job.id, worker="b", stale_seconds=60), store.Claim)  # alive
    age(ledger, job.id, 120)
    second = store.claim(ledger, job.id, worker="b", stale_seconds=60)  # presumed dead: taken over
    assert isinstance(second, store.Claim) and second.job.attempts == 2
    assert store.report(ledger, first, done=5) == store.Signals(lease_held=False, cancel_requested=False)
    assert store.finish(ledger, first, store.SUCCEEDED, result={"from": "a"}) is False
    assert store.finish(ledger, second, store.SUCCEEDED, result={"from": "b"}) is True
    assert store.get_job(ledger, job.id).result == {"from": "b"}


def test_cancel_a_queued_job(db):
    job, _ = start(db)
    assert store.cancel_job(db, job.id, actor="t").status == "cancelled"
    with pytest.raises(LedgerError, match="already cancelled"):
        store.cancel_job(db, job.id, actor="t")


def test_cancel_stops_a_running_job_at_a_safe_point(ledger, tmp_path):
    job, _ = start(ledger)
    seen = []

    def on_progress(current, done, total):
        if not seen:
            store.cancel_job(ledger, current.id, actor="t")  # while it runs
        seen.append(done)

    done = run(ledger, job.id, tmp_path, on_progress=on_progress)
    assert done.status == "cancelled" and done.error == "cancelled at a safe point"
    assert seen == [0]  # stopped at the first safe point after the request


def test_interrupting_a_foreground_run_cancels_it(ledger, tmp_path):
    job, _ = start(ledger)

    def interrupt(*_):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(ledger, job.id, tmp_path, on_progress=interrupt)
    assert store.get_job(ledger, job.id).status == "cancelled"


def test_retry(ledger, tmp_path):
    job, _ = start(ledger)
    store.cancel_job(ledger, job.id, actor="t")
    queued = store.retry_job(ledger, job.id, actor="t")
    assert (queued.status, queued.attempts, queued.error) == ("queued", 0, None)
    assert run(ledger, job.id, tmp_path).status == "succeeded"
    with pytest.raises(LedgerError, match="only failed or cancelled jobs"):
        store.retry_job(ledger, job.id, actor="t")


def test_retry_refused_while_the_same_key_is_active(db):
    job, _ = start(db)
    store.cancel_job(db, job.id, actor="t")
    start(db)
    with pytest.raises(LedgerError, match="same key is already"):
        store.retry_job(db, job.id, actor="t")


def test_reaper_requeues_silent_runs_and_resends_forgotten_ones(ledger):
    running, _ = start(ledger, "export-beancount", {"out": "a"})
    store.claim(ledger, running.id, worker="gone", stale_seconds=60)
    waiting, _ = start(ledger, "export-beancount", {"out": "b"})
    fresh, _ = start(ledger, "export-beancount", {"out": "c"})
    store.claim(ledger, fresh.id, worker="alive", stale_seconds=60)
    assert store.reap(ledger, stale_seconds=60, resend_seconds=60) == []
    age(ledger, running.id, 90)
    age(ledger, waiting.id, 90, column="updated_at")
    reaped = {job.id: job for job in store.reap(ledger, stale_seconds=60, resend_seconds=60)}
    assert set(reaped) == {running.id, waiting.id}
    assert reaped[running.id].status == "queued" and "gone stopped answering" in reaped[running.id].progress_message
    assert store.get_job(ledger, fresh.id).status == "running"


def test_a_job_that_keeps_crashing_is_given_up(ledger, tmp_path):
    job, _ = start(ledger)
    for _ in range(5):  # JOB_ATTEMPTS_MAX runs that never finished
        assert isinstance(store.claim(ledger, job.id, worker="w", stale_seconds=60), store.Claim)
        age(ledger, job.id, 120)
    given_up = store.claim(ledger, job.id, worker="w", stale_seconds=60)
    assert given_up.status == "failed" and "gave up after 5 runs" in given_up.error


class _SleepParams(Schema):
    partner = fields.String(required=True)
    seconds = fields.Float(load_default=0.2)


def _sleep(ctx, params):
    deadline = time.monotonic() + params["seconds"]
    step = 0
    while time.monotonic() < deadline:
        time.sleep(0.02)
        step += 1
        ctx.progress(step)
    return {"partner": params["partner"], "steps": step}


@pytest.fixture
def sleeper(monkeypatch):
    """A kind for testing the machinery, partitioned by partner like clearing runs will be."""
    kind = JobKind("test-sleep", "sleeps", _SleepParams, _sleep,
                   dedup_key=lambda p: f"sleep:{p['partner']}:{p['seconds']}",
                   partition_key=lambda p: f"partner:{p['partner']}")
    monkeypatch.setitem(kinds.KINDS, kind.name, kind)
    return kind


def test_jobs_of_one_partition_never_run_at_once(db, sleeper):
    first, _ = start(db, "test-sleep", {"partner": "P1"})
    second, _ = start(db, "test-sleep", {"partner": "P1", "seconds": 0.3})
    other, _ = start(db, "test-sleep", {"partner": "P2"})
    assert isinstance(store.claim(db, first.id, worker="a", stale_seconds=60), store.Claim)
    held = store.claim(db, second.id, worker="b", stale_seconds=60)
    assert not isinstance(held, store.Claim) and held.status == "queued"  # waits its turn
    assert isinstance(store.claim(db, other.id, worker="c", stale_seconds=60), store.Claim)  # in parallel


def test_heartbeat_beats_during_a_long_step(db, sleeper, tmp_path):
    job, _ = start(db, "test-sleep", {"partner": "P", "seconds": 0.6})
    beats = []

    def on_progress(current, done, total):
        beats.append(store.get_job(db, current.id).heartbeat_at)

    done = run(db, job.id, tmp_path, timing=JobTiming(heartbeat_seconds=0.05, stale_seconds=60), on_progress=on_progress)
    assert done.status == "succeeded" and done.result["partner"] == "P"
    assert len(set(beats)) > 3  # written by the heartbeat thread between progress writes


def test_only_queued_jobs_run(db, tmp_path):
    job, _ = start(db)
    store.cancel_job(db, job.id, actor="t")
    assert run(db, job.id, tmp_path).status == "cancelled"  # delivered late: nothing runs
    with pytest.raises(LedgerError, match="no job"):
        run(db, "0" * 32, tmp_path)


def test_jobs_are_listed_newest_first(db, tmp_path):
    ids = [start(db, "export-beancount", {"out": f"f{i}"})[0].id for i in range(3)]
    assert [j.id for j in store.list_jobs(db)] == list(reversed(ids))
    assert [j.id for j in store.list_jobs(db, status="queued", kind="export-beancount")] == list(reversed(ids))
    assert Path(tmp_path).exists()


def test_a_result_too_large_to_keep_fails_the_job_once(db, sleeper, tmp_path, monkeypatch):
    job, _ = start(db, "test-sleep", {"partner": "P", "seconds": 0.01})
    monkeypatch.setattr(store.limits, "JOB_RESULT_BYTES_MAX", 10)
    done = run(db, job.id, tmp_path)
    assert done.status == "failed" and "exceeds 10" in done.error and done.attempts == 1
