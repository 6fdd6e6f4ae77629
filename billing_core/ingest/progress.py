"""Progress of an ingest, as the `progress` callback of `ingest_paths` receives it (after
every stored chunk): totals over the files so far, the rate, and periodic plain lines
for logs (a terminal gets a live display from the command line instead)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class IngestProgress:
    """Totals over every file seen so far; call it with (path, that file's accounting)."""

    clock: Callable[[], float] = time.monotonic
    started: float = field(default=0.0)
    files: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    current: str = ""

    def __post_init__(self) -> None:
        self.started = self.clock()

    def __call__(self, path: str, accounting: Any) -> None:
        self.current = path
        self.files[path] = (accounting.records, accounting.ingested, accounting.rejected)

    @property
    def records(self) -> int:
        return sum(r for r, _, _ in self.files.values())

    @property
    def ingested(self) -> int:
        return sum(i for _, i, _ in self.files.values())

    @property
    def rejected(self) -> int:
        return sum(x for _, _, x in self.files.values())

    @property
    def rate(self) -> float:
        elapsed = self.clock() - self.started
        return self.records / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        name = self.current.rsplit("/", 1)[-1]
        return (f"ingest: file {len(self.files)} ({name}): {self.records:,} records, "
                f"{self.rate:,.0f}/s, {self.ingested:,} ingested, {self.rejected:,} rejected "
                f"so far")


class LoggedProgress(IngestProgress):
    """Writes `line()` through `emit` at most every `every` seconds (and never for a
    run shorter than that)."""

    def __init__(self, emit: Callable[[str], None], every: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(clock=clock)
        self.emit = emit
        self.every = every
        self.last = self.started

    def __call__(self, path: str, accounting: Any) -> None:
        super().__call__(path, accounting)
        now = self.clock()
        if now - self.last >= self.every:
            self.last = now
            self.emit(self.line())
