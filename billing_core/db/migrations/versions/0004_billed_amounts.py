"""billed_usage: the events and the amount billed per charge (late usage is billed as
what a charge amounts to now less what was billed for it)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""
import json
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

import billing_core.db.types

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

DECIMAL = billing_core.db.types.ExactDecimal(length=80)


def upgrade() -> None:
    with op.batch_alter_table('billed_usage') as batch:
        batch.add_column(sa.Column('events', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('amount', DECIMAL, nullable=True))
    # The amount each recorded line billed, read from the issued document itself.
    conn = op.get_bind()
    billed = sa.table('billed_usage', sa.column('id', sa.Integer()),
                      sa.column('document_id', sa.Integer()),
                      sa.column('usage_period', sa.String()), sa.column('meter', sa.String()),
                      sa.column('amount', DECIMAL))
    document = sa.table('document', sa.column('id', sa.Integer()),
                        sa.column('content', sa.Text()))
    rows = conn.execute(sa.select(billed.c.id, billed.c.document_id, billed.c.usage_period,
                                  billed.c.meter)).all()
    contents: dict[int, list[dict]] = {}
    for row_id, document_id, period, meter in rows:
        if document_id not in contents:
            content = conn.execute(sa.select(document.c.content)
                                   .where(document.c.id == document_id)).scalar()
            contents[document_id] = json.loads(content)["lines"] if content else []
        amounts = [Decimal(line["amount"]) for line in contents[document_id]
                   if line.get("meter") == meter and line.get("usage_period") == period]
        if len(amounts) == 1:
            conn.execute(billed.update().where(billed.c.id == row_id)
                         .values(amount=amounts[0]))


def downgrade() -> None:
    with op.batch_alter_table('billed_usage') as batch:
        batch.drop_column('amount')
        batch.drop_column('events')
