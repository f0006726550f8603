"""Billing: runs, invoices with their lines, the usage and the fee periods each line
invoices, the events each line carries, minimum-commitment true-ups, budget caps, usage disputes, invoice number sequences; triggers keep issued invoices immutable.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22

The triggers are copied, not imported, from billing/schema.py (through
ledger.schema.protection_ddl): a migration is a frozen record of what was applied.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SQLITE_TRIGGERS = [
    "CREATE TRIGGER invoices_no_update BEFORE UPDATE ON invoices BEGIN SELECT RAISE(ABORT, 'invoices: issued invoices never change; issue a credit note instead'); END",
    "CREATE TRIGGER invoices_no_delete BEFORE DELETE ON invoices BEGIN SELECT RAISE(ABORT, 'invoices: issued invoices never change; issue a credit note instead'); END",
    "CREATE TRIGGER invoice_lines_no_update BEFORE UPDATE ON invoice_lines BEGIN SELECT RAISE(ABORT, 'invoice_lines: issued invoices never change; issue a credit note instead'); END",
    "CREATE TRIGGER invoice_lines_no_delete BEFORE DELETE ON invoice_lines BEGIN SELECT RAISE(ABORT, 'invoice_lines: issued invoices never change; issue a credit note instead'); END",
    "CREATE TRIGGER invoice_usage_no_update BEFORE UPDATE ON invoice_usage BEGIN SELECT RAISE(ABORT, 'invoice_usage: invoiced usage stays invoiced; credit it instead'); END",
    "CREATE TRIGGER invoice_usage_no_delete BEFORE DELETE ON invoice_usage BEGIN SELECT RAISE(ABORT, 'invoice_usage: invoiced usage stays invoiced; credit it instead'); END",
    "CREATE TRIGGER invoice_fees_no_update BEFORE UPDATE ON invoice_fees BEGIN SELECT RAISE(ABORT, 'invoice_fees: a billed period stays billed; credit it instead'); END",
    "CREATE TRIGGER invoice_fees_no_delete BEFORE DELETE ON invoice_fees BEGIN SELECT RAISE(ABORT, 'invoice_fees: a billed period stays billed; credit it instead'); END",
    "CREATE TRIGGER invoice_events_no_update BEFORE UPDATE ON invoice_events BEGIN SELECT RAISE(ABORT, 'invoice_events: an invoiced event stays invoiced; credit it instead'); END",
    "CREATE TRIGGER invoice_events_no_delete BEFORE DELETE ON invoice_events BEGIN SELECT RAISE(ABORT, 'invoice_events: an invoiced event stays invoiced; credit it instead'); END",
    "CREATE TRIGGER invoice_true_ups_no_update BEFORE UPDATE ON invoice_true_ups BEGIN SELECT RAISE(ABORT, 'invoice_true_ups: a true-up stays billed; a later run corrects it'); END",
    "CREATE TRIGGER invoice_true_ups_no_delete BEFORE DELETE ON invoice_true_ups BEGIN SELECT RAISE(ABORT, 'invoice_true_ups: a true-up stays billed; a later run corrects it'); END",
    "CREATE TRIGGER usage_disputes_no_update BEFORE UPDATE ON usage_disputes WHEN NOT (OLD.status = 'open' AND NEW.line_id = OLD.line_id AND NEW.opened_at = OLD.opened_at) BEGIN SELECT RAISE(ABORT, 'usage_disputes: a dispute is resolved once and kept'); END",
    "CREATE TRIGGER usage_disputes_no_delete BEFORE DELETE ON usage_disputes BEGIN SELECT RAISE(ABORT, 'usage_disputes: a dispute is resolved once and kept'); END",
    "CREATE TRIGGER billing_runs_no_update BEFORE UPDATE ON billing_runs BEGIN SELECT RAISE(ABORT, 'billing_runs: billing runs are a record of what was invoiced'); END",
    "CREATE TRIGGER billing_runs_no_delete BEFORE DELETE ON billing_runs BEGIN SELECT RAISE(ABORT, 'billing_runs: billing runs are a record of what was invoiced'); END",
]

POSTGRESQL_TRIGGERS = [
    "CREATE TRIGGER invoices_no_update BEFORE UPDATE ON invoices FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('issued invoices never change; issue a credit note instead')",
    "CREATE TRIGGER invoices_no_delete BEFORE DELETE ON invoices FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('issued invoices never change; issue a credit note instead')",
    "CREATE TRIGGER invoices_no_truncate BEFORE TRUNCATE ON invoices FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_refuse_change('issued invoices never change; issue a credit note instead')",
    "CREATE TRIGGER invoice_lines_no_update BEFORE UPDATE ON invoice_lines FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('issued invoices never change; issue a credit note instead')",
    "CREATE TRIGGER invoice_lines_no_delete BEFORE DELETE ON invoice_lines FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('issued invoices never change; issue a credit note instead')",
    "CREATE TRIGGER invoice_lines_no_truncate BEFORE TRUNCATE ON invoice_lines FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_refuse_change('issued invoices never change; issue a credit note instead')",
    "CREATE TRIGGER invoice_usage_no_update BEFORE UPDATE ON invoice_usage FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('invoiced usage stays invoiced; credit it instead')",
    "CREATE TRIGGER invoice_usage_no_delete BEFORE DELETE ON invoice_usage FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('invoiced usage stays invoiced; credit it instead')",
    "CREATE TRIGGER invoice_usage_no_truncate BEFORE TRUNCATE ON invoice_usage FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_refuse_change('invoiced usage stays invoiced; credit it instead')",
    "CREATE TRIGGER invoice_fees_no_update BEFORE UPDATE ON invoice_fees FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('a billed period stays billed; credit it instead')",
    "CREATE TRIGGER invoice_fees_no_delete BEFORE DELETE ON invoice_fees FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('a billed period stays billed; credit it instead')",
    "CREATE TRIGGER invoice_fees_no_truncate BEFORE TRUNCATE ON invoice_fees FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_refuse_change('a billed period stays billed; credit it instead')",
    "CREATE TRIGGER invoice_events_no_update BEFORE UPDATE ON invoice_events FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('an invoiced event stays invoiced; credit it instead')",
    "CREATE TRIGGER invoice_events_no_delete BEFORE DELETE ON invoice_events FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('an invoiced event stays invoiced; credit it instead')",
    "CREATE TRIGGER invoice_events_no_truncate BEFORE TRUNCATE ON invoice_events FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_refuse_change('an invoiced event stays invoiced; credit it instead')",
    "CREATE TRIGGER invoice_true_ups_no_update BEFORE UPDATE ON invoice_true_ups FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('a true-up stays billed; a later run corrects it')",
    "CREATE TRIGGER invoice_true_ups_no_delete BEFORE DELETE ON invoice_true_ups FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('a true-up stays billed; a later run corrects it')",
    "CREATE TRIGGER invoice_true_ups_no_truncate BEFORE TRUNCATE ON invoice_true_ups FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_refuse_change('a true-up stays billed; a later run corrects it')",
    "CREATE TRIGGER usage_disputes_no_update BEFORE UPDATE ON usage_disputes FOR EACH ROW WHEN (NOT (OLD.status = 'open' AND NEW.line_id = OLD.line_id AND NEW.opened_at = OLD.opened_at)) EXECUTE FUNCTION ecoledger_refuse_change('a dispute is resolved once and kept')",
    "CREATE TRIGGER usage_disputes_no_delete BEFORE DELETE ON usage_disputes FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('a dispute is resolved once and kept')",
    "CREATE TRIGGER usage_disputes_no_truncate BEFORE TRUNCATE ON usage_disputes FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_refuse_change('a dispute is resolved once and kept')",
    "CREATE TRIGGER billing_runs_no_update BEFORE UPDATE ON billing_runs FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('billing runs are a record of what was invoiced')",
    "CREATE TRIGGER billing_runs_no_delete BEFORE DELETE ON billing_runs FOR EACH ROW EXECUTE FUNCTION ecoledger_refuse_change('billing runs are a record of what was invoiced')",
    "CREATE TRIGGER billing_runs_no_truncate BEFORE TRUNCATE ON billing_runs FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_refuse_change('billing runs are a record of what was invoiced')",
]


def upgrade() -> None:
    op.create_table('billing_runs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('issue_date', sa.Date(), nullable=False),
    sa.Column('invoices', sa.Integer(), nullable=False),
    sa.Column('usage_lines', sa.BigInteger(), nullable=False),
    sa.Column('fees', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_by', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_billing_runs_company_id_companies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_runs'))
    )
    op.create_table('invoice_sequences',
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('document_type', sa.String(length=16), nullable=False),
    sa.Column('last_sequence', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_invoice_sequences_company_id_companies')),
    sa.PrimaryKeyConstraint('company_id', 'document_type', name=op.f('pk_invoice_sequences'))
    )
    op.create_table('invoices',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('document_type', sa.String(length=16), nullable=False),
    sa.Column('sequence', sa.BigInteger(), nullable=False),
    sa.Column('number', sa.String(length=64), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('credits_invoice_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('issue_date', sa.Date(), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('total_minor', sa.BigInteger(), nullable=False),
    sa.Column('entry_seq', sa.BigInteger(), nullable=True),
    sa.Column('document_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("(document_type = 'credit_note') = (credits_invoice_id IS NOT NULL)", name=op.f('ck_invoices_credit_note_credits')),
    sa.CheckConstraint("(document_type = 'invoice') = (run_id IS NOT NULL)", name=op.f('ck_invoices_invoice_from_a_run')),
    sa.CheckConstraint("document_type IN ('invoice', 'credit_note')", name=op.f('ck_invoices_document_type_known')),
    sa.CheckConstraint('sequence >= 1', name=op.f('ck_invoices_sequence_positive')),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_invoices_company_id_companies')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_invoices_customer_id_customers')),
    sa.ForeignKeyConstraint(['credits_invoice_id'], ['invoices.id'], name=op.f('fk_invoices_credits_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['run_id'], ['billing_runs.id'], name=op.f('fk_invoices_run_id_billing_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoices')),
    sa.UniqueConstraint('company_id', 'document_type', 'sequence', name='number_once'),
    sa.UniqueConstraint('number', name=op.f('uq_invoices_number'))
    )
    op.create_table('invoice_fees',
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('component', sa.String(length=64), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_invoice_fees_contract_id_contracts')),
    sa.PrimaryKeyConstraint('contract_id', 'component', 'period_start', name=op.f('pk_invoice_fees'))
    )
    op.create_index('ix_invoice_fees_invoice', 'invoice_fees', ['invoice_id', 'line_no'], unique=False)
    op.create_table('invoice_lines',
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=True),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('cost_centre', sa.String(length=64), nullable=True),
    sa.Column('component', sa.String(length=64), nullable=False),
    sa.Column('service', sa.String(length=64), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('quantity_micro', sa.BigInteger(), nullable=False),
    sa.Column('unit', sa.String(length=32), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=True),
    sa.Column('period_end', sa.Date(), nullable=True),
    sa.Column('credits_line_no', sa.Integer(), nullable=True),
    sa.CheckConstraint("kind = 'credit_note' OR (kind IN ('capped', 'brought_forward', 'rounding')) = (contract_id IS NULL)", name=op.f('ck_invoice_lines_contract_unless_invoice_level')),
    sa.CheckConstraint("(kind IN ('fee', 'true_up')) = (period_start IS NOT NULL)", name=op.f('ck_invoice_lines_fee_has_period')),
    sa.CheckConstraint("kind IN ('usage', 'fee', 'event', 'credit', 'true_up', 'prepayment', 'drawdown', 'capped', 'brought_forward', 'rounding', 'credit_note')", name=op.f('ck_invoice_lines_kind_known')),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_invoice_lines_contract_id_contracts')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_invoice_lines_customer_id_customers')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_invoice_lines_invoice_id_invoices')),
    sa.PrimaryKeyConstraint('invoice_id', 'line_no', name=op.f('pk_invoice_lines'))
    )
    op.create_table('invoice_events',
    sa.Column('event_id', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.CheckConstraint("kind IN ('event', 'credit')", name=op.f('ck_invoice_events_kind_known')),
    sa.ForeignKeyConstraint(['event_id'], ['contract_events.id'], name=op.f('fk_invoice_events_event_id_contract_events')),
    sa.PrimaryKeyConstraint('event_id', 'kind', name=op.f('pk_invoice_events'))
    )
    op.create_index('ix_invoice_events_invoice', 'invoice_events', ['invoice_id', 'line_no'], unique=False)
    op.create_table('invoice_usage',
    sa.Column('usage_line_id', sa.String(length=200), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['usage_line_id'], ['usage_lines.id'], name=op.f('fk_invoice_usage_usage_line_id_usage_lines')),
    sa.PrimaryKeyConstraint('usage_line_id', name=op.f('pk_invoice_usage'))
    )
    op.create_index('ix_invoice_usage_invoice', 'invoice_usage', ['invoice_id', 'line_no'], unique=False)
    op.create_table('invoice_true_ups',
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('component', sa.String(length=64), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_invoice_true_ups_contract_id_contracts')),
    sa.PrimaryKeyConstraint('contract_id', 'component', 'period_start', 'invoice_id', name=op.f('pk_invoice_true_ups'))
    )
    op.create_table('invoice_caps',
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('set_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('set_by', sa.String(length=200), nullable=False),
    sa.CheckConstraint('amount_minor >= 0', name=op.f('ck_invoice_caps_cap_not_negative')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_invoice_caps_customer_id_customers')),
    sa.PrimaryKeyConstraint('customer_id', 'currency', 'period', name=op.f('pk_invoice_caps'))
    )
    op.create_table('usage_disputes',
    sa.Column('line_id', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('opened_by', sa.String(length=200), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_by', sa.String(length=200), nullable=True),
    sa.Column('resolution', sa.Text(), nullable=True),
    sa.Column('entry_seq', sa.BigInteger(), nullable=True),
    sa.Column('event_id', sa.String(length=200), nullable=True),
    sa.CheckConstraint("(status = 'open') = (resolved_at IS NULL)", name=op.f('ck_usage_disputes_resolved_when_closed')),
    sa.CheckConstraint("status IN ('open', 'cancelled', 'credited', 'accepted')", name=op.f('ck_usage_disputes_status_known')),
    sa.ForeignKeyConstraint(['line_id'], ['usage_lines.id'], name=op.f('fk_usage_disputes_line_id_usage_lines')),
    sa.PrimaryKeyConstraint('line_id', name=op.f('pk_usage_disputes'))
    )
    op.create_index('ix_usage_disputes_status', 'usage_disputes', ['status'], unique=False)
    op.create_table('invoice_approvals',
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('total_minor', sa.BigInteger(), nullable=False),
    sa.Column('approved_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('approved_by', sa.String(length=200), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_invoice_approvals_customer_id_customers')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_invoice_approvals_invoice_id_invoices')),
    sa.PrimaryKeyConstraint('customer_id', 'currency', 'period', name=op.f('pk_invoice_approvals'))
    )
    statements = SQLITE_TRIGGERS if op.get_bind().dialect.name == "sqlite" else POSTGRESQL_TRIGGERS
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    for table in ("invoice_approvals", "usage_disputes", "invoice_caps", "invoice_true_ups", "invoice_events", "invoice_fees", "invoice_usage", "invoice_lines", "invoices", "invoice_sequences", "billing_runs"):
        op.drop_table(table)
