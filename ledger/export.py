"""Beancount export: the ledger as a beancount 3 file, the independent check of ecoledger.

The file loads in beancount and Fava with zero errors, and its balances equal ecoledger's
trial balance: every closed period ends with balance assertions (checked exactly, with
``tolerance_multiplier`` 0), and so does the file as a whole.

Account names: a single-company export keeps the company's own names
(``Assets:Bank``); a whole-ledger export puts the company code after the root
(``Assets:OPFI:Bank``) so that companies stay apart. Entry metadata names the entry's id,
journal position and source; dimensions become posting metadata. Entries are written in
journal order, streamed: memory does not grow with the ledger.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import NamedTuple, TextIO

from sqlalchemy import select

from config import limits
from ledger.database import Database
from ledger.money import format_amount
from ledger.queries import balances_as_of, company_id, journal_head, journal_stream
from ledger.schema import accounts, closed_periods, companies, journal_entries

# Posting-metadata keys beancount sets itself; user dimensions named so are prefixed.
_RESERVED_KEYS = {"filename", "lineno"}


class ExportSummary(NamedTuple):
    entries: int
    accounts: int
    balance_assertions: int


def quote(value: str) -> str:
    """A beancount string literal. Backslash escapes for the characters that need them."""
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


def _meta_key(key: str) -> str:
    # User keys are [a-z][a-z0-9_]+; ecoledger's own keys contain '-', so they never clash.
    return f"dim-{key}" if key in _RESERVED_KEYS else key


class _Account(NamedTuple):
    id: int
    company_id: int
    full_name: str
    currencies: list[str]
    open_date: dt.date
    close_date: dt.date | None


def export_beancount(
    db: Database,
    out: TextIO,
    *,
    company: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> ExportSummary:
    """Write the ledger (or one company's books) to ``out`` as beancount text."""
    with db.read() as conn:
        only = company_id(conn, company) if company else None
        chart = _accounts(conn, only)
        functional = sorted(
            set(
                conn.execute(
                    select(companies.c.functional_currency).where(
                        companies.c.id == only if only else True
                    )
                ).scalars()
            )
        )
        title = f"ecoledger: {company}" if company else "ecoledger: all companies"
        # The same ledger always exports to the same bytes: no clock in the file. The chain
        # head names the state exported.
        head_seq, head_hash = journal_head(conn)
        out.write(f"; ecoledger export of journal #1..#{head_seq}, chain head {head_hash or '-'}\n")
        out.write(f"option \"title\" {quote(title)}\n")
        for currency in functional:
            out.write(f'option "operating_currency" "{currency}"\n')
        out.write('option "tolerance_multiplier" "0"\n\n')
        for account in sorted(chart.values(), key=lambda a: (a.open_date, a.full_name)):
            out.write(f"{account.open_date} open {account.full_name} {','.join(account.currencies)}\n")
        out.write("\n")
        entries, last_day = _write_transactions(conn, out, chart, only, progress)
        assertions = _write_assertions(conn, out, chart, only, last_day)
        for account in sorted(chart.values(), key=lambda a: a.full_name):
            if account.close_date is not None:
                out.write(f"{account.close_date} close {account.full_name}\n")
    return ExportSummary(entries, len(chart), assertions)


def _accounts(conn, only: int | None) -> dict[int, _Account]:
    query = select(accounts, companies.c.code).join(companies, companies.c.id == accounts.c.company_id)
    if only is not None:
        query = query.where(accounts.c.company_id == only)
    chart = {}
    for row in conn.execute(query):
        if only is None:
            root, _, rest = row.name.partition(":")
            full_name = f"{root}:{row.code}:{rest}"
        else:
            full_name = row.name
        chart[row.id] = _Account(
            row.id, row.company_id, full_name, list(row.currencies), row.open_date, row.close_date
        )
    return chart


def _write_transactions(conn, out: TextIO, chart, only, progress) -> tuple[int, dt.date | None]:
    e = journal_entries.c
    reversed_ids = dict(
        conn.execute(
            select(e.id, e.external_id).where(
                e.id.in_(select(e.reverses_id).where(e.reverses_id.is_not(None)))
            )
        ).all()
    )
    # Rendered fragments repeat: account names, dimension sets, batch timestamps.
    posting_heads: dict[tuple[int, str], str] = {}
    dimension_text: dict[str, str] = {}
    recorded_text: dict = {}
    count, last_day = 0, None
    for entry, lines in journal_stream(conn, company_id=only):
        (seq, external_id, day, recorded_at, description, source_type, source_id,
         metadata_json, reverses_id, _, _) = entry
        count += 1
        if last_day is None or day > last_day:
            last_day = day
        recorded = recorded_text.get(recorded_at)
        if recorded is None:
            recorded = recorded_text[recorded_at] = quote(recorded_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        source = source_type + (f":{source_id}" if source_id else "")
        text = [
            f"{day} * {quote(description)}\n"
            f"  entry-id: {quote(external_id)}\n"
            f'  journal-seq: "{seq}"\n'
            f"  entry-source: {quote(source)}\n"
            f"  recorded-at: {recorded}\n"
        ]
        if reverses_id is not None:
            text.append(f"  reverses: {quote(reversed_ids.get(reverses_id, str(reverses_id)))}\n")
        if metadata_json:
            text.append(_meta_lines(metadata_json, "  "))
        for _, _, account_id, amount_minor, currency, dimensions, _ in lines:
            head = posting_heads.get((account_id, currency))
            if head is None:
                head = posting_heads[(account_id, currency)] = f"  {chart[account_id].full_name}  "
            text.append(f"{head}{format_amount(amount_minor, currency)} {currency}\n")
            if dimensions:
                rendered = dimension_text.get(dimensions)
                if rendered is None:
                    if len(dimension_text) >= 10_000:  # bounded; dimension sets repeat
                        dimension_text.clear()
                    rendered = dimension_text[dimensions] = _meta_lines(dimensions, "    ")
                text.append(rendered)
        text.append("\n")
        out.write("".join(text))
        if progress and count % limits.STREAM_ROWS_PER_FETCH == 0:
            progress(count)
    if progress:
        progress(count)
    return count, last_day


def _meta_lines(pairs_json: str, indent: str) -> str:
    return "".join(f"{indent}{_meta_key(key)}: {quote(value)}\n" for key, value in json.loads(pairs_json).items())


def _write_assertions(conn, out: TextIO, chart, only, last_day: dt.date | None) -> int:
    """Balance assertions at the start of the day after each closed period and after the
    last entry. beancount checks a balance at the beginning of its date."""
    query = select(closed_periods.c.company_id, closed_periods.c.end_date)
    if only is not None:
        query = query.where(closed_periods.c.company_id == only)
    checkpoints = sorted(set(conn.execute(query).all()), key=lambda r: (r[1], r[0]))
    count = 0
    for cid, end in checkpoints:
        count += _assert_at(conn, out, chart, cid, end, f"closed period {end:%Y-%m}")
    if last_day is not None:
        for cid in sorted({a.company_id for a in chart.values()}):
            count += _assert_at(conn, out, chart, cid, last_day, "end of export")
    return count


def _assert_at(conn, out: TextIO, chart, cid: int, day: dt.date, why: str) -> int:
    lines = balances_as_of(conn, day, company_id=cid)
    check_day = day + dt.timedelta(days=1)
    written = 0
    for line in lines:
        account = chart[line.account_id]
        if account.close_date is not None and account.close_date < check_day:
            continue  # beancount refuses directives on closed accounts; it is zero there
        if written == 0:
            out.write(f"; balances of {line.company} at the end of {day} ({why})\n")
        amount = format_amount(line.balance_minor, line.currency)
        out.write(f"{check_day} balance {account.full_name}  {amount} {line.currency}\n")
        written += 1
    if written:
        out.write("\n")
    return written
