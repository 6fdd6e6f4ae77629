"""invoice lifecycle: documents (drafts, finalized invoices, credit notes), gapless number
sequences, billed usage, leases, catalog versions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

The catalog moves from one table per entity to whole versions (`catalog_version`), keeping
`customer` and `subscription` as the rows SQL joins against. Invoices of revision 0001
were numbered as drafts; they become drafts here (their number kept as draft reference).
"""
import hashlib
import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import billing_core.db.types

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
DECIMAL = billing_core.db.types.ExactDecimal(length=80)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _text(value) -> str:
    return format(value, 'f') if not isinstance(value, str) else value


def _old_catalog(conn) -> dict | None:
    settings = dict(conn.execute(sa.text("SELECT key, value FROM catalog_setting")).all())
    if 'currency' not in settings:
        return None
    catalog: dict = {'currency': settings['currency']}
    if settings.get('seller'):
        catalog['seller'] = json.loads(settings['seller'])
    meters = []
    for row in conn.execute(sa.text(
            "SELECT key, name, description, event_name, aggregation, over_property, unit, "
            "filter FROM meter ORDER BY key")).mappings():
        meter = {k: row[k] for k in ('key', 'name', 'description', 'event_name',
                                     'aggregation', 'unit')}
        if row['over_property'] is not None:
            meter['over_property'] = row['over_property']
        if row['filter']:
            meter['filter'] = row['filter'] if isinstance(row['filter'], dict) \
                else json.loads(row['filter'])
        meters.append(meter)
    charges: dict[str, list] = {}
    for row in conn.execute(sa.text(
            "SELECT product_key, meter_key, price_per_unit, free_threshold FROM charge "
            "ORDER BY product_key, position")).mappings():
        charges.setdefault(row['product_key'], []).append(
            {'meter': row['meter_key'], 'price_per_unit': _text(row['price_per_unit']),
             'free_threshold': _text(row['free_threshold'])})
    products = [
        {'key': row['key'], 'name': row['name'], 'description': row['description'],
         'base_price': _text(row['base_price']), 'charges': charges.get(row['key'], [])}
        for row in conn.execute(sa.text(
            "SELECT key, name, description, base_price FROM product ORDER BY key")).mappings()]
    customers = [dict(row) for row in conn.execute(sa.text(
        "SELECT id, name, email, address FROM customer ORDER BY id")).mappings()]
    subscriptions = []
    for row in conn.execute(sa.text(
            "SELECT id, customer_id, product_key, start_date, end_date FROM subscription "
            "ORDER BY id")).mappings():
        sub = {'id': row['id'], 'customer': row['customer_id'], 'product': row['product_key'],
               'start': str(row['start_date'])[:10]}
        if row['end_date'] is not None:
            sub['end'] = str(row['end_date'])[:10]
        subscriptions.append(sub)
    catalog.update(meters=meters, products=products, customers=customers,
                   subscriptions=subscriptions)
    return catalog


def upgrade() -> None:
    conn = op.get_bind()
    old_catalog = _old_catalog(conn)

    op.create_table(
        'catalog_version',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('applied_at', sa.DateTime(), nullable=False),
        sa.Column('source', sa.Text(), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('document', JSON, nullable=False),
        sa.PrimaryKeyConstraint('id'))
    if old_catalog is not None:
        document = {'catalog': old_catalog, 'archived': {}}
        versions = sa.table('catalog_version', sa.column('applied_at', sa.DateTime()),
                            sa.column('source', sa.Text()), sa.column('digest', sa.String()),
                            sa.column('document', JSON))
        digest = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
        conn.execute(versions.insert().values(
            applied_at=_now(), source='(migrated from revision 0001)', digest=digest,
            document=document))

    with op.batch_alter_table('customer') as batch:
        batch.add_column(sa.Column('archived_at', sa.DateTime(), nullable=True))
    # Products now live in catalog versions: the subscription loses its foreign key to them.
    if conn.dialect.name == 'postgresql':
        op.drop_constraint('subscription_product_key_fkey', 'subscription', type_='foreignkey')
        op.add_column('subscription', sa.Column('archived_at', sa.DateTime(), nullable=True))
    else:
        target = sa.Table(
            'subscription', sa.MetaData(),
            sa.Column('id', sa.String(length=128), nullable=False),
            sa.Column('customer_id', sa.String(length=128), nullable=False),
            sa.Column('product_key', sa.String(length=64), nullable=False),
            sa.Column('start_date', sa.Date(), nullable=False),
            sa.Column('end_date', sa.Date(), nullable=True),
            sa.ForeignKeyConstraint(['customer_id'], ['customer.id']),
            sa.PrimaryKeyConstraint('id'),
            sa.Index('ix_subscription_customer_id', 'customer_id'))
        with op.batch_alter_table('subscription', copy_from=target,
                                  recreate='always') as batch:
            batch.add_column(sa.Column('archived_at', sa.DateTime(), nullable=True))
    op.drop_table('charge')
    op.drop_table('product')
    op.drop_table('meter')
    op.drop_table('catalog_setting')

    with op.batch_alter_table('event') as batch:
        batch.create_index('ix_event_ingested_at', ['ingested_at'], unique=False)

    with op.batch_alter_table('billing_run') as batch:
        batch.add_column(sa.Column('kind', sa.String(length=16), nullable=False,
                                   server_default='draft'))
        batch.add_column(sa.Column('pid', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('hostname', sa.String(length=255), nullable=True))
        batch.add_column(sa.Column('invoices_finalized', sa.Integer(), nullable=False,
                                   server_default='0'))
        batch.add_column(sa.Column('credit_notes', sa.Integer(), nullable=False,
                                   server_default='0'))
        batch.add_column(sa.Column('documents_rendered', sa.Integer(), nullable=False,
                                   server_default='0'))
        batch.add_column(sa.Column('totals', JSON, nullable=True))
        batch.add_column(sa.Column('late_usage', JSON, nullable=True))
        batch.add_column(sa.Column('failures', JSON, nullable=True))

    op.create_table(
        'document',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('draft_ref', sa.String(length=64), nullable=True),
        sa.Column('number', sa.String(length=64), nullable=True),
        sa.Column('series', sa.String(length=64), nullable=True),
        sa.Column('sequence', sa.Integer(), nullable=True),
        sa.Column('subscription_id', sa.String(length=128), nullable=False),
        sa.Column('customer_id', sa.String(length=128), nullable=False),
        sa.Column('period', sa.String(length=7), nullable=False),
        sa.Column('generation', sa.Integer(), nullable=False),
        sa.Column('reissue_of_id', sa.Integer(), nullable=True),
        sa.Column('superseded_by_id', sa.Integer(), nullable=True),
        sa.Column('credited_document_id', sa.Integer(), nullable=True),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('subtotal', DECIMAL, nullable=False),
        sa.Column('total', DECIMAL, nullable=False),
        sa.Column('amount_due', DECIMAL, nullable=False),
        sa.Column('issue_date', sa.Date(), nullable=True),
        sa.Column('due_date', sa.Date(), nullable=True),
        sa.Column('facts_hash', sa.String(length=64), nullable=False),
        sa.Column('document_hash', sa.String(length=64), nullable=False),
        sa.Column('revision', sa.Integer(), nullable=False),
        sa.Column('content', sa.Text(), nullable=False),
        sa.Column('file_hashes', JSON, nullable=True),
        sa.Column('rendered_key', sa.String(length=64), nullable=True),
        sa.Column('billing_run_id', sa.Integer(), nullable=True),
        sa.Column('finalized_at', sa.DateTime(), nullable=True),
        sa.Column('paid_at', sa.DateTime(), nullable=True),
        sa.Column('paid_date', sa.Date(), nullable=True),
        sa.Column('payment_reference', sa.Text(), nullable=True),
        sa.Column('voided_at', sa.DateTime(), nullable=True),
        sa.Column('void_reason', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['billing_run_id'], ['billing_run.id']),
        sa.ForeignKeyConstraint(['reissue_of_id'], ['document.id']),
        sa.ForeignKeyConstraint(['superseded_by_id'], ['document.id']),
        sa.ForeignKeyConstraint(['credited_document_id'], ['document.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('draft_ref'),
        sa.UniqueConstraint('number'))
    op.create_index('ix_document_customer_id', 'document', ['customer_id'])
    op.create_index('ix_document_credited_document_id', 'document', ['credited_document_id'])
    op.create_index('ix_document_period_status', 'document', ['period', 'status'])
    op.create_index('uq_document_invoice_generation', 'document',
                    ['subscription_id', 'period', 'generation'], unique=True,
                    sqlite_where=sa.text("kind = 'invoice'"),
                    postgresql_where=sa.text("kind = 'invoice'"))

    op.create_table(
        'number_sequence',
        sa.Column('series', sa.String(length=64), nullable=False),
        sa.Column('last_value', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('series'))
    op.create_table(
        'billed_usage',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('document_id', sa.Integer(), nullable=False),
        sa.Column('subscription_id', sa.String(length=128), nullable=False),
        sa.Column('usage_period', sa.String(length=7), nullable=False),
        sa.Column('meter', sa.String(length=64), nullable=False),
        sa.Column('quantity', DECIMAL, nullable=False),
        sa.ForeignKeyConstraint(['document_id'], ['document.id']),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_billed_usage_document_id', 'billed_usage', ['document_id'])
    op.create_index('ix_billed_usage_sub_period', 'billed_usage',
                    ['subscription_id', 'usage_period'])
    op.create_table(
        'lease',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=True),
        sa.Column('pid', sa.Integer(), nullable=True),
        sa.Column('hostname', sa.String(length=255), nullable=True),
        sa.Column('acquired_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('name'))

    # Invoices of revision 0001 were numbered drafts: keep them as drafts.
    now = _now()
    for row in conn.execute(sa.text(
            "SELECT invoice_number, subscription_id, customer_id, period, currency, subtotal, "
            "total, content_hash, document, billing_run_id, revision, created_at "
            "FROM invoice")).mappings().all():
        content = row['document']
        conn.execute(sa.text(
            "INSERT INTO document (kind, status, draft_ref, subscription_id, customer_id, "
            "period, generation, currency, subtotal, total, amount_due, facts_hash, "
            "document_hash, revision, content, billing_run_id, created_at, updated_at) VALUES "
            "('invoice', 'draft', :ref, :sub, :cus, :period, 1, :currency, :subtotal, :total, "
            ":total, :facts, :doc_hash, :revision, :content, :run, :created, :now)"),
            {'ref': f"DRAFT-{row['invoice_number']}", 'sub': row['subscription_id'],
             'cus': row['customer_id'], 'period': row['period'], 'currency': row['currency'],
             'subtotal': row['subtotal'], 'total': row['total'], 'facts': row['content_hash'],
             'doc_hash': hashlib.sha256(content.encode()).hexdigest(),
             'revision': row['revision'], 'content': content, 'run': row['billing_run_id'],
             'created': row['created_at'], 'now': now})
    op.drop_table('invoice')


def downgrade() -> None:
    raise NotImplementedError("revision 0002 cannot be undone: issued documents must stay")
