"""Tables of revenue recognition: the close runs of a company and period, and the
controller's estimates of variable consideration."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, Integer, String, Table, Text

from ledger.schema import metadata, protect
from ledger.types import UTCDateTime

CLOSE_OUTCOMES = ("closed", "blocked", "reopened")

# Each close run (and each reopening) of a company's period, in order: the readiness checks
# with their results and acceptances (JSON), the recognition batch it posted (entries whose
# external ids start with ``batch``), and the revenue it recognised per currency (JSON).
revrec_closes = Table(
    "revrec_closes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("company_id", Integer, ForeignKey("companies.id"), nullable=False),
    Column("period", String(7), nullable=False),
    Column("run_no", Integer, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("checks", Text, nullable=False),
    Column("batch", String(200), nullable=True),
    Column("entries", Integer, nullable=False),
    Column("recognised", Text, nullable=False),
    Column("reason", Text, nullable=True),
    Column("acted_at", UTCDateTime, nullable=False),
    Column("acted_by", String(200), nullable=False),
    CheckConstraint("outcome IN ('closed', 'blocked', 'reopened')", name="outcome_known"),
    CheckConstraint("run_no >= 1", name="run_no_positive"),
)
Index("ix_revrec_closes_period", revrec_closes.c.company_id, revrec_closes.c.period, revrec_closes.c.run_no,
      unique=True)

protect("revrec_closes", ("UPDATE", "DELETE"), "close runs are a record of what happened")

# The controller's estimates of variable consideration (revrec/estimates.py), one row per
# estimate recorded: a later one of the same contract and kind replaces it from its month on.
# Scenarios and services are canonical JSON; percentages canonical decimal strings.
revrec_estimates = Table(
    "revrec_estimates",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("contract_id", Integer, ForeignKey("contracts.id"), nullable=False),
    Column("effective_from", String(7), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("method", String(32), nullable=False),
    Column("scenarios", Text, nullable=False),
    Column("constraint_percent", String(16), nullable=False),
    Column("services", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("document_hash", String(64), nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("recorded_by", String(200), nullable=False),
    CheckConstraint("kind IN ('sla_credits', 'rebate', 'price_concession', 'refund')", name="kind_known"),
    CheckConstraint("method IN ('expected_value', 'most_likely_amount')", name="method_known"),
)
Index("ix_revrec_estimates_contract", revrec_estimates.c.contract_id, revrec_estimates.c.kind,
      revrec_estimates.c.effective_from)

protect("revrec_estimates", ("UPDATE", "DELETE"), "estimates are replaced by later ones, never changed")
