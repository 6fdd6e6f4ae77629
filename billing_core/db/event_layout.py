"""How SQLite finds a customer's events: by customer, event name and month.

Usage files are rarely in time order, so an index on (customer, name, timestamp) takes
each new event to a random place among the customer's earlier ones: at 10M events a
100,000-row transaction dirtied a page of that index for nearly every row, and the ingest
rate halved from 1M to 10M. Keyed by month instead, a customer's events of one month are
in the order they were stored, so new ones go to the end of their group and a transaction
dirties one page per group it touches (docs/performance.md, thirteenth pass). Readers
find a window's months through the index and hold the rows to the window's exact times.

PostgreSQL keeps (customer, name, timestamp): its ingest is within the target with it,
and its roll-ups serve whole days.
"""

from __future__ import annotations

from datetime import datetime, timedelta

EVENT_MONTH_SQL = "substr({ts}, 1, 7)"
"""The month (YYYY-MM) of a stored timestamp, as SQLite indexes it: stored timestamps are
ISO text (`sqlite_datetime`), whose first seven characters are the year and month."""

INDEX_NAME = "ix_event_customer_name_month"


def event_month(moment: datetime) -> str:
    """The month of a naive UTC time, as `EVENT_MONTH_SQL` reads it from stored text."""
    return f"{moment.year:04d}-{moment.month:02d}"


def last_instant(end: datetime) -> datetime:
    """The last instant of a half-open range ending at `end` (one microsecond before)."""
    return end - timedelta(microseconds=1) if end > datetime.min else end
