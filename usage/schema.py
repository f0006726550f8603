"""Tables of usage: imports, rated lines, rejected lines, period counters and alerts."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
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

IMPORT_STATUSES = ("running", "complete", "interrupted")

# One run of `ecoledger import usage` (or an upload, or a re-submission of rejects): the
# "usage batch" dimension of the postings it made. Counts add up to the lines read:
# lines_read = posted + duplicates + rejected. They are written as each commit lands, so an
# interrupted import shows how far it got (run the same file again: posted lines are
# duplicates, the rest posts).
usage_imports = Table(
    "usage_imports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(500), nullable=False),
    Column("format", String(8), nullable=False),
    Column("posting", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("lines_read", BigInteger, nullable=False),
    Column("posted", BigInteger, nullable=False),
    Column("duplicates", BigInteger, nullable=False),
    Column("rejected", BigInteger, nullable=False),
    Column("late", BigInteger, nullable=False),
    Column("entries_posted", BigInteger, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("started_by", String(200), nullable=False),
    CheckConstraint("status IN ('running', 'complete', 'interrupted')", name="status_known"),
    CheckConstraint("posting IN ('line', 'aggregated')", name="posting_known"),
    CheckConstraint("lines_read = posted + duplicates + rejected", name="counts_add_up"),
)

# Every usage line ever posted, idempotent by its id, rated once and never changed: the same
# id and content again is a duplicate; the same id with other content is a conflict.
# Quantities are in millionths of the unit (six decimals, exact); money in minor units.
# amount_exact keeps the unrounded rated amount (minor units, decimal text) for billing runs
# that round per document instead of per line.
usage_lines = Table(
    "usage_lines",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("import_id", Integer, ForeignKey("usage_imports.id"), nullable=False),
    Column("contract_id", Integer, ForeignKey("contracts.id"), nullable=False),
    Column("component", String(64), nullable=False),
    Column("service", String(64), nullable=False),
    Column("used_at", UTCDateTime, nullable=False),
    Column("usage_date", Date, nullable=False),  # the local date of used_at: its period
    Column("quantity_micro", BigInteger, nullable=False),
    Column("unit", String(32), nullable=False),
    Column("attributes", Text, nullable=True),  # canonical JSON object
    Column("currency", String(3), nullable=False),
    Column("gross_minor", BigInteger, nullable=False),
    Column("discount_minor", BigInteger, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),  # gross - discount, posted
    Column("amount_exact", String(48), nullable=False),
    Column("rating", Text, nullable=False),  # how it was rated: plan, model, counter, factor
    Column("payload_hash", String(64), nullable=False),
    # The entry posting it (alone or aggregated); None for a line that priced to zero (an
    # included unit), which posts nothing.
    Column("entry_seq", BigInteger, nullable=True),
    Column("posted_date", Date, nullable=False),  # effective date of that entry
    Column("late", Boolean, nullable=False),  # its period was closed: posted in the first open one
    CheckConstraint("quantity_micro >= 0", name="quantity_not_negative"),
    CheckConstraint("amount_minor = gross_minor - discount_minor", name="amount_is_net"),
)
Index("ix_usage_lines_contract_date", usage_lines.c.contract_id, usage_lines.c.usage_date)
Index("ix_usage_lines_entry", usage_lines.c.entry_seq)
Index("ix_usage_lines_import", usage_lines.c.import_id)

# Lines mediation refused, with the reason. Open until a corrected line with the same id
# posts (resolved, by that import) or the line is re-submitted as it was (`usage resubmit`:
# resubmitted, by that import, which posted it or rejected it again with a new reject row).
usage_rejects = Table(
    "usage_rejects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("import_id", Integer, ForeignKey("usage_imports.id"), nullable=False),
    Column("line_ref", String(64), nullable=False),  # line number in its file
    Column("line_id", String(200), nullable=True),  # the line's id, when it had a usable one
    Column("raw", Text, nullable=False),  # the line as read (bounded by USAGE_LINE_BYTES_MAX)
    Column("code", String(64), nullable=False),
    Column("field", String(200), nullable=True),
    Column("message", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("resolved_by_import", Integer, ForeignKey("usage_imports.id"), nullable=True),
    Column("recorded_at", UTCDateTime, nullable=False),
    CheckConstraint("status IN ('open', 'resolved', 'resubmitted')", name="status_known"),
    CheckConstraint("(status = 'open') = (resolved_by_import IS NULL)", name="resolved_names_import"),
)
Index("ix_usage_rejects_line_id", usage_rejects.c.line_id)
Index("ix_usage_rejects_status", usage_rejects.c.status, usage_rejects.c.import_id)

# Quantity used per contract component and rating period (the plan's period: month, quarter
# or year, starting on the contract's billing day). Tiers and allowances are priced against
# it: a line is charged P(counter after) - P(counter before).
usage_counters = Table(
    "usage_counters",
    metadata,
    Column("contract_id", Integer, ForeignKey("contracts.id"), primary_key=True),
    Column("component", String(64), primary_key=True),
    Column("period_start", Date, primary_key=True),
    Column("period_end", Date, nullable=False),
    Column("quantity_micro", BigInteger, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    CheckConstraint("quantity_micro >= 0", name="quantity_not_negative"),
)

ALERT_KINDS = ("allowance", "budget")

# Raised once per contract component, period, kind and threshold: the line that crossed it.
usage_alerts = Table(
    "usage_alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("contract_id", Integer, ForeignKey("contracts.id"), nullable=False),
    Column("component", String(64), nullable=False),
    Column("period_start", Date, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("threshold_percent", Integer, nullable=False),
    Column("limit_text", String(48), nullable=False),  # the allowance (units) or budget (amount)
    Column("used_text", String(48), nullable=False),  # the counter when the line crossed it
    Column("line_id", String(200), nullable=True),  # the line that crossed it; None for a period's alerts
    Column("raised_at", UTCDateTime, nullable=False),
    CheckConstraint("kind IN ('allowance', 'budget', 'underrun', 'run_rate_high', 'run_rate_low')", name="kind_known"),
)
Index("ix_usage_alerts_once", usage_alerts.c.contract_id, usage_alerts.c.component, usage_alerts.c.period_start,
      usage_alerts.c.kind, usage_alerts.c.threshold_percent, unique=True)

protect("usage_lines", ("UPDATE", "DELETE"), "posted usage lines never change; reverse their entry instead")
protect("usage_alerts", ("UPDATE", "DELETE"), "alerts are a record of what happened")
protect("usage_rejects", ("DELETE",), "rejected lines are kept until resolved, and after")

# Webhooks: the URLs alerts are pushed to. A webhook reads the alerts in id order and keeps
# its place (delivered_through, the last alert id it acknowledged with a 2xx); alert ids are
# assigned under the ledger's write lock, so they commit in order and none is skipped.
webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("url", String(2000), nullable=False),
    Column("secret", String(100), nullable=False),  # signs the deliveries: needed in clear (HMAC)
    Column("kinds", Text, nullable=False),  # JSON list of alert kinds
    Column("company_id", Integer, ForeignKey("companies.id"), nullable=True),  # alerts of its contracts only
    Column("active", Boolean, nullable=False),
    Column("delivered_through", BigInteger, nullable=False),
    Column("failures", Integer, nullable=False),  # consecutive failed attempts
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
)

# Every attempt to deliver a webhook's alerts, answered or not.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("webhook_id", Integer, ForeignKey("webhooks.id"), nullable=False),
    Column("attempted_at", UTCDateTime, nullable=False),
    Column("first_alert_id", BigInteger, nullable=False),
    Column("last_alert_id", BigInteger, nullable=False),
    Column("alerts", Integer, nullable=False),
    Column("status_code", Integer, nullable=True),  # None: no answer (refused, timed out)
    Column("delivered", Boolean, nullable=False),
    Column("error", Text, nullable=True),
    Column("duration_ms", Integer, nullable=False),
)
Index("ix_webhook_deliveries_webhook", webhook_deliveries.c.webhook_id, webhook_deliveries.c.id)

protect("webhook_deliveries", ("UPDATE", "DELETE"), "delivery attempts are a record of what happened")
