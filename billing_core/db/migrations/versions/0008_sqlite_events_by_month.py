"""event (SQLite): find a customer's events by name and month, not by name and time

SQLite's index on (customer_id, event_name, ts) took every event of a file not in time
order to a random place among the customer's earlier events: from 1M to 10M events the
ingest rate halved, because each 100,000-row transaction dirtied a page of that index
for nearly every row. (customer_id, event_name, month of ts) keeps a customer's events of
one month in the order they were stored, so new ones go to the end of their group
(`billing_core.db.event_layout`). PostgreSQL keeps its index by time.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

MONTH_INDEX = ("CREATE INDEX IF NOT EXISTS ix_event_customer_name_month ON event "
               "(customer_id, event_name, substr(ts, 1, 7))")


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(MONTH_INDEX)
    op.execute("DROP INDEX IF EXISTS ix_event_customer_name_ts")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("CREATE INDEX IF NOT EXISTS ix_event_customer_name_ts ON event "
               "(customer_id, event_name, ts)")
    op.execute("DROP INDEX IF EXISTS ix_event_customer_name_month")
