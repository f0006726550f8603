"""Usage: imports, rated lines, rejected lines, period counters and alerts, with the
triggers that keep posted lines and alerts immutable.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22

The triggers are copied, not imported, from usage/schema.py (through
ledger.schema.protection_ddl): a migration is a frozen record of what was applied.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SQLITE_TRIGGERS = [
    "CREATE TRIGGER usage_lines_no_update BEFORE UPDATE ON usage_lines BEGIN SELECT RAISE(ABORT, 'usage_lines: posted usage lines never change; reverse their entry instead'); END",
    "CREATE TRIGGER usage_lines_no_delete BEFORE DELETE ON usage_lines BEGIN SELECT RAISE(ABORT, 'usage_lines: posted usage lines never change; reverse their entry instead'); END",
    "CREATE TRIGGER usage_alerts_no_update BEFORE UPDATE ON usage_alerts BEGIN SELECT RAISE(ABORT, 'usage_alerts: alerts are a record of what happened'); END",
    "CREATE TRIGGER usage_alerts_no_delete BEFORE DELETE ON usage_alerts BEGIN SELECT RAISE(ABORT, 'usage_alerts: alerts are a record of what happened'); END",
    "CREATE TRIGGER usage_rejects_no_delete BEFORE DELETE ON usage_rejects BEGIN SELECT RAISE(ABORT, 'usage_rejects: rejected lines are kept until resolved, and after'); END",
]

POSTGRESQL_TRIGGERS = [
    "CREATE TRIGGER usage_lines_no_update BEFORE UPDATE ON usage_lines FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('posted usage lines never change; reverse their entry instead')",
    "CREATE TRIGGER usage_lines_no_delete BEFORE DELETE ON usage_lines FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('posted usage lines never change; reverse their entry instead')",
    "CREATE TRIGGER usage_lines_no_truncate BEFORE TRUNCATE ON usage_lines FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_refuse_change('posted usage lines never change; reverse their entry instead')",
    "CREATE TRIGGER usage_alerts_no_update BEFORE UPDATE ON usage_alerts FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('alerts are a record of what happened')",
    "CREATE TRIGGER usage_alerts_no_delete BEFORE DELETE ON usage_alerts FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('alerts are a record of what happened')",
    "CREATE TRIGGER usage_alerts_no_truncate BEFORE TRUNCATE ON usage_alerts FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_refuse_change('alerts are a record of what happened')",
    "CREATE TRIGGER usage_rejects_no_delete BEFORE DELETE ON usage_rejects FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('rejected lines are kept until resolved, and after')",
    "CREATE TRIGGER usage_rejects_no_truncate BEFORE TRUNCATE ON usage_rejects FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_refuse_change('rejected lines are kept until resolved, and after')",
]


def upgrade() -> None:
    op.create_table('usage_imports',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('source', sa.String(length=500), nullable=False),
    sa.Column('format', sa.String(length=8), nullable=False),
    sa.Column('posting', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('lines_read', sa.BigInteger(), nullable=False),
    sa.Column('posted', sa.BigInteger(), nullable=False),
    sa.Column('duplicates', sa.BigInteger(), nullable=False),
    sa.Column('rejected', sa.BigInteger(), nullable=False),
    sa.Column('late', sa.BigInteger(), nullable=False),
    sa.Column('entries_posted', sa.BigInteger(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('started_by', sa.String(length=200), nullable=False),
    sa.CheckConstraint("posting IN ('line', 'aggregated')", name=op.f('ck_usage_imports_posting_known')),
    sa.CheckConstraint("status IN ('running', 'complete', 'interrupted')", name=op.f('ck_usage_imports_status_known')),
    sa.CheckConstraint('lines_read = posted + duplicates + rejected', name=op.f('ck_usage_imports_counts_add_up')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_usage_imports'))
    )
    op.create_table('usage_rejects',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('import_id', sa.Integer(), nullable=False),
    sa.Column('line_ref', sa.String(length=64), nullable=False),
    sa.Column('line_id', sa.String(length=200), nullable=True),
    sa.Column('raw', sa.Text(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('field', sa.String(length=200), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('resolved_by_import', sa.Integer(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("(status = 'open') = (resolved_by_import IS NULL)", name=op.f('ck_usage_rejects_resolved_names_import')),
    sa.CheckConstraint("status IN ('open', 'resolved', 'resubmitted')", name=op.f('ck_usage_rejects_status_known')),
    sa.ForeignKeyConstraint(['import_id'], ['usage_imports.id'], name=op.f('fk_usage_rejects_import_id_usage_imports')),
    sa.ForeignKeyConstraint(['resolved_by_import'], ['usage_imports.id'], name=op.f('fk_usage_rejects_resolved_by_import_usage_imports')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_usage_rejects'))
    )
    op.create_index('ix_usage_rejects_line_id', 'usage_rejects', ['line_id'], unique=False)
    op.create_index('ix_usage_rejects_status', 'usage_rejects', ['status', 'import_id'], unique=False)
    op.create_table('usage_alerts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('component', sa.String(length=64), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('threshold_percent', sa.Integer(), nullable=False),
    sa.Column('limit_text', sa.String(length=48), nullable=False),
    sa.Column('used_text', sa.String(length=48), nullable=False),
    sa.Column('line_id', sa.String(length=200), nullable=True),
    sa.Column('raised_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('allowance', 'budget', 'underrun', 'run_rate_high', 'run_rate_low')", name=op.f('ck_usage_alerts_kind_known')),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_usage_alerts_contract_id_contracts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_usage_alerts'))
    )
    op.create_index('ix_usage_alerts_once', 'usage_alerts', ['contract_id', 'component', 'period_start', 'kind', 'threshold_percent'], unique=True)
    op.create_table('usage_counters',
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('component', sa.String(length=64), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('period_end', sa.Date(), nullable=False),
    sa.Column('quantity_micro', sa.BigInteger(), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('quantity_micro >= 0', name=op.f('ck_usage_counters_quantity_not_negative')),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_usage_counters_contract_id_contracts')),
    sa.PrimaryKeyConstraint('contract_id', 'component', 'period_start', name=op.f('pk_usage_counters'))
    )
    op.create_table('usage_lines',
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('import_id', sa.Integer(), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('component', sa.String(length=64), nullable=False),
    sa.Column('service', sa.String(length=64), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('usage_date', sa.Date(), nullable=False),
    sa.Column('quantity_micro', sa.BigInteger(), nullable=False),
    sa.Column('unit', sa.String(length=32), nullable=False),
    sa.Column('attributes', sa.Text(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('gross_minor', sa.BigInteger(), nullable=False),
    sa.Column('discount_minor', sa.BigInteger(), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('amount_exact', sa.String(length=48), nullable=False),
    sa.Column('rating', sa.Text(), nullable=False),
    sa.Column('payload_hash', sa.String(length=64), nullable=False),
    sa.Column('entry_seq', sa.BigInteger(), nullable=True),
    sa.Column('posted_date', sa.Date(), nullable=False),
    sa.Column('late', sa.Boolean(), nullable=False),
    sa.CheckConstraint('amount_minor = gross_minor - discount_minor', name=op.f('ck_usage_lines_amount_is_net')),
    sa.CheckConstraint('quantity_micro >= 0', name=op.f('ck_usage_lines_quantity_not_negative')),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_usage_lines_contract_id_contracts')),
    sa.ForeignKeyConstraint(['import_id'], ['usage_imports.id'], name=op.f('fk_usage_lines_import_id_usage_imports')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_usage_lines'))
    )
    op.create_index('ix_usage_lines_contract_date', 'usage_lines', ['contract_id', 'usage_date'], unique=False)
    op.create_index('ix_usage_lines_entry', 'usage_lines', ['entry_seq'], unique=False)
    op.create_index('ix_usage_lines_import', 'usage_lines', ['import_id'], unique=False)
    statements = SQLITE_TRIGGERS if op.get_bind().dialect.name == "sqlite" else POSTGRESQL_TRIGGERS
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    for table in ("usage_lines", "usage_counters", "usage_alerts", "usage_rejects", "usage_imports"):
        op.drop_table(table)
