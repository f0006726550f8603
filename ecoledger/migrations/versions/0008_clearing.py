"""Clearing: clearing items (true-ups a clearing run posted), netting items, settlement statements (versioned, with their lines and the postings each line
sums) and the payments recorded against them; triggers keep them immutable.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

The triggers are copied, not imported, from clearing/schema.py (through
ledger.schema.protection_ddl): a migration is a frozen record of what was applied.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SQLITE_TRIGGERS = [
    "CREATE TRIGGER netting_items_no_update BEFORE UPDATE ON netting_items BEGIN SELECT RAISE(ABORT, 'netting_items: netting is posted; reverse its entry instead'); END",
    "CREATE TRIGGER netting_items_no_delete BEFORE DELETE ON netting_items BEGIN SELECT RAISE(ABORT, 'netting_items: netting is posted; reverse its entry instead'); END",
    "CREATE TRIGGER clearing_items_no_update BEFORE UPDATE ON clearing_items BEGIN SELECT RAISE(ABORT, 'clearing_items: clearing items are posted; a later run adjusts them'); END",
    "CREATE TRIGGER clearing_items_no_delete BEFORE DELETE ON clearing_items BEGIN SELECT RAISE(ABORT, 'clearing_items: clearing items are posted; a later run adjusts them'); END",
    "CREATE TRIGGER settlement_statements_no_update BEFORE UPDATE ON settlement_statements BEGIN SELECT RAISE(ABORT, 'settlement_statements: issued statements never change; issue a new version'); END",
    "CREATE TRIGGER settlement_statements_no_delete BEFORE DELETE ON settlement_statements BEGIN SELECT RAISE(ABORT, 'settlement_statements: issued statements never change; issue a new version'); END",
    "CREATE TRIGGER statement_lines_no_update BEFORE UPDATE ON statement_lines BEGIN SELECT RAISE(ABORT, 'statement_lines: issued statements never change; issue a new version'); END",
    "CREATE TRIGGER statement_lines_no_delete BEFORE DELETE ON statement_lines BEGIN SELECT RAISE(ABORT, 'statement_lines: issued statements never change; issue a new version'); END",
    "CREATE TRIGGER statement_postings_no_update BEFORE UPDATE ON statement_postings BEGIN SELECT RAISE(ABORT, 'statement_postings: issued statements never change; issue a new version'); END",
    "CREATE TRIGGER statement_postings_no_delete BEFORE DELETE ON statement_postings BEGIN SELECT RAISE(ABORT, 'statement_postings: issued statements never change; issue a new version'); END",
    "CREATE TRIGGER statement_payments_no_update BEFORE UPDATE ON statement_payments BEGIN SELECT RAISE(ABORT, 'statement_payments: payments are posted; reverse their entry instead'); END",
    "CREATE TRIGGER statement_payments_no_delete BEFORE DELETE ON statement_payments BEGIN SELECT RAISE(ABORT, 'statement_payments: payments are posted; reverse their entry instead'); END",
]

POSTGRESQL_TRIGGERS = [
    "CREATE TRIGGER netting_items_no_update BEFORE UPDATE ON netting_items FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('netting is posted; reverse its entry instead')",
    "CREATE TRIGGER netting_items_no_delete BEFORE DELETE ON netting_items FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('netting is posted; reverse its entry instead')",
    "CREATE TRIGGER netting_items_no_truncate BEFORE TRUNCATE ON netting_items FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_refuse_change('netting is posted; reverse its entry instead')",
    "CREATE TRIGGER clearing_items_no_update BEFORE UPDATE ON clearing_items FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('clearing items are posted; a later run adjusts them')",
    "CREATE TRIGGER clearing_items_no_delete BEFORE DELETE ON clearing_items FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('clearing items are posted; a later run adjusts them')",
    "CREATE TRIGGER clearing_items_no_truncate BEFORE TRUNCATE ON clearing_items FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_refuse_change('clearing items are posted; a later run adjusts them')",
    "CREATE TRIGGER settlement_statements_no_update BEFORE UPDATE ON settlement_statements FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('issued statements never change; issue a new version')",
    "CREATE TRIGGER settlement_statements_no_delete BEFORE DELETE ON settlement_statements FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('issued statements never change; issue a new version')",
    "CREATE TRIGGER settlement_statements_no_truncate BEFORE TRUNCATE ON settlement_statements FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_refuse_change('issued statements never change; issue a new version')",
    "CREATE TRIGGER statement_lines_no_update BEFORE UPDATE ON statement_lines FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('issued statements never change; issue a new version')",
    "CREATE TRIGGER statement_lines_no_delete BEFORE DELETE ON statement_lines FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('issued statements never change; issue a new version')",
    "CREATE TRIGGER statement_lines_no_truncate BEFORE TRUNCATE ON statement_lines FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_refuse_change('issued statements never change; issue a new version')",
    "CREATE TRIGGER statement_postings_no_update BEFORE UPDATE ON statement_postings FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('issued statements never change; issue a new version')",
    "CREATE TRIGGER statement_postings_no_delete BEFORE DELETE ON statement_postings FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('issued statements never change; issue a new version')",
    "CREATE TRIGGER statement_postings_no_truncate BEFORE TRUNCATE ON statement_postings FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_refuse_change('issued statements never change; issue a new version')",
    "CREATE TRIGGER statement_payments_no_update BEFORE UPDATE ON statement_payments FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('payments are posted; reverse their entry instead')",
    "CREATE TRIGGER statement_payments_no_delete BEFORE DELETE ON statement_payments FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('payments are posted; reverse their entry instead')",
    "CREATE TRIGGER statement_payments_no_truncate BEFORE TRUNCATE ON statement_payments FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_refuse_change('payments are posted; reverse their entry instead')",
]


def upgrade() -> None:
    op.create_table('statement_postings',
    sa.Column('statement_id', sa.Integer(), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('entry_id', sa.BigInteger(), nullable=False),
    sa.Column('posting_line_no', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('statement_id', 'entry_id', 'posting_line_no', name=op.f('pk_statement_postings'))
    )
    op.create_index('ix_statement_postings_line', 'statement_postings', ['statement_id', 'line_no'], unique=False)
    op.create_table('settlement_statements',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('number', sa.String(length=128), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('counterparty_id', sa.Integer(), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('previous_id', sa.Integer(), nullable=True),
    sa.Column('opening_minor', sa.BigInteger(), nullable=False),
    sa.Column('closing_minor', sa.BigInteger(), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('issued_by', sa.String(length=200), nullable=False),
    sa.Column('document_hash', sa.String(length=64), nullable=False),
    sa.CheckConstraint('(version = 1) = (previous_id IS NULL)', name=op.f('ck_settlement_statements_versions_chain')),
    sa.CheckConstraint('version >= 1', name=op.f('ck_settlement_statements_version_positive')),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_settlement_statements_company_id_companies')),
    sa.ForeignKeyConstraint(['counterparty_id'], ['companies.id'], name=op.f('fk_settlement_statements_counterparty_id_companies')),
    sa.ForeignKeyConstraint(['previous_id'], ['settlement_statements.id'], name=op.f('fk_settlement_statements_previous_id_settlement_statements')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_settlement_statements')),
    sa.UniqueConstraint('company_id', 'counterparty_id', 'period', 'currency', 'version', name='version_once'),
    sa.UniqueConstraint('number', name=op.f('uq_settlement_statements_number'))
    )
    op.create_table('statement_lines',
    sa.Column('statement_id', sa.Integer(), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('contract', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('postings', sa.Integer(), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['statement_id'], ['settlement_statements.id'], name=op.f('fk_statement_lines_statement_id_settlement_statements')),
    sa.PrimaryKeyConstraint('statement_id', 'line_no', name=op.f('pk_statement_lines'))
    )
    op.create_table('statement_payments',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('statement_id', sa.Integer(), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('paid_on', sa.Date(), nullable=False),
    sa.Column('reference', sa.Text(), nullable=True),
    sa.Column('entry_seq', sa.BigInteger(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_statement_payments_amount_positive')),
    sa.ForeignKeyConstraint(['statement_id'], ['settlement_statements.id'], name=op.f('fk_statement_payments_statement_id_settlement_statements')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_statement_payments'))
    )
    op.create_table('clearing_items',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('counterparty_id', sa.Integer(), nullable=False),
    sa.Column('agreement', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('window_start', sa.Date(), nullable=False),
    sa.Column('window_end', sa.Date(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('basis_minor', sa.BigInteger(), nullable=False),
    sa.Column('due_minor', sa.BigInteger(), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('entry_seq', sa.BigInteger(), nullable=False),
    sa.Column('source_entry', sa.String(length=255), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.CheckConstraint("(kind = 'clawback') = (source_entry IS NOT NULL)", name=op.f('ck_clearing_items_clawback_names_its_credit')),
    sa.CheckConstraint("kind IN ('minimum_guarantee', 'fixed_cost', 'commission_tiers', 'clawback', 'transfer_price')", name=op.f('ck_clearing_items_kind_known')),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_clearing_items_company_id_companies')),
    sa.ForeignKeyConstraint(['counterparty_id'], ['companies.id'], name=op.f('fk_clearing_items_counterparty_id_companies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_clearing_items'))
    )
    op.create_index('ix_clearing_items_window', 'clearing_items', ['company_id', 'agreement', 'window_start'], unique=False)
    op.create_table('netting_items',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('cycle', sa.String(length=7), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('counterparty_id', sa.Integer(), nullable=False),
    sa.Column('centre_id', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('withheld_minor', sa.BigInteger(), nullable=False),
    sa.Column('entry_seq', sa.BigInteger(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['centre_id'], ['companies.id'], name=op.f('fk_netting_items_centre_id_companies')),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_netting_items_company_id_companies')),
    sa.ForeignKeyConstraint(['counterparty_id'], ['companies.id'], name=op.f('fk_netting_items_counterparty_id_companies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_netting_items'))
    )
    op.create_index('ix_netting_items_cycle', 'netting_items', ['cycle', 'company_id'], unique=False)
    statements = SQLITE_TRIGGERS if op.get_bind().dialect.name == "sqlite" else POSTGRESQL_TRIGGERS
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    for table in ("netting_items", "clearing_items", "statement_payments", "statement_postings", "statement_lines", "settlement_statements"):
        op.drop_table(table)
