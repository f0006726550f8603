"""Partners (settlement terms, agreements) and the contract register (price plans, customers, versioned contracts, contract events).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('price_plans',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('model', sa.String(length=16), nullable=False),
    sa.Column('document', sa.Text(), nullable=False),
    sa.Column('document_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("model IN ('per_unit', 'graduated', 'volume', 'package', 'percentage', 'allowance')", name=op.f('ck_price_plans_model_known')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_price_plans')),
    sa.UniqueConstraint('code', name=op.f('uq_price_plans_code'))
    )
    op.create_table('agreements',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('counterparty_id', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('vendor_share', 'reseller_commission', 'transfer_price', 'sla_sharing')", name=op.f('ck_agreements_kind_known')),
    sa.CheckConstraint('company_id <> counterparty_id', name=op.f('ck_agreements_two_parties')),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_agreements_company_id_companies')),
    sa.ForeignKeyConstraint(['counterparty_id'], ['companies.id'], name=op.f('fk_agreements_counterparty_id_companies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agreements')),
    sa.UniqueConstraint('code', name=op.f('uq_agreements_code'))
    )
    op.create_table('customers',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('billing_company_id', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('cost_centre', sa.String(length=64), nullable=True),
    sa.Column('document_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('parent_id IS NULL OR parent_id <> id', name=op.f('ck_customers_not_own_parent')),
    sa.ForeignKeyConstraint(['billing_company_id'], ['companies.id'], name=op.f('fk_customers_billing_company_id_companies')),
    sa.ForeignKeyConstraint(['parent_id'], ['customers.id'], name=op.f('fk_customers_parent_id_customers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customers')),
    sa.UniqueConstraint('code', name=op.f('uq_customers_code'))
    )
    op.create_table('partners',
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('settlement_currency', sa.String(length=3), nullable=False),
    sa.Column('settlement_frequency', sa.String(length=16), nullable=False),
    sa.Column('payment_terms_days', sa.Integer(), nullable=False),
    sa.Column('netting_allowed', sa.Boolean(), nullable=False),
    sa.Column('spec_hash', sa.String(length=64), nullable=False),
    sa.Column('onboarded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('onboarded_by', sa.String(length=200), nullable=False),
    sa.Column('offboarded_on', sa.Date(), nullable=True),
    sa.Column('offboarded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('offboarded_by', sa.String(length=200), nullable=True),
    sa.Column('offboard_reason', sa.String(length=500), nullable=True),
    sa.CheckConstraint("(status = 'offboarded') = (offboarded_on IS NOT NULL)", name=op.f('ck_partners_offboarded_has_date')),
    sa.CheckConstraint("settlement_frequency IN ('monthly', 'quarterly')", name=op.f('ck_partners_frequency_known')),
    sa.CheckConstraint("status IN ('active', 'offboarded')", name=op.f('ck_partners_status_known')),
    sa.CheckConstraint('payment_terms_days BETWEEN 0 AND 365', name=op.f('ck_partners_payment_terms_range')),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_partners_company_id_companies')),
    sa.PrimaryKeyConstraint('company_id', name=op.f('pk_partners'))
    )
    op.create_table('agreement_versions',
    sa.Column('agreement_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('effective_from', sa.Date(), nullable=False),
    sa.Column('effective_to', sa.Date(), nullable=True),
    sa.Column('terms', sa.Text(), nullable=False),
    sa.Column('terms_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.CheckConstraint('effective_to IS NULL OR effective_to >= effective_from', name=op.f('ck_agreement_versions_dates_ordered')),
    sa.CheckConstraint('version >= 1', name=op.f('ck_agreement_versions_version_positive')),
    sa.ForeignKeyConstraint(['agreement_id'], ['agreements.id'], name=op.f('fk_agreement_versions_agreement_id_agreements')),
    sa.PrimaryKeyConstraint('agreement_id', 'version', name=op.f('pk_agreement_versions')),
    sa.UniqueConstraint('agreement_id', 'effective_from', name=op.f('uq_agreement_versions_agreement_id_effective_from'))
    )
    op.create_table('contracts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('billing_company_id', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=True),
    sa.Column('billing_frequency', sa.String(length=16), nullable=False),
    sa.Column('billing_day', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('status_since', sa.Date(), nullable=True),
    sa.Column('document_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("billing_frequency IN ('monthly', 'quarterly', 'yearly')", name=op.f('ck_contracts_frequency_known')),
    sa.CheckConstraint("status IN ('draft', 'active', 'suspended', 'terminated')", name=op.f('ck_contracts_status_known')),
    sa.CheckConstraint('billing_day BETWEEN 1 AND 28', name=op.f('ck_contracts_billing_day_range')),
    sa.CheckConstraint('end_date IS NULL OR end_date >= start_date', name=op.f('ck_contracts_dates_ordered')),
    sa.ForeignKeyConstraint(['billing_company_id'], ['companies.id'], name=op.f('fk_contracts_billing_company_id_companies')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_contracts_customer_id_customers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contracts')),
    sa.UniqueConstraint('code', name=op.f('uq_contracts_code'))
    )
    op.create_table('contract_events',
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('event_date', sa.Date(), nullable=False),
    sa.Column('payload_hash', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('entry_seq', sa.BigInteger(), nullable=True),
    sa.Column('rule', sa.String(length=64), nullable=False),
    sa.Column('rule_version', sa.Integer(), nullable=False),
    sa.Column('rule_hash', sa.String(length=16), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_contract_events_contract_id_contracts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contract_events'))
    )
    op.create_table('contract_versions',
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('effective_from', sa.Date(), nullable=False),
    sa.Column('components', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.CheckConstraint('version >= 1', name=op.f('ck_contract_versions_version_positive')),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_contract_versions_contract_id_contracts')),
    sa.PrimaryKeyConstraint('contract_id', 'version', name=op.f('pk_contract_versions'))
    )


def downgrade() -> None:
    op.drop_table('contract_versions')
    op.drop_table('contract_events')
    op.drop_table('contracts')
    op.drop_table('agreement_versions')
    op.drop_table('partners')
    op.drop_table('customers')
    op.drop_table('agreements')
    op.drop_table('price_plans')
