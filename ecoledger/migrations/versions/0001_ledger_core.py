"""Ledger core: companies, accounts, journal, balances, closed periods, audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

The triggers below are copied, not imported, from ledger/schema.py: a migration is a frozen
record of what was applied. tests/test_schema.py checks that both agree.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

POSTGRESQL_REFUSE_FUNCTION = """\
CREATE FUNCTION ecoledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%: %', TG_TABLE_NAME, TG_ARGV[0] USING ERRCODE = 'restrict_violation';
END
$$"""

# Refuse UPDATE and DELETE on posted rows, the audit log and closed periods, DELETE on
# companies and accounts (and TRUNCATE of all six on PostgreSQL).
SQLITE_TRIGGERS = [
    "CREATE TRIGGER journal_entries_no_update BEFORE UPDATE ON journal_entries BEGIN SELECT RAISE(ABORT, 'journal_entries: posted rows are immutable; post a reversal instead'); END",
    "CREATE TRIGGER journal_entries_no_delete BEFORE DELETE ON journal_entries BEGIN SELECT RAISE(ABORT, 'journal_entries: posted rows are immutable; post a reversal instead'); END",
    "CREATE TRIGGER postings_no_update BEFORE UPDATE ON postings BEGIN SELECT RAISE(ABORT, 'postings: posted rows are immutable; post a reversal instead'); END",
    "CREATE TRIGGER postings_no_delete BEFORE DELETE ON postings BEGIN SELECT RAISE(ABORT, 'postings: posted rows are immutable; post a reversal instead'); END",
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log: the audit log is immutable'); END",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log: the audit log is immutable'); END",
    "CREATE TRIGGER closed_periods_no_update BEFORE UPDATE ON closed_periods BEGIN SELECT RAISE(ABORT, 'closed_periods: closed periods are reopened only by the audited close'); END",
    "CREATE TRIGGER closed_periods_no_delete BEFORE DELETE ON closed_periods BEGIN SELECT RAISE(ABORT, 'closed_periods: closed periods are reopened only by the audited close'); END",
    "CREATE TRIGGER companies_no_delete BEFORE DELETE ON companies BEGIN SELECT RAISE(ABORT, 'companies: companies are never deleted; offboard them instead'); END",
    "CREATE TRIGGER accounts_no_delete BEFORE DELETE ON accounts BEGIN SELECT RAISE(ABORT, 'accounts: accounts are never deleted; close them instead'); END",
]

POSTGRESQL_TRIGGERS = [
    "CREATE TRIGGER journal_entries_no_update BEFORE UPDATE ON journal_entries FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('posted rows are immutable; post a reversal instead')",
    "CREATE TRIGGER journal_entries_no_delete BEFORE DELETE ON journal_entries FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('posted rows are immutable; post a reversal instead')",
    "CREATE TRIGGER journal_entries_no_truncate BEFORE TRUNCATE ON journal_entries FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_refuse_change('posted rows are immutable; post a reversal instead')",
    "CREATE TRIGGER postings_no_update BEFORE UPDATE ON postings FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('posted rows are immutable; post a reversal instead')",
    "CREATE TRIGGER postings_no_delete BEFORE DELETE ON postings FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('posted rows are immutable; post a reversal instead')",
    "CREATE TRIGGER postings_no_truncate BEFORE TRUNCATE ON postings FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_refuse_change('posted rows are immutable; post a reversal instead')",
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('the audit log is immutable')",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('the audit log is immutable')",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_refuse_change('the audit log is immutable')",
    "CREATE TRIGGER closed_periods_no_update BEFORE UPDATE ON closed_periods FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('closed periods are reopened only by the audited close')",
    "CREATE TRIGGER closed_periods_no_delete BEFORE DELETE ON closed_periods FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('closed periods are reopened only by the audited close')",
    "CREATE TRIGGER closed_periods_no_truncate BEFORE TRUNCATE ON closed_periods FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_refuse_change('closed periods are reopened only by the audited close')",
    "CREATE TRIGGER companies_no_delete BEFORE DELETE ON companies FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('companies are never deleted; offboard them instead')",
    "CREATE TRIGGER companies_no_truncate BEFORE TRUNCATE ON companies FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_refuse_change('companies are never deleted; offboard them instead')",
    "CREATE TRIGGER accounts_no_delete BEFORE DELETE ON accounts FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('accounts are never deleted; close them instead')",
    "CREATE TRIGGER accounts_no_truncate BEFORE TRUNCATE ON accounts FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_refuse_change('accounts are never deleted; close them instead')",
]


def _create_triggers() -> None:
    if op.get_bind().dialect.name == "sqlite":
        statements = SQLITE_TRIGGERS
    else:
        statements = [POSTGRESQL_REFUSE_FUNCTION, *POSTGRESQL_TRIGGERS]
    for statement in statements:
        op.execute(statement)


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target', sa.String(length=255), nullable=False),
    sa.Column('details', sa.Text(), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    op.create_table('companies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('functional_currency', sa.String(length=3), nullable=False),
    sa.Column('roles', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_companies')),
    sa.UniqueConstraint('code', name=op.f('uq_companies_code'))
    )
    op.create_table('journal_entries',
    sa.Column('id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('external_id', sa.String(length=255), nullable=False),
    sa.Column('effective_date', sa.Date(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('source_type', sa.String(length=64), nullable=False),
    sa.Column('source_id', sa.String(length=255), nullable=True),
    sa.Column('metadata_json', sa.Text(), nullable=True),
    sa.Column('reverses_id', sa.BigInteger(), nullable=True),
    sa.Column('payload_hash', sa.String(length=64), nullable=False),
    sa.Column('chain_hash', sa.String(length=64), nullable=False),
    sa.CheckConstraint('reverses_id IS NULL OR reverses_id < id', name=op.f('ck_journal_entries_reverses_earlier')),
    sa.ForeignKeyConstraint(['reverses_id'], ['journal_entries.id'], name=op.f('fk_journal_entries_reverses_id_journal_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_journal_entries')),
    sa.UniqueConstraint('external_id', name=op.f('uq_journal_entries_external_id')),
    sa.UniqueConstraint('reverses_id', name=op.f('uq_journal_entries_reverses_id'))
    )
    op.create_table('accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('currencies', sa.JSON(), nullable=False),
    sa.Column('balance_constraint', sa.String(length=16), nullable=True),
    sa.Column('open_date', sa.Date(), nullable=False),
    sa.Column('close_date', sa.Date(), nullable=True),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.CheckConstraint("(type = 'asset' AND name LIKE 'Assets:%') OR (type = 'liability' AND name LIKE 'Liabilities:%') OR (type = 'equity' AND name LIKE 'Equity:%') OR (type = 'income' AND name LIKE 'Income:%') OR (type = 'expense' AND name LIKE 'Expenses:%')", name=op.f('ck_accounts_type_matches_root')),
    sa.CheckConstraint("balance_constraint IS NULL OR balance_constraint IN ('non_negative', 'non_positive')", name=op.f('ck_accounts_balance_constraint_known')),
    sa.CheckConstraint('close_date IS NULL OR close_date > open_date', name=op.f('ck_accounts_close_after_open')),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_accounts_company_id_companies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts')),
    sa.UniqueConstraint('company_id', 'name', name=op.f('uq_accounts_company_id_name'))
    )
    op.create_table('closed_periods',
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_by', sa.String(length=200), nullable=False),
    sa.Column('last_entry_id', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('end_date >= start_date', name=op.f('ck_closed_periods_dates_ordered')),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_closed_periods_company_id_companies')),
    sa.PrimaryKeyConstraint('company_id', 'period', name=op.f('pk_closed_periods'))
    )
    op.create_table('balances',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('balance_minor', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_balances_account_id_accounts')),
    sa.PrimaryKeyConstraint('account_id', 'currency', name=op.f('pk_balances'))
    )
    op.create_table('daily_balances',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('balance_date', sa.Date(), nullable=False),
    sa.Column('balance_minor', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_daily_balances_account_id_accounts')),
    sa.PrimaryKeyConstraint('account_id', 'currency', 'balance_date', name=op.f('pk_daily_balances'))
    )
    op.create_table('postings',
    sa.Column('entry_id', sa.BigInteger(), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('dimensions', sa.Text(), nullable=True),
    sa.Column('effective_date', sa.Date(), nullable=False),
    sa.PrimaryKeyConstraint('entry_id', 'line_no', name=op.f('pk_postings'))
    )
    with op.batch_alter_table('postings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_postings_account_id_effective_date'), ['account_id', 'effective_date'], unique=False)
    _create_triggers()


def downgrade() -> None:
    for table in ("postings", "daily_balances", "balances", "closed_periods", "accounts",
                  "journal_entries", "companies", "audit_log"):
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION ecoledger_refuse_change()")
