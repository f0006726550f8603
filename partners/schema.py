"""Tables of partners (settlement terms, status) and their versioned agreements."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from ledger.schema import metadata, protect
from ledger.types import UTCDateTime

PARTNER_STATUSES = ("active", "offboarded")
AGREEMENT_KINDS = ("vendor_share", "reseller_commission", "transfer_price", "sla_sharing")
SETTLEMENT_FREQUENCIES = ("monthly", "quarterly")

# One row per onboarded company: how and when it is settled, and whether it is still active.
partners = Table(
    "partners",
    metadata,
    Column("company_id", Integer, ForeignKey("companies.id"), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("settlement_currency", String(3), nullable=False),
    Column("settlement_frequency", String(16), nullable=False),
    Column("payment_terms_days", Integer, nullable=False),
    Column("netting_allowed", Boolean, nullable=False),
    # SHA-256 of the canonical onboarding document: the same document again changes nothing.
    Column("spec_hash", String(64), nullable=False),
    Column("onboarded_at", UTCDateTime, nullable=False),
    Column("onboarded_by", String(200), nullable=False),
    Column("offboarded_on", Date, nullable=True),
    Column("offboarded_at", UTCDateTime, nullable=True),
    Column("offboarded_by", String(200), nullable=True),
    Column("offboard_reason", String(500), nullable=True),
    CheckConstraint("status IN ('active', 'offboarded')", name="status_known"),
    CheckConstraint("settlement_frequency IN ('monthly', 'quarterly')", name="frequency_known"),
    CheckConstraint("payment_terms_days BETWEEN 0 AND 365", name="payment_terms_range"),
    CheckConstraint("(status = 'offboarded') = (offboarded_on IS NOT NULL)", name="offboarded_has_date"),
)

# An agreement between a partner and an operator entity (its counterparty); what it says
# lives in its versions.
agreements = Table(
    "agreements",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("code", String(64), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("company_id", Integer, ForeignKey("companies.id"), nullable=False),
    Column("counterparty_id", Integer, ForeignKey("companies.id"), nullable=False),
    Column("currency", String(3), nullable=False),  # of the money in its terms
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint(
        "kind IN ('vendor_share', 'reseller_commission', 'transfer_price', 'sla_sharing')", name="kind_known"
    ),
    CheckConstraint("company_id <> counterparty_id", name="two_parties"),
)

# Effective-dated versions. The terms never change once stored; the only change allowed is
# ending an open-ended version when its successor is added (effective_to from NULL to a date).
agreement_versions = Table(
    "agreement_versions",
    metadata,
    Column("agreement_id", Integer, ForeignKey("agreements.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("effective_from", Date, nullable=False),
    Column("effective_to", Date, nullable=True),
    Column("terms", Text, nullable=False),  # canonical JSON; decimals as strings
    Column("terms_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    CheckConstraint("version >= 1", name="version_positive"),
    CheckConstraint("effective_to IS NULL OR effective_to >= effective_from", name="dates_ordered"),
    UniqueConstraint("agreement_id", "effective_from"),
)

# The database refuses what the services never do (invariant 4 for the partner register).
protect("partners", ("DELETE",), "partners are never deleted; offboard them instead")
protect("agreements", ("UPDATE", "DELETE"), "agreements never change; add a version instead")
protect(
    "agreement_versions", ("UPDATE", "DELETE"),
    "agreement versions never change; add a version instead (only an open version may be ended)",
    update_allowed_when=(
        "OLD.effective_to IS NULL AND NEW.effective_to IS NOT NULL"
        " AND NEW.agreement_id = OLD.agreement_id AND NEW.version = OLD.version"
        " AND NEW.effective_from = OLD.effective_from AND NEW.terms = OLD.terms"
        " AND NEW.terms_hash = OLD.terms_hash AND NEW.created_at = OLD.created_at"
        " AND NEW.created_by = OLD.created_by"
    ),
)
