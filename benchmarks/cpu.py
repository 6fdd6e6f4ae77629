"""The machine's own two-process ceiling: a pure CPU loop run alone, then twice at once in
two processes that are already started. On a machine whose two cores are shared (with the
host, other guests or a hyper-thread sibling) two processes do not run twice as fast."""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor


def spin(rounds: int) -> float:
    """CPU work with no I/O and no allocation to speak of; its own wall time."""
    started = time.perf_counter()
    total = 0
    for i in range(rounds):
        total += i * i % 7
    if total < 0:   # never: keeps the loop from being optimised away
        raise AssertionError
    return time.perf_counter() - started


def two_process_speedup(rounds: int = 5_000_000, repeats: int = 5) -> float:
    """How much faster two processes do two loops' work than one process does one loop's
    (2.0 on two free cores), the median of `repeats`."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        list(pool.map(spin, [1000, 1000]))            # both workers started and warm
        speedups = []
        for _ in range(repeats):
            started = time.perf_counter()
            pool.submit(spin, rounds).result()
            alone = time.perf_counter() - started
            started = time.perf_counter()
            list(pool.map(spin, [rounds, rounds]))
            together = time.perf_counter() - started
            speedups.append(2 * alone / together)
    return sorted(speedups)[len(speedups) // 2]
