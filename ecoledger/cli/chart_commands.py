"""Companies and accounts: company add|list, account add|list|close."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from ecoledger.cli.ledger_commands import DATE
from ecoledger.cli.output import CSV, JSON, TABLE, emit_csv, emit_json, emit_table, format_option
from ledger import companies as service
from ledger.chart import CONSTRAINTS, ROLES, available_templates, load_template_file
from ledger.schemas import AccountSchema, CompanySchema


def register(main: click.Group) -> None:
    main.add_command(company)
    main.add_command(account)


@click.group()
def company() -> None:
    """Companies: the operator's legal entities, vendors and resellers."""


@company.command("add")
@click.argument("code")
@click.option("--name", required=True, help="Legal name.")
@click.option("--currency", required=True, help="Functional currency (ISO 4217), e.g. EUR.")
@click.option(
    "--role",
    "roles",
    multiple=True,
    type=click.Choice(ROLES),
    help="Role in the ecosystem; repeat for several. [default: operator]",
)
@click.option(
    "--template",
    default="default",
    show_default=True,
    help=f"Chart-of-accounts template: {', '.join(available_templates())}, or a path to a "
    "YAML file; 'none' for no accounts.",
)
@click.option("--extra-currency", "extra", multiple=True, help="Another currency the accounts accept; repeatable.")
@click.option("--open-date", type=DATE, help="Open date of the accounts. [default: first day of this month]")
@format_option(TABLE, JSON)
@click.pass_obj
def company_add(app, code, name, currency, roles, template, extra, open_date, fmt) -> None:
    """Create company CODE (upper-case, e.g. OPFI) with the accounts of a chart template."""
    created = service.add_company(
        app.database(),
        code,
        name,
        currency,
        actor=app.actor,
        roles=roles or ("operator",),
        template=_template(template),
        extra_currencies=extra,
        open_date=open_date,
    )
    if fmt == JSON:
        emit_json(CompanySchema().dump(created))
    else:
        click.echo(
            f"added {created.code} ({created.name}, {created.functional_currency}, "
            f"{'/'.join(created.roles) or 'no role'}) with {created.account_count} accounts"
        )


def _template(value: str):
    """'none', a shipped template's name, or a path to a YAML file."""
    if value == "none":
        return None
    if value.endswith((".yaml", ".yml")) or "/" in value:
        return load_template_file(Path(value))
    return value


@company.command("list")
@format_option(TABLE, JSON, CSV)
@click.pass_obj
def company_list(app, fmt) -> None:
    """List companies."""
    rows = service.list_companies(app.database())
    if fmt == JSON:
        emit_json(CompanySchema(many=True).dump(rows))
        return
    columns = ["code", "name", "currency", "roles", "accounts"]
    data = [(c.code, c.name, c.functional_currency, "/".join(c.roles), c.account_count) for c in rows]
    if fmt == CSV:
        emit_csv(columns, data)
    else:
        emit_table([c.title() for c in columns], data, right={"Accounts"})


@click.group()
def account() -> None:
    """Accounts of a company (beancount names such as Assets:Receivables:Unbilled)."""


@account.command("add")
@click.option("--company", required=True, help="Company code.")
@click.argument("name")
@click.option("--currency", "currencies", multiple=True, help="Accepted currency; repeatable. [default: functional]")
@click.option("--constraint", type=click.Choice(CONSTRAINTS), help="Balance must not go below (non_negative) or above (non_positive) zero.")
@click.option("--open-date", type=DATE, help="[default: first day of this month]")
@click.option("--description", default="", help="What the account holds.")
@format_option(TABLE, JSON)
@click.pass_obj
def account_add(app, company, name, currencies, constraint, open_date, description, fmt) -> None:
    """Open account NAME for a company. Its type follows from the root (Assets, Liabilities,
    Equity, Income, Expenses)."""
    created = service.add_account(
        app.database(),
        company,
        name,
        actor=app.actor,
        currencies=currencies,
        constraint=constraint,
        open_date=open_date,
        description=description,
    )
    if fmt == JSON:
        emit_json(AccountSchema().dump(created))
    else:
        click.echo(f"added {created.company} {created.name} ({created.type}, {', '.join(created.currencies)})")


@account.command("list")
@click.option("--company", help="Only this company.")
@format_option(TABLE, JSON, CSV)
@click.pass_obj
def account_list(app, company, fmt) -> None:
    """List accounts."""
    rows = service.list_accounts(app.database(), company)
    if fmt == JSON:
        emit_json(AccountSchema(many=True).dump(rows))
        return
    columns = ["company", "name", "type", "currencies", "constraint", "open", "close"]
    data = [
        (a.company, a.name, a.type, ",".join(a.currencies), a.constraint, a.open_date, a.close_date)
        for a in rows
    ]
    if fmt == CSV:
        emit_csv(columns, data)
    else:
        emit_table([c.title() for c in columns], data)


@account.command("close")
@click.option("--company", required=True, help="Company code.")
@click.argument("name")
@click.option("--date", "close_date", type=DATE, required=True, help="Last day the account may be posted to.")
@click.pass_obj
def account_close(app, company: str, name: str, close_date: dt.date) -> None:
    """Close account NAME after --date. Refused while it holds a balance."""
    service.close_account(app.database(), company, name, close_date, actor=app.actor)
    click.echo(f"closed {company} {name} after {close_date}")
