"""Rendering for the CLI: tables for people, JSON and CSV for scripts, progress on terminals."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

TABLE, JSON, CSV = "table", "json", "csv"


def format_option(*choices: str, default: str = TABLE):
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(choices),
        default=default,
        show_default=True,
        help="Output format: table for reading, json or csv for scripts.",
    )


def _console(stderr: bool = False) -> Console:
    # Wide enough for account names when output goes to a file or a pipe.
    return Console(stderr=stderr, width=None if sys.stdout.isatty() else 200, highlight=False)


def emit_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, ensure_ascii=False, default=str))


def emit_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if value is None else value for value in row])


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """User text made safe for a terminal: control characters (escape sequences that could
    rewrite the screen) shown as escapes instead of being acted on."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def emit_table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    title: str | None = None,
    right: Iterable[str] = (),
    footer: Sequence[Sequence[Any]] = (),
) -> None:
    right = set(right)
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    for column in columns:
        table.add_column(column, justify="right" if column in right else "left", overflow="fold")
    for row in rows:
        table.add_row(*(_cell(value) for value in row))
    if footer:
        table.add_section()
        for row in footer:
            table.add_row(*(_cell(value) for value in row), style="bold")
    _console().print(table)


def _cell(value: Any) -> Text:
    # Text, not str: rich would read "[...]" in a description as markup.
    return Text("" if value is None else printable(str(value)))


def echo_rejections(outcomes, omitted: int, what: str = "") -> None:
    """The rejected records of an import, one line per problem: where, field, reason, code.
    ``what`` names the records in the count of those left out (" rejected entries")."""
    for outcome in outcomes:
        if outcome.status != "rejected":
            continue
        where = f"line {outcome.ref}" + (f" ({printable(outcome.external_id)})" if outcome.external_id else "")
        for problem in outcome.problems:
            click.echo(f"  {where}: {problem} [{problem.code}]")
    if omitted:
        click.echo(f"  ... and {omitted} more{what}")


def note(message: str) -> None:
    """A line for people, on stderr, so that stdout stays parseable."""
    click.echo(message, err=True)


@contextlib.contextmanager
def progress_bar(label: str, total: float | None, unit: str = "") -> Iterator:
    """A progress bar on a terminal (stderr); a no-op elsewhere. Yields update(done), which
    takes the amount done so far (the services report cumulative counts)."""
    if not sys.stderr.isatty():
        yield lambda _done: None
        return
    columns = [SpinnerColumn(), TextColumn("[bold]{task.description}")]
    if total:
        columns += [BarColumn(), MofNCompleteColumn() if not unit else TextColumn("{task.percentage:>3.0f}%")]
        columns += [TimeElapsedColumn(), TimeRemainingColumn()]
    else:
        columns += [TextColumn("{task.completed:,.0f} " + unit), TimeElapsedColumn()]
    with Progress(*columns, console=_console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done: bar.update(task, completed=done)


def file_size(file) -> int | None:
    """The size of a regular file being read (for a progress bar in bytes); None for pipes."""
    try:
        if file.seekable():
            return os.fstat(file.fileno()).st_size or None
    except (OSError, ValueError):
        pass
    return None
