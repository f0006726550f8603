"""Tables of settlement statements and the payments recorded against them."""

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

# A partner's settlement statement with one counterparty (an operator entity), for a period
# and currency, from the partner's books: its position (what the counterparty owes it, less
# what it owes the counterparty) at the start, every position posting of the period, and the
# position at the end. Immutable; a correction is a new version referring to the one before.
settlement_statements = Table(
    "settlement_statements",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("number", String(128), nullable=False, unique=True),
    Column("company_id", Integer, ForeignKey("companies.id"), nullable=False),  # the partner
    Column("counterparty_id", Integer, ForeignKey("companies.id"), nullable=False),
    Column("period", String(7), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("version", Integer, nullable=False),
    Column("previous_id", Integer, ForeignKey("settlement_statements.id"), nullable=True),
    Column("opening_minor", BigInteger, nullable=False),
    Column("closing_minor", BigInteger, nullable=False),  # > 0: the counterparty pays the partner
    Column("due_date", Date, nullable=False),
    Column("issued_at", UTCDateTime, nullable=False),
    Column("issued_by", String(200), nullable=False),
    Column("document_hash", String(64), nullable=False),
    # The part of the closing balance disputes withhold (usage lines under an open dispute),
    # not settled until they are resolved; its items as JSON ([usage line, contract, amount]).
    Column("withheld_minor", BigInteger, nullable=False, server_default="0"),
    Column("withheld_items", Text, nullable=True),
    UniqueConstraint("company_id", "counterparty_id", "period", "currency", "version", name="version_once"),
    CheckConstraint("version >= 1", name="version_positive"),
    CheckConstraint("(version = 1) = (previous_id IS NULL)", name="versions_chain"),
)

# A statement's lines: the period's position postings per contract, service and kind (the
# rule or source that posted them).
statement_lines = Table(
    "statement_lines",
    metadata,
    Column("statement_id", Integer, ForeignKey("settlement_statements.id"), nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("contract", String(64), nullable=False),  # "" for postings about no contract
    Column("kind", String(64), nullable=False),
    Column("postings", Integer, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("service", String(64), nullable=False, server_default=""),  # "" for postings naming none
    PrimaryKeyConstraint("statement_id", "line_no"),
)

# The postings each statement line sums: the drill-down to the entries.
statement_postings = Table(
    "statement_postings",
    metadata,
    Column("statement_id", Integer, nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("entry_id", BigInteger, nullable=False),
    Column("posting_line_no", Integer, nullable=False),
    PrimaryKeyConstraint("statement_id", "entry_id", "posting_line_no"),
)
Index("ix_statement_postings_line", statement_postings.c.statement_id, statement_postings.c.line_no)

# A payment recorded against a statement (a payout to the partner or a receipt from it),
# posted as a settlement entry in both books.
statement_payments = Table(
    "statement_payments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("statement_id", Integer, ForeignKey("settlement_statements.id"), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("paid_on", Date, nullable=False),
    Column("reference", Text, nullable=True),
    Column("entry_seq", BigInteger, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("recorded_by", String(200), nullable=False),
    CheckConstraint("amount_minor > 0", name="amount_positive"),
)

# What a clearing run posted for a partner's agreement and period: a true-up of a minimum
# guarantee, a fixed cost, a commission over the period's volume, or the clawback of a
# commission on one credit. A period can have
# several items of a kind: a later run posts only the difference from what earlier ones did
# (a late usage line changes the volume), so their sum is always what is due.
clearing_items = Table(
    "clearing_items",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("company_id", Integer, ForeignKey("companies.id"), nullable=False),  # the partner
    Column("counterparty_id", Integer, ForeignKey("companies.id"), nullable=False),
    Column("agreement", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("window_start", Date, nullable=False),
    Column("window_end", Date, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("basis_minor", BigInteger, nullable=False),  # what it was computed from: earned, or volume
    Column("due_minor", BigInteger, nullable=False),  # what the agreement gives for the window
    Column("amount_minor", BigInteger, nullable=False),  # posted by this item
    Column("entry_seq", BigInteger, nullable=False),
    Column("source_entry", String(255), nullable=True),  # clawback: the credit's entry
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("recorded_by", String(200), nullable=False),
    CheckConstraint("kind IN ('minimum_guarantee', 'fixed_cost', 'commission_tiers', 'clawback', 'transfer_price')",
                    name="kind_known"),
    CheckConstraint("(kind = 'clawback') = (source_entry IS NOT NULL)", name="clawback_names_its_credit"),
)
Index("ix_clearing_items_window", clearing_items.c.company_id, clearing_items.c.agreement, clearing_items.c.window_start)

# Each clearing run: the period it cleared, for every partner (partner_id null) or one. A
# later run revisits the windows of cleared periods, so that late events are trued up.
clearing_runs = Table(
    "clearing_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("period", String(7), nullable=False),
    Column("partner_id", Integer, ForeignKey("companies.id"), nullable=True),
    Column("items", Integer, nullable=False),
    Column("run_at", UTCDateTime, nullable=False),
    Column("run_by", String(200), nullable=False),
)
Index("ix_clearing_runs_period", clearing_runs.c.period)
protect("clearing_runs", ("UPDATE", "DELETE"), "clearing runs are a record of what happened")

# A netting run's novation of a partner's position with one operator entity to the netting
# centre, per currency; what disputes withhold stays with the entity.
netting_items = Table(
    "netting_items",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("cycle", String(7), nullable=False),
    Column("company_id", Integer, ForeignKey("companies.id"), nullable=False),  # the partner
    Column("counterparty_id", Integer, ForeignKey("companies.id"), nullable=False),  # the entity it was with
    Column("centre_id", Integer, ForeignKey("companies.id"), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),  # the position moved (> 0: owed to the partner)
    Column("withheld_minor", BigInteger, nullable=False),  # left with the entity: disputed
    Column("entry_seq", BigInteger, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("recorded_by", String(200), nullable=False),
)
Index("ix_netting_items_cycle", netting_items.c.cycle, netting_items.c.company_id)

# Exchange rates fixed for a netting cycle (clearing/fx.py): units of to_currency per unit of
# currency, as a canonical decimal string; one per cycle and pair, never changed.
fx_rates = Table(
    "fx_rates",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("cycle", String(7), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("to_currency", String(3), nullable=False),
    Column("rate", String(32), nullable=False),
    Column("rate_date", Date, nullable=False),
    Column("source", String(200), nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("recorded_by", String(200), nullable=False),
    UniqueConstraint("cycle", "currency", "to_currency", name="one_rate_per_cycle"),
    CheckConstraint("currency <> to_currency", name="two_currencies"),
)

protect("fx_rates", ("UPDATE", "DELETE"), "rates fixed for a cycle never change")
protect("clearing_items", ("UPDATE", "DELETE"), "clearing items are posted; a later run adjusts them")
protect("netting_items", ("UPDATE", "DELETE"), "netting is posted; reverse its entry instead")
protect("settlement_statements", ("UPDATE", "DELETE"), "issued statements never change; issue a new version")
protect("statement_lines", ("UPDATE", "DELETE"), "issued statements never change; issue a new version")
protect("statement_postings", ("UPDATE", "DELETE"), "issued statements never change; issue a new version")
protect("statement_payments", ("UPDATE", "DELETE"), "payments are posted; reverse their entry instead")
