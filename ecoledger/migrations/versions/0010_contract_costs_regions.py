"""Contract costs and regions: a contract's judgement on how long the costs of obtaining it
are amortised over (contracts.contract_costs, canonical JSON: amortisation months and
reason), and a customer's region (customers.region), by which revenue is disaggregated.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('contracts', sa.Column('contract_costs', sa.Text(), nullable=True))
    op.add_column('customers', sa.Column('region', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('customers') as batch:
        batch.drop_column('region')
    with op.batch_alter_table('contracts') as batch:
        batch.drop_column('contract_costs')
