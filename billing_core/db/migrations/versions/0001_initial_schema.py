"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-21
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

import billing_core.db.types

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('billing_run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('period', sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
    sa.Column('flow_run_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('customers', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('subscriptions', sa.Integer(), nullable=False),
    sa.Column('invoices_created', sa.Integer(), nullable=False),
    sa.Column('invoices_updated', sa.Integer(), nullable=False),
    sa.Column('invoices_unchanged', sa.Integer(), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=True),
    sa.Column('total', billing_core.db.types.ExactDecimal(length=80), nullable=True),
    sa.Column('skipped', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('billing_run', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_billing_run_period'), ['period'], unique=False)

    op.create_table('catalog_setting',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('customer',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('address', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('event',
    sa.Column('event_id', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('event_name', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
    sa.Column('ts', sa.DateTime(), nullable=False),
    sa.Column('metadata', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('payload_hash', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('ingested_at', sa.DateTime(), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('event_id')
    )
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.create_index('ix_event_customer_name_ts', ['customer_id', 'event_name', 'ts'], unique=False)
        batch_op.create_index('ix_event_name_ts', ['event_name', 'ts'], unique=False)

    op.create_table('meter',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('event_name', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
    sa.Column('aggregation', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('over_property', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('filter', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('product',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('base_price', billing_core.db.types.ExactDecimal(length=80), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('quarantine',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('location', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('raw', sa.Text(), nullable=False),
    sa.Column('raw_hash', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('candidate', sa.Text(), nullable=True),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('resolved_event_id', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'location', 'raw_hash', name='uq_quarantine_record')
    )
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quarantine_reason'), ['reason'], unique=False)
        batch_op.create_index(batch_op.f('ix_quarantine_status'), ['status'], unique=False)

    op.create_table('charge',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('product_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('meter_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('price_per_unit', billing_core.db.types.ExactDecimal(length=80), nullable=False),
    sa.Column('free_threshold', billing_core.db.types.ExactDecimal(length=80), nullable=False),
    sa.ForeignKeyConstraint(['meter_key'], ['meter.key'], ),
    sa.ForeignKeyConstraint(['product_key'], ['product.key'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('product_key', 'meter_key')
    )
    op.create_table('invoice',
    sa.Column('invoice_number', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('subscription_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('period', sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('subtotal', billing_core.db.types.ExactDecimal(length=80), nullable=False),
    sa.Column('total', billing_core.db.types.ExactDecimal(length=80), nullable=False),
    sa.Column('issue_date', sa.Date(), nullable=False),
    sa.Column('content_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('document', sa.Text(), nullable=False),
    sa.Column('billing_run_id', sa.Integer(), nullable=True),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['billing_run_id'], ['billing_run.id'], ),
    sa.PrimaryKeyConstraint('invoice_number'),
    sa.UniqueConstraint('subscription_id', 'period', name='uq_invoice_subscription_period')
    )
    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invoice_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_invoice_period'), ['period'], unique=False)

    op.create_table('subscription',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('product_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ),
    sa.ForeignKeyConstraint(['product_key'], ['product.key'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('subscription', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subscription_customer_id'), ['customer_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('subscription', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subscription_customer_id'))

    op.drop_table('subscription')
    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invoice_period'))
        batch_op.drop_index(batch_op.f('ix_invoice_customer_id'))

    op.drop_table('invoice')
    op.drop_table('charge')
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quarantine_status'))
        batch_op.drop_index(batch_op.f('ix_quarantine_reason'))

    op.drop_table('quarantine')
    op.drop_table('product')
    op.drop_table('meter')
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.drop_index('ix_event_name_ts')
        batch_op.drop_index('ix_event_customer_name_ts')

    op.drop_table('event')
    op.drop_table('customer')
    op.drop_table('catalog_setting')
    with op.batch_alter_table('billing_run', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_billing_run_period'))

    op.drop_table('billing_run')
