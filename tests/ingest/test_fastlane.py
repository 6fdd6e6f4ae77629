"""The fast lane returns exactly what the exact lane returns, or declines.

For any text, fast_event(text) is either None or equal — every field, the canonical
metadata JSON and the payload hash included — to the ValidEvent that parse_line and
validate make of the same text. The plainly good records of the benchmark take it.
"""

import json
import random
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text

from billing_core.db.types import dumps_plain
from billing_core.ingest.fastlane import _ENCODER, fast_event
from billing_core.ingest.readers import parse_line
from billing_core.ingest.records import RawRecord, ValidEvent
from billing_core.ingest.store import _insert_postgres, store_chunk
from billing_core.ingest.validate import Rejected, validate
from billing_core.limits import (
    MAX_ID_LENGTH,
    MAX_METADATA_KEY_LENGTH,
    MAX_METADATA_KEYS,
    MAX_METADATA_STRING,
)
from tests.conftest import apply, catalog_with

CUSTOMERS = frozenset({"cus_a", "cus_b", "cüs_ü", "cus_\U0001f600"})
NOW = datetime(2026, 11, 3, 12, 0, 0)


def exact_lane(line: str) -> ValidEvent | str:
    """What the exact lane makes of one line: the event, or the rejection reason."""
    record = RawRecord("f.jsonl", "line 1", line, parsed=False)
    parse_line(record)
    if record.error is not None:
        return record.error[0]
    assert record.candidate is not None
    try:
        return validate(record.candidate, CUSTOMERS, NOW, record.clean)
    except Rejected as exc:
        return exc.reason


def check(line: str) -> ValidEvent | None:
    fast = fast_event(line, CUSTOMERS, NOW)
    if fast is not None:
        assert fast == exact_lane(line), line
    return fast


def good(**overrides):
    event = {"event_id": "evt_1", "customer_id": "cus_a", "event_name": "api.call",
             "timestamp": "2026-10-05T10:00:00Z",
             "metadata": {"tokens": 12, "model": "large", "gb": Decimal("1.50")}}
    event.update(overrides)
    return event


def line_of(event: dict, ascii_only: bool = False) -> str:
    return json.dumps(event, ensure_ascii=ascii_only, default=str).replace(
        '"1.50"', "1.50")


@pytest.mark.parametrize("line", [
    line_of(good()),
    line_of(good(timestamp="2026-10-05T12:00:00+02:00")),
    line_of(good(timestamp="2026-10-05")),
    line_of(good(timestamp="2026-10-05 10:00:00.123456")),
    line_of(good(timestamp=None)),
    line_of(good(timestamp="")),
    line_of(good(metadata=None)),
    line_of(good(metadata={})),
    line_of(good(metadata={"a": True, "b": None, "c": -0, "d": "x" * 50})),
    line_of(good(customer_id="cüs_ü", event_id="évt", metadata={"ключ": "значение"})),
    line_of(good(customer_id="cus_\U0001f600", metadata={"\U0001f600": 1, "\uffff": 2})),
    '  {"event_id":"e","customer_id":"cus_a","event_name":"n"}  \r',
    '{"event_id":"e","customer_id":"cus_a","event_name":"n","timestamp":" 2026-10-01 "}',
    '{"event_id":"e","customer_id":"cus_a","event_name":"n","metadata":{"x":1e5,"y":-0.0}}',
    '{"event_id":"e","customer_id":"cus_a","event_name":"n","metadata":{"x":1E-7}}',
    '{"event_id":"e","customer_id":"cus_a","event_name":"n","metadata":{"x":-0}}',
    line_of(good(metadata={f"k{i}": i for i in range(MAX_METADATA_KEYS)})),
])
def test_plainly_good_records_take_the_fast_lane(line):
    assert check(line) is not None


@pytest.mark.parametrize("line", [
    # a key given twice: the decoder would keep the last, the exact lane refuses
    '{"event_id":"e","event_id":"f","customer_id":"cus_a","event_name":"n"}',
    '{"event_id":"e","customer_id":"cus_a","event_name":"n","metadata":{"x":1,"x":2}}',
    '{"event_id":"e","customer_id":"cus_a","event_name":"n","metadata":{"x":"a","x":1}}',
    '{"event_id":"e","customer_id":"cus_a","event_name":"n","timestamp":null,'
    '"timestamp":"2026-10-01"}',
    # escapes, surrogates, NUL
    '{"event_id":"e\\u0041","customer_id":"cus_a","event_name":"n"}',
    '{"event_id":"e","customer_id":"cus_a","event_name":"n","metadata":{"x":"\\ud800"}}',
    '{"event_id":"e","customer_id":"cus_a","event_name":"n","metadata":{"x":"\\u0000"}}',
    '{"event_id":"e\\"q","customer_id":"cus_a","event_name":"n"}',
    # other types, limits, unknowns
    '{"event_id":5,"customer_id":"cus_a","event_name":"n"}',
    '{"event_id":"","customer_id":"cus_a","event_name":"n"}',
    '{"event_id":"e","customer_id":"cus_zzz","event_name":"n"}',
    '{"event_id":"e","customer_id":"cus_a","event_name":"n","extra":1}',
    '{"event_id":"e","customer_id":"cus_a","event_name":"n","metadata":{"x":[1]}}',
    '{"event_id":"e","customer_id":"cus_a","event_name":"n","metadata":[]}',
    '{"event_id":"e","customer_id":"cus_a","event_name":"n","metadata":{"x":1e999999}}',
    '{"event_id":"e","customer_id":"cus_a","event_name":"n","metadata":{"x":'
    + "9" * 21 + "}}",
    '{"event_id":"e","customer_id":"cus_a","event_name":"n","metadata":{"x":NaN}}',
    '{"event_id":"e","customer_id":"cus_a","event_name":"n","timestamp":"yesterday"}',
    '{"event_id":"e","customer_id":"cus_a","event_name":"n","timestamp":"0001-01-01T00:00+01:00"}',
    '{"event_id":"e","customer_id":"cus_a","event_name":"n","timestamp":1700000000}',
    '{"event_id":"e","customer_id":"cus_a","event_name":"n","x":' + "[" * 5000 + "]" * 5000
    + "}",
    '{"event_id":"e","customer_id":"cus_a","event_name":"n"}{"a":1}',
    '{"event_id":"e","customer_id":"cus_a","event_name":"n"',
    '[1, 2]',
    line_of(good(metadata={f"k{i}": i for i in range(MAX_METADATA_KEYS + 1)})),
    '{"event_id":"e\tx","customer_id":"cus_a","event_name":"n"}',
])
def test_anything_unusual_is_left_to_the_exact_lane(line):
    assert check(line) is None


TRICKY = '\x00"\\\t\u2028\x7féü\U0001f600\ufeff '
SURROGATES = "\ud800\udfff"


def random_text(rng: random.Random, ascii_only: bool) -> str:
    """Short text, now and then just under or over a length limit."""
    pool = "abcdefgh_.0123456789" * 3 + TRICKY + (SURROGATES if ascii_only else "")
    if rng.random() < 0.01:
        return "k" * rng.choice([MAX_ID_LENGTH, MAX_ID_LENGTH + 1, MAX_METADATA_KEY_LENGTH,
                                 MAX_METADATA_KEY_LENGTH + 1, MAX_METADATA_STRING,
                                 MAX_METADATA_STRING + 1])
    return "".join(rng.choice(pool) for _ in range(rng.choice([0, 1, 3, 8, 12])))


def random_value(rng: random.Random, ascii_only: bool):
    kind = rng.randrange(12)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind <= 3:
        return rng.choice([0, -1, 7, 10**19, -(10**20) + 1, 10**20, 10**22, rng.randrange(10**6)])
    if kind <= 6:
        return random_text(rng, ascii_only)
    if kind <= 9:
        return Decimal(rng.choice(["1.50", "-0.0", "1E+5", "1e-7", "0.000000000000000001",
                                   "1E-19", "123456789012345678901.5", "1e999999",
                                   f"{rng.randrange(10**6)}.{rng.randrange(100):02d}"]))
    return rng.choice([[1], {"a": 1}, [], {}])


def dump(value, ascii_only: bool) -> str:
    if isinstance(value, Decimal):
        return format(value, "")   # Decimal's own text: 1E+5, -0.0, 12.50
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k, ensure_ascii=ascii_only)}:"
                              f"{dump(v, ascii_only)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dump(v, ascii_only) for v in value) + "]"
    return json.dumps(value, ensure_ascii=ascii_only)


def random_line(rng: random.Random) -> str:
    """An event line, usually good, often with one thing wrong or unusual."""
    ascii_only = rng.random() < 0.2          # every non-ASCII character as a \u escape

    def name() -> str:
        simple = f"{rng.choice(['evt', 'api.call', 'x'])}_{rng.randrange(10**6)}"
        return simple if rng.random() < 0.85 else random_text(rng, ascii_only)

    timestamps = ["2026-10-01T00:00:00Z", "2026-10-01T23:59:59.999999-12:00",
                  "2026-10-01T00:00+05:30", "2026-10-01", " 2026-10-01 10:00 ",
                  "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"]
    odd_timestamps = [None, "", "yesterday", 1700000000, "2026-13-01", "2026-10-01T25:00"]
    keys = rng.choice([0, 1, 2, 4] * 4 + [MAX_METADATA_KEYS, MAX_METADATA_KEYS + 1])
    many = keys >= MAX_METADATA_KEYS
    fields = {
        "event_id": name(),
        "customer_id": rng.choice(sorted(CUSTOMERS)) if rng.random() < 0.85
        else random_text(rng, ascii_only),
        "event_name": name(),
        "timestamp": rng.choice(timestamps) if rng.random() < 0.8 else rng.choice(odd_timestamps),
        "metadata": {random_text(rng, ascii_only) + (f"{i}" if many else ""):
                     random_value(rng, ascii_only) for i in range(keys)}
        if rng.random() < 0.9
        else rng.choice([None, [], "x", 3]),
    }
    pairs = [(k, v) for k, v in fields.items()
             if rng.random() < (0.96 if k in ("event_id", "customer_id", "event_name") else 0.7)]
    if rng.random() < 0.03:
        pairs.append((rng.choice(["extra", "Event_id"]), 1))
    if pairs and rng.random() < 0.1:        # a key given twice
        pairs.insert(rng.randrange(len(pairs) + 1), (rng.choice(pairs)[0],
                                                     random_value(rng, ascii_only)))
    space = rng.choice(["", " "])
    return "{" + ("," + space).join(f"{json.dumps(k)}:{space}{dump(v, ascii_only)}"
                                    for k, v in pairs) + "}"


def test_the_fast_lane_agrees_with_the_exact_lane_on_random_lines():
    rng = random.Random(20261122)
    taken = 0
    for _ in range(20_000):
        if check(random_line(rng)) is not None:
            taken += 1
    assert 4_000 < taken < 16_000   # both lanes are exercised


def test_plain_metadata_is_encoded_as_the_canonical_text():
    for metadata in [{"b": 1, "a": "x", "é": True, "Z": None}, {"\U0001f600": 1, "\uffff": 2},
                     {"k": "".join(chr(c) for c in range(0x20, 0x3000) if chr(c) not in '"\\')}]:
        assert _ENCODER.encode(metadata).decode() == dumps_plain(metadata)


def test_the_benchmark_records_take_the_fast_lane(tmp_path: Path):
    from benchmarks.run import PERIOD
    from benchmarks.synthetic import customer_id, write_events

    files = write_events(tmp_path, 2_000, 20, PERIOD)
    customers = frozenset(customer_id(i) for i in range(1, 21))
    taken = declined = 0
    for path in files.paths:
        for line in path.read_text().splitlines():
            fast = fast_event(line, customers, NOW)
            if fast is None:
                declined += 1
            else:
                taken += 1
                assert fast == exact_lane_for(line, customers)
    assert taken >= 2_000 and declined == files.bad


def exact_lane_for(line: str, customers: frozenset[str]) -> ValidEvent:
    record = RawRecord("f.jsonl", "line 1", line, parsed=False)
    parse_line(record)
    assert record.candidate is not None
    return validate(record.candidate, customers, NOW, record.clean)


def test_a_copy_that_meets_an_id_stored_meanwhile_falls_back(engine):
    """On PostgreSQL new events are copied straight into the event table; if another writer
    stored one of them after the look-up, the COPY is undone to its savepoint and the chunk
    goes through the staging table: the others are stored, that one is not stored twice."""
    if engine.dialect.name != "postgresql":
        pytest.skip("the direct COPY is PostgreSQL's")
    apply(engine, catalog_with())
    lines_ = [json.dumps({"event_id": f"e{i}", "customer_id": "cus_acme",
                          "event_name": "api.call", "timestamp": "2026-10-05T10:00:00Z"})
              for i in range(3)]
    events = [fast_event(line, {"cus_acme"}, NOW) for line in lines_]
    assert all(events)
    with engine.begin() as conn:
        assert _insert_postgres(conn, events[1:2], "first", NOW) == {"e1"}
    with engine.begin() as conn:
        assert _insert_postgres(conn, events, "second", NOW) == {"e0", "e2"}
    with engine.begin() as conn:
        rows = conn.execute(text("SELECT event_id, source FROM event ORDER BY event_id")).all()
        outcomes = store_chunk(conn, [RawRecord("f", "line 1", lines_[1], parsed=False)],
                               {"cus_acme"}, NOW, "third")
    assert [tuple(r) for r in rows] == [("e0", "second"), ("e1", "first"), ("e2", "second")]
    assert [o.status for o in outcomes] == ["duplicate"]
