"""credits: grants and their ledger; usage alerts

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import billing_core.db.types

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

DECIMAL = billing_core.db.types.ExactDecimal(length=80)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table(
        'credit_grant',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.String(length=128), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=True),
        sa.Column('meter', sa.String(length=64), nullable=True),
        sa.Column('subscription_id', sa.String(length=128), nullable=True),
        sa.Column('period', sa.String(length=7), nullable=True),
        sa.Column('amount', DECIMAL, nullable=False),
        sa.Column('priority', sa.Integer(), nullable=False),
        sa.Column('effective_from', sa.Date(), nullable=True),
        sa.Column('expires', sa.Date(), nullable=True),
        sa.Column('applies_to', JSON, nullable=True),
        sa.Column('name', sa.Text(), nullable=False),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('key', sa.String(length=255), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('key'),
    )
    op.create_index('ix_credit_grant_customer', 'credit_grant', ['customer_id', 'kind'])
    op.create_table(
        'credit_ledger',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('grant_id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.String(length=128), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('amount', DECIMAL, nullable=False),
        sa.Column('document_id', sa.Integer(), nullable=True),
        sa.Column('reference', sa.String(length=64), nullable=True),
        sa.Column('period', sa.String(length=7), nullable=True),
        sa.Column('note', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['grant_id'], ['credit_grant.id']),
        sa.ForeignKeyConstraint(['document_id'], ['document.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('grant_id', 'document_id', 'kind',
                            name='uq_credit_ledger_document'),
    )
    op.create_index('ix_credit_ledger_grant_id', 'credit_ledger', ['grant_id'])
    op.create_index('ix_credit_ledger_customer', 'credit_ledger', ['customer_id', 'created_at'])
    op.create_table(
        'alert',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('rule_id', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('customer_id', sa.String(length=128), nullable=False),
        sa.Column('subject', sa.String(length=128), nullable=False),
        sa.Column('period', sa.String(length=7), nullable=False),
        sa.Column('threshold', DECIMAL, nullable=False),
        sa.Column('value', DECIMAL, nullable=False),
        sa.Column('message', sa.Text(), nullable=False),
        sa.Column('fired_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('rule_id', 'customer_id', 'subject', 'period',
                            name='uq_alert_once'),
    )
    op.create_index('ix_alert_customer_id', 'alert', ['customer_id'])


def downgrade() -> None:
    op.drop_table('alert')
    op.drop_table('credit_ledger')
    op.drop_table('credit_grant')
