"""Revenue recognition and the close: revrec schedule|estimate, close run|status|reopen, report."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click

from billing.pdf import FontError, fonts
from ecoledger.cli.output import CSV, JSON, TABLE, emit_csv, emit_json, emit_table, format_option
from ledger.money import format_amount
from partners.schemas import canonical_decimal
from revrec.close import BLOCKED, close_status, reopen_close, run_close, schedule_of
from revrec.disclosure import write_pack
from revrec.estimates import KINDS, METHODS, list_estimates, record_estimate
from revrec.pdf import report_pdf, waterfall_png
from revrec.policy import policies
from revrec.reports import build_report
from revrec.schedule import MODIFICATION
from revrec.schemas import REPORT_SCHEMAS, CloseReportSchema, CloseStatusSchema, EstimateDocumentSchema, ScheduleSchema

PDF, PNG = "pdf", "png"


def register(main: click.Group) -> None:
    main.add_command(revrec)
    main.add_command(close)
    main.add_command(report)


@click.group()
def revrec() -> None:
    """IFRS 15 revenue recognition: contracts' schedules and estimates of variable consideration."""


@revrec.group("estimate")
def estimate() -> None:
    """Estimates of variable consideration (SLA credits, rebates, price concessions, refunds)."""


@estimate.command("set")
@click.option("--contract", required=True, help="Contract code.")
@click.option("--from", "effective_from", required=True, metavar="YYYY-MM",
              help="The first month it applies to (an open month).")
@click.option("--kind", required=True, type=click.Choice(KINDS))
@click.option("--method", required=True, type=click.Choice(METHODS),
              help="expected_value: the probability-weighted outcome; most_likely_amount: the likeliest one.")
@click.option("--scenario", "scenarios", required=True, multiple=True, metavar="PERCENT:PROBABILITY",
              help="An outcome: the share of the revenue not paid, and its probability (0 to 1). Repeat; the "
                   "probabilities add up to 1.")
@click.option("--constraint", "constraint_percent", default="0", show_default=True, metavar="PERCENT",
              help="Revenue held back beyond the estimate until the uncertainty resolves (IFRS 15.56).")
@click.option("--service", "services", multiple=True, help="A service it covers (repeat); default all.")
@click.option("--reason", required=True, help="Why: the evidence behind the outcomes and the constraint.")
@format_option(TABLE, JSON)
@click.pass_obj
def estimate_set(app, contract, effective_from, kind, method, scenarios, constraint_percent, services, reason,
                 fmt) -> None:
    """Record an estimate of the consideration a contract's customer will not pay, from a
    month on. The next close brings the contract's refund liability to it; a later estimate
    replaces it. The same estimate again changes nothing."""
    outcomes = []
    for index, text in enumerate(scenarios):
        percent, sep, probability = text.partition(":")
        if not sep:
            raise click.BadParameter(f"{text!r} is not PERCENT:PROBABILITY", param_hint=f"--scenario #{index + 1}")
        outcomes.append({"percent": percent.strip(), "probability": probability.strip()})
    found, created = record_estimate(app.database(), {
        "contract": contract, "effective_from": effective_from, "kind": kind, "method": method,
        "scenarios": outcomes, "constraint_percent": constraint_percent, "services": list(services),
        "reason": reason}, actor=app.actor)
    if fmt == JSON:
        emit_json({**EstimateDocumentSchema().dump(found), "outcome": "recorded" if created else "unchanged"})
        return
    click.echo(f"{'recorded' if created else 'unchanged'}: {found.kind} of {found.contract} from {found.effective_from}, "
               f"{found.method} {canonical_decimal(found.estimate_percent)}% + constraint "
               f"{canonical_decimal(found.constraint_percent)}% = {canonical_decimal(found.withheld_percent)}% of the "
               "revenue held back")


@estimate.command("list")
@click.option("--contract", required=True, help="Contract code.")
@format_option(TABLE, JSON, CSV)
@click.pass_obj
def estimate_list(app, contract, fmt) -> None:
    """A contract's estimates, in the order they take effect (a later one of a kind replaces
    the one before)."""
    found = list_estimates(app.database(), contract)
    if fmt == JSON:
        emit_json(EstimateDocumentSchema(many=True).dump(found))
        return
    columns = ["from", "kind", "method", "estimate_percent", "constraint_percent", "withheld_percent", "services",
               "reason", "recorded_by"]
    rows = [(e.effective_from, e.kind, e.method, canonical_decimal(e.estimate_percent),
             canonical_decimal(e.constraint_percent), canonical_decimal(e.withheld_percent),
             " ".join(e.services) or "all", e.reason, e.recorded_by) for e in found]
    if fmt == CSV:
        emit_csv(columns, rows)
    else:
        emit_table(["From", "Kind", "Method", "Estimate %", "Constraint %", "Withheld %", "Services", "Reason", "By"],
                   rows, title=f"Estimates of variable consideration: {contract}",
                   right=["Estimate %", "Constraint %", "Withheld %"])


@revrec.command("schedule")
@click.option("--contract", required=True, help="Contract code.")
@click.option("--through", type=click.DateTime(["%Y-%m-%d"]),
              help="Schedule the billing periods starting up to this day (a contract with an end date: its whole "
                   "term). [default: today]")
@format_option(TABLE, JSON, CSV)
@click.pass_obj
def revrec_schedule(app, contract, through, fmt) -> None:
    """A contract's revenue schedule: per billing period, its performance obligations with
    their standalone selling prices and allocated price, then the revenue recognised per
    month. CSV: one row per obligation and month."""
    policy = policies(app.settings)
    schedule = schedule_of(app.database(), contract, through=(through.date() if through else dt.date.today()),
                           ssp=policy.ssp, day_count=policy.day_count)
    if fmt == JSON:
        emit_json(ScheduleSchema().dump(schedule))
        return
    rows = [(line.month, line.component, line.service, line.account, line.window_start.isoformat(),
             format_amount(line.amount_minor, schedule.currency)) for line in schedule.lines]
    if fmt == CSV:
        emit_csv(["month", "component", "service", "account", "window_start", "amount"], rows)
        return
    emit_table(["Window", "Component", "Pattern", "Stated", "Discount", "SSP", "Method", "Allocated"],
               [(f"{w.start} to {w.end}", o.component, o.pattern, format_amount(o.stated_minor, schedule.currency),
                 format_amount(o.discount_minor, schedule.currency),
                 "" if o.ssp_method == MODIFICATION else format_amount(int(o.ssp_weight), schedule.currency),
                 o.ssp_method, format_amount(o.allocated_minor, schedule.currency))
                for w in schedule.windows for o in w.obligations],
               title=f"Allocation of {schedule.contract} ({schedule.currency})",
               right=["Stated", "Discount", "SSP", "Allocated"])
    emit_table(["Month", "Component", "Service", "Account", "Window", "Amount"], rows,
               title=f"Revenue of {schedule.contract} by month ({schedule.day_count})", right=["Amount"])
    for version, day, path, reason in schedule.modifications:
        click.echo(f"amendment {version} from {day}: {path.replace('_', ' ')} ({reason})")


@click.group()
def close() -> None:
    """The controller's period close: readiness checks, recognition batch, lock; reopen."""


def _acceptances(values: tuple[str, ...]) -> dict[str, str]:
    accepted = {}
    for value in values:
        name, sep, reason = value.partition("=")
        if not sep or not reason.strip():
            raise click.BadParameter(f"{value!r}: write CHECK=REASON, e.g. billing=\"no billing this month\"",
                                     param_hint="--accept")
        accepted[name.strip()] = reason
    return accepted


@close.command("run")
@click.option("--company", required=True, help="Company code.")
@click.option("--period", required=True, metavar="YYYY-MM", help="The month to close.")
@click.option("--accept", "accepted", multiple=True, metavar="CHECK=REASON",
              help="Accept a failed readiness check (usage, billing, clearing, verify, ssp) with the reason; "
                   "repeatable. The run records your name (--actor) with it.")
@click.option("--pack/--no-pack", default=True, show_default=True,
              help="Write the disclosure pack (every revenue report as JSON, CSV and PDF, the waterfall chart, "
                   "a manifest of hashes) under the data directory's disclosures/COMPANY/PERIOD/run-N.")
@format_option(TABLE, JSON)
@click.pass_obj
def close_run(app, company, period, accepted, pack, fmt) -> None:
    """Close a month: readiness checks, then the recognition batch (deferral release,
    unbilled accrual, catch-ups) and the lock, in one transaction. A failed check that is
    not accepted blocks the close (exit 1) and nothing is posted. Closing a closed month
    changes nothing. As a job: `ecoledger job start close -p company=X -p period=P`."""
    policy = policies(app.settings)
    report = run_close(app.database(), company, period, ssp=policy.ssp, day_count=policy.day_count,
                       cost_expedient=policy.cost_expedient,
                       actor=app.actor, accept=_acceptances(accepted))
    result = CloseReportSchema().dump(report)
    written = None
    if pack and report.outcome == "closed":
        try:
            written = write_pack(app.database(), company, period, report.run_no, ssp=policy.ssp,
                                 day_count=policy.day_count, root=app.settings.data_path,
                                 font=fonts(app.settings.pdf_font, app.settings.pdf_font_bold))
        except FontError as exc:
            raise click.ClickException(f"the close is done; the disclosure pack could not be written: {exc}") from None
        result["disclosure_pack"] = {"directory": written.directory, "files": [f.name for f in written.files]}
    if fmt == JSON:
        emit_json(result)
    else:
        _show_report(report)
        if written is not None:
            click.echo(f"disclosure pack: {written.directory} ({len(written.files)} files and manifest.json)")
    if report.outcome == BLOCKED:
        sys.exit(1)


def _show_report(report) -> None:
    if report.outcome == "already_closed":
        click.echo(f"{report.company} {report.period} is closed already: nothing to do")
        return
    if report.checks:
        emit_table(["Check", "Status", "Detail", "Accepted by", "Reason"],
                   [(c.name, c.status, c.detail, c.accepted_by or "", c.reason or "") for c in report.checks],
                   title=f"Readiness of {report.company} {report.period}")
    if report.outcome == BLOCKED:
        click.echo(f"close of {report.company} {report.period} blocked: fix the failed checks or accept them "
                   "with --accept CHECK=REASON", err=True)
        return
    verb = "closed" if report.outcome == "closed" else "reopened"
    posted = (f"{len(report.recognitions)} entries in batch {report.batch}" if report.recognitions
              else "nothing to recognise")
    click.echo(f"{verb} {report.company} {report.period} (run {report.run_no}): {posted}, "
               f"{report.contracts} contracts scheduled")
    if report.recognitions:
        emit_table(["Contract", "Cur", "Revenue", "Released", "Accrued", "Amortised", "Refund liability"],
                   [(r.contract, r.currency, *[format_amount(amount, r.currency) for amount in (
                       r.revenue_minor, r.released_minor, r.accrued_minor, r.amortised_minor, r.refund_minor)])
                    for r in report.recognitions], title="Recognition batch",
                   right=["Revenue", "Released", "Accrued", "Amortised", "Refund liability"])


@close.command("status")
@click.option("--company", required=True, help="Company code.")
@click.option("--period", required=True, metavar="YYYY-MM", help="The month.")
@format_option(TABLE, JSON)
@click.pass_obj
def close_status_command(app, company, period, fmt) -> None:
    """A month's status and every close run and reopening of it, with its checks."""
    status = close_status(app.database(), company, period)
    if fmt == JSON:
        emit_json(CloseStatusSchema().dump(status))
        return
    when = f" on {status.closed_at:%Y-%m-%d %H:%M} by {status.closed_by}" if status.closed_at else ""
    click.echo(f"{company} {period}: {status.status}{when}")
    emit_table(["Run", "Outcome", "Entries", "Recognised", "Failed or accepted", "By", "Reason"],
               [(str(run.run_no), run.outcome, str(run.entries),
                 ", ".join(f"{format_amount(v, k)} {k}" for k, v in run.recognised.items()),
                 ", ".join(f"{c.name} {c.status}" for c in run.checks if c.status != "passed"),
                 run.acted_by, run.reason or "") for run in status.runs], title="Close runs")


@close.command("reopen")
@click.option("--company", required=True, help="Company code.")
@click.option("--period", required=True, metavar="YYYY-MM", help="The latest closed month.")
@click.option("--reason", required=True, help="Why the period is reopened (kept, audited).")
@format_option(TABLE, JSON)
@click.pass_obj
def close_reopen(app, company, period, reason, fmt) -> None:
    """Reopen the latest closed month: recorded with the reason and audited; posts the
    delta batch of what changed since its close. `close run` locks it again."""
    policy = policies(app.settings)
    report = reopen_close(app.database(), company, period, reason=reason, ssp=policy.ssp,
                          day_count=policy.day_count, actor=app.actor, cost_expedient=policy.cost_expedient)
    if fmt == JSON:
        emit_json(CloseReportSchema().dump(report))
    else:
        _show_report(report)


@click.group()
def report() -> None:
    """The controller's revenue reports for a company and month (IFRS 15 disclosures)."""


def _report_command(kind: str, summary: str, formats: tuple[str, ...]):
    @report.command(kind, help=summary)
    @click.option("--company", required=True, help="Company code.")
    @click.option("--period", required=True, metavar="YYYY-MM", help="The month.")
    @format_option(TABLE, JSON, CSV, *formats)
    @click.option("--out", type=click.Path(dir_okay=False, writable=True),
                  help=f"Write the document to this file. [default for {'/'.join(formats)}: "
                       f"{kind}-COMPANY-PERIOD.FORMAT; others: stdout]")
    @click.pass_obj
    def command(app, company, period, fmt, out) -> None:
        policy = policies(app.settings)
        found, table = build_report(app.database(), kind, company, period, ssp=policy.ssp,
                                    day_count=policy.day_count)
        if fmt in (PDF, PNG):
            target = Path(out or f"{kind}-{company}-{period}.{fmt}")
            if fmt == PDF:
                try:
                    document = report_pdf(table, company, period, fonts(app.settings.pdf_font,
                                                                        app.settings.pdf_font_bold))
                except FontError as exc:
                    raise click.ClickException(str(exc)) from None
            else:
                document = waterfall_png(found)
            target.write_bytes(document)
            click.echo(f"{kind} {company} {period}: {target}")
            return
        if out:
            raise click.UsageError(f"--out is for --format {'/'.join(formats)}; redirect the other formats")
        if fmt == JSON:
            emit_json(REPORT_SCHEMAS[kind].dump(found))
        elif fmt == CSV:
            emit_csv(table.columns, table.rows)
        else:
            emit_table(table.columns, table.rows, title=f"{table.title}: {company} {period}", right=table.right)
            for note in table.notes:
                click.echo(note)

    return command


_report_command("waterfall", "Revenue per month by the billing period it was allocated in: recognised up to the "
                "month, scheduled after it. PNG: the chart.", (PDF, PNG))
_report_command("rollforward", "Each contract's balance through the month: opening, billed, recognised (of which "
                "from the opening contract liability, of which catch-ups), drawn down, closing; reconciled to the "
                "ledger (the difference is shown).", (PDF,))
_report_command("disaggregation", "The month's revenue by service, partner and timing (point in time, over time), "
                "adding up to the revenue accounts' movement.", (PDF,))
_report_command("rpo", "Remaining performance obligations at the month's end in time bands.", (PDF,))
_report_command("contract_costs", "Each contract's capitalised costs of obtaining it: opening, capitalised, amortised "
                "(write-offs included), closing, with the amortisation period and its basis; reconciled to the "
                "ledger.", (PDF,))
