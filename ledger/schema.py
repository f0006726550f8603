"""Ledger tables, constraints and the triggers that make posted rows immutable.

The Alembic migrations under ``ecoledger/migrations`` must produce exactly this schema;
``tests/test_schema.py`` compares the two, triggers and check constraints included.

Money is ``BigInteger`` minor units beside a currency code, never ``Numeric`` (SQLite turns
it into a float). Free-form key/value sets (dimensions, entry metadata) are stored as the
canonical JSON text that the hash chain covers, so that ``verify`` can recompute hashes
from the stored bytes.
"""

from __future__ import annotations

from sqlalchemy import (
    DDL,
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
)

from ledger.types import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

ACCOUNT_TYPES = ("asset", "liability", "equity", "income", "expense")
BALANCE_CONSTRAINTS = ("non_negative", "non_positive")

companies = Table(
    "companies",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("code", String(32), nullable=False),
    Column("name", String(200), nullable=False),
    Column("functional_currency", String(3), nullable=False),
    Column("roles", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("code"),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("company_id", Integer, ForeignKey("companies.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("type", String(16), nullable=False),
    Column("currencies", JSON, nullable=False),
    Column("balance_constraint", String(16), nullable=True),
    Column("open_date", Date, nullable=False),
    Column("close_date", Date, nullable=True),
    Column("description", String(500), nullable=False),
    UniqueConstraint("company_id", "name"),
    CheckConstraint(
        "(type = 'asset' AND name LIKE 'Assets:%') OR "
        "(type = 'liability' AND name LIKE 'Liabilities:%') OR "
        "(type = 'equity' AND name LIKE 'Equity:%') OR "
        "(type = 'income' AND name LIKE 'Income:%') OR "
        "(type = 'expense' AND name LIKE 'Expenses:%')",
        name="type_matches_root",
    ),
    CheckConstraint(
        "balance_constraint IS NULL OR balance_constraint IN ('non_negative', 'non_positive')",
        name="balance_constraint_known",
    ),
    # beancount requires a close date strictly after the open date.
    CheckConstraint("close_date IS NULL OR close_date > open_date", name="close_after_open"),
)

journal_entries = Table(
    "journal_entries",
    metadata,
    # The journal position: assigned in order under the write lock; the hash chain follows it.
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("external_id", String(255), nullable=False),
    Column("effective_date", Date, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("description", Text, nullable=False),
    Column("source_type", String(64), nullable=False),
    Column("source_id", String(255), nullable=True),
    Column("metadata_json", Text, nullable=True),
    Column("reverses_id", BigInteger, ForeignKey("journal_entries.id"), nullable=True),
    Column("payload_hash", String(64), nullable=False),
    Column("chain_hash", String(64), nullable=False),
    UniqueConstraint("external_id"),
    # Invariant 7: an entry is reversed at most once.
    UniqueConstraint("reverses_id"),
    CheckConstraint("reverses_id IS NULL OR reverses_id < id", name="reverses_earlier"),
)

# No foreign keys on this, the largest table: on PostgreSQL each one is a per-row trigger
# that locks the parent row, and the two cost more than the rest of the insert (measured:
# docs/decisions.md). Integrity holds without them: only the posting service writes here,
# entries and accounts are never deleted (triggers below), a dangling posting breaks its
# entry's payload hash, and verify reports orphans and unknown accounts.
postings = Table(
    "postings",
    metadata,
    Column("entry_id", BigInteger, nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("account_id", Integer, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("dimensions", Text, nullable=True),
    # Copy of the entry's date so that account statements are one index range scan.
    Column("effective_date", Date, nullable=False),
    PrimaryKeyConstraint("entry_id", "line_no"),
    Index(None, "account_id", "effective_date"),
)

# Current balance of each (account, currency) pair that has postings: the trial balance
# "now" reads only this table, and it lists the pairs that daily_balances holds.
balances = Table(
    "balances",
    metadata,
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("balance_minor", BigInteger, nullable=False),
    PrimaryKeyConstraint("account_id", "currency"),
)

# Closing balance of an account in a currency at the end of each day that has postings.
# A balance at any date is one index seek per (account, currency); see docs/design.md.
daily_balances = Table(
    "daily_balances",
    metadata,
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("balance_date", Date, nullable=False),
    Column("balance_minor", BigInteger, nullable=False),
    PrimaryKeyConstraint("account_id", "currency", "balance_date"),
)

# One row per closed period of a company. Periods close in order, so a company's closed
# periods are always a prefix of its calendar: everything up to the latest end_date.
closed_periods = Table(
    "closed_periods",
    metadata,
    Column("company_id", Integer, ForeignKey("companies.id"), nullable=False),
    Column("period", String(7), nullable=False),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date, nullable=False),
    Column("closed_at", UTCDateTime, nullable=False),
    Column("closed_by", String(200), nullable=False),
    # Journal position when the period closed: a posting into the period from a later entry
    # is a violation that verify reports.
    Column("last_entry_id", BigInteger, nullable=False),
    PrimaryKeyConstraint("company_id", "period"),
    CheckConstraint("end_date >= start_date", name="dates_ordered"),
)

# A closed period reopened by the controller's close (revrec): who, when, why, and which
# close it undid (the closed_at of the closed_periods row). The database lets a closed
# period's row be deleted only once its reopening is recorded here.
period_reopenings = Table(
    "period_reopenings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("company_id", Integer, ForeignKey("companies.id"), nullable=False),
    Column("period", String(7), nullable=False),
    Column("closed_at", UTCDateTime, nullable=False),
    Column("closed_by", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("reopened_at", UTCDateTime, nullable=False),
    Column("reopened_by", String(200), nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(255), nullable=False),
    Column("details", Text, nullable=False),
    Column("request_id", String(64), nullable=True),
)

# -- Immutability, enforced by the database itself (invariant 4) ----------------------------

# table -> (statements refused, why). Entries, postings and the audit log never change;
# companies and accounts change (names, close dates) but are never deleted. Other
# capabilities add their tables with protect().
PROTECTED_TABLES = {
    "journal_entries": (("UPDATE", "DELETE"), "posted rows are immutable; post a reversal instead"),
    "postings": (("UPDATE", "DELETE"), "posted rows are immutable; post a reversal instead"),
    "audit_log": (("UPDATE", "DELETE"), "the audit log is immutable"),
    "closed_periods": (("UPDATE", "DELETE"), "closed periods are reopened only by the audited close"),
    "companies": (("DELETE",), "companies are never deleted; offboard them instead"),
    "accounts": (("DELETE",), "accounts are never deleted; close them instead"),
    "period_reopenings": (("UPDATE", "DELETE"), "reopenings are a record of what happened"),
}
# table -> the one kind of UPDATE its trigger lets through, as a condition on OLD and NEW.
UPDATE_ALLOWED_WHEN: dict[str, str] = {}
# table -> {dialect: condition on OLD} under which its DELETE trigger lets a row go. A closed
# period goes only when its reopening is recorded (PostgreSQL allows no subquery in a
# trigger's WHEN, so it asks a function).
DELETE_ALLOWED_WHEN: dict[str, dict[str, str]] = {
    "closed_periods": {
        "sqlite": "EXISTS (SELECT 1 FROM period_reopenings r WHERE r.company_id = OLD.company_id "
                  "AND r.period = OLD.period AND r.closed_at = OLD.closed_at)",
        "postgresql": "ecoledger_reopening_recorded(OLD.company_id, OLD.period, OLD.closed_at)",
    },
}
POSTGRESQL_REOPENING_FUNCTION = """\
CREATE FUNCTION ecoledger_reopening_recorded(p_company integer, p_period varchar, p_closed timestamptz) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM period_reopenings r
                   WHERE r.company_id = p_company AND r.period = p_period AND r.closed_at = p_closed)
$$"""


def protect(table: str, verbs: tuple[str, ...], why: str, *, update_allowed_when: str | None = None) -> None:
    """Have the database refuse ``verbs`` (UPDATE, DELETE; TRUNCATE too on PostgreSQL) on
    ``table``, except an UPDATE matching ``update_allowed_when``."""
    PROTECTED_TABLES[table] = (verbs, why)
    if update_allowed_when:
        UPDATE_ALLOWED_WHEN[table] = update_allowed_when


POSTGRESQL_REFUSE_FUNCTION = """\
CREATE FUNCTION ecoledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%: %', TG_TABLE_NAME, TG_ARGV[0] USING ERRCODE = 'restrict_violation';
END
$$"""


def protection_ddl(dialect: str, tables: list[str] | None = None) -> list[str]:
    """The statements creating the refusing triggers on ``dialect`` for ``tables`` (default:
    all protected tables), and, on PostgreSQL with the ledger's own tables, the function
    they call first."""
    tables = list(PROTECTED_TABLES) if tables is None else tables
    statements = [POSTGRESQL_REFUSE_FUNCTION] if dialect == "postgresql" and "journal_entries" in tables else []
    if dialect == "postgresql" and "closed_periods" in tables:
        statements.append(POSTGRESQL_REOPENING_FUNCTION)
    for table in tables:
        verbs, why = PROTECTED_TABLES[table]
        for verb in verbs:
            name = f"{table}_no_{verb.lower()}"
            allowed = UPDATE_ALLOWED_WHEN.get(table) if verb == "UPDATE" else (
                DELETE_ALLOWED_WHEN.get(table, {}).get(dialect))
            if dialect == "sqlite":
                when = f"WHEN NOT ({allowed}) " if allowed else ""
                statements.append(
                    f"CREATE TRIGGER {name} BEFORE {verb} ON {table} {when}"
                    f"BEGIN SELECT RAISE(ABORT, '{table}: {why}'); END"
                )
            else:
                when = f"WHEN (NOT ({allowed})) " if allowed else ""
                statements.append(
                    f"CREATE TRIGGER {name} BEFORE {verb} ON {table} "
                    f"FOR EACH ROW {when}EXECUTE FUNCTION ecoledger_refuse_change('{why}')"
                )
        if dialect == "postgresql":
            statements.append(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_refuse_change('{why}')"
            )
    return statements


def expected_triggers(dialect: str) -> set[tuple[str, str]]:
    """(table, trigger name) pairs that must exist; verify checks them."""
    result = set()
    for table, (verbs, _) in PROTECTED_TABLES.items():
        result |= {(table, f"{table}_no_{verb.lower()}") for verb in verbs}
        if dialect == "postgresql":
            result.add((table, f"{table}_no_truncate"))
    return result


@event.listens_for(metadata, "after_create")
def _create_triggers(target, connection, **_) -> None:
    # Computed when the tables are created, so that tables registered by other modules with
    # protect() get theirs; only for tables this metadata holds.
    tables = [table for table in PROTECTED_TABLES if table in target.tables]
    for statement in protection_ddl(connection.dialect.name, tables):
        # DDL() applies %-formatting to its text; the SQL wants literal percent signs.
        connection.execute(DDL(statement.replace("%", "%%")))
