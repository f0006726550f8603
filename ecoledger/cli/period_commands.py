"""Accounting periods: period close|list."""

from __future__ import annotations

import click

from ecoledger.cli.output import CSV, JSON, TABLE, emit_csv, emit_json, emit_table, format_option
from ledger import periods
from ledger.schemas import PeriodSchema


def register(main: click.Group) -> None:
    main.add_command(period)


@click.group()
def period() -> None:
    """Monthly accounting periods per company, closed in order."""


@period.command("close")
@click.option("--company", required=True, help="Company code.")
@click.option("--period", "name", required=True, metavar="YYYY-MM", help="Month to close.")
@format_option(TABLE, JSON)
@click.pass_obj
def period_close(app, company: str, name: str, fmt: str) -> None:
    """Close a month: nothing can be posted on or before its last day afterwards.

    Earlier months with postings must be closed first. Closing a closed month changes nothing.
    """
    result = periods.close_period(app.database(), company, name, actor=app.actor)
    if fmt == JSON:
        emit_json(PeriodSchema().dump(result))
    elif result.already_closed:
        click.echo(f"{company} {name} was already closed on {result.closed_at:%Y-%m-%d} by {result.closed_by}")
    else:
        click.echo(f"closed {company} {name}")


@period.command("list")
@click.option("--company", required=True, help="Company code.")
@format_option(TABLE, JSON, CSV)
@click.pass_obj
def period_list(app, company: str, fmt: str) -> None:
    """List a company's months with their status."""
    rows = periods.list_periods(app.database(), company)
    if fmt == JSON:
        emit_json(PeriodSchema(many=True).dump(rows))
        return
    columns = ["period", "status", "closed_at", "closed_by"]
    data = [
        (p.period, p.status, p.closed_at.strftime("%Y-%m-%d %H:%M") if p.closed_at else None, p.closed_by)
        for p in rows
    ]
    if fmt == CSV:
        emit_csv(columns, data)
    else:
        emit_table(["Period", "Status", "Closed at (UTC)", "Closed by"], data, title=f"Periods of {company}")
