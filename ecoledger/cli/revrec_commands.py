"""Revenue recognition and the close: revrec schedule, close run|status|reopen."""

from __future__ import annotations

import datetime as dt
import sys

import click

from ecoledger.cli.output import CSV, JSON, TABLE, emit_csv, emit_json, emit_table, format_option
from ledger.money import format_amount
from revrec.close import BLOCKED, close_status, reopen_close, run_close, schedule_of
from revrec.policy import policies
from revrec.schemas import CloseReportSchema, CloseStatusSchema, ScheduleSchema


def register(main: click.Group) -> None:
    main.add_command(revrec)
    main.add_command(close)


@click.group()
def revrec() -> None:
    """IFRS 15 revenue recognition: contracts' schedules."""


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
                 "" if o.ssp_method == "modification" else format_amount(int(o.ssp_weight), schedule.currency),
                 o.ssp_method, format_amount(o.allocated_minor, schedule.currency))
                for w in schedule.windows for o in w.obligations],
               title=f"Allocation of {schedule.contract} ({schedule.currency})",
               right=["Stated", "Discount", "SSP", "Allocated"])
    emit_table(["Month", "Component", "Service", "Account", "Window", "Amount"], rows,
               title=f"Revenue of {schedule.contract} by month ({schedule.day_count})", right=["Amount"])


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
@format_option(TABLE, JSON)
@click.pass_obj
def close_run(app, company, period, accepted, fmt) -> None:
    """Close a month: readiness checks, then the recognition batch (deferral release,
    unbilled accrual, catch-ups) and the lock, in one transaction. A failed check that is
    not accepted blocks the close (exit 1) and nothing is posted. Closing a closed month
    changes nothing. As a job: `ecoledger job start close -p company=X -p period=P`."""
    policy = policies(app.settings)
    report = run_close(app.database(), company, period, ssp=policy.ssp, day_count=policy.day_count,
                       actor=app.actor, accept=_acceptances(accepted))
    if fmt == JSON:
        emit_json(CloseReportSchema().dump(report))
    else:
        _show_report(report)
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
    click.echo(f"{verb} {report.company} {report.period} (run {report.run_no}): {len(report.recognitions)} "
               f"entries in batch {report.batch}, {report.contracts} contracts")
    if report.recognitions:
        emit_table(["Contract", "Cur", "Revenue", "Released", "Accrued"],
                   [(r.contract, r.currency, format_amount(r.revenue_minor, r.currency),
                     format_amount(r.released_minor, r.currency), format_amount(r.accrued_minor, r.currency))
                    for r in report.recognitions], title="Recognition batch", right=["Revenue", "Released", "Accrued"])


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
                          day_count=policy.day_count, actor=app.actor)
    if fmt == JSON:
        emit_json(CloseReportSchema().dump(report))
    else:
        _show_report(report)
