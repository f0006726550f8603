"""Revenue recognition and the close: amendments' modification paths (contract_versions.modification), an index of contract events by contract, period reopenings (a closed period's row may go only
once its reopening is recorded: the closed_periods delete trigger is replaced by one with
that condition) and the close runs; triggers keep both immutable.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

The triggers are copied, not imported, from ledger/schema.py and revrec/schema.py (through
ledger.schema.protection_ddl): a migration is a frozen record of what was applied.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

SQLITE_TRIGGERS = [
    "CREATE TRIGGER closed_periods_no_delete BEFORE DELETE ON closed_periods WHEN NOT (EXISTS (SELECT 1 FROM period_reopenings r WHERE r.company_id = OLD.company_id AND r.period = OLD.period AND r.closed_at = OLD.closed_at)) BEGIN SELECT RAISE(ABORT, 'closed_periods: closed periods are reopened only by the audited close'); END",
    "CREATE TRIGGER period_reopenings_no_update BEFORE UPDATE ON period_reopenings BEGIN SELECT RAISE(ABORT, 'period_reopenings: reopenings are a record of what happened'); END",
    "CREATE TRIGGER period_reopenings_no_delete BEFORE DELETE ON period_reopenings BEGIN SELECT RAISE(ABORT, 'period_reopenings: reopenings are a record of what happened'); END",
    "CREATE TRIGGER revrec_closes_no_update BEFORE UPDATE ON revrec_closes BEGIN SELECT RAISE(ABORT, 'revrec_closes: close runs are a record of what happened'); END",
    "CREATE TRIGGER revrec_closes_no_delete BEFORE DELETE ON revrec_closes BEGIN SELECT RAISE(ABORT, 'revrec_closes: close runs are a record of what happened'); END",
]

POSTGRESQL_TRIGGERS = [
    'CREATE FUNCTION ecoledger_reopening_recorded(p_company integer, p_period varchar, p_closed timestamptz) RETURNS boolean\nLANGUAGE sql STABLE AS $$\n    SELECT EXISTS (SELECT 1 FROM period_reopenings r\n                   WHERE r.company_id = p_company AND r.period = p_period AND r.closed_at = p_closed)\n$$',
    "CREATE TRIGGER closed_periods_no_delete BEFORE DELETE ON closed_periods FOR EACH ROW WHEN (NOT (ecoledger_reopening_recorded(OLD.company_id, OLD.period, OLD.closed_at))) EXECUTE FUNCTION ecoledger_refuse_change('closed periods are reopened only by the audited close')",
    "CREATE TRIGGER period_reopenings_no_update BEFORE UPDATE ON period_reopenings FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('reopenings are a record of what happened')",
    "CREATE TRIGGER period_reopenings_no_delete BEFORE DELETE ON period_reopenings FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('reopenings are a record of what happened')",
    "CREATE TRIGGER period_reopenings_no_truncate BEFORE TRUNCATE ON period_reopenings FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_refuse_change('reopenings are a record of what happened')",
    "CREATE TRIGGER revrec_closes_no_update BEFORE UPDATE ON revrec_closes FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('close runs are a record of what happened')",
    "CREATE TRIGGER revrec_closes_no_delete BEFORE DELETE ON revrec_closes FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('close runs are a record of what happened')",
    "CREATE TRIGGER revrec_closes_no_truncate BEFORE TRUNCATE ON revrec_closes FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_refuse_change('close runs are a record of what happened')",
]

OLD_DELETE_TRIGGER = {
    "sqlite": "CREATE TRIGGER closed_periods_no_delete BEFORE DELETE ON closed_periods BEGIN SELECT RAISE(ABORT, 'closed_periods: closed periods are reopened only by the audited close'); END",
    "postgresql": "CREATE TRIGGER closed_periods_no_delete BEFORE DELETE ON closed_periods FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('closed periods are reopened only by the audited close')",
}


def upgrade() -> None:
    op.create_table('period_reopenings',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_by', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('reopened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reopened_by', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_period_reopenings_company_id_companies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_period_reopenings'))
    )
    op.create_table('revrec_closes',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('run_no', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('checks', sa.Text(), nullable=False),
    sa.Column('batch', sa.String(length=200), nullable=True),
    sa.Column('entries', sa.Integer(), nullable=False),
    sa.Column('recognised', sa.Text(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('acted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('acted_by', sa.String(length=200), nullable=False),
    sa.CheckConstraint("outcome IN ('closed', 'blocked', 'reopened')", name=op.f('ck_revrec_closes_outcome_known')),
    sa.CheckConstraint('run_no >= 1', name=op.f('ck_revrec_closes_run_no_positive')),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_revrec_closes_company_id_companies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_revrec_closes'))
    )
    op.create_index('ix_revrec_closes_period', 'revrec_closes', ['company_id', 'period', 'run_no'], unique=True)
    op.create_index('ix_contract_events_contract', 'contract_events', ['contract_id', 'event_date'], unique=False)
    op.add_column('contract_versions', sa.Column('modification', sa.Text(), nullable=True))
    op.execute("DROP TRIGGER closed_periods_no_delete" + ("" if op.get_bind().dialect.name == "sqlite" else " ON closed_periods"))
    statements = SQLITE_TRIGGERS if op.get_bind().dialect.name == "sqlite" else POSTGRESQL_TRIGGERS
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.execute("DROP TRIGGER closed_periods_no_delete" + ("" if dialect == "sqlite" else " ON closed_periods"))
    if dialect == "postgresql":
        op.execute("DROP FUNCTION ecoledger_reopening_recorded(integer, varchar, timestamptz)")
    op.execute(OLD_DELETE_TRIGGER[dialect])
    op.drop_index('ix_contract_events_contract', table_name='contract_events')
    with op.batch_alter_table('contract_versions') as batch:
        batch.drop_column('modification')
    for table in ("revrec_closes", "period_reopenings"):
        op.drop_table(table)
