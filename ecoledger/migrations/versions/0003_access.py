"""Access: API keys (stored hashed) and the responses of idempotent requests.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('idempotency_keys',
    sa.Column('api_key_id', sa.String(length=16), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('content_type', sa.String(length=100), nullable=True),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('api_key_id', 'key', name=op.f('pk_idempotency_keys'))
    )
    op.create_table('api_keys',
    sa.Column('id', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=True),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('rotated_from', sa.String(length=16), nullable=True),
    sa.CheckConstraint("(role = 'partner') = (company_id IS NOT NULL)", name=op.f('ck_api_keys_partner_has_company')),
    sa.CheckConstraint("role IN ('operator_admin', 'controller', 'partner', 'auditor')", name=op.f('ck_api_keys_role_known')),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_api_keys_company_id_companies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys'))
    )


def downgrade() -> None:
    op.drop_table('api_keys')
    op.drop_table('idempotency_keys')
