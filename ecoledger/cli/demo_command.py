"""``ecoledger demo``: the whole story on a fresh database."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from beancount import loader
from sqlalchemy import select

from ecoledger import demo, migrate
from ecoledger.cli.ledger_commands import print_trial_balance
from ledger import export, reports
from ledger.database import Database
from ledger.records import LedgerError, Problem
from ledger.schema import companies
from ledger.verify import verify

DEMO_URL = "sqlite:///ecoledger-demo.db"


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
    customers; October 2026 posted, a mistake reversed, the month closed. Then: a trial
    balance per company, `verify`, and a beancount export loaded back with beancount.
    """
    db = _fresh(url)
    try:
        click.echo(f"ecoledger demo in {url}\n")
        demo.run(db, click.echo)
        click.echo("\n7. Trial balances, October 2026")
        for code, _, _ in demo.COMPANIES:
            print_trial_balance(reports.trial_balance(db, company=code))
        click.echo("8. Verify: every invariant recomputed from the stored rows")
        report = verify(db)
        failed = [name for name, count in report.counts.items() if count]
        click.echo(
            f"   {report.entries} entries, {report.postings} postings, "
            f"chain head #{report.head_seq} {report.head_hash[:16]}…: "
            + ("OK" if report.ok else f"FAILED ({', '.join(failed)})")
        )
        click.echo(f"\n9. Beancount as the independent check: export to {beancount_out}")
        with open(beancount_out, "w", encoding="utf-8") as out:
            summary = export.export_beancount(db, out)
        _, errors, _ = loader.load_file(beancount_out)
        click.echo(
            f"   {summary.entries} entries, {summary.balance_assertions} balance assertions; "
            f"beancount reports {len(errors)} errors"
        )
        for error in errors[:10]:
            click.echo(f"   {error.message}")
        click.echo(
            f"\nExplore: ecoledger --database {url} trial-balance --consolidated\n"
            f"         ecoledger --database {url} account-statement --company OPFI "
            "--account Assets:Receivables:Customers\n"
            f"         bean-check {beancount_out}   (and, with fava installed: fava {beancount_out})"
        )
        if not report.ok or errors:
            sys.exit(1)
    finally:
        db.dispose()
