"""usage roll-ups: per meter, customer and UTC day, kept as events are stored (PostgreSQL)

PostgreSQL: `event.seq` numbers events in the order they were stored (a sequence's
default; a BRIN index, which costs next to nothing to keep as rows are appended), and
four tables hold the roll-ups (`billing_core.metering.rollup`). The state row starts at
watermark 0: every stored event is pending until the first roll-up, and metering reads
raw events until then. SQLite gets the same tables and a NULL column, unused there.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import billing_core.db.types

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

DECIMAL = billing_core.db.types.ExactDecimal(length=80)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("CREATE SEQUENCE event_seq AS bigint")
        op.execute("ALTER TABLE event ADD COLUMN seq bigint DEFAULT nextval('event_seq')")
        op.execute("ALTER SEQUENCE event_seq OWNED BY event.seq")
        op.execute("CREATE INDEX ix_event_seq ON event (seq)")
    else:  # a plain ADD COLUMN (no batch mode: it must not copy the table)
        op.add_column('event', sa.Column('seq', sa.BigInteger(), nullable=True))
    op.create_table(
        'usage_rollup',
        sa.Column('customer_id', sa.String(length=128), nullable=False),
        sa.Column('fingerprint', sa.String(length=64), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('matched', sa.BigInteger(), nullable=False),
        sa.Column('present', sa.BigInteger(), nullable=False),
        sa.Column('numbers', sa.BigInteger(), nullable=False),
        sa.Column('total', DECIMAL, nullable=True),
        sa.Column('high', DECIMAL, nullable=True),
        sa.Column('low', DECIMAL, nullable=True),
        sa.PrimaryKeyConstraint('customer_id', 'fingerprint', 'day'),
    )
    op.create_table(
        'usage_rollup_value',
        sa.Column('customer_id', sa.String(length=128), nullable=False),
        sa.Column('fingerprint', sa.String(length=64), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('value', JSON, nullable=False),
        sa.PrimaryKeyConstraint('customer_id', 'fingerprint', 'day', 'value'),
    )
    op.create_table(
        'usage_rollup_meter',
        sa.Column('fingerprint', sa.String(length=64), nullable=False),
        sa.Column('meter', sa.String(length=64), nullable=False),
        sa.Column('definition', sa.Text(), nullable=False),
        sa.Column('rolled_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('fingerprint'),
    )
    op.create_table(
        'usage_rollup_state',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('watermark', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    if postgres:
        op.execute("INSERT INTO usage_rollup_state (id, watermark) VALUES (1, 0)")


def downgrade() -> None:
    op.drop_table('usage_rollup_state')
    op.drop_table('usage_rollup_meter')
    op.drop_table('usage_rollup_value')
    op.drop_table('usage_rollup')
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_event_seq")
    with op.batch_alter_table('event') as batch:
        batch.drop_column('seq')
