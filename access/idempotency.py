"""Idempotent POSTs: the same Idempotency-Key with the same request returns the first
response; with another request it is a conflict. Keys are scoped to the API key that sent
them, and kept for IDEMPOTENCY_KEY_HOURS.

The first request reserves the key before it runs and records its response after. A
client retrying while the first is still running gets a conflict ("in progress"). A
reservation whose request died without answering is released after
IDEMPOTENCY_RESERVATION_SECONDS; the operations behind it are idempotent themselves
(entry ids, job dedup keys), so running them again is safe.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from access.schema import idempotency_keys
from ledger.database import Database

IDEMPOTENCY_KEY_HOURS = 24
IDEMPOTENCY_RESERVATION_SECONDS = 300
IDEMPOTENCY_KEY_CHARS_MAX = 255


class Stored(NamedTuple):
    status_code: int
    content_type: str
    body: str


class Conflict(Exception):
    """The key was used for another request, or its first request is still running."""


def reserve(db: Database, api_key_id: str, key: str, request_hash: str) -> Stored | None:
    """Reserve ``key`` for this request, or return the response stored for it. Raises
    Conflict when the key belongs to another request or is still in progress."""
    t = idempotency_keys.c
    now = dt.datetime.now(dt.UTC)
    forgotten = now - dt.timedelta(hours=IDEMPOTENCY_KEY_HOURS)
    abandoned = now - dt.timedelta(seconds=IDEMPOTENCY_RESERVATION_SECONDS)
    with db.write(ledger_lock=False) as conn:
        conn.execute(delete(idempotency_keys).where(
            t.api_key_id == api_key_id,
            (t.created_at < forgotten) | ((t.status_code.is_(None)) & (t.created_at < abandoned)),
        ))
        row = conn.execute(select(idempotency_keys).where(t.api_key_id == api_key_id, t.key == key)).first()
        if row is None:
            try:
                with conn.begin_nested():
                    conn.execute(insert(idempotency_keys).values(
                        api_key_id=api_key_id, key=key, request_hash=request_hash, created_at=now))
            except IntegrityError:
                raise Conflict("a request with this Idempotency-Key is in progress") from None
            return None
    if row.request_hash != request_hash:
        raise Conflict("this Idempotency-Key was used for a different request")
    if row.status_code is None:
        raise Conflict("a request with this Idempotency-Key is in progress")
    return Stored(row.status_code, row.content_type, row.body)


def complete(db: Database, api_key_id: str, key: str, stored: Stored) -> None:
    t = idempotency_keys.c
    with db.write(ledger_lock=False) as conn:
        conn.execute(update(idempotency_keys).where(t.api_key_id == api_key_id, t.key == key).values(
            status_code=stored.status_code, content_type=stored.content_type, body=stored.body))


def release(db: Database, api_key_id: str, key: str) -> None:
    """Forget a reservation whose request failed on the server: the client may retry."""
    t = idempotency_keys.c
    with db.write(ledger_lock=False) as conn:
        conn.execute(delete(idempotency_keys).where(t.api_key_id == api_key_id, t.key == key))
