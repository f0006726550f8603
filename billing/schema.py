"""Tables of billing: runs, invoices with their lines, the usage each line invoices, and the
invoice number sequence of each billing company."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from ledger.schema import metadata, protect
from ledger.types import UTCDateTime

# One billing run of a billing company for a period (YYYY-MM). Running it again invoices
# only what the earlier runs did not (usage posted since, late lines).
billing_runs = Table(
    "billing_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("company_id", Integer, ForeignKey("companies.id"), nullable=False),
    Column("period", String(7), nullable=False),
    Column("issue_date", Date, nullable=False),
    Column("invoices", Integer, nullable=False),
    Column("usage_lines", BigInteger, nullable=False),
    Column("fees", Integer, nullable=False),  # billing periods of recurring fees charged
    Column("started_at", UTCDateTime, nullable=False),
    Column("started_by", String(200), nullable=False),
)

# An invoice or a credit note, immutable once issued. Numbers run without gaps per billing
# company and document type: the number is taken in the transaction that writes the
# document and posts it. A credit note names the invoice it credits and comes from no run.
DOCUMENT_TYPES = ("invoice", "credit_note")
invoices = Table(
    "invoices",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("company_id", Integer, ForeignKey("companies.id"), nullable=False),
    Column("document_type", String(16), nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("number", String(64), nullable=False, unique=True),
    Column("run_id", Integer, ForeignKey("billing_runs.id"), nullable=True),
    Column("credits_invoice_id", Integer, ForeignKey("invoices.id"), nullable=True),
    Column("reason", Text, nullable=True),  # credit note: why
    Column("customer_id", Integer, ForeignKey("customers.id"), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("period", String(7), nullable=False),
    Column("issue_date", Date, nullable=False),
    Column("due_date", Date, nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    Column("entry_seq", BigInteger, nullable=True),  # None: nothing to post (only included units)
    Column("document_hash", String(64), nullable=False),  # of the invoice and its lines
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("company_id", "document_type", "sequence", name="number_once"),
    CheckConstraint("sequence >= 1", name="sequence_positive"),
    CheckConstraint("document_type IN ('invoice', 'credit_note')", name="document_type_known"),
    CheckConstraint("(document_type = 'invoice') = (run_id IS NOT NULL)", name="invoice_from_a_run"),
    CheckConstraint("(document_type = 'credit_note') = (credits_invoice_id IS NOT NULL)", name="credit_note_credits"),
)

# usage: a contract component's usage; fee: a recurring fee's billing period; event: a
# receivable a contract event posted; credit: a customer credit applied; true_up: the
# shortfall of a billing period's usage under a minimum commitment (or a later correction of
# it); prepayment: a prepayment component charged; drawdown: prepaid credit applied to the
# invoice's charges; capped: what exceeds the customer's budget cap, carried to the next
# invoice; brought_forward: what an earlier invoice carried here; rounding: with document
# rounding, the unrounded usage rounded once less the sum of its rounded lines.
INVOICE_LINE_KINDS = ("usage", "fee", "event", "credit", "true_up", "prepayment", "drawdown", "capped",
                      "brought_forward", "rounding", "credit_note")
# Kinds that belong to the invoice as a whole, not to a contract (a credit note's line
# names the contract of the line it credits, or none when it credits the invoice as a whole).
INVOICE_LEVEL_KINDS = ("capped", "brought_forward", "rounding")

# A line per contract component: quantity and amount of the usage it invoices.
invoice_lines = Table(
    "invoice_lines",
    metadata,
    Column("invoice_id", Integer, ForeignKey("invoices.id"), nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("contract_id", Integer, ForeignKey("contracts.id"), nullable=True),  # None: an invoice-level kind
    # The customer whose contract it is: on a consolidated invoice, an organisation below
    # the invoiced one, with its cost centre.
    Column("customer_id", Integer, ForeignKey("customers.id"), nullable=False),
    Column("cost_centre", String(64), nullable=True),
    Column("component", String(64), nullable=False),
    Column("service", String(64), nullable=False),
    Column("description", Text, nullable=False),
    Column("quantity_micro", BigInteger, nullable=False),  # usage: units; fee: days charged
    Column("unit", String(32), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("period_start", Date, nullable=True),  # fee, true_up: the billing period charged
    Column("period_end", Date, nullable=True),
    Column("credits_line_no", Integer, nullable=True),  # credit_note: the line of the credited invoice, if one
    PrimaryKeyConstraint("invoice_id", "line_no"),
    CheckConstraint("kind IN ({})".format(", ".join(f"'{kind}'" for kind in INVOICE_LINE_KINDS)), name="kind_known"),
    CheckConstraint("(kind IN ('fee', 'true_up')) = (period_start IS NOT NULL)", name="fee_has_period"),
    CheckConstraint("kind = 'credit_note' OR (kind IN ({})) = (contract_id IS NULL)".format(
        ", ".join(f"'{k}'" for k in INVOICE_LEVEL_KINDS)), name="contract_unless_invoice_level"),
)

# Which invoice line invoiced each usage line: a usage line is invoiced at most once.
invoice_usage = Table(
    "invoice_usage",
    metadata,
    Column("usage_line_id", String(200), ForeignKey("usage_lines.id"), primary_key=True),
    Column("invoice_id", Integer, nullable=False),
    Column("line_no", Integer, nullable=False),
)
Index("ix_invoice_usage_invoice", invoice_usage.c.invoice_id, invoice_usage.c.line_no)

# Which invoice line charged each recurring fee's billing period, or a prepayment component
# (period_start: the first day it is in force): at most once.
invoice_fees = Table(
    "invoice_fees",
    metadata,
    Column("contract_id", Integer, ForeignKey("contracts.id"), nullable=False),
    Column("component", String(64), nullable=False),
    Column("period_start", Date, nullable=False),
    Column("invoice_id", Integer, nullable=False),
    Column("line_no", Integer, nullable=False),
    PrimaryKeyConstraint("contract_id", "component", "period_start"),
)
Index("ix_invoice_fees_invoice", invoice_fees.c.invoice_id, invoice_fees.c.line_no)

# Which invoice line carries each contract event's receivable (kind event: a charge or its
# reversal the event posted) or applies its customer credit (kind credit): at most once.
invoice_events = Table(
    "invoice_events",
    metadata,
    Column("event_id", String(200), ForeignKey("contract_events.id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("invoice_id", Integer, nullable=False),
    Column("line_no", Integer, nullable=False),
    PrimaryKeyConstraint("event_id", "kind"),
    CheckConstraint("kind IN ('event', 'credit')", name="kind_known"),
)
Index("ix_invoice_events_invoice", invoice_events.c.invoice_id, invoice_events.c.line_no)

# Each true-up of a minimum commitment's billing period. A period can have several: the
# first one bills the shortfall, a later run corrects it when late usage of the period
# arrives (a negative true-up). Their sum is the shortfall as the last run saw it.
invoice_true_ups = Table(
    "invoice_true_ups",
    metadata,
    Column("contract_id", Integer, ForeignKey("contracts.id"), nullable=False),
    Column("component", String(64), nullable=False),
    Column("period_start", Date, nullable=False),
    Column("invoice_id", Integer, nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    PrimaryKeyConstraint("contract_id", "component", "period_start", "invoice_id"),
)

# A customer's budget cap for a period's invoice, in a currency: what the invoice charges
# above it is carried to the next invoice (recognised revenue does not change).
invoice_caps = Table(
    "invoice_caps",
    metadata,
    Column("customer_id", Integer, ForeignKey("customers.id"), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("period", String(7), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("set_at", UTCDateTime, nullable=False),
    Column("set_by", String(200), nullable=False),
    PrimaryKeyConstraint("customer_id", "currency", "period"),
    CheckConstraint("amount_minor >= 0", name="cap_not_negative"),
)

# A customer's dispute of a usage line. While open, billing runs hold the line back. It is
# resolved once: cancelled (the line's posting is reversed and it is never invoiced),
# credited (the line is invoiced and a credit event gives its amount back on the next
# invoice) or accepted (invoiced as it is). A line already invoiced can only be credited.
DISPUTE_STATUSES = ("open", "cancelled", "credited", "accepted")
usage_disputes = Table(
    "usage_disputes",
    metadata,
    Column("line_id", String(200), ForeignKey("usage_lines.id"), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("opened_by", String(200), nullable=False),
    Column("resolved_at", UTCDateTime, nullable=True),
    Column("resolved_by", String(200), nullable=True),
    Column("resolution", Text, nullable=True),
    Column("entry_seq", BigInteger, nullable=True),  # cancelled: the entry reversing the line's posting
    Column("event_id", String(200), nullable=True),  # credited: the credit event
    CheckConstraint("status IN ('open', 'cancelled', 'credited', 'accepted')", name="status_known"),
    CheckConstraint("(status = 'open') = (resolved_at IS NULL)", name="resolved_when_closed"),
)
Index("ix_usage_disputes_status", usage_disputes.c.status)

# A customer's open balance for a period, reviewed and approved at a total. When billing
# runs require approval, a customer is invoiced only at exactly an approved total, once
# (invoice_id: the invoice that used it). Approving again replaces an unused approval.
invoice_approvals = Table(
    "invoice_approvals",
    metadata,
    Column("customer_id", Integer, ForeignKey("customers.id"), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("period", String(7), nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    Column("approved_at", UTCDateTime, nullable=False),
    Column("approved_by", String(200), nullable=False),
    Column("invoice_id", Integer, ForeignKey("invoices.id"), nullable=True),
    PrimaryKeyConstraint("customer_id", "currency", "period"),
)

# The last number of each billing company's invoices, and of its credit notes.
invoice_sequences = Table(
    "invoice_sequences",
    metadata,
    Column("company_id", Integer, ForeignKey("companies.id"), nullable=False),
    Column("document_type", String(16), nullable=False),
    Column("last_sequence", BigInteger, nullable=False),
    PrimaryKeyConstraint("company_id", "document_type"),
)

protect("invoices", ("UPDATE", "DELETE"), "issued invoices never change; issue a credit note instead")
protect("invoice_lines", ("UPDATE", "DELETE"), "issued invoices never change; issue a credit note instead")
protect("invoice_usage", ("UPDATE", "DELETE"), "invoiced usage stays invoiced; credit it instead")
protect("invoice_fees", ("UPDATE", "DELETE"), "a billed period stays billed; credit it instead")
protect("invoice_events", ("UPDATE", "DELETE"), "an invoiced event stays invoiced; credit it instead")
protect("invoice_true_ups", ("UPDATE", "DELETE"), "a true-up stays billed; a later run corrects it")
protect("usage_disputes", ("UPDATE", "DELETE"), "a dispute is resolved once and kept",
        update_allowed_when="OLD.status = 'open' AND NEW.line_id = OLD.line_id AND NEW.opened_at = OLD.opened_at")
protect("billing_runs", ("UPDATE", "DELETE"), "billing runs are a record of what was invoiced")
