"""The clock that use cases read the time from: the system's, or a fixed one for tests and
demos (`BILLING_NOW=2026-11-05T09:00:00Z`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time as a naive UTC datetime."""
        ...

    def today(self) -> date:
        """Today's date in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC).replace(tzinfo=None)

    def today(self) -> date:
        return self.now().date()


@dataclass(frozen=True)
class FixedClock:
    moment: datetime

    def now(self) -> datetime:
        return self.moment

    def today(self) -> date:
        return self.moment.date()


class InvalidClockSetting(ValueError):
    """BILLING_NOW is not an ISO 8601 time."""


def parse_moment(text: str) -> datetime:
    """ISO 8601 date or time to a naive UTC datetime ('2026-11-05' is midnight UTC)."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidClockSetting(f"not an ISO 8601 date or time: {text!r}") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def default_clock() -> Clock:
    """BILLING_NOW when set (a fixed time, for tests and demos), else the system clock."""
    text = os.environ.get("BILLING_NOW")
    if text:
        return FixedClock(parse_moment(text))
    return SystemClock()
