"""The ``ecoledger`` command line: a thin adapter that parses, calls one service, formats.

Exit codes: 0 success; 1 refused input, rejected entries or failed verification; 2 usage
error; 3 database unavailable or not initialised.
"""

from __future__ import annotations

import gc
import sys

import click
from sqlalchemy.exc import OperationalError

from config import SettingsError, load_settings
from ecoledger import __version__
from ecoledger.cli.context import AppContext, NotReady
from jobs.errors import BrokerUnavailable
from ledger.database import DatabaseError
from ledger.records import LedgerError

EXIT_PROBLEMS = 1
EXIT_UNAVAILABLE = 3


class EcoGroup(click.Group):
    """Turns the domain's refusals into one clear line on stderr and an exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except LedgerError as exc:
            for problem in exc.problems:
                click.echo(f"error: {problem} [{problem.code}]", err=True)
            sys.exit(EXIT_PROBLEMS)
        except NotReady as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_UNAVAILABLE)
        except BrokerUnavailable as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_UNAVAILABLE)
        except (DatabaseError, OperationalError) as exc:
            detail = getattr(exc, "orig", None) or exc
            click.echo(f"error: database unavailable: {detail}", err=True)
            sys.exit(EXIT_UNAVAILABLE)


CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(cls=EcoGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="ecoledger")
@click.option(
    "--database",
    "database_url",
    metavar="URL",
    help="SQLAlchemy URL of the ledger database. [env ECOLEDGER_DATABASE_URL; "
    "default: sqlite:///ecoledger.db in the current directory]",
)
@click.option(
    "--actor",
    help="Who the audit log names for changes made by this command. "
    "[env ECOLEDGER_ACTOR; default: cli:$USER]",
)
@click.pass_context
def main(ctx: click.Context, database_url: str | None, actor: str | None) -> None:
    """ecoledger: the ecosystem clearing ledger.

    A multi-company double-entry journal: every entry balances per company and currency,
    is hash-chained and never changes; reversals and closed periods keep history honest.
    Settings come from ./ecoledger.toml (or $ECOLEDGER_SETTINGS) and ECOLEDGER_* variables.
    """
    try:
        settings = load_settings()
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from exc
    ctx.obj = AppContext(settings.with_overrides(database_url=database_url, actor=actor))
    ctx.call_on_close(ctx.obj.close)
    # Everything loaded so far (modules, SQLAlchemy's tables and compiled caches) lives as
    # long as the process. Freezing it keeps the garbage collector from rescanning it during
    # bulk work: measured 10% of the time of posting a large file.
    gc.freeze()
    ctx.call_on_close(gc.unfreeze)  # for callers that embed the CLI (tests, scripts)


from ecoledger.cli import (  # noqa: E402
    api_commands,
    billing_commands,
    chart_commands,
    clearing_commands,
    contract_commands,
    demo_command,
    job_commands,
    ledger_commands,
    partner_commands,
    period_commands,
    revrec_commands,
    usage_commands,
    webhook_commands,
)

for module in (ledger_commands, chart_commands, period_commands, partner_commands, contract_commands, usage_commands,
               webhook_commands, billing_commands, clearing_commands, revrec_commands, job_commands, api_commands, demo_command):
    module.register(main)
