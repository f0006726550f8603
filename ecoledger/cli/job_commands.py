"""Jobs and workers: worker, job run|start|list|show|cancel|retry|kinds."""

from __future__ import annotations

import json
import os
import socket
import sys
import time

import click

from ecoledger.cli.output import (
    CSV,
    JSON,
    TABLE,
    emit_csv,
    emit_json,
    emit_table,
    format_option,
    printable,
    progress_bar,
)
from jobs import service, store
from jobs.kinds import KINDS
from jobs.runner import JobTiming, execute
from jobs.store import Job
from ledger.records import E_INVALID, LedgerError, Problem
from ledger.schemas import JobSchema

WATCH_INTERVAL_SECONDS = 0.5


def register(main: click.Group) -> None:
    main.add_command(worker)
    main.add_command(job)


@click.command()
@click.option("--concurrency", type=click.IntRange(1, 64), help="Jobs run at once by this worker. [default: CPUs]")
@click.option("--beat", is_flag=True, help="Also run the recurring jobs of config/schedule.py (one worker only).")
@click.option("--loglevel", default="info", show_default=True, type=click.Choice(["debug", "info", "warning", "error"]))
@click.pass_obj
def worker(app, concurrency: int | None, beat: bool, loglevel: str) -> None:
    """Run a worker that takes jobs from the broker until stopped.

    The broker is ECOLEDGER_BROKER_URL (Redis, RabbitMQ), or the embedded filesystem
    broker under the data directory when it is empty. Run as many workers, on as many
    machines, as needed; each one also re-queues the jobs of workers that died.
    """
    from jobs.celery_app import create_app, run_worker  # Celery loads only for workers

    app.database()  # refuse to start on an uninitialised database
    app.close()  # and fork no open connection into the pool's processes
    run_worker(create_app(app.settings), concurrency=concurrency, beat=beat, loglevel=loglevel)


@click.group()
def job() -> None:
    """Long-running work (verify, exports) as jobs: start, watch, cancel, retry."""


def _params(pairs: tuple[str, ...], params_json: str | None) -> dict:
    params: dict = {}
    if params_json:
        try:
            loaded = json.loads(params_json)
        except ValueError as exc:
            raise LedgerError(Problem(E_INVALID, "params", f"not JSON: {exc}")) from exc
        if not isinstance(loaded, dict):
            raise LedgerError(Problem(E_INVALID, "params", "must be a JSON object"))
        params.update(loaded)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise LedgerError(Problem(E_INVALID, "params", f"{pair!r} is not KEY=VALUE"))
        params[key] = value
    return params


def _kind_help() -> str:
    lines = []
    for kind in KINDS.values():
        fields_ = ", ".join(
            f"{name}{'' if field.required else '?'}" for name, field in kind.params().fields.items()
        )
        lines.append(f"{kind.name}({fields_}): {kind.description}")
    return "\n\n\b\n" + "\n".join(lines)


_param_options = [
    click.argument("kind", type=click.Choice(sorted(KINDS))),
    click.option("-p", "--param", "pairs", multiple=True, metavar="KEY=VALUE", help="A job parameter; repeatable."),
    click.option("--params", "params_json", metavar="JSON", help="Parameters as a JSON object."),
    click.option("--dedup-key", help="Key that makes a second start return the same job (default: per kind)."),
]


def _with_params(function):
    for option in reversed(_param_options):
        function = option(function)
    return function


@job.command("run", help="Run a job here, in the foreground, with a progress bar." + _kind_help())
@_with_params
@format_option(TABLE, JSON)
@click.pass_obj
def job_run(app, kind, pairs, params_json, dedup_key, fmt) -> None:
    db = app.database()
    with progress_bar(kind, None, unit="") as update:
        finished = service.run(
            db, kind, _params(pairs, params_json), actor=app.actor, dedup_key=dedup_key,
            worker=_this_process(), timing=JobTiming.from_settings(app.settings),
            data_dir=app.settings.data_path, on_progress=lambda _job, done, _total: update(done),
        )
        if not finished.finished:  # a worker runs it: follow it to the end
            finished = _follow(db, finished.id, update)
    _print_job(finished, fmt)
    if finished.status != store.SUCCEEDED:
        sys.exit(1)


@job.command("start", help="Queue a job for the workers and print its id." + _kind_help())
@_with_params
@format_option(TABLE, JSON)
@click.pass_obj
def job_start(app, kind, pairs, params_json, dedup_key, fmt) -> None:
    from jobs.celery_app import create_app, enqueue

    db = app.database()
    celery = create_app(app.settings)  # a broker that cannot work is refused before anything is queued
    started, created = service.start(db, kind, _params(pairs, params_json), actor=app.actor, dedup_key=dedup_key)
    if created:
        enqueue(celery, started)
    if fmt == JSON:
        emit_json(JobSchema().dump(started))
    elif created:
        click.echo(f"queued job {started.id} ({kind}); watch it with: ecoledger job show {started.id} --watch")
    else:
        click.echo(f"job {started.id} with the same key is already {started.status}; not started again")


def _this_process() -> str:
    """The worker name of a job run in the foreground."""
    return f"cli@{socket.gethostname()}:{os.getpid()}"


def _follow(db, job_id: str, update) -> Job:
    while True:
        current = store.get_job(db, job_id)
        update(current.progress_done)
        if current.finished:
            return current
        time.sleep(WATCH_INTERVAL_SECONDS)


@job.command("list")
@click.option("--status", type=click.Choice([store.QUEUED, store.RUNNING, store.SUCCEEDED, store.FAILED, store.CANCELLED]))
@click.option("--kind", type=click.Choice(sorted(KINDS)))
@format_option(TABLE, JSON, CSV)
@click.pass_obj
def job_list(app, status, kind, fmt) -> None:
    """Jobs, newest first."""
    rows = store.list_jobs(app.database(), status=status, kind=kind)
    if fmt == JSON:
        emit_json(JobSchema(many=True).dump(rows))
        return
    columns = ["id", "kind", "status", "progress", "attempts", "created", "finished", "error"]
    data = [
        (
            j.id, j.kind, j.status + (" (cancelling)" if j.cancel_requested and not j.finished else ""),
            f"{j.progress_done}/{j.progress_total}" if j.progress_total is not None else str(j.progress_done),
            j.attempts, f"{j.created_at:%Y-%m-%d %H:%M:%S}", f"{j.finished_at:%Y-%m-%d %H:%M:%S}" if j.finished_at else "",
            (j.error or "")[:60],
        )
        for j in rows
    ]
    if fmt == CSV:
        emit_csv(columns, data)
    else:
        emit_table([c.title() for c in columns], data, right={"Attempts"})


@job.command("show")
@click.argument("job_id")
@click.option("--watch", is_flag=True, help="Follow the job's progress until it finishes.")
@format_option(TABLE, JSON)
@click.pass_obj
def job_show(app, job_id: str, watch: bool, fmt: str) -> None:
    """A job: status, progress, runs, result or error."""
    db = app.database()
    current = store.get_job(db, job_id)
    if watch and not current.finished:
        with progress_bar(f"{current.kind} ({current.id[:8]})", current.progress_total, unit="") as update:
            current = _follow(db, job_id, update)
    _print_job(current, fmt)


@job.command("cancel")
@click.argument("job_id")
@click.pass_obj
def job_cancel(app, job_id: str) -> None:
    """Cancel a queued job, or stop a running one at its next safe point."""
    current = store.cancel_job(app.database(), job_id, actor=app.actor)
    if current.status == store.CANCELLED:
        click.echo(f"cancelled job {job_id}")
    else:
        click.echo(f"job {job_id} will stop at its next safe point (ecoledger job show {job_id} --watch)")


@job.command("retry")
@click.argument("job_id")
@click.option("--here", is_flag=True, help="Run it in the foreground instead of queuing it for a worker.")
@click.pass_obj
def job_retry(app, job_id: str, here: bool) -> None:
    """Run a failed or cancelled job again from the start."""
    db = app.database()
    if not here:
        from jobs.celery_app import create_app, enqueue

        celery = create_app(app.settings)  # refuse a broker that cannot work before re-queuing
    queued = store.retry_job(db, job_id, actor=app.actor)
    if here:
        finished = execute(db, job_id, worker=_this_process(),
                           timing=JobTiming.from_settings(app.settings), data_dir=app.settings.data_path)
        _print_job(finished, TABLE)
        if finished.status != store.SUCCEEDED:
            sys.exit(1)
        return
    enqueue(celery, queued)
    click.echo(f"queued job {job_id} again")


@job.command("kinds")
@format_option(TABLE, JSON)
def job_kinds(fmt: str) -> None:
    """The kinds of job and their parameters."""
    rows = [
        (kind.name, ", ".join(f"{n}{'' if f.required else ' (optional)'}" for n, f in kind.params().fields.items()) or "-", kind.description)
        for kind in KINDS.values()
    ]
    if fmt == JSON:
        emit_json([{"kind": k, "params": p, "description": d} for k, p, d in rows])
    else:
        emit_table(["Kind", "Parameters", "What it does"], rows)


def _print_job(current: Job, fmt: str) -> None:
    if fmt == JSON:
        emit_json(JobSchema().dump(current))
        return
    click.echo(f"job {current.id}: {current.kind} {current.status}")
    click.echo(f"  params    {json.dumps(current.params, sort_keys=True)}")
    click.echo(f"  runs      {current.attempts}" + (f" (last on {current.worker})" if current.worker else ""))
    total = f"/{current.progress_total}" if current.progress_total is not None else ""
    click.echo(f"  progress  {current.progress_done}{total}" + (f"  {printable(current.progress_message)}" if current.progress_message else ""))
    click.echo(f"  created   {current.created_at:%Y-%m-%d %H:%M:%S} UTC by {current.created_by}")
    if current.finished_at:
        click.echo(f"  finished  {current.finished_at:%Y-%m-%d %H:%M:%S} UTC")
    if current.error:
        click.echo(f"  error     {printable(current.error)}")
    if current.result:
        for key, value in current.result.items():
            shown = value if not isinstance(value, dict | list) else json.dumps(value, sort_keys=True)
            click.echo(f"  {key:9} {printable(str(shown))[:200]}")
