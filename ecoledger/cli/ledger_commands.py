"""Journal commands: init, post, reverse, entry show, trial-balance, account-statement,
verify, export beancount."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click

from ecoledger import migrate
from ecoledger.cli.output import (
    CSV,
    JSON,
    TABLE,
    echo_rejections,
    emit_csv,
    emit_json,
    emit_table,
    file_size,
    format_option,
    note,
    printable,
    progress_bar,
)
from ledger import export, posting, reports, reversal
from ledger.interchange import read_json_lines
from ledger.money import format_amount
from ledger.schemas import (
    EntryDocumentSchema,
    PostingReportSchema,
    ReversalSchema,
    StatementLineSchema,
    TrialBalanceSchema,
    VerifyReportSchema,
)
from ledger.verify import CHECKS, verify


class DateType(click.ParamType):
    name = "YYYY-MM-DD"

    def convert(self, value, param, ctx):
        if isinstance(value, dt.date):
            return value
        try:
            if len(value) != 10:
                raise ValueError
            return dt.date.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not a date as YYYY-MM-DD", param, ctx)


DATE = DateType()


def register(main: click.Group) -> None:
    for command in (init, post, reverse, entry, trial_balance, account_statement, verify_command, export_group):
        main.add_command(command)


@click.command()
@click.pass_obj
def init(app) -> None:
    """Create the database, or upgrade it to this version's schema.

    Safe to run again: an up-to-date database is left as it is.
    """
    db = app.database(require_schema=False)
    if db.is_sqlite and db.url.database:
        Path(db.url.database).parent.mkdir(parents=True, exist_ok=True)
    before, after = migrate.upgrade(db)
    if before == after:
        click.echo(f"{app.describe()}: schema {after}, up to date")
    else:
        click.echo(f"{app.describe()}: schema {before or '(empty)'} -> {after}")


@click.command()
@click.argument("file", type=click.File("rb"))
@click.option(
    "--partial",
    is_flag=True,
    help="Post the valid entries and report the rejected ones. Default: all-or-nothing "
    "(any rejection, nothing is written).",
)
@format_option(TABLE, JSON)
@click.pass_obj
def post(app, file, partial: bool, fmt: str) -> None:
    """Post journal entries from FILE (JSON lines; - for stdin).

    One entry per line, in the interchange format:

    \b
    {"id": "usage-2026-10-000123", "date": "2026-10-31", "description": "...",
     "postings": [{"company": "OPFI", "account": "Assets:Receivables:Unbilled",
                   "amount": "100.00", "currency": "EUR", "dimensions": {"customer": "C-17"}},
                  ...]}

    Each entry ends as accepted, duplicate (same id and content posted before: nothing is
    written) or rejected (the line, id and reason are printed). Exits 1 if any entry was
    rejected.
    """
    db = app.database()
    size = file_size(file)
    label = getattr(file, "name", "<stdin>")
    label = "stdin" if label in ("-", "<stdin>") else label
    with progress_bar(f"posting {label}", size, unit="bytes" if size else "entries") as update:
        report = posting.post_entries(
            db,
            read_json_lines(file),
            actor=app.actor,
            all_or_nothing=not partial,
            # Through a file: how far it has been read; through a pipe: entries handled.
            progress=(lambda _entries: update(file.tell())) if size else update,
        )
    if fmt == JSON:
        emit_json(PostingReportSchema().dump(report))
    else:
        _print_report(label, report)
    if not report.ok:
        sys.exit(1)


def _print_report(name: str, report: posting.PostingReport) -> None:
    summary = (
        f"{name}: {report.accepted} accepted, {report.duplicates} duplicate, "
        f"{report.rejected} rejected"
    )
    if report.not_posted:
        summary += f"; {report.not_posted} valid entries not posted (all-or-nothing: fix the rejections or use --partial)"
    click.echo(summary)
    if report.accepted:
        click.echo(f"journal positions {report.first_entry_seq}..{report.last_entry_seq}")
    echo_rejections(report.rejections, report.rejections_omitted, " rejected entries")


@click.command()
@click.argument("entry_id")
@click.option("--date", "effective_date", type=DATE, required=True, help="Effective date of the reversal.")
@click.option("--description", help="Description of the reversal entry (default: 'Reversal of ...').")
@format_option(TABLE, JSON)
@click.pass_obj
def reverse(app, entry_id: str, effective_date: dt.date, description: str | None, fmt: str) -> None:
    """Reverse the entry ENTRY_ID: post its exact negation, dated --date.

    An entry is reversed at most once; asking again with the same date shows the existing
    reversal.
    """
    result = reversal.reverse_entry(
        app.database(), entry_id, effective_date, actor=app.actor, description=description
    )
    if fmt == JSON:
        emit_json(ReversalSchema().dump(result))
    elif result.created:
        click.echo(f"reversed {entry_id} by {result.reversal_id} on {effective_date} (journal #{result.entry_seq})")
    else:
        click.echo(f"{entry_id} was already reversed by {result.reversal_id} on {effective_date}; nothing posted")


@click.group()
def entry() -> None:
    """Look at journal entries."""


@entry.command("show")
@click.argument("entry_id")
@format_option(TABLE, JSON)
@click.pass_obj
def entry_show(app, entry_id: str, fmt: str) -> None:
    """Show the entry ENTRY_ID with its postings, source and hashes."""
    stored = reports.get_entry(app.database(), entry_id)
    if fmt == JSON:
        emit_json(EntryDocumentSchema().dump(stored))
        return
    click.echo(f"{stored.external_id}  {stored.effective_date}  {printable(stored.description)}")
    click.echo(
        f"journal #{stored.entry_seq}, recorded {stored.recorded_at:%Y-%m-%d %H:%M:%S} UTC, "
        f"source {stored.source['type']}" + (f":{printable(stored.source['id'])}" if stored.source["id"] else "")
    )
    if stored.reverses:
        click.echo(f"reverses {stored.reverses}")
    if stored.reversed_by:
        click.echo(f"reversed by {stored.reversed_by}")
    for key, value in stored.metadata.items():
        click.echo(f"{key}: {printable(value)}")
    emit_table(
        ["Company", "Account", "Amount", "Currency", "Dimensions"],
        [
            (
                p.company,
                p.account,
                format_amount(p.amount_minor, p.currency),
                p.currency,
                ", ".join(f"{k}={v}" for k, v in p.dimensions.items()),
            )
            for p in stored.postings
        ],
        right={"Amount"},
    )
    click.echo(f"payload {stored.payload_hash}\nchain   {stored.chain_hash}")


@click.command("trial-balance")
@click.option("--company", help="Only this company (default: every company, each on its own).")
@click.option("--as-of", type=DATE, help="Balances at the end of this day (default: all postings).")
@click.option(
    "--consolidated",
    is_flag=True,
    help="Sum each account name across companies (no intercompany eliminations).",
)
@format_option(TABLE, JSON, CSV)
@click.pass_obj
def trial_balance(app, company: str | None, as_of: dt.date | None, consolidated: bool, fmt: str) -> None:
    """Balances per account with debit and credit totals per currency."""
    result = reports.trial_balance(app.database(), company=company, as_of=as_of, consolidated=consolidated)
    if fmt == JSON:
        emit_json(TrialBalanceSchema().dump(result))
        return
    if fmt == CSV:
        emit_csv(
            ["company", "account", "type", "currency", "balance"],
            [
                (l.company, l.account, l.type, l.currency, format_amount(l.balance_minor, l.currency))
                for l in result.lines
            ],
        )
        return
    print_trial_balance(result)


def print_trial_balance(result: reports.TrialBalance) -> None:
    """One table per company, debit and credit columns, totals per currency."""
    names = sorted({line.company for line in result.lines}) or [result.company or "-"]
    when = f"as of {result.as_of}" if result.as_of else "all postings"
    for name in names:
        lines = [line for line in result.lines if line.company == name]
        rows = [
            (
                l.account,
                l.currency,
                format_amount(l.balance_minor, l.currency) if l.balance_minor >= 0 else "",
                format_amount(-l.balance_minor, l.currency) if l.balance_minor < 0 else "",
            )
            for l in lines
        ]
        totals = reports.TrialBalance(result.as_of, name, result.consolidated, lines).totals()
        footer = [
            ("Total", currency, format_amount(debits, currency), format_amount(credits, currency))
            for currency, (debits, credits) in sorted(totals.items())
        ]
        emit_table(
            ["Account", "Currency", "Debit", "Credit"],
            rows,
            title=f"Trial balance {name} ({when})",
            right={"Debit", "Credit"},
            footer=footer,
        )


@click.command("account-statement")
@click.option("--company", required=True, help="Company code.")
@click.option("--account", required=True, help="Account name, e.g. Assets:Receivables:Customers.")
@click.option("--from", "date_from", type=DATE, help="First day (default: the beginning).")
@click.option("--to", "date_to", type=DATE, help="Last day (default: the end).")
@format_option(TABLE, JSON, CSV)
@click.pass_obj
def account_statement(app, company: str, account: str, date_from, date_to, fmt: str) -> None:
    """Opening balance, every posting with its running balance, closing balance."""
    with reports.account_statement(
        app.database(), company, account, date_from=date_from, date_to=date_to
    ) as statement:
        if fmt == CSV:
            emit_csv(
                ["date", "entry_id", "description", "currency", "amount", "balance"],
                (
                    (l.date, l.entry_id, l.description, l.currency,
                     format_amount(l.amount_minor, l.currency), format_amount(l.balance_minor, l.currency))
                    for l in statement.lines
                ),
            )
            return
        lines = list(statement.lines) if fmt == JSON else statement.lines
        if fmt == JSON:
            closing = dict(statement.opening)
            for line in lines:
                closing[line.currency] = line.balance_minor
            emit_json(
                {
                    "company": company,
                    "account": account,
                    "from": date_from,
                    "to": date_to,
                    "opening": {c: format_amount(v, c) for c, v in sorted(statement.opening.items())},
                    "lines": StatementLineSchema(many=True).dump(lines),
                    "closing": {c: format_amount(v, c) for c, v in sorted(closing.items())},
                }
            )
            return
        closing = dict(statement.opening)
        rows = []
        for line in lines:
            closing[line.currency] = line.balance_minor
            rows.append(
                (line.date, line.entry_id, line.description[:60], line.currency,
                 format_amount(line.amount_minor, line.currency),
                 format_amount(line.balance_minor, line.currency))
            )
        opening = [("", "opening balance", "", c, "", format_amount(v, c)) for c, v in sorted(statement.opening.items())]
        footer = [("", "closing balance", "", c, "", format_amount(v, c)) for c, v in sorted(closing.items())]
        emit_table(
            ["Date", "Entry", "Description", "Currency", "Amount", "Balance"],
            opening + rows,
            title=f"{company} {account}",
            right={"Amount", "Balance"},
            footer=footer,
        )


@click.command("verify")
@format_option(TABLE, JSON)
@click.pass_obj
def verify_command(app, fmt: str) -> None:
    """Recompute every invariant from the stored rows; exit 1 on any violation.

    Checks: entries balanced per company and currency; debits equal credits; stored
    balances equal the replay of the postings; the hash chain; reversal links; nothing
    posted into closed periods; immutability triggers present. Prints the chain head:
    record it elsewhere to detect a rewrite of the whole chain later.
    """
    with progress_bar("verifying the journal", None, unit="entries") as update:
        report = verify(app.database(), progress=update)
    if fmt == JSON:
        emit_json(VerifyReportSchema().dump(report))
    else:
        click.echo(f"{report.entries} entries, {report.postings} postings")
        for name, description in CHECKS.items():
            count = report.counts[name]
            click.echo(f"  {'ok' if not count else 'FAIL':4}  {description}" + (f" ({count} violations)" if count else ""))
        for violation in report.violations:
            where = f" [{violation.entry_id}]" if violation.entry_id else ""
            click.echo(f"  {violation.check}{where}: {violation.message}")
        click.echo(f"chain head: #{report.head_seq} {report.head_hash}")
        click.echo("verify: OK" if report.ok else "verify: FAILED")
    if not report.ok:
        sys.exit(1)


@click.group("export")
def export_group() -> None:
    """Export the ledger."""


@export_group.command("beancount")
@click.option("--company", help="Only this company's books, with its own account names.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, writable=True), required=True,
              help="File to write (- for stdout).")
@click.pass_obj
def export_beancount(app, company: str | None, out_path: str) -> None:
    """Write a beancount 3 file: open directives, every entry with its id and source as
    metadata, and balance assertions after each closed period and at the end.

    The file loads in beancount and Fava with zero errors; its balances equal the trial
    balance. Check it with: bean-check FILE
    """
    db = app.database()
    if out_path == "-":
        summary = export.export_beancount(db, sys.stdout, company=company)
    else:
        tmp = Path(out_path).with_name(Path(out_path).name + ".partial")
        try:
            with progress_bar("exporting", None, unit="entries") as update:
                with tmp.open("w", encoding="utf-8") as out:
                    summary = export.export_beancount(db, out, company=company, progress=update)
            tmp.replace(out_path)  # never leave half a file under the real name
        finally:
            tmp.unlink(missing_ok=True)
    note(
        f"exported {summary.entries} entries, {summary.accounts} accounts, "
        f"{summary.balance_assertions} balance assertions"
        + (f" to {out_path}" if out_path != "-" else "")
    )
