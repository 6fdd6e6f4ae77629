"""Billing cycles: calendar months in UTC, half-open [start, end)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

PERIOD_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
_PERIOD_RE = re.compile(PERIOD_PATTERN)


class InvalidPeriod(ValueError):
    """A period string that is not YYYY-MM."""


@dataclass(frozen=True, order=True)
class BillingPeriod:
    """One calendar month in UTC. `start` and `end` are naive UTC datetimes, end exclusive."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> BillingPeriod:
        """Parse 'YYYY-MM' (e.g. '2026-10')."""
        if not isinstance(text, str) or not _PERIOD_RE.match(text.strip()):
            raise InvalidPeriod(f"period must be YYYY-MM (e.g. 2026-10), got {text!r}")
        year, month = text.strip().split("-")
        return cls(int(year), int(month))

    @classmethod
    def last_closed(cls, now: datetime | None = None) -> BillingPeriod:
        """The most recent month that has fully ended at `now` (UTC)."""
        now = now or datetime.now(UTC)
        if now.month == 1:
            return cls(now.year - 1, 12)
        return cls(now.year, now.month - 1)

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1)

    @property
    def end(self) -> datetime:
        if self.month == 12:
            return datetime(self.year + 1, 1, 1)
        return datetime(self.year, self.month + 1, 1)

    @property
    def start_date(self) -> date:
        return self.start.date()

    @property
    def end_date(self) -> date:
        return self.end.date()

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @classmethod
    def containing(cls, moment: datetime | date) -> BillingPeriod:
        return cls(moment.year, moment.month)

    def shift(self, months: int) -> BillingPeriod:
        """The period `months` later (earlier when negative)."""
        index = self.year * 12 + (self.month - 1) + months
        return BillingPeriod(index // 12, index % 12 + 1)

    def grace_ends(self, grace_days: int) -> datetime:
        """When the grace period after this cycle ends (naive UTC)."""
        return self.end + timedelta(days=grace_days)

    def state(self, now: datetime, grace_days: int) -> str:
        """'future', 'open', 'grace' (ended, still in its grace period) or 'closed'."""
        if now < self.start:
            return "future"
        if now < self.end:
            return "open"
        if now < self.grace_ends(grace_days):
            return "grace"
        return "closed"

    def long_name(self) -> str:
        """'October 2026'."""
        return self.start.strftime("%B %Y")
