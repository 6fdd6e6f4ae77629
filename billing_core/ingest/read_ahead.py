"""Reading and classifying the next chunk in a thread while this one is stored.

Storing a chunk mostly waits: for the database's look-up of the chunk's ids, for the rows
to land in its indexes, for the commit. Reading the next chunk and classifying it
(decode, validate, canonical JSON, hash: pure work on the chunk alone) needs no database,
so a helper thread does it meanwhile; Python runs one thread at a time, and the two
overlap where the storing thread waits. One chunk is prepared ahead, no more, so memory
grows by one chunk. Chunks come out in order; an error of the reader (a file unreadable
from some point on) comes out after every chunk read before it, as it did without the
thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from queue import Full, Queue
from typing import Any, TypeVar

T = TypeVar("T")
U = TypeVar("U")

_END = object()


def read_ahead(chunks: Iterator[T], prepare: Callable[[T], U]) -> Iterator[tuple[T, U]]:
    """Each chunk with `prepare(chunk)`, computed one chunk ahead in a helper thread.
    Stopping early (the caller's error) stops the helper before its next chunk."""
    queue: Queue[tuple[str, Any]] = Queue(maxsize=1)
    stop = threading.Event()

    def put(item: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                queue.put(item, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in chunks:
                if not put(("chunk", (chunk, prepare(chunk)))):
                    return
            put(("end", _END))
        except BaseException as exc:  # handed to the caller, in order
            put(("error", exc))
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    helper = threading.Thread(target=produce, name="ingest-read-ahead", daemon=True)
    helper.start()
    try:
        while True:
            kind, value = queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        helper.join()
