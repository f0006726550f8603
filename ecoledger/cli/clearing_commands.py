"""Clearing: clearing run|items, netting run, statement issue|list|show|entries, payment record, consolidate."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from billing.pdf import FontError, fonts
from clearing import statements as service
from clearing.consolidation import consolidate
from clearing.fx import list_rates, record_rate
from clearing.netting import run_bilateral_netting, run_netting
from clearing.payments import record_payment
from clearing.pdf import statement_pdf
from clearing.run import list_items, run_clearing
from clearing.schemas import (
    ClearingItemSchema,
    ClearingReportSchema,
    ConsolidationSchema,
    FxRateDocumentSchema,
    IssueReportSchema,
    NettingReportSchema,
    StatementSchema,
    StatementSummarySchema,
)
from ecoledger.cli.contract_commands import rules_of
from ecoledger.cli.output import CSV, JSON, TABLE, emit_csv, emit_json, emit_table, format_option
from ledger.money import format_amount
from partners.schemas import canonical_decimal

PDF = "pdf"


def register(main: click.Group) -> None:
    main.add_command(fx)
    main.add_command(netting)
    main.add_command(consolidate_command)
    main.add_command(clearing)
    main.add_command(statement)
    main.add_command(payment)


@click.group()
def fx() -> None:
    """Exchange rates fixed per netting cycle: netting converts positions at them."""


@fx.command("set")
@click.option("--cycle", required=True, metavar="YYYY-MM", help="The netting cycle.")
@click.option("--from", "currency", required=True, help="Converted from (ISO 4217).")
@click.option("--to", "to_currency", required=True, help="Converted to: a settlement currency.")
@click.option("--rate", required=True, help="Units of --to per unit of --from, e.g. 0.9213.")
@click.option("--date", "rate_date", required=True, type=click.DateTime(["%Y-%m-%d"]), help="The day it was fixed.")
@click.option("--source", required=True, help="Where it comes from, e.g. \"ECB reference rate\".")
@format_option(TABLE, JSON)
@click.pass_obj
def fx_set(app, cycle, currency, to_currency, rate, rate_date, source, fmt) -> None:
    """Fix a rate for a cycle. It never changes: the same rate again records nothing, another
    is refused."""
    found, created = record_rate(app.database(), {
        "cycle": cycle, "currency": currency, "to_currency": to_currency, "rate": rate,
        "rate_date": rate_date.date().isoformat(), "source": source}, actor=app.actor)
    if fmt == JSON:
        emit_json({**FxRateDocumentSchema().dump(found), "outcome": "recorded" if created else "unchanged"})
        return
    click.echo(f"{'recorded' if created else 'unchanged'}: {found.cycle} 1 {found.currency} = "
               f"{canonical_decimal(found.rate)} {found.to_currency} ({found.source}, {found.rate_date})")


@fx.command("list")
@click.option("--cycle", metavar="YYYY-MM", help="One cycle's rates. [default: all]")
@format_option(TABLE, JSON, CSV)
@click.pass_obj
def fx_list(app, cycle, fmt) -> None:
    """The rates fixed per cycle."""
    found = list_rates(app.database(), cycle)
    if fmt == JSON:
        emit_json(FxRateDocumentSchema(many=True).dump(found))
        return
    rows = [(r.cycle, r.currency, r.to_currency, canonical_decimal(r.rate), str(r.rate_date), r.source, r.recorded_by)
            for r in found]
    if fmt == CSV:
        emit_csv(["cycle", "currency", "to_currency", "rate", "rate_date", "source", "recorded_by"], rows)
    else:
        emit_table(["Cycle", "From", "To", "Rate", "Fixed on", "Source", "By"], rows, title="Exchange rates",
                   right=["Rate"])


@click.group()
def netting() -> None:
    """Netting: every partner's positions with the operator's entities moved to one centre."""


@netting.command("run")
@click.option("--cycle", required=True, help="The month, as YYYY-MM: positions at its end are netted.")
@click.option("--centre", help="Multilateral: the netting centre, an operator entity acting as central counterparty.")
@click.option("--bilateral", is_flag=True, help="Offset each partner's due-from and due-to with each entity instead.")
@format_option(TABLE, JSON)
@click.pass_obj
def netting_run(app, cycle, centre, bilateral, fmt) -> None:
    """Multilateral (--centre): move each netting partner's positions with the other entities
    to the centre, per currency, so that it has one amount to pay or receive. Bilateral
    (--bilateral): offset what each entity owes a partner against what the partner owes it.
    Disputed usage is withheld. Running a cycle again moves nothing new."""
    if bool(centre) == bilateral:
        raise click.UsageError("give --centre (multilateral) or --bilateral, one of them")
    report = (run_bilateral_netting(app.database(), cycle, actor=app.actor) if bilateral
              else run_netting(app.database(), cycle, centre=centre, actor=app.actor))
    if fmt == JSON:
        emit_json(NettingReportSchema().dump(report))
        return
    click.echo(f"netting {cycle} {'bilateral' if bilateral else f'via {centre}'}: {len(report.moves)} "
               f"{'offsets' if bilateral else 'positions moved'}")
    for move in report.moves:
        withheld = (f", {format_amount(move.withheld_minor, move.currency)} withheld (disputed)"
                    if move.withheld_minor else "")
        click.echo(f"  {move.partner} with {move.counterparty}: {format_amount(move.amount_minor, move.currency)} "
                   f"{move.currency}{withheld}")
    for item in report.conversions:
        click.echo(f"  {item.partner}: {format_amount(item.amount_minor, item.currency)} {item.currency} -> "
                   f"{format_amount(item.converted_minor, item.to_currency)} {item.to_currency} at "
                   f"{canonical_decimal(item.rate)} ({item.rate_source})")
    for item in report.unconverted:
        click.echo(f"  {item.partner}: its {item.currency} position stays in {item.currency}: no {item.currency}/"
                   f"{item.to_currency} rate for {cycle} (ecoledger fx set)", err=True)
    emit_table(["Participant", "With", "Cur", "Amount", "Direction"],
               [(p.participant, p.counterparty, p.currency, format_amount(p.amount_minor, p.currency),
                 "receives" if p.amount_minor > 0 else "pays") for p in report.positions],
               title="Net positions", right=["Amount"])


@click.command("consolidate")
@click.option("--as-of", "as_of", type=click.DateTime(["%Y-%m-%d"]), help="Balances at the end of this day. [default: now]")
@format_option(TABLE, JSON, CSV)
@click.pass_obj
def consolidate_command(app, as_of, fmt) -> None:
    """The operator entities' trial balance with intercompany eliminations (positions
    between them, intercompany revenue and cost). What does not cancel is reported and the
    command exits 1."""
    group = consolidate(app.database(), as_of=as_of and as_of.date())
    if fmt == JSON:
        emit_json(ConsolidationSchema().dump(group))
    elif fmt == CSV:
        emit_csv(["account", "currency", "group", "eliminated", "consolidated"],
                 [(line.account, line.currency, format_amount(line.group_minor, line.currency),
                   format_amount(line.eliminated_minor, line.currency),
                   format_amount(line.consolidated_minor, line.currency)) for line in group.lines])
    else:
        emit_table(["Account", "Cur", "Group", "Eliminated", "Consolidated"],
                   [(line.account, line.currency, format_amount(line.group_minor, line.currency),
                     format_amount(line.eliminated_minor, line.currency),
                     format_amount(line.consolidated_minor, line.currency)) for line in group.lines],
                   title=f"Consolidated trial balance of {', '.join(group.group)}"
                         f"{f' as of {group.as_of}' if group.as_of else ''}",
                   right=["Group", "Eliminated", "Consolidated"])
        for difference in group.differences:
            click.echo(f"not eliminated: {difference.what} {format_amount(difference.amount_minor, difference.currency)} "
                       f"{difference.currency}", err=True)
    if group.differences:
        sys.exit(1)


@click.group()
def clearing() -> None:
    """Clearing runs: true-ups of the partners' agreements per period."""


@clearing.command("run")
@click.option("--period", required=True, help="The month, as YYYY-MM.")
@click.option("--partner", help="Only this partner. [default: every partner]")
@click.option("--rules", "rules_path", type=click.Path(exists=True, dir_okay=False),
              help="Posting rules file. [default: the posting_rules setting, else config/posting_rules.yaml]")
@format_option(TABLE, JSON)
@click.pass_obj
def clearing_run(app, period, partner, rules_path, fmt) -> None:
    """True up what only a period can tell: vendors' fixed costs and minimum guarantees,
    resellers' commissions over the period's volume by their tiers. Posts only what earlier
    runs did not (late usage: an adjustment). As a job: `ecoledger job start clearing-run
    -p period=P`."""
    report = run_clearing(app.database(), period, rules=rules_of(app, rules_path), actor=app.actor, partner=partner)
    if fmt == JSON:
        emit_json(ClearingReportSchema().dump(report))
        return
    click.echo(f"clearing {period}: {len(report.items)} items posted, {report.unchanged} unchanged")
    for item in report.items:
        click.echo(f"  {item.partner} {item.agreement} {item.kind} {item.window_start} to {item.window_end}: "
                   f"{format_amount(item.amount_minor, item.currency)} {item.currency} ({item.entry})")


@clearing.command("items")
@click.option("--partner", help="Items of this partner.")
@click.option("--period", help="Items of windows ending in this month (YYYY-MM).")
@format_option(TABLE, JSON, CSV)
@click.pass_obj
def clearing_items_command(app, partner, period, fmt) -> None:
    """What clearing runs posted, with what each was computed from."""
    rows = list_items(app.database(), partner=partner, period=period)
    if fmt == JSON:
        emit_json(ClearingItemSchema(many=True).dump(rows))
        return
    data = [(i.partner, i.counterparty, i.agreement, i.kind, str(i.window_start), str(i.window_end),
             format_amount(i.basis_minor, i.currency), format_amount(i.due_minor, i.currency),
             format_amount(i.amount_minor, i.currency), i.currency, i.entry) for i in rows]
    if fmt == CSV:
        emit_csv(["partner", "counterparty", "agreement", "kind", "window_start", "window_end", "basis", "due", "amount",
                  "currency", "entry"], data)
    else:
        emit_table(["Partner", "With", "Agreement", "Kind", "From", "To", "Basis", "Due", "Posted", "Cur", "Entry"],
                   data, title="Clearing items", right=["Basis", "Due", "Posted"])


@click.group()
def statement() -> None:
    """Settlement statements: what each partner earned and owes per period, and why."""


@statement.command("issue")
@click.option("--period", required=True, help="The month, as YYYY-MM.")
@click.option("--partner", help="Only this partner. [default: every partner]")
@format_option(TABLE, JSON)
@click.pass_obj
def statement_issue(app, period, partner, fmt) -> None:
    """Issue the period's statements: per partner, counterparty and currency, from the
    partner's own books. Issuing again writes nothing unless something changed, and then a
    new version that refers to the one before."""
    report = service.issue_statements(app.database(), period, partner=partner, actor=app.actor)
    if fmt == JSON:
        emit_json(IssueReportSchema().dump(report))
        return
    click.echo(f"{period}: {len(report.issued)} statements issued, {len(report.unchanged)} unchanged")
    for number in report.issued:
        click.echo(f"  {number}")


@statement.command("list")
@click.option("--partner", help="Statements of this partner.")
@click.option("--period", help="Statements of this month (YYYY-MM).")
@click.option("--all-versions", is_flag=True, help="Also the versions later ones correct.")
@format_option(TABLE, JSON, CSV)
@click.pass_obj
def statement_list(app, partner, period, all_versions, fmt) -> None:
    """List statements by period: amount due, direction and status."""
    rows = service.list_statements(app.database(), partner=partner, period=period, latest_only=not all_versions)
    if fmt == JSON:
        emit_json(StatementSummarySchema(many=True).dump(rows))
        return
    data = [(s.number, s.partner, s.counterparty, s.period, format_amount(s.opening_minor, s.currency),
             format_amount(s.closing_minor, s.currency), s.currency, str(s.due_date), s.status) for s in rows]
    if fmt == CSV:
        emit_csv(["number", "partner", "counterparty", "period", "opening", "closing", "currency", "due_date", "status"],
                 data)
    else:
        emit_table(["Number", "Partner", "With", "Period", "Opening", "Closing", "Cur", "Due", "Status"], data,
                   title="Settlement statements (closing > 0: the counterparty pays the partner)",
                   right=["Opening", "Closing"])


@statement.command("show")
@click.argument("number", required=False)
@click.option("--partner", help="With --period: the partner's latest statement of the period.")
@click.option("--period", help="With --partner.")
@format_option(TABLE, JSON, CSV, PDF)
@click.option("--out", type=click.Path(dir_okay=False, writable=True),
              help="Write the document to this file. [default for pdf: NUMBER.pdf; others: stdout]")
@click.pass_obj
def statement_show(app, number, partner, period, fmt, out) -> None:
    """A statement with its lines and payments (CSV: the lines; PDF: the document)."""
    found = service.get_statement(app.database(), _number(app, number, partner, period))
    if fmt == PDF:
        target = Path(out or f"{found.number}.pdf")
        try:
            target.write_bytes(statement_pdf(found, fonts(app.settings.pdf_font, app.settings.pdf_font_bold)))
        except FontError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"{found.number}: {target}")
        return
    if out:
        raise click.UsageError("--out is for --format pdf; redirect the other formats")
    if fmt == JSON:
        emit_json(StatementSchema().dump(found))
        return
    if fmt == CSV:
        emit_csv(service.CSV_COLUMNS, service.csv_rows(found))
        return
    currency = found.currency
    emit_table(["Field", "Value"], [
        ("Partner", found.partner), ("With", found.counterparty), ("Period", found.period),
        ("Version", str(found.version) + (f" (corrects {found.previous})" if found.previous else "")
         + ("" if found.latest else ", corrected by a later version")),
        ("Opening", f"{format_amount(found.opening_minor, currency)} {currency}"),
        ("Closing", f"{format_amount(found.closing_minor, currency)} {currency}"),
        *([("Withheld (disputed)", f"{format_amount(found.withheld_minor, currency)} {currency}"),
           ("To settle", f"{format_amount(found.settle_minor, currency)} {currency}")] if found.withheld_minor else []),
        ("Left to settle", f"{format_amount(max(found.outstanding_minor, 0), currency)} {currency}"),
        ("Due", str(found.due_date)), ("Status", found.status), ("Document hash", found.document_hash),
    ], title=f"Statement {found.number}")
    for section in service.SECTIONS:
        lines = [line for line in found.lines if line.section == section]
        if lines:
            emit_table(["Line", "Contract", "Service", "Kind", "Postings", "Amount"],
                       [(line.line_no, line.contract, line.service, line.kind, line.postings,
                         format_amount(line.amount_minor, currency)) for line in lines]
                       + [("", "", "", f"{section} total", sum(line.postings for line in lines),
                           format_amount(sum(line.amount_minor for line in lines), currency))],
                       title=section.capitalize(), right=["Postings", "Amount"])
    if found.withheld:
        emit_table(["Usage line", "Contract", "Amount"],
                   [(item.usage_line, item.contract, format_amount(item.amount_minor, currency))
                    for item in found.withheld], title="Withheld: usage lines under an open dispute", right=["Amount"])
    if found.payments:
        emit_table(["Paid on", "Amount", "Reference", "Entry"],
                   [(str(p.paid_on), format_amount(p.amount_minor, currency), p.reference or "", p.entry_seq)
                    for p in found.payments], title="Payments", right=["Amount", "Entry"])


def _number(app, number: str | None, partner: str | None, period: str | None) -> str:
    if number:
        return number
    if not (partner and period):
        raise click.UsageError("give a statement NUMBER, or --partner and --period")
    found = service.list_statements(app.database(), partner=partner, period=period)
    if len(found) != 1:
        listed = ", ".join(s.number for s in found) or "none"
        raise click.UsageError(f"{len(found)} statements of {partner} for {period} ({listed}); give the NUMBER")
    return found[0].number


@statement.command("entries")
@click.argument("number")
@click.argument("line_no", type=click.IntRange(1, 1_000_000))
@format_option(TABLE, JSON)
@click.pass_obj
def statement_entries(app, number, line_no, fmt) -> None:
    """The entries a statement line sums (its drill-down)."""
    entries = service.statement_entries(app.database(), number, line_no)
    if fmt == JSON:
        emit_json(entries)
        return
    for external_id in entries:
        click.echo(external_id)


@click.group()
def payment() -> None:
    """Payments against settlement statements."""


@payment.command("record")
@click.argument("number")
@click.option("--amount", required=True, help="Amount paid, in major units; the direction follows the statement.")
@click.option("--date", "day", required=True, type=click.DateTime(["%Y-%m-%d"]), help="Payment date.")
@click.option("--reference", help="Bank reference, for the record.")
@format_option(TABLE, JSON)
@click.pass_obj
def payment_record(app, number, amount, day, reference, fmt) -> None:
    """Record a payout to the partner (or a receipt from it) against statement NUMBER: a
    settlement entry in both books; the statement's status follows."""
    found = record_payment(app.database(), number, amount, day=day.date(), actor=app.actor, reference=reference)
    if fmt == JSON:
        emit_json(StatementSchema().dump(found))
        return
    click.echo(f"{found.number}: {found.status.replace('_', ' ')}, "
               f"{format_amount(max(found.outstanding_minor, 0), found.currency)} {found.currency} left to settle")
