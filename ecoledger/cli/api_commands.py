"""The API: serve it, and manage its keys (api-key create|list|show|revoke|rotate)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import click

from access import keys
from access.schema import ROLES
from access.schemas import ApiKeySchema, IssuedKeySchema
from ecoledger.cli.output import CSV, JSON, TABLE, emit_csv, emit_json, emit_table, format_option


def register(main: click.Group) -> None:
    main.add_command(serve)
    main.add_command(api_key)


@click.command()
@click.option("--host", help="Address to listen on. [env ECOLEDGER_API_HOST; default 127.0.0.1]")
@click.option("--port", type=click.IntRange(1, 65535), help="Port. [env ECOLEDGER_API_PORT; default 8000]")
@click.option("--workers", type=click.IntRange(1, 64), help="Server processes. [env ECOLEDGER_API_WORKERS; default 2]")
@click.option("--threads", type=click.IntRange(1, 64), help="Threads per process. [env ECOLEDGER_API_THREADS; default 4]")
@click.option("--job-worker/--no-job-worker", default=None,
              help="Run the embedded job worker beside the server. [default: on when no broker is configured]")
@click.option("--access-log/--no-access-log", default=True, show_default=True, help="One line per request on stdout.")
@click.option("--debug", is_flag=True, help="Flask's development server with tracebacks: never in production.")
@click.pass_obj
def serve(app, host, port, workers, threads, job_worker, access_log, debug) -> None:
    """Serve the REST API (OpenAPI document at /openapi.json, interactive docs at /docs).

    Runs gunicorn, a production WSGI server. Health at /health, readiness (database
    reachable, schema current) at /ready. With no broker configured (the embedded default),
    a job worker runs beside the server so that jobs started through the API get done;
    with Redis or RabbitMQ, run `ecoledger worker` separately.
    """
    settings = app.settings.with_overrides(api_host=host, api_port=port, api_workers=workers, api_threads=threads)
    app.database()  # refuse to start on an uninitialised or outdated database
    app.close()  # and fork no open connection into the server's processes
    if job_worker is None:
        job_worker = not settings.broker_url
    embedded = _start_job_worker(settings) if job_worker else None
    try:
        if debug:
            from api import create_app

            click.echo("warning: the development server is for debugging only", err=True)
            create_app(settings).run(host=settings.api_host, port=settings.api_port, debug=True, use_reloader=False)
        else:
            from api.server import run

            run(settings, access_log=access_log)
    finally:
        if embedded is not None:
            embedded.terminate()
            try:
                embedded.wait(timeout=30)
            except subprocess.TimeoutExpired:
                embedded.kill()


def _start_job_worker(settings) -> subprocess.Popen:
    # A separate process: Celery's worker wants the main thread and its own signals.
    command = [sys.executable, "-m", "ecoledger", "--database", settings.database_url, "worker", "--concurrency", "1",
               "--loglevel", "warning"]
    click.echo("starting the embedded job worker (no broker configured)", err=True)
    # Its banner and logs go to stderr: stdout is the server's access log.
    return subprocess.Popen(command, stdout=sys.stderr.fileno() if _has_fileno(sys.stderr) else None)


def _has_fileno(stream) -> bool:
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True


@click.group("api-key")
def api_key() -> None:
    """API keys: Bearer tokens for the REST API, stored hashed.

    Roles: operator_admin (everything), controller (post, close, run jobs), partner (one
    company's data, read mostly), auditor (read everything, including the audit log).
    """


def _expiry(days: float | None) -> dt.datetime | None:
    return None if days is None else dt.datetime.now(dt.UTC) + dt.timedelta(days=days)


def _emit_issued(issued: keys.IssuedKey, fmt: str) -> None:
    if fmt == JSON:
        emit_json(IssuedKeySchema().dump(issued))
        return
    key = issued.key
    click.echo(f"issued API key {key.id} ({key.role}{' of ' + key.company if key.company else ''})", err=True)
    click.echo("the token is shown only now; store it in a secret store:", err=True)
    click.echo(issued.token)


@api_key.command("create")
@click.option("--name", required=True, help="What the key is for, e.g. 'billing export job'.")
@click.option("--role", required=True, type=click.Choice(ROLES), help="What the key may do.")
@click.option("--company", help="Company code; required for partner keys, refused for others.")
@click.option("--expires-in-days", type=click.FloatRange(min=0, min_open=True), help="Expire after this many days.")
@format_option(TABLE, JSON)
@click.pass_obj
def api_key_create(app, name, role, company, expires_in_days, fmt) -> None:
    """Issue a key. Prints the token once on stdout: it is not stored and cannot be shown again."""
    issued = keys.issue_key(app.database(), name=name, role=role, actor=app.actor, company=company,
                            expires_at=_expiry(expires_in_days))
    _emit_issued(issued, fmt)


@api_key.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include revoked and expired keys.")
@format_option(TABLE, JSON, CSV)
@click.pass_obj
def api_key_list(app, show_all, fmt) -> None:
    """List keys (never their secrets)."""
    rows = [key for key in keys.list_keys(app.database()) if show_all or key.active()]
    if fmt == JSON:
        emit_json(ApiKeySchema(many=True).dump(rows))
        return
    columns = ["id", "name", "role", "company", "created_at", "expires_at", "status"]
    data = [
        (k.id, k.name, k.role, k.company, f"{k.created_at:%Y-%m-%d %H:%M}",
         f"{k.expires_at:%Y-%m-%d %H:%M}" if k.expires_at else None,
         "active" if k.active() else "revoked" if k.revoked_at else "expired")
        for k in rows
    ]
    if fmt == CSV:
        emit_csv(columns, data)
    else:
        emit_table(["Id", "Name", "Role", "Company", "Created (UTC)", "Expires (UTC)", "Status"], data, title="API keys")


@api_key.command("show")
@click.argument("key_id")
@format_option(TABLE, JSON)
@click.pass_obj
def api_key_show(app, key_id, fmt) -> None:
    """One key."""
    key = keys.get_key(app.database(), key_id)
    document = ApiKeySchema().dump(key)
    if fmt == JSON:
        emit_json(document)
    else:
        emit_table(["Field", "Value"], list(document.items()), title=f"API key {key.id}")


@api_key.command("revoke")
@click.argument("key_id")
@format_option(TABLE, JSON)
@click.pass_obj
def api_key_revoke(app, key_id, fmt) -> None:
    """Revoke a key: it stops working at once. Revoking twice changes nothing."""
    key = keys.revoke_key(app.database(), key_id, actor=app.actor)
    if fmt == JSON:
        emit_json(ApiKeySchema().dump(key))
    else:
        click.echo(f"revoked API key {key.id} at {key.revoked_at:%Y-%m-%d %H:%M:%S} UTC")


@api_key.command("rotate")
@click.argument("key_id")
@click.option("--grace-hours", type=click.FloatRange(0, 24 * 30), default=keys.ROTATION_GRACE_HOURS,
              show_default=True, help="Hours the old key keeps working, so clients can switch.")
@format_option(TABLE, JSON)
@click.pass_obj
def api_key_rotate(app, key_id, grace_hours, fmt) -> None:
    """Issue a new key in place of KEY_ID (same name, role, company); print its token once."""
    issued = keys.rotate_key(app.database(), key_id, actor=app.actor, grace_hours=grace_hours)
    _emit_issued(issued, fmt)
