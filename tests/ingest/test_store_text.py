"""The ingest's shortcuts give exactly what the general way gives: timestamps ending in Z,
the ids looked up as one text, the times copied as text."""

import itertools
import json
from datetime import datetime, timedelta

from sqlalchemy import text

from billing_core.ingest.records import RawRecord
from billing_core.ingest.store import _BY_LIST, _BY_TEXT, _id_argument, _stored_hashes, store_chunk
from billing_core.ingest.validate import Rejected, parse_timestamp
from billing_core.limits import MAX_TIMESTAMP, MIN_TIMESTAMP
from tests.conftest import apply, catalog_with


def general_way(value: str) -> datetime | str:
    """ISO 8601 text to naive UTC by its offset, with no shortcut (or the rejection)."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return "invalid"
    offset = parsed.utcoffset()
    if offset is not None:
        parsed = parsed.replace(tzinfo=None) - offset
    return parsed


def forms() -> list[str]:
    days = ["2026-10-14", "2026-02-28", "2024-02-29", "1970-01-01", "2199-12-31",
            "9998-12-31", "20261014"]
    times = ["08:13", "08:13:31", "23:59:59.9", "00:00:00.000001", "12:30:45.123456",
             "081331", "08:13:31,5"]
    zones = ["Z", "+00:00", "-00:00", "+02:00", "-05:30", "", "z", " Z", "Z ", "+0000"]
    found = [f"{d}{sep}{t}{z}" for d, sep, t, z in
             itertools.product(days, ["T", " "], times, zones)]
    return [*found, f"  {found[0]}  ", f"\t{found[1]}\n", "2026-10-14Z", "Z", "2026-10-14TZ",
            "2026-10-14T08:13:31ZZ", "2026-10-14T08:13:31+00:00Z"]


def read(value: str) -> datetime | str:
    try:
        got = parse_timestamp(value)
    except Rejected as rejected:
        return "invalid" if rejected.reason == "invalid_timestamp" else rejected.reason
    assert got.tzinfo is None
    return got


def test_a_timestamp_reads_as_the_general_way_reads_it():
    """Every form (Z or another offset or none, fractions, compact, spaces, edges of the
    stored range, near-misses): the same naive UTC time, or the same rejection."""
    differ = []
    for value in forms():
        expected = general_way(value)
        if isinstance(expected, datetime) and not MIN_TIMESTAMP <= expected < MAX_TIMESTAMP:
            expected = "out_of_range"
        if read(value) != expected:
            differ.append((value, read(value), expected))
    assert differ == []
    assert len(forms()) > 900


def test_ids_go_as_one_text_unless_one_holds_the_separator():
    assert _id_argument(["a", "b,c", "{d}"]) == (_BY_TEXT, "a\x1fb,c\x1f{d}")
    assert _id_argument(["a", "b\x1fc"]) == (_BY_LIST, ["a", "b\x1fc"])
    assert _id_argument(["a", ""]) == (_BY_LIST, ["a", ""])
    assert _id_argument([""]) == (_BY_LIST, [""])


def test_stored_ids_are_found_whatever_they_hold(engine):
    """Commas, quotes, braces, backslashes, spaces, NULL-looking text and non-ASCII: each is
    found as itself, and only the stored ones are found."""
    apply(engine, catalog_with())
    ids = ["a,b", '"q"', "{x,y}", "back\\slash", " spaced ", "NULL", "ü-😀", "e" * 256]
    lines = [json.dumps({"event_id": i, "customer_id": "cus_acme", "event_name": "api.call",
                         "timestamp": "2026-10-05T10:00:00.000001Z"}) for i in ids]
    records = [RawRecord("f.jsonl", f"line {n}", line, parsed=False)
               for n, line in enumerate(lines, 1)]
    now = datetime(2026, 11, 3, 12, 0, 0, 654321)
    with engine.begin() as conn:
        outcomes = store_chunk(conn, records, {"cus_acme"}, now, "f.jsonl")
    assert [o.status for o in outcomes] == ["ingested"] * len(ids)
    with engine.begin() as conn:
        found = _stored_hashes(conn, [*ids, "a", "b", "NULL ", "x"])
        rows = conn.execute(text("SELECT ts, ingested_at FROM event")).all()
    assert sorted(found) == sorted(ids)
    stamp = datetime(2026, 10, 5, 10, 0, 0, 1)
    assert {(_naive(ts), _naive(at)) for ts, at in rows} == {(stamp, now)}


def _naive(value: datetime | str) -> datetime:
    """SQLite returns stored times as text."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert value.utcoffset() in (None, timedelta(0))
    return value.replace(tzinfo=None)
