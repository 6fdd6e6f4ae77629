"""Timing and peak memory for the benchmarks."""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import psutil

T = TypeVar("T")


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def max_rss_mb() -> float:
    """The process's peak resident set so far (the kernel's high-water mark)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class Sample:
    seconds: float = 0.0
    peak_rss_mb: float = 0.0


@contextmanager
def measured(interval: float = 0.02) -> Iterator[Sample]:
    """Wall time of the block and the highest RSS seen while it ran (sampled)."""
    sample = Sample(peak_rss_mb=rss_mb())
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(interval):
            sample.peak_rss_mb = max(sample.peak_rss_mb, rss_mb())

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.perf_counter()
    try:
        yield sample
    finally:
        sample.seconds = time.perf_counter() - started
        stop.set()
        watcher.join()
        sample.peak_rss_mb = max(sample.peak_rss_mb, rss_mb())


def best_of(repeats: int, action: Callable[[], T]) -> tuple[float, T]:
    """The fastest of `repeats` runs (the others absorb cache warm-up and noise)."""
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = action()
        best = min(best, time.perf_counter() - started)
    return best, result  # type: ignore[return-value]
