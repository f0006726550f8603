"""Webhooks: the URLs alerts are pushed to (webhooks, with each one's place in the alerts
and its failures) and every delivery attempt (webhook_deliveries, append-only); and the
record of clearing runs (clearing_runs, append-only), by which a later run finds the
periods cleared before.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04

The triggers are copied, not imported, from usage/schema.py and clearing/schema.py (through
ledger.schema.protection_ddl): a migration is a frozen record of what was applied.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

SQLITE_TRIGGERS = [
    "CREATE TRIGGER clearing_runs_no_update BEFORE UPDATE ON clearing_runs BEGIN SELECT RAISE(ABORT, 'clearing_runs: clearing runs are a record of what happened'); END",
    "CREATE TRIGGER clearing_runs_no_delete BEFORE DELETE ON clearing_runs BEGIN SELECT RAISE(ABORT, 'clearing_runs: clearing runs are a record of what happened'); END",
    "CREATE TRIGGER webhook_deliveries_no_update BEFORE UPDATE ON webhook_deliveries BEGIN SELECT RAISE(ABORT, 'webhook_deliveries: delivery attempts are a record of what happened'); END",
    "CREATE TRIGGER webhook_deliveries_no_delete BEFORE DELETE ON webhook_deliveries BEGIN SELECT RAISE(ABORT, 'webhook_deliveries: delivery attempts are a record of what happened'); END",
]

POSTGRESQL_TRIGGERS = [
    "CREATE TRIGGER clearing_runs_no_update BEFORE UPDATE ON clearing_runs FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('clearing runs are a record of what happened')",
    "CREATE TRIGGER clearing_runs_no_delete BEFORE DELETE ON clearing_runs FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('clearing runs are a record of what happened')",
    "CREATE TRIGGER clearing_runs_no_truncate BEFORE TRUNCATE ON clearing_runs FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_refuse_change('clearing runs are a record of what happened')",
    "CREATE TRIGGER webhook_deliveries_no_update BEFORE UPDATE ON webhook_deliveries FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('delivery attempts are a record of what happened')",
    "CREATE TRIGGER webhook_deliveries_no_delete BEFORE DELETE ON webhook_deliveries FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('delivery attempts are a record of what happened')",
    "CREATE TRIGGER webhook_deliveries_no_truncate BEFORE TRUNCATE ON webhook_deliveries FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_refuse_change('delivery attempts are a record of what happened')",
]


def upgrade() -> None:
    op.create_table('webhooks',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('secret', sa.String(length=100), nullable=False),
    sa.Column('kinds', sa.Text(), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('delivered_through', sa.BigInteger(), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_webhooks_company_id_companies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhooks')),
    sa.UniqueConstraint('name', name=op.f('uq_webhooks_name'))
    )
    op.create_table('webhook_deliveries',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('webhook_id', sa.Integer(), nullable=False),
    sa.Column('attempted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('first_alert_id', sa.BigInteger(), nullable=False),
    sa.Column('last_alert_id', sa.BigInteger(), nullable=False),
    sa.Column('alerts', sa.Integer(), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('delivered', sa.Boolean(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['webhook_id'], ['webhooks.id'], name=op.f('fk_webhook_deliveries_webhook_id_webhooks')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_deliveries'))
    )
    op.create_table('clearing_runs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('partner_id', sa.Integer(), nullable=True),
    sa.Column('items', sa.Integer(), nullable=False),
    sa.Column('run_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('run_by', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['partner_id'], ['companies.id'], name=op.f('fk_clearing_runs_partner_id_companies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_clearing_runs'))
    )
    op.create_index('ix_clearing_runs_period', 'clearing_runs', ['period'], unique=False)
    op.create_index('ix_webhook_deliveries_webhook', 'webhook_deliveries', ['webhook_id', 'id'], unique=False)
    for statement in SQLITE_TRIGGERS if op.get_bind().dialect.name == "sqlite" else POSTGRESQL_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    op.drop_table('webhook_deliveries')  # its triggers and index go with it
    op.drop_table('webhooks')
    op.drop_table('clearing_runs')
