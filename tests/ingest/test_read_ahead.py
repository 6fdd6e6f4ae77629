"""read_ahead: the next chunk prepared in a helper thread, in order, errors in place."""

import threading

import pytest

from billing_core.ingest.read_ahead import read_ahead


def test_chunks_come_in_order_each_with_what_the_helper_prepared():
    where: list[str] = []

    def prepare(chunk):
        where.append(threading.current_thread().name)
        return sum(chunk)

    got = list(read_ahead(iter([[1, 2], [3], [4, 5, 6]]), prepare))
    assert got == [([1, 2], 3), ([3], 3), ([4, 5, 6], 15)]
    assert set(where) == {"ingest-read-ahead"}


class Unreadable(Exception):
    pass


def test_a_reader_error_comes_after_every_chunk_read_before_it():
    def chunks():
        yield [1]
        yield [2]
        raise Unreadable("line 3: not JSON")

    seen = []
    with pytest.raises(Unreadable, match="line 3"):
        for chunk, _ in read_ahead(chunks(), len):
            seen.append(chunk)
    assert seen == [[1], [2]]


def test_a_caller_that_stops_early_stops_the_helper_and_closes_the_reader():
    closed = threading.Event()
    prepared: list[int] = []

    def chunks():
        try:
            for n in range(1000):
                yield [n]
        finally:
            closed.set()

    def prepare(chunk):
        prepared.append(chunk[0])
        return chunk[0]

    with pytest.raises(RuntimeError, match="storing failed"):
        for chunk, _ in read_ahead(chunks(), prepare):
            if chunk == [2]:
                raise RuntimeError("storing failed")
    assert closed.wait(5)
    assert max(prepared) <= 4          # one chunk ahead (and one in the helper's hands)
    assert not any(t.name == "ingest-read-ahead" for t in threading.enumerate())
