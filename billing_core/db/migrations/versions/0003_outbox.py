"""outbox: messages sent at most once; where documents' files were written; approvals

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    with op.batch_alter_table('document') as batch:
        batch.add_column(sa.Column('files_dir', sa.Text(), nullable=True))
    with op.batch_alter_table('billing_run') as batch:
        batch.add_column(sa.Column('approval', JSON, nullable=True))
    op.create_table(
        'outbox',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('document_id', sa.Integer(), nullable=True),
        sa.Column('reference', sa.String(length=64), nullable=False),
        sa.Column('sequence', sa.Integer(), nullable=False),
        sa.Column('sender', sa.Text(), nullable=False),
        sa.Column('reply_to', sa.Text(), nullable=True),
        sa.Column('recipients', JSON, nullable=False),
        sa.Column('subject', sa.Text(), nullable=False),
        sa.Column('message_id', sa.String(length=255), nullable=False),
        sa.Column('payload', JSON, nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('sending_at', sa.DateTime(), nullable=True),
        sa.Column('sent_at', sa.DateTime(), nullable=True),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.Column('billing_run_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['billing_run_id'], ['billing_run.id']),
        sa.ForeignKeyConstraint(['document_id'], ['document.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('document_id', 'sequence', name='uq_outbox_sequence'),
        sa.UniqueConstraint('message_id'))
    op.create_index('ix_outbox_document_id', 'outbox', ['document_id'])
    op.create_index('ix_outbox_status_next', 'outbox', ['status', 'next_attempt_at'])


def downgrade() -> None:
    op.drop_index('ix_outbox_status_next', 'outbox')
    op.drop_index('ix_outbox_document_id', 'outbox')
    op.drop_table('outbox')
    with op.batch_alter_table('billing_run') as batch:
        batch.drop_column('approval')
    with op.batch_alter_table('document') as batch:
        batch.drop_column('files_dir')
