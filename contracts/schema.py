"""Tables of customers, price plans, contracts (versioned) and contract events."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from ledger.schema import metadata, protect
from ledger.types import UTCDateTime

CONTRACT_STATUSES = ("draft", "active", "suspended", "terminated")

# A buyer of the ecosystem's services: a counterparty in its billing company's books, not a
# company with books. Organisations nest (parent) and carry cost centres, by which billing
# consolidates or splits invoices.
customers = Table(
    "customers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("code", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("billing_company_id", Integer, ForeignKey("companies.id"), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("parent_id", Integer, ForeignKey("customers.id"), nullable=True),
    Column("cost_centre", String(64), nullable=True),
    Column("document_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("region", String(64), nullable=True),  # revenue disaggregation; inherited from the parent
    CheckConstraint("parent_id IS NULL OR parent_id <> id", name="not_own_parent"),
)

# How usage is priced. A plan never changes once loaded: a new price is a new plan, which a
# contract amendment names. Rating (the usage capability) reads the document.
price_plans = Table(
    "price_plans",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("code", String(64), nullable=False, unique=True),
    Column("currency", String(3), nullable=False),
    Column("model", String(16), nullable=False),
    Column("document", Text, nullable=False),  # canonical JSON
    Column("document_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("model IN ('per_unit', 'graduated', 'volume', 'package', 'percentage', 'allowance')",
                    name="model_known"),
)

contracts = Table(
    "contracts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("code", String(64), nullable=False, unique=True),
    Column("customer_id", Integer, ForeignKey("customers.id"), nullable=False),
    Column("billing_company_id", Integer, ForeignKey("companies.id"), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date, nullable=True),
    Column("billing_frequency", String(16), nullable=False),
    Column("billing_day", Integer, nullable=False),
    # Changed only by contract events (activated, suspended, resumed, terminated).
    Column("status", String(16), nullable=False),
    Column("status_since", Date, nullable=True),
    # SHA-256 of the canonical contract document: the same document again changes nothing.
    Column("document_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # The judgement on amortising the costs of obtaining it (revrec/costs.py), canonical JSON.
    Column("contract_costs", Text, nullable=True),
    CheckConstraint("status IN ('draft', 'active', 'suspended', 'terminated')", name="status_known"),
    CheckConstraint("billing_day BETWEEN 1 AND 28", name="billing_day_range"),
    CheckConstraint("end_date IS NULL OR end_date >= start_date", name="dates_ordered"),
    CheckConstraint("billing_frequency IN ('monthly', 'quarterly', 'yearly')", name="frequency_known"),
)

# Version 1 is the contract as signed; each amendment is a new version from its date.
# Versions never change once stored.
contract_versions = Table(
    "contract_versions",
    metadata,
    Column("contract_id", Integer, ForeignKey("contracts.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("effective_from", Date, nullable=False),
    Column("components", Text, nullable=False),  # canonical JSON; money in minor units
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    # An amendment's revenue-recognition path and reason (canonical JSON), if given.
    Column("modification", Text, nullable=True),
    CheckConstraint("version >= 1", name="version_positive"),
)

# Every contract event ever accepted, idempotent by its id: the same id and content is a
# duplicate; the same id with other content is a conflict. The entry it posted (if any) is
# in the journal under the external id "event:<id>".
contract_events = Table(
    "contract_events",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("contract_id", Integer, ForeignKey("contracts.id"), nullable=False),
    Column("type", String(64), nullable=False),
    Column("event_date", Date, nullable=False),
    Column("payload_hash", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("entry_seq", BigInteger, nullable=True),
    Column("rule", String(64), nullable=False),
    Column("rule_version", Integer, nullable=False),
    Column("rule_hash", String(16), nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("recorded_by", String(200), nullable=False),
)

# A contract's events in date order (status changes, charges): read per contract by billing
# runs and schedules.
Index("ix_contract_events_contract", contract_events.c.contract_id, contract_events.c.event_date)

# The database refuses what the services never do (invariant 4 for the contract register).
protect("customers", ("DELETE",), "customers are never deleted")
protect("price_plans", ("UPDATE", "DELETE"), "price plans never change; load a new plan instead")
protect("contracts", ("DELETE",), "contracts are never deleted; terminate them instead")
protect("contract_versions", ("UPDATE", "DELETE"), "contract versions never change; add an amendment instead")
protect("contract_events", ("UPDATE", "DELETE"), "recorded events never change")
