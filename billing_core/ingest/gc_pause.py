"""Pausing Python's cycle collector while a file is ingested.

An ingest chunk makes tens of thousands of short-lived containers (records, events,
metadata dicts) that reference counting frees on its own; with the collector running,
they also trigger collections that walk the whole heap, over and over (about a tenth of
the ingest's time). What the ingest makes holds no reference cycle; the little cyclic
garbage a chunk's transaction may leave is collected when the collector runs again, after
the file.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_holders = 0
_was_enabled = False


@contextmanager
def cycle_collector_paused() -> Iterator[None]:
    """Pause the cycle collector (process-wide) for the block; nested and concurrent
    blocks are counted, and the last one out restores the state found by the first."""
    global _holders, _was_enabled
    with _lock:
        if _holders == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _was_enabled:
                gc.enable()
