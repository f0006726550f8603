"""Reading usage: imports, rejected lines, rated lines, alerts and period counters."""

from __future__ import annotations

import datetime as dt
import json
from typing import NamedTuple

from sqlalchemy import Connection, select

from contracts.schema import contracts
from ledger.database import Database
from ledger.records import E_NOT_FOUND, LedgerError, Problem, show
from usage.schema import usage_alerts, usage_counters, usage_imports, usage_lines, usage_rejects

ROWS_LISTED_MAX = 10_000


class UsageImport(NamedTuple):
    id: int
    source: str
    format: str
    posting: str
    status: str
    lines_read: int
    posted: int
    duplicates: int
    rejected: int
    late: int
    entries_posted: int
    started_at: dt.datetime
    finished_at: dt.datetime | None
    started_by: str


class Reject(NamedTuple):
    id: int
    import_id: int
    line_ref: str
    line_id: str | None
    raw: str
    code: str
    field: str | None
    message: str
    status: str
    resolved_by_import: int | None


class RatedLine(NamedTuple):
    id: str
    import_id: int
    contract: str
    component: str
    service: str
    used_at: dt.datetime
    usage_date: dt.date
    quantity: str
    unit: str
    attributes: dict
    currency: str
    gross_minor: int
    discount_minor: int
    amount_minor: int
    rating: dict
    entry_seq: int | None
    posted_date: dt.date
    late: bool


class Alert(NamedTuple):
    id: int
    contract: str
    component: str
    period_start: dt.date
    kind: str
    threshold_percent: int
    limit: str
    used: str
    line_id: str
    raised_at: dt.datetime


class Counter(NamedTuple):
    contract: str
    component: str
    period_start: dt.date
    period_end: dt.date
    quantity: str
    amount_minor: int
    currency: str


def quantity_text(micro: int) -> str:
    whole, fraction = divmod(micro, 1_000_000)
    return f"{whole}.{fraction:06d}".rstrip("0").rstrip(".") if fraction else str(whole)


def list_imports(db: Database, limit: int = 100) -> list[UsageImport]:
    with db.read() as conn:
        rows = conn.execute(select(usage_imports).order_by(usage_imports.c.id.desc()).limit(min(limit, ROWS_LISTED_MAX)))
        return [UsageImport(*row) for row in rows]


IMPORT_ID_MAX = 2**31 - 1  # ids are 32-bit integers in the database


def get_import(db: Database, import_id: int) -> UsageImport:
    if not 0 < import_id <= IMPORT_ID_MAX:  # the database would refuse the comparison
        raise LedgerError(Problem(E_NOT_FOUND, "import", f"no usage import {show(import_id)}"))
    with db.read() as conn:
        row = conn.execute(select(usage_imports).where(usage_imports.c.id == import_id)).first()
    if row is None:
        raise LedgerError(Problem(E_NOT_FOUND, "import", f"no usage import {show(import_id)}"))
    return UsageImport(*row)


def list_rejects(db: Database, *, import_id: int | None = None, status: str | None = "open",
                 limit: int = ROWS_LISTED_MAX) -> list[Reject]:
    r = usage_rejects.c
    query = select(usage_rejects).order_by(r.id).limit(min(limit, ROWS_LISTED_MAX))
    if import_id is not None:
        query = query.where(r.import_id == import_id)
    if status is not None:
        query = query.where(r.status == status)
    with db.read() as conn:
        return [Reject(row.id, row.import_id, row.line_ref, row.line_id, row.raw, row.code, row.field, row.message,
                       row.status, row.resolved_by_import) for row in conn.execute(query)]


def _contract_id(conn: Connection, code: str) -> int:
    found = conn.execute(select(contracts.c.id).where(contracts.c.code == code)).scalar()
    if found is None:
        raise LedgerError(Problem(E_NOT_FOUND, "contract", f"no contract {show(code)}"))
    return found


def list_lines(db: Database, *, contract: str | None = None, import_id: int | None = None,
               entry_seq: int | None = None, start: dt.date | None = None, end: dt.date | None = None,
               limit: int = 1_000) -> list[RatedLine]:
    """Rated lines in date order: of a contract, an import or an entry (the lines behind an
    aggregated entry), between two usage dates (inclusive)."""
    u = usage_lines.c
    query = (select(usage_lines, contracts.c.code.label("contract_code"))
             .join(contracts, contracts.c.id == u.contract_id)
             .order_by(u.usage_date, u.used_at, u.id).limit(min(limit, ROWS_LISTED_MAX)))
    with db.read() as conn:
        if contract is not None:
            query = query.where(u.contract_id == _contract_id(conn, contract))
        if import_id is not None:
            query = query.where(u.import_id == import_id)
        if entry_seq is not None:
            query = query.where(u.entry_seq == entry_seq)
        if start is not None:
            query = query.where(u.usage_date >= start)
        if end is not None:
            query = query.where(u.usage_date <= end)
        return [RatedLine(row.id, row.import_id, row.contract_code, row.component, row.service, row.used_at,
                          row.usage_date, quantity_text(row.quantity_micro), row.unit,
                          json.loads(row.attributes) if row.attributes else {}, row.currency, row.gross_minor,
                          row.discount_minor, row.amount_minor, json.loads(row.rating), row.entry_seq, row.posted_date,
                          row.late) for row in conn.execute(query)]


def list_alerts(db: Database, *, contract: str | None = None, limit: int = 1_000) -> list[Alert]:
    a = usage_alerts.c
    query = (select(usage_alerts, contracts.c.code.label("contract_code"))
             .join(contracts, contracts.c.id == a.contract_id).order_by(a.id).limit(min(limit, ROWS_LISTED_MAX)))
    with db.read() as conn:
        if contract is not None:
            query = query.where(a.contract_id == _contract_id(conn, contract))
        return [Alert(row.id, row.contract_code, row.component, row.period_start, row.kind, row.threshold_percent,
                      row.limit_text, row.used_text, row.line_id, row.raised_at) for row in conn.execute(query)]


def list_counters(db: Database, *, contract: str) -> list[Counter]:
    """Usage per component and rating period of a contract: quantity and rated amount."""
    c = usage_counters.c
    with db.read() as conn:
        contract_id = _contract_id(conn, contract)
        currency = conn.execute(select(contracts.c.currency).where(contracts.c.id == contract_id)).scalar()
        rows = conn.execute(select(usage_counters).where(c.contract_id == contract_id)
                            .order_by(c.period_start, c.component))
        return [Counter(contract, row.component, row.period_start, row.period_end, quantity_text(row.quantity_micro),
                        row.amount_minor, currency) for row in rows]
