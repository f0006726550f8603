"""Contract costs, regions and estimates: a contract's judgement on how long the costs of
obtaining it are amortised over (contracts.contract_costs, canonical JSON: amortisation
months and reason), a customer's region (customers.region), by which revenue is
disaggregated, the controller's estimates of variable consideration (revrec_estimates,
which triggers keep append-only), and settlement statements' withheld items and lines by
service (settlement_statements.withheld_minor and withheld_items, statement_lines.service),
and the exchange rates fixed per netting cycle (fx_rates, append-only).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03

The triggers are copied, not imported, from revrec/schema.py (through
ledger.schema.protection_ddl): a migration is a frozen record of what was applied.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

SQLITE_TRIGGERS = [
    "CREATE TRIGGER fx_rates_no_update BEFORE UPDATE ON fx_rates BEGIN SELECT RAISE(ABORT, 'fx_rates: rates fixed for a cycle never change'); END",
    "CREATE TRIGGER fx_rates_no_delete BEFORE DELETE ON fx_rates BEGIN SELECT RAISE(ABORT, 'fx_rates: rates fixed for a cycle never change'); END",
    "CREATE TRIGGER revrec_estimates_no_update BEFORE UPDATE ON revrec_estimates BEGIN SELECT RAISE(ABORT, 'revrec_estimates: estimates are replaced by later ones, never changed'); END",
    "CREATE TRIGGER revrec_estimates_no_delete BEFORE DELETE ON revrec_estimates BEGIN SELECT RAISE(ABORT, 'revrec_estimates: estimates are replaced by later ones, never changed'); END",
]

POSTGRESQL_TRIGGERS = [
    "CREATE TRIGGER fx_rates_no_update BEFORE UPDATE ON fx_rates FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('rates fixed for a cycle never change')",
    "CREATE TRIGGER fx_rates_no_delete BEFORE DELETE ON fx_rates FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('rates fixed for a cycle never change')",
    "CREATE TRIGGER fx_rates_no_truncate BEFORE TRUNCATE ON fx_rates FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_refuse_change('rates fixed for a cycle never change')",
    "CREATE TRIGGER revrec_estimates_no_update BEFORE UPDATE ON revrec_estimates FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('estimates are replaced by later ones, never changed')",
    "CREATE TRIGGER revrec_estimates_no_delete BEFORE DELETE ON revrec_estimates FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('estimates are replaced by later ones, never changed')",
    "CREATE TRIGGER revrec_estimates_no_truncate BEFORE TRUNCATE ON revrec_estimates FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_refuse_change('estimates are replaced by later ones, never changed')",
]


def upgrade() -> None:
    op.add_column('contracts', sa.Column('contract_costs', sa.Text(), nullable=True))
    op.add_column('customers', sa.Column('region', sa.String(length=64), nullable=True))
    op.create_table('revrec_estimates',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('effective_from', sa.String(length=7), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('method', sa.String(length=32), nullable=False),
    sa.Column('scenarios', sa.Text(), nullable=False),
    sa.Column('constraint_percent', sa.String(length=16), nullable=False),
    sa.Column('services', sa.Text(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('document_hash', sa.String(length=64), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.CheckConstraint("kind IN ('sla_credits', 'rebate', 'price_concession', 'refund')", name=op.f('ck_revrec_estimates_kind_known')),
    sa.CheckConstraint("method IN ('expected_value', 'most_likely_amount')", name=op.f('ck_revrec_estimates_method_known')),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_revrec_estimates_contract_id_contracts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_revrec_estimates'))
    )
    op.create_table('fx_rates',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('cycle', sa.String(length=7), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('to_currency', sa.String(length=3), nullable=False),
    sa.Column('rate', sa.String(length=32), nullable=False),
    sa.Column('rate_date', sa.Date(), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.CheckConstraint('currency <> to_currency', name=op.f('ck_fx_rates_two_currencies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fx_rates')),
    sa.UniqueConstraint('cycle', 'currency', 'to_currency', name='one_rate_per_cycle')
    )
    op.create_index('ix_revrec_estimates_contract', 'revrec_estimates', ['contract_id', 'kind', 'effective_from'],
                    unique=False)
    for statement in SQLITE_TRIGGERS if op.get_bind().dialect.name == "sqlite" else POSTGRESQL_TRIGGERS:
        op.execute(statement)
    op.add_column('settlement_statements', sa.Column('withheld_minor', sa.BigInteger(), server_default='0',
                                                     nullable=False))
    op.add_column('settlement_statements', sa.Column('withheld_items', sa.Text(), nullable=True))
    op.add_column('statement_lines', sa.Column('service', sa.String(length=64), server_default='', nullable=False))


def downgrade() -> None:
    op.drop_table('revrec_estimates')  # its triggers go with it
    op.drop_table('fx_rates')
    with op.batch_alter_table('statement_lines') as batch:
        batch.drop_column('service')
    with op.batch_alter_table('settlement_statements') as batch:
        batch.drop_column('withheld_items')
        batch.drop_column('withheld_minor')
    with op.batch_alter_table('customers') as batch:
        batch.drop_column('region')
    with op.batch_alter_table('contracts') as batch:
        batch.drop_column('contract_costs')
