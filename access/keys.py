"""API keys: issued once (the secret is shown then, stored only as a hash), checked on every
request, rotated with a grace period, revoked at once, expiring on their own.

A key reads ``eco_<id>_<secret>``. The id is public (it names the key in lists and the
audit log). The secret is 32 random bytes, so a plain SHA-256 of it is safe to store: no
dictionary or brute force reaches 256 bits, and a fast hash keeps the check cheap on every
request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from typing import NamedTuple

from sqlalchemy import Connection, insert, select, update

from access.schema import ROLES, api_keys
from ledger import audit
from ledger.database import Database
from ledger.interchange import check_text
from ledger.queries import company_id
from ledger.records import E_INVALID, E_NOT_FOUND, LedgerError, Problem, show
from ledger.schema import companies

OPERATOR_ADMIN, CONTROLLER, PARTNER, AUDITOR = ROLES
_TOKEN_RE = re.compile(r"eco_([a-z0-9]{12})_([A-Za-z0-9_\-]{43})")
ROTATION_GRACE_HOURS = 24


class ApiKey(NamedTuple):
    id: str
    name: str
    role: str
    company: str | None
    created_at: dt.datetime
    created_by: str
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    rotated_from: str | None

    def active(self, now: dt.datetime | None = None) -> bool:
        now = now or dt.datetime.now(dt.UTC)
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class IssuedKey(NamedTuple):
    key: ApiKey
    token: str  # shown once; not stored


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _select():
    return select(api_keys, companies.c.code).outerjoin(companies, companies.c.id == api_keys.c.company_id)


def _key(row) -> ApiKey:
    return ApiKey(row.id, row.name, row.role, row.code, row.created_at, row.created_by,
                  row.expires_at, row.revoked_at, row.rotated_from)


def issue_key(
    db: Database,
    *,
    name: str,
    role: str,
    actor: str,
    company: str | None = None,
    expires_at: dt.datetime | None = None,
    rotated_from: str | None = None,
) -> IssuedKey:
    """A new key. Partner keys name their company; other roles must not."""
    with db.write(ledger_lock=False) as conn:
        return create_key(conn, name=name, role=role, actor=actor, company=company, expires_at=expires_at,
                          rotated_from=rotated_from)


def create_key(
    conn: Connection,
    *,
    name: str,
    role: str,
    actor: str,
    company: str | None = None,
    expires_at: dt.datetime | None = None,
    rotated_from: str | None = None,
) -> IssuedKey:
    """issue_key inside a caller's transaction (partner onboarding issues the partner's key
    in the same unit as the company)."""
    problems: list[Problem] = []
    check_text(name, "name", 200, problems)
    if role not in ROLES:
        problems.append(Problem(E_INVALID, "role", f"{show(role)} is not one of {', '.join(ROLES)}"))
    elif (role == PARTNER) != (company is not None):
        problems.append(Problem(E_INVALID, "company", "a partner key names its company; other roles none"))
    now = dt.datetime.now(dt.UTC)
    if expires_at is not None and expires_at <= now:
        problems.append(Problem(E_INVALID, "expires_at", "must be in the future"))
    if problems:
        raise LedgerError(*problems)
    key_id = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(12))
    secret = secrets.token_urlsafe(32)
    cid = company_id(conn, company) if company is not None else None
    conn.execute(
        insert(api_keys).values(
            id=key_id, name=name, role=role, company_id=cid, secret_hash=_hash(secret), created_at=now,
            created_by=actor[:200], expires_at=expires_at, revoked_at=None, rotated_from=rotated_from,
        )
    )
    audit.record(conn, actor=actor, action="api_key.issue", target=key_id,
                 details={"name": name, "role": role, "company": company, "expires_at": expires_at})
    row = conn.execute(_select().where(api_keys.c.id == key_id)).one()
    return IssuedKey(_key(row), f"eco_{key_id}_{secret}")


def authenticate(db: Database, token: str) -> ApiKey | None:
    """The active key a bearer token belongs to, or None. Constant-time in the secret."""
    match = _TOKEN_RE.fullmatch(token) if isinstance(token, str) else None
    if match is None:
        return None
    key_id, secret = match.groups()
    with db.read() as conn:
        row = conn.execute(_select().add_columns(api_keys.c.secret_hash.label("stored")).where(api_keys.c.id == key_id)).first()
    if row is None or not hmac.compare_digest(row.stored, _hash(secret)):
        return None
    key = _key(row)
    return key if key.active() else None


def list_keys(db: Database) -> list[ApiKey]:
    with db.read() as conn:
        return [_key(row) for row in conn.execute(_select().order_by(api_keys.c.created_at, api_keys.c.id))]


def get_key(db: Database, key_id: str) -> ApiKey:
    with db.read() as conn:
        row = conn.execute(_select().where(api_keys.c.id == key_id)).first()
    if row is None:
        raise LedgerError(Problem(E_NOT_FOUND, "key", f"no API key {show(key_id)}"))
    return _key(row)


def revoke_key(db: Database, key_id: str, *, actor: str) -> ApiKey:
    """Revoked keys stop working at once; revoking twice changes nothing."""
    now = dt.datetime.now(dt.UTC)
    with db.write(ledger_lock=False) as conn:
        changed = conn.execute(
            update(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None)).values(revoked_at=now)
        ).rowcount
        if changed:
            audit.record(conn, actor=actor, action="api_key.revoke", target=key_id, details={})
    return get_key(db, key_id)


def rotate_key(db: Database, key_id: str, *, actor: str, grace_hours: float = ROTATION_GRACE_HOURS) -> IssuedKey:
    """A new key with the same name, role and company. The old one keeps working for
    ``grace_hours`` (so that clients can switch without an outage), then expires."""
    old = get_key(db, key_id)
    if not old.active():
        raise LedgerError(Problem(E_INVALID, "key", f"API key {key_id} is revoked or expired; issue a new one"))
    if grace_hours < 0:
        raise LedgerError(Problem(E_INVALID, "grace_hours", "must not be negative"))
    new = issue_key(db, name=old.name, role=old.role, actor=actor, company=old.company,
                    expires_at=old.expires_at, rotated_from=old.id)
    ends = dt.datetime.now(dt.UTC) + dt.timedelta(hours=grace_hours)
    with db.write(ledger_lock=False) as conn:
        conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(
            expires_at=ends if old.expires_at is None or old.expires_at > ends else old.expires_at))
        audit.record(conn, actor=actor, action="api_key.rotate", target=key_id,
                     details={"new_key": new.key.id, "old_key_expires_at": ends})
    return new
