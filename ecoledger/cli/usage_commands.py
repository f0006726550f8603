"""Usage: import usage FILE, and usage imports|rejects|resubmit|lines|alerts|period-alerts|counters|dispute|
resolve|disputes."""

from __future__ import annotations

import sys

import click

from billing import disputes
from billing.schemas import DisputeSchema
from ecoledger.cli.contract_commands import import_group, rules_of
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
    progress_bar,
)
from ledger.money import format_amount
from usage import queries
from usage.lines import HeaderError, guess_format, read_lines
from usage.period_alerts import evaluate_period_alerts, thresholds_from
from usage.schemas import (
    AlertSchema,
    CounterSchema,
    ImportReportSchema,
    PeriodAlertReportSchema,
    RatedLineSchema,
    RejectSchema,
    UsageImportSchema,
)
from usage.service import LATE_POLICIES, POSTING_MODES, ImportReport, import_usage, options_from, resubmit_rejects

JSONL = "jsonl"
_IMPORT_ID = click.IntRange(1, queries.IMPORT_ID_MAX)


def register(main: click.Group) -> None:
    main.add_command(usage)


_rules_option = click.option("--rules", "rules_path", type=click.Path(exists=True, dir_okay=False),
                             help="Posting rules file. [default: the posting_rules setting, else config/posting_rules.yaml]")
_posting_option = click.option("--posting", type=click.Choice(POSTING_MODES),
                               help="One entry per line, or per contract component and day. [default: the usage_posting "
                                    "setting, line]")
_late_option = click.option("--late-policy", type=click.Choice(LATE_POLICIES),
                            help="Lines dated in a closed period: post on the first open day, marked late, or reject. "
                                 "[default: the usage_late_policy setting, first_open_period]")


@import_group.command("usage")
@click.argument("file", type=click.File("rb"))
@click.option("--file-format", type=click.Choice(["csv", JSONL]),
              help="The file's format. [default: csv for *.csv, else JSON lines]")
@_posting_option
@_late_option
@_rules_option
@format_option(TABLE, JSON)
@click.pass_obj
def import_usage_command(app, file, file_format, posting, late_policy, rules_path, fmt) -> None:
    """Import usage lines from FILE (CSV with a header, or JSON lines; - for stdin): each
    line is mediated, rated from its contract's price plan and posted.

    \b
    {"id": "u-1", "timestamp": "2026-10-05T22:30:00+03:00", "contract": "SD-C-17",
     "service": "field-service", "quantity": "2.5", "unit": "hour",
     "attributes": {"employee_level": "technician", "shift": "night"}}

    Every line ends as posted, duplicate (its id was posted with the same content) or
    rejected (kept with the reason: `ecoledger usage rejects`). Files are streamed, in
    batches that each commit: importing the same file again posts only what is missing.
    Exits 1 if any line was rejected. The line format is in docs/usage.md.
    """
    label = getattr(file, "name", "<stdin>")
    label = "stdin" if label in ("-", "<stdin>") else label
    options = options_from(app.settings, rules_of(app, rules_path), app.actor, posting=posting, late_policy=late_policy)
    db = app.database()
    file_format = file_format or guess_format(label)
    size = file_size(file)
    try:
        with progress_bar(f"importing {label}", size, unit="bytes" if size else "lines") as update:
            report = import_usage(db, read_lines(file, file_format), options=options, source=label,
                                  file_format=file_format, progress=(lambda _n: update(file.tell())) if size else update)
    except HeaderError as exc:
        raise click.UsageError(f"{label}: {exc}") from None
    _print_report(report, fmt)


def _print_report(report: ImportReport, fmt: str) -> None:
    if fmt == JSON:
        emit_json(ImportReportSchema().dump(report))
    else:
        amounts = ", ".join(format_amount(v, c) + f" {c}" for c, v in sorted(report.amounts.items())) or "nothing"
        click.echo(f"usage import {report.import_id} ({report.source}): {report.lines_read} "
                   f"line{'' if report.lines_read == 1 else 's'} read: "
                   f"{report.posted} posted ({report.late} late), {report.duplicates} duplicate, {report.rejected} "
                   f"rejected; {report.entries_posted} entries posted, {amounts}; {report.alerts_raised} alerts")
        echo_rejections(report.outcomes, report.outcomes_omitted)
        if report.rejected:
            click.echo(f"  rejected lines: ecoledger usage rejects --import {report.import_id}", err=True)
    if not report.ok:
        sys.exit(1)


@click.group()
def usage() -> None:
    """Usage: imports, rejected lines, rated lines, alerts and period counters."""


@usage.command("imports")
@click.option("--limit", type=click.IntRange(1, queries.ROWS_LISTED_MAX), default=50, show_default=True)
@format_option(TABLE, JSON, CSV)
@click.pass_obj
def imports_command(app, limit: int, fmt: str) -> None:
    """List usage imports, newest first, with their counts."""
    rows = queries.list_imports(app.database(), limit)
    if fmt == JSON:
        emit_json(UsageImportSchema(many=True).dump(rows))
        return
    data = [(r.id, r.source, r.posting, r.status, r.lines_read, r.posted, r.duplicates, r.rejected, r.late,
             r.entries_posted, r.started_at.isoformat(timespec="seconds"), r.started_by) for r in rows]
    if fmt == CSV:
        emit_csv(["id", "source", "posting", "status", "lines_read", "posted", "duplicates", "rejected", "late",
                  "entries_posted", "started_at", "started_by"], data)
    else:
        emit_table(["Id", "Source", "Posting", "Status", "Read", "Posted", "Duplicates", "Rejected", "Late", "Entries",
                    "Started", "By"], data, title="Usage imports",
                   right=["Id", "Read", "Posted", "Duplicates", "Rejected", "Late", "Entries"])


@usage.command("rejects")
@click.option("--import", "import_id", type=_IMPORT_ID, help="Only the rejects of this import.")
@click.option("--status", type=click.Choice(["open", "resolved", "resubmitted", "all"]), default="open",
              show_default=True)
@format_option(TABLE, JSON, CSV, JSONL)
@click.pass_obj
def rejects_command(app, import_id, status, fmt) -> None:
    """Rejected lines with the reason. --format jsonl prints the lines themselves: correct
    them and import the file again (a corrected line that posts resolves its reject)."""
    rows = queries.list_rejects(app.database(), import_id=import_id, status=None if status == "all" else status)
    if fmt == JSONL:
        for row in rows:
            click.echo(row.raw)
        return
    if fmt == JSON:
        emit_json(RejectSchema(many=True).dump(rows))
        return
    data = [(r.id, r.import_id, r.line_ref, r.line_id or "", r.code, r.field or "", r.message, r.status) for r in rows]
    if fmt == CSV:
        emit_csv(["id", "import", "line", "line_id", "code", "field", "message", "status"], data)
    else:
        emit_table(["Id", "Import", "Line", "Line id", "Code", "Field", "Reason", "Status"], data,
                   title="Rejected usage lines", right=["Id", "Import"])


@usage.command("resubmit")
@click.option("--import", "import_id", type=_IMPORT_ID,
              help="Only the open rejects of this import. [default: all open rejects]")
@_posting_option
@_late_option
@_rules_option
@format_option(TABLE, JSON)
@click.pass_obj
def resubmit_command(app, import_id, posting, late_policy, rules_path, fmt) -> None:
    """Run open rejects through mediation again, unchanged: for lines refused because of
    the ledger's state (a contract loaded or activated since, an agreement added). Lines
    that need correcting are printed by `usage rejects --format jsonl` and imported."""
    options = options_from(app.settings, rules_of(app, rules_path), app.actor, posting=posting, late_policy=late_policy)
    with progress_bar("resubmitting rejects", None, unit="lines") as update:
        report = resubmit_rejects(app.database(), options=options, import_id=import_id, progress=update)
    _print_report(report, fmt)


@usage.command("lines")
@click.option("--contract", help="Lines of this contract.")
@click.option("--import", "import_id", type=_IMPORT_ID, help="Lines of this import.")
@click.option("--entry", "entry_seq", type=click.IntRange(1, 2**63 - 1),
              help="Lines posted by this journal entry (aggregated posting).")
@click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), help="From this usage date.")
@click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), help="To this usage date (inclusive).")
@click.option("--limit", type=click.IntRange(1, queries.ROWS_LISTED_MAX), default=1_000, show_default=True)
@format_option(TABLE, JSON, CSV)
@click.pass_obj
def lines_command(app, contract, import_id, entry_seq, start, end, limit, fmt) -> None:
    """Rated usage lines: quantity, how each was rated, its amount and its entry."""
    rows = queries.list_lines(app.database(), contract=contract, import_id=import_id, entry_seq=entry_seq,
                              start=start.date() if start else None, end=end.date() if end else None, limit=limit)
    if fmt == JSON:
        emit_json(RatedLineSchema(many=True).dump(rows))
        return
    data = [(r.id, r.contract, r.component, str(r.usage_date), r.quantity, r.unit, r.rating.get("factor", ""),
             format_amount(r.gross_minor, r.currency), format_amount(r.discount_minor, r.currency),
             format_amount(r.amount_minor, r.currency), r.currency, r.entry_seq or "", "late" if r.late else "")
            for r in rows]
    if fmt == CSV:
        emit_csv(["id", "contract", "component", "usage_date", "quantity", "unit", "factor", "gross", "discount",
                  "amount", "currency", "entry_seq", "late"], data)
    else:
        emit_table(["Id", "Contract", "Component", "Date", "Qty", "Unit", "Factor", "Gross", "Discount", "Amount",
                    "Cur", "Entry", ""], data, title="Rated usage lines",
                   right=["Qty", "Factor", "Gross", "Discount", "Amount", "Entry"])


@usage.command("alerts")
@click.option("--contract", help="Alerts of this contract.")
@format_option(TABLE, JSON, CSV)
@click.pass_obj
def alerts_command(app, contract, fmt) -> None:
    """Alerts: a period's usage reached a percentage of an allowance or of a budget."""
    rows = queries.list_alerts(app.database(), contract=contract)
    if fmt == JSON:
        emit_json(AlertSchema(many=True).dump(rows))
        return
    data = [(r.id, r.contract, r.component, str(r.period_start), r.kind, f"{r.threshold_percent}%", r.used, r.limit,
             r.line_id or "", r.raised_at.isoformat(timespec="seconds")) for r in rows]
    if fmt == CSV:
        emit_csv(["id", "contract", "component", "period_start", "kind", "threshold", "used", "limit", "line_id",
                  "raised_at"], data)
    else:
        emit_table(["Id", "Contract", "Component", "Period", "Kind", "Reached", "Used", "Of", "Line", "Raised"], data,
                   title="Usage alerts", right=["Id", "Used", "Of"])


@usage.command("dispute")
@click.argument("line_id")
@click.option("--reason", required=True, help="What the customer disputes.")
@format_option(TABLE, JSON)
@click.pass_obj
def dispute_command(app, line_id, reason, fmt) -> None:
    """Record a customer's dispute of usage line LINE_ID: billing runs hold it back until
    it is resolved (ecoledger usage resolve)."""
    _show_dispute(disputes.open_dispute(app.database(), line_id, reason, actor=app.actor), fmt)


@usage.command("resolve")
@click.argument("line_id")
@click.option("--outcome", required=True, type=click.Choice(sorted(disputes.OUTCOMES)),
              help="cancel: reverse the line's posting, never invoice it; credit: invoice it and credit it on the "
                   "next invoice; accept: invoice it as it is.")
@click.option("--resolution", default="", help="Why, for the record.")
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), help="Date of the reversal or credit. [default: today]")
@click.option("--rules", "rules_path", type=click.Path(exists=True, dir_okay=False),
              help="Posting rules file. [default: the posting_rules setting, else config/posting_rules.yaml]")
@format_option(TABLE, JSON)
@click.pass_obj
def resolve_command(app, line_id, outcome, resolution, day, rules_path, fmt) -> None:
    """Resolve the open dispute of usage line LINE_ID."""
    found = disputes.resolve_dispute(app.database(), line_id, outcome, rules=rules_of(app, rules_path),
                                     actor=app.actor, resolution=resolution, day=day and day.date())
    _show_dispute(found, fmt)


@usage.command("disputes")
@click.option("--status", type=click.Choice(["open", "cancelled", "credited", "accepted"]), help="Only these.")
@click.option("--contract", help="Disputes of this contract's lines.")
@format_option(TABLE, JSON, CSV)
@click.pass_obj
def disputes_command(app, status, contract, fmt) -> None:
    """Disputes of usage lines, oldest first."""
    rows = disputes.list_disputes(app.database(), status=status, contract=contract)
    if fmt == JSON:
        emit_json(DisputeSchema(many=True).dump(rows))
        return
    data = [(r.line_id, r.contract, r.component, str(r.usage_date), format_amount(r.amount_minor, r.currency), r.currency,
             r.status, r.reason, r.invoice or "", r.entry_seq or "", r.event_id or "") for r in rows]
    if fmt == CSV:
        emit_csv(["line_id", "contract", "component", "usage_date", "amount", "currency", "status", "reason", "invoice",
                  "entry_seq", "event_id"], data)
    else:
        emit_table(["Line", "Contract", "Component", "Date", "Amount", "Cur", "Status", "Reason", "Invoice", "Entry",
                    "Event"], data, title="Usage disputes", right=["Amount", "Entry"])


def _show_dispute(found, fmt) -> None:
    if fmt == JSON:
        emit_json(DisputeSchema().dump(found))
        return
    click.echo(f"usage line {found.line_id} ({found.contract} {found.component}, "
               f"{format_amount(found.amount_minor, found.currency)} {found.currency}): {found.status}"
               f"{f', reversed by entry {found.entry_seq}' if found.entry_seq else ''}"
               f"{f', credited by event {found.event_id}' if found.event_id else ''}")


@usage.command("period-alerts")
@click.option("--period", required=True, help="The month, as YYYY-MM, whose ended rating periods are evaluated.")
@format_option(TABLE, JSON)
@click.pass_obj
def period_alerts_command(app, period, fmt) -> None:
    """Raise the alerts only a period's end can show: usage under a component's budget
    (underrun), and usage far above or below its usual run rate. Raised once; as a job:
    `ecoledger job start usage-period-alerts -p period=P`."""
    report = evaluate_period_alerts(app.database(), period, actor=app.actor, thresholds=thresholds_from(app.settings))
    if fmt == JSON:
        emit_json(PeriodAlertReportSchema().dump(report))
        return
    click.echo(f"{period}: {report.components} usage components at the end of a rating period, "
               f"{len(report.raised)} alerts raised")
    for alert in report.raised:
        click.echo(f"  {alert['contract']} {alert['component']} from {alert['period_start']}: {alert['kind']} "
                   f"({alert['threshold_percent']}%), {alert['used_text']} against {alert['limit_text']}")


@usage.command("counters")
@click.argument("contract")
@format_option(TABLE, JSON, CSV)
@click.pass_obj
def counters_command(app, contract, fmt) -> None:
    """A contract's usage per component and rating period: quantity and rated amount."""
    rows = queries.list_counters(app.database(), contract=contract)
    if fmt == JSON:
        emit_json(CounterSchema(many=True).dump(rows))
        return
    data = [(r.component, str(r.period_start), str(r.period_end), r.quantity, format_amount(r.amount_minor, r.currency),
             r.currency) for r in rows]
    if fmt == CSV:
        emit_csv(["component", "period_start", "period_end", "quantity", "amount", "currency"], data)
    else:
        emit_table(["Component", "From", "To", "Quantity", "Amount", "Cur"], data, title=f"Usage of {contract}",
                   right=["Quantity", "Amount"])
