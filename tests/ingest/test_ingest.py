import csv
import gzip
import json
from datetime import datetime
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import text

from tests.conftest import (
    CLOCK,
    apply,
    catalog_with,
    ingest,
    list_quarantine,
    replay_quarantine,
    write_jsonl,
)


def ev(event_id, customer="cus_acme", name="api.call", ts="2026-10-05T10:00:00Z", **meta):
    event = {"event_id": event_id, "customer_id": customer, "event_name": name}
    if ts is not None:
        event["timestamp"] = ts
    if meta:
        event["metadata"] = meta
    return event


def count(engine, table):
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()


def quarantine_reasons(engine):
    return {(r.location, r.reason) for r in list_quarantine(engine, limit=None)}


def test_every_record_is_accounted_for(acme, tmp_path):
    path = write_jsonl(tmp_path / "events.jsonl", [
        ev("e1", method="POST"),
        ev("e2"),
        ev("e1", method="POST"),                         # identical re-send: duplicate
        ev("e2", ts="2026-10-06T00:00:00Z"),             # same id, other content: conflict
        '{"event_id": "e3", "customer_id": ',            # malformed JSON
        json.dumps({"customer_id": "cus_acme", "event_name": "x"}),          # no event_id
        ev("e4", ts="not a time"),
        ev("e5", customer="cus_nobody"),
        json.dumps(ev("e6") | {"metadata": {"nested": {"a": 1}}}),
        '{"event_id": "e7", "customer_id": "cus_acme", "event_name": "x", '
        '"metadata": {"n": NaN}}',
        "[1, 2]",
        json.dumps(ev("e8") | {"properties": {}}),      # unknown field
        "",                                              # blank line: not a record
        json.dumps(ev("e9") | {"metadata": "tokens=5"}),
    ])
    report = ingest(acme, [path])
    total = report.total
    assert total.as_dict() == {"records": 13, "ingested": 2, "duplicates": 1, "rejected": 10}
    assert total.records == total.ingested + total.duplicates + total.rejected
    assert quarantine_reasons(acme) == {
        ("line 4", "conflicting_duplicate"), ("line 5", "malformed_json"),
        ("line 6", "missing_field"), ("line 7", "invalid_timestamp"),
        ("line 8", "unknown_customer"), ("line 9", "invalid_metadata"),
        ("line 10", "malformed_json"), ("line 11", "not_an_object"),
        ("line 12", "unknown_field"), ("line 14", "invalid_metadata"),
    }
    row = list_quarantine(acme, reason="unknown_customer")[0]
    assert row.source == str(path.resolve())
    assert "cus_nobody" in row.raw and "cus_nobody" in row.detail


def test_ingesting_the_same_file_twice_changes_nothing(acme, tmp_path):
    path = write_jsonl(tmp_path / "e.jsonl", [ev("a"), ev("b"), ev("c", customer="nobody"),
                                               "{oops"])
    first = ingest(acme, [path]).total
    before = (count(acme, "event"), count(acme, "quarantine"))
    second = ingest(acme, [path]).total
    assert first.as_dict() == {"records": 4, "ingested": 2, "duplicates": 0, "rejected": 2}
    assert second.as_dict() == {"records": 4, "ingested": 0, "duplicates": 2, "rejected": 2}
    assert (count(acme, "event"), count(acme, "quarantine")) == before


def test_a_stored_event_resent_with_other_content_is_a_conflict(acme, tmp_path):
    ingest(acme, [write_jsonl(tmp_path / "a.jsonl", [ev("x", tokens=5)])])
    report = ingest(acme, [write_jsonl(tmp_path / "b.jsonl", [ev("x", tokens=6)])])
    assert report.total.reasons == {"conflicting_duplicate": 1}
    with acme.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM event")).scalar_one() == 1


def test_timestamps_are_stored_in_utc(acme, tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [
        ev("no_offset", ts="2026-10-05T10:00:00"),
        ev("offset", ts="2026-10-05T12:00:00+02:00"),
        ev("zulu", ts="2026-10-05T10:00:00.250Z"),
        ev("missing", ts=None),
    ])
    ingest(acme, [path])
    with acme.connect() as conn:
        rows = dict(conn.execute(text("SELECT event_id, ts FROM event")).all())
    rows = {k: v if isinstance(v, datetime) else datetime.fromisoformat(v) for k, v in
            rows.items()}
    assert rows["no_offset"] == rows["offset"] == datetime(2026, 10, 5, 10)
    assert rows["zulu"] == datetime(2026, 10, 5, 10, 0, 0, 250000)
    assert rows["missing"] == CLOCK.now()   # the time of ingestion
    # Re-sending the event without a timestamp later is still a duplicate, not a conflict.
    assert ingest(acme, [path]).total.duplicates == 4


def test_metadata_numbers_are_stored_exactly(acme, tmp_path):
    path = tmp_path / "exact.jsonl"
    path.write_text('{"event_id": "n", "customer_id": "cus_acme", "event_name": "x", '
                    '"metadata": {"v": 0.100000000000000001, "big": 99999999999999999999}}\n'
                    '{"event_id": "m", "customer_id": "cus_acme", "event_name": "x", '
                    '"metadata": {"v": 0.1000000000000000001}}\n')
    report = ingest(acme, [path])
    assert report.total.reasons == {"out_of_range": 1}   # 19 decimal places: over the limit
    with acme.connect() as conn:
        raw = conn.execute(text("SELECT metadata FROM event")).scalar_one()
    meta = json.loads(raw, parse_float=Decimal) if isinstance(raw, str) else raw
    assert meta["v"] == Decimal("0.100000000000000001")
    assert meta["big"] == 99999999999999999999


def test_all_formats(acme, tmp_path):
    with gzip.open(tmp_path / "a.ndjson.gz", "wt") as handle:
        handle.write(json.dumps(ev("gz1")) + "\n")
    (tmp_path / "batch.json").write_text(json.dumps({"events": [ev("j1"), ev("j2"), 5]}))
    with open(tmp_path / "flat.csv", "w", newline="") as handle:
        w = csv.writer(handle)
        w.writerow(["event_id", "customer_id", "event_name", "timestamp", "metadata.tokens",
                    "metadata.model"])
        w.writerow(["c1", "cus_acme", "llm.completion", "2026-10-01T00:00:00Z", "150", "large"])
        w.writerow(["c2", "cus_acme", "llm.completion", "", "2.5", ""])
        w.writerow(["c3", "cus_acme"])
    with open(tmp_path / "json_meta.csv", "w", newline="") as handle:
        w = csv.writer(handle)
        w.writerow(["event_id", "customer_id", "event_name", "timestamp", "metadata"])
        w.writerow(["m1", "cus_acme", "api.call", "2026-10-01T00:00:00Z", '{"tokens": "150"}'])
        w.writerow(["m2", "cus_acme", "api.call", "2026-10-01T00:00:00Z", "{not json"])
    pq.write_table(pa.table({
        "event_id": ["p1", "p2"], "customer_id": ["cus_acme", "cus_zzz"],
        "event_name": ["llm.completion"] * 2,
        "timestamp": [datetime(2026, 10, 2), datetime(2026, 10, 3)],
        "metadata.tokens": [7, 8]}), tmp_path / "p.parquet")
    (tmp_path / "notes.txt").write_text("ignored: not an event file")
    report = ingest(acme, [tmp_path])
    by_file = {f.path.rsplit("/", 1)[-1]: f.accounting.as_dict() for f in report.files}
    assert report.errors == []
    assert by_file == {
        "a.ndjson.gz": {"records": 1, "ingested": 1, "duplicates": 0, "rejected": 0},
        "batch.json": {"records": 3, "ingested": 2, "duplicates": 0, "rejected": 1},
        "flat.csv": {"records": 3, "ingested": 2, "duplicates": 0, "rejected": 1},
        "json_meta.csv": {"records": 2, "ingested": 1, "duplicates": 0, "rejected": 1},
        "p.parquet": {"records": 2, "ingested": 1, "duplicates": 0, "rejected": 1},
    }
    assert quarantine_reasons(acme) == {("events[2]", "not_an_object"),
                                        ("row 3", "malformed_row"),
                                        ("row 2", "invalid_metadata"),
                                        ("row 2", "unknown_customer")}
    with acme.connect() as conn:
        metas = dict(conn.execute(text("SELECT event_id, metadata FROM event")).all())
    metas = {k: json.loads(v, parse_float=Decimal) if isinstance(v, str) else v
             for k, v in metas.items()}
    assert metas["c1"] == {"tokens": 150, "model": "large"}
    assert metas["c2"] == {"tokens": Decimal("2.5")}
    assert metas["m1"] == {"tokens": "150"}   # a JSON string stays a string
    assert metas["p1"] == {"tokens": 7}


def test_unreadable_inputs_are_named_and_do_not_lose_good_ones(acme, tmp_path):
    good = write_jsonl(tmp_path / "good.jsonl", [ev("g1")])
    bad_header = tmp_path / "bad.csv"
    bad_header.write_text("id,customer\n1,cus_acme\n")
    broken_gz = tmp_path / "broken.jsonl.gz"
    lines = "".join(json.dumps(ev(f"z{i}")) + "\n" for i in range(50)).encode()
    broken_gz.write_bytes(gzip.compress(lines)[:-12])          # truncated archive
    report = ingest(acme, [good, bad_header, broken_gz, tmp_path / "missing.jsonl"])
    assert any("bad.csv: header: missing column(s) event_id, customer_id, event_name; "
               "unknown column(s) id, customer" in e for e in report.errors)
    # The archive was cut: every line before the cut is read, then the place is named.
    stopped = next(e for e in report.errors if "broken.jsonl.gz: reading stopped at line" in e)
    line = int(stopped.split("reading stopped at line ")[1].split(":")[0])
    assert 45 <= line <= 50 and "ended before the end-of-stream marker" in stopped
    assert any("missing.jsonl: no such file or folder" in e for e in report.errors)
    assert count(acme, "event") == 1 + (line - 1)
    with acme.connect() as conn:
        assert conn.execute(text("SELECT 1 FROM event WHERE event_id='g1'")).scalar_one() == 1


def test_chunks_already_read_are_kept_when_a_file_breaks_later(acme, tmp_path):
    """A gzip cut at 60 %: every record before the cut is kept, whatever the chunking."""
    path = tmp_path / "late.jsonl.gz"
    lines = "".join(json.dumps(ev(f"k{i}", n=i)) + "\n" for i in range(30_000)).encode()
    compressed = gzip.compress(lines)
    path.write_bytes(compressed[:len(compressed) * 6 // 10])
    report = ingest(acme, [path], chunk_size=7000)
    [error] = report.errors
    line = int(error.split("reading stopped at line ")[1].split(":")[0])
    assert 15_000 < line < 30_000
    assert report.total.ingested == line - 1        # every complete record before the cut
    assert count(acme, "event") == line - 1


def test_replay_ingests_records_once_their_customer_exists(acme, tmp_path):
    path = write_jsonl(tmp_path / "r.jsonl", [ev("r1", customer="cus_new"),
                                               ev("r2", customer="cus_new"), "{bad"])
    assert ingest(acme, [path]).total.rejected == 3
    first = replay_quarantine(acme)
    assert first.as_dict() == {"records": 3, "ingested": 0, "duplicates": 0, "rejected": 3}
    customers = [{"id": "cus_acme", "name": "Acme", "email": "a@acme.test"},
                 {"id": "cus_new", "name": "New Co", "email": "n@new.test"}]
    apply(acme, catalog_with(customers=customers))
    second = replay_quarantine(acme)
    assert second.as_dict() == {"records": 3, "ingested": 2, "duplicates": 0, "rejected": 1}
    pending = list_quarantine(acme)
    assert [(r.reason, r.attempts) for r in pending] == [("malformed_json", 3)]
    closed = list_quarantine(acme, status="ingested")
    assert sorted(r.resolved_event_id for r in closed) == ["r1", "r2"]
    # Ingesting the original file again: the replayed events are now duplicates.
    again = ingest(acme, [path]).total
    assert (again.duplicates, again.rejected) == (2, 1)
    assert count(acme, "quarantine") == 3


@pytest.mark.parametrize("chunk_size", [1, 2, 1000])
def test_dedup_is_the_same_whatever_the_chunking(acme, tmp_path, chunk_size):
    path = write_jsonl(tmp_path / "d.jsonl", [ev("a"), ev("b"), ev("a"),
                                               ev("b", ts="2026-10-09T00:00:00Z"), ev("a")])
    total = ingest(acme, [path], chunk_size=chunk_size).total
    assert total.as_dict() == {"records": 5, "ingested": 2, "duplicates": 2, "rejected": 1}


def test_bad_bytes_and_nul_characters_reject_only_their_record(acme, tmp_path):
    path = tmp_path / "bytes.jsonl"
    good = json.dumps(ev("ok1")).encode()
    path.write_bytes(b"\n".join([
        good,
        b'{"event_id": "latin1", "customer_id": "cus_acme", "event_name": "caf\xe9"}',
        json.dumps(ev("nul_meta") | {"metadata": {"k": "a\u0000b"}}).encode(),
        b'{"event_id": "nul_raw\x00", ',
        json.dumps(ev("nul_field") | {"x\u0000": 1}).encode(),
        json.dumps(ev("ok2")).encode(),
    ]) + b"\n")
    report = ingest(acme, [path])
    assert report.errors == []
    assert report.total.as_dict() == {"records": 6, "ingested": 2, "duplicates": 0,
                                       "rejected": 4}
    assert quarantine_reasons(acme) == {("line 2", "invalid_encoding"),
                                        ("line 3", "invalid_metadata"),
                                        ("line 4", "malformed_json"),
                                        ("line 5", "unknown_field")}


def test_the_fast_path_for_clean_json_stores_exactly_what_the_checked_path_stores():
    """Records read from JSON text without escapes skip the per-string surrogate and NUL
    checks and take the C encoder: the event, its JSON and its hash are the same."""
    from datetime import datetime
    from decimal import Decimal

    from billing_core.ingest.validate import validate

    candidates = [
        {"event_id": "e1", "customer_id": "c", "event_name": "n",
         "timestamp": "2026-10-01T00:00:00+02:00",
         "metadata": {"b": 1, "a": "x", "z": None, "t": True, "big": 10 ** 19}},
        {"event_id": "e2", "customer_id": "c", "event_name": "n",
         "metadata": {"v": Decimal("1.50"), "w": "é"}},
        {"event_id": "e3", "customer_id": "c", "event_name": "n"},
    ]
    now = datetime(2026, 11, 1)
    for candidate in candidates:
        assert validate(candidate, {"c"}, now, clean=True) == \
            validate(candidate, {"c"}, now, clean=False)
