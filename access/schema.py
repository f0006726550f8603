"""Tables of API keys and idempotent responses."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, ForeignKey, Integer, PrimaryKeyConstraint, String, Table, Text

from ledger.schema import metadata
from ledger.types import UTCDateTime

ROLES = ("operator_admin", "controller", "partner", "auditor")

api_keys = Table(
    "api_keys",
    metadata,
    # Public half of a key: "eco_<id>_<secret>". Only a hash of the secret is stored.
    Column("id", String(16), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("role", String(32), nullable=False),
    Column("company_id", Integer, ForeignKey("companies.id"), nullable=True),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("rotated_from", String(16), nullable=True),
    CheckConstraint("role IN ('operator_admin', 'controller', 'partner', 'auditor')", name="role_known"),
    # A partner key belongs to exactly one company; other roles to none.
    CheckConstraint("(role = 'partner') = (company_id IS NOT NULL)", name="partner_has_company"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("api_key_id", String(16), nullable=False),
    Column("key", String(255), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer, nullable=True),  # None while the first request runs
    Column("content_type", String(100), nullable=True),
    Column("body", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("api_key_id", "key"),
)
