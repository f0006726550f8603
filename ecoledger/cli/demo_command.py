"""``ecoledger demo``: the whole story on a fresh database."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from beancount import loader
from sqlalchemy import select

from ecoledger import demo, migrate
from ecoledger.cli.ledger_commands import print_trial_balance
from jobs import service
from jobs.runner import JobTiming
from ledger import reports
from ledger.database import Database
from ledger.records import LedgerError, Problem
from ledger.schema import companies

DEMO_URL = "sqlite:///ecoledger-demo.db"


def _run_job(db: Database, kind: str, params: dict):
    """Run a job here, through the jobs table, as `ecoledger job run` does."""
    return service.run(db, kind, params, actor="demo", worker="demo",
                       timing=JobTiming(heartbeat_seconds=10, stale_seconds=60), data_dir=Path(".ecoledger").resolve())


def register(main: click.Group) -> None:
    main.add_command(demo_command)


def _fresh(url: str) -> Database:
    db = Database(url)
    if db.is_sqlite and db.url.database:
        db.dispose()
        for suffix in ("", "-wal", "-shm"):
            Path(db.url.database + suffix).unlink(missing_ok=True)
        db = Database(url)
    migrate.upgrade(db)
    with db.read() as conn:
        if conn.execute(select(companies.c.id).limit(1)).first():
            raise LedgerError(
                Problem("invalid_value", "database", f"{url} is not empty; the demo needs an empty database")
            )
    return db


@click.command("demo")
@click.option(
    "--database",
    "url",
    default=DEMO_URL,
    show_default=True,
    metavar="URL",
    help="Database for the demo. An SQLite file is recreated; any other database must be empty. "
    "Your own ledger (ECOLEDGER_DATABASE_URL) is never touched.",
)
@click.option(
    "--beancount-out",
    default="ecoledger-demo.beancount",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Where to write the beancount export of the demo ledger.",
)
def demo_command(url: str, beancount_out: str) -> None:
    """Build a small ecosystem, post a month of entries, show the books and check them.

    An operator with two legal entities, a field-service vendor, a reseller and three
    customers, loaded from an ecosystem file; October 2026's outside entries posted, contract
    events posted through the posting rules, a month of usage lines rated and posted, a
    billing run invoicing fees and usage, a dispute and a credit note, a mistake reversed, the
    month cleared (the transfer price between the operator's entities) and closed, a late usage
    line posted in the next open period, each partner's settlement statement with a payout
    recorded, and the group consolidated. Then: a trial
    balance per company, `verify`, and a beancount export loaded back with beancount.
    """
    db = _fresh(url)
    try:
        click.echo(f"ecoledger demo in {url}\n")
        demo.run(db, click.echo)
        click.echo("\n12. Trial balances, October 2026")
        for code, _, _ in demo.COMPANIES:
            print_trial_balance(reports.trial_balance(db, company=code))
        click.echo("13. Verify, as a job: every invariant recomputed from the stored rows")
        verified = _run_job(db, "verify", {})
        result = verified.result or {}
        failed = [name for name, count in result.get("counts", {}).items() if count]
        click.echo(
            f"   job {verified.id[:8]} {verified.status} in {verified.attempts} run: "
            f"{result.get('entries')} entries, {result.get('postings')} postings, "
            f"chain head #{result.get('head_seq')} {str(result.get('head_hash'))[:16]}…: "
            + ("OK" if result.get("ok") else f"FAILED ({', '.join(failed) or verified.error})")
        )
        target = Path(beancount_out).resolve()
        click.echo(f"\n14. Beancount as the independent check: an export job writes {beancount_out}")
        exported = _run_job(db, "export-beancount", {"out": str(target)})
        summary = exported.result or {}
        _, errors, _ = loader.load_file(str(target)) if exported.status == "succeeded" else (None, ["export failed"], None)
        click.echo(
            f"   job {exported.id[:8]} {exported.status}: {summary.get('entries')} entries, "
            f"{summary.get('balance_assertions')} balance assertions; beancount reports {len(errors)} errors"
        )
        for error in errors[:10]:
            click.echo(f"   {getattr(error, 'message', error)}")
        click.echo(
            "\n   Jobs run here in the foreground; with `ecoledger worker` running, "
            "`ecoledger job start verify` hands them to workers."
        )
        click.echo(
            f"\nExplore: ecoledger --database {url} trial-balance --consolidated\n"
            f"         ecoledger --database {url} account-statement --company OPFI "
            "--account Assets:Receivables:Customers\n"
            f"         bean-check {beancount_out}   (and, with fava installed: fava {beancount_out})"
        )
        if verified.status != "succeeded" or errors:
            sys.exit(1)
    finally:
        db.dispose()
