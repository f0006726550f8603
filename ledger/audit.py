"""The audit log: who changed what, when. Every mutating service writes one row in the same
transaction as its change, so the log and the ledger never disagree. Rows are immutable
(database triggers), like journal entries."""

from __future__ import annotations

import datetime as dt
import json
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Connection, insert, select

from ledger.schema import audit_log

# The request being served, set by the API per request: every audit row written while
# serving it carries its id, without each service passing it along.
current_request_id: ContextVar[str | None] = ContextVar("ecoledger_request_id", default=None)


def record(
    conn: Connection,
    *,
    actor: str,
    action: str,
    target: str,
    details: dict[str, Any],
    request_id: str | None = None,
) -> None:
    conn.execute(
        insert(audit_log).values(
            at=dt.datetime.now(dt.UTC),
            actor=actor[:200],
            action=action,
            target=target[:255],
            details=json.dumps(details, sort_keys=True, default=str),
            request_id=request_id or current_request_id.get(),
        )
    )


def entries(conn: Connection, limit: int = 100) -> list[dict[str, Any]]:
    """Latest audit rows first."""
    rows = conn.execute(select(audit_log).order_by(audit_log.c.id.desc()).limit(limit))
    return [
        {**row._asdict(), "details": json.loads(row.details)} for row in rows
    ]
