"""Hostile event files, on SQLite and PostgreSQL: each case puts one bad record (or one
broken part of a file) between good records and asserts the exact outcome — the reason
code and detail, or the error naming the file and place — and that every good record
around it was kept. No case may produce a traceback or lose a readable record."""

import csv
import gzip
import io
import json
import os
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import text

from tests.conftest import ingest, list_quarantine

GOOD = {"customer_id": "cus_acme", "event_name": "api.call", "timestamp": "2026-10-05T10:00:00Z",
        "metadata": {"method": "POST"}}


def good(event_id: str) -> str:
    return json.dumps({"event_id": event_id, **GOOD})


def event(**fields) -> str:
    return json.dumps({"event_id": "bad", **GOOD, **fields})


@dataclass
class Case:
    name: str
    file: str                   # file name (its suffix chooses the format)
    content: bytes
    reason: str | None = None   # the bad record's reason code
    detail: str | None = None   # a piece of the quarantined detail
    error: str | None = None    # a piece of the error naming the file (reading stopped)
    kept: int = 2               # good records that must be stored


def jsonl(*lines: str, bom: bool = False) -> bytes:
    body = "\n".join([good("before"), *lines, good("after")]) + "\n"
    return (b"\xef\xbb\xbf" if bom else b"") + body.encode("utf-8", "surrogatepass")


def line_case(name, line, reason, detail=None) -> Case:
    return Case(name, "e.jsonl", jsonl(line), reason, detail)


DEEP = '{"a": ' * 250 + "1" + "}" * 250
CASES = [
    # --- JSON Lines: the line itself ------------------------------------------------------
    line_case("malformed json", '{"event_id": ', "malformed_json", "Expecting value"),
    line_case("NaN", event(metadata={"n": 1}).replace("1}", "NaN}"), "malformed_json", "NaN"),
    line_case("Infinity", event().replace('"POST"', "Infinity"), "malformed_json", "Infinity"),
    line_case("a list", "[1, 2]", "not_an_object", "got list"),
    line_case("a string", '"event"', "not_an_object", "got str"),
    line_case("a NUL byte outside strings", good("x").replace(",", ",\x00", 1),
              "malformed_json"),
    Case("not UTF-8", "e.jsonl",
         good("before").encode() + b"\n" + event().encode().replace(b"POST", b"P\xe9ST")
         + b"\n" + good("after").encode() + b"\n", "invalid_encoding", "not UTF-8"),
    line_case("over 64 KiB", event(metadata={"s": "x" * 70_000}), "too_large", "70"),
    Case("a 3 MB line", "e.jsonl", jsonl(event(metadata={"s": "x" * 3_000_000})),
         "too_large", "bytes"),
    line_case("nested 250 levels", event().replace('{"method": "POST"}', DEEP), "too_deep",
              "nested more than 32"),
    line_case("a key twice in the event", event()[:-1] + ', "event_id": "again"}',
              "duplicate_key", "'event_id' is given twice"),
    line_case("a key twice in metadata", event().replace('"POST"}', '"POST", "method": "GET"}'),
              "duplicate_key", "'method' is given twice"),
    # --- fields ---------------------------------------------------------------------------
    line_case("no event_id", json.dumps(GOOD), "missing_field", "'event_id'"),
    line_case("empty event_id", event(event_id=""), "missing_field", "'event_id'"),
    line_case("no customer_id", event(customer_id=None), "missing_field", "'customer_id'"),
    line_case("event_id a number", event(event_id=5), "invalid_field", "must be a string"),
    line_case("event_id with a bell", event(event_id="a\u0007b"), "invalid_field",
              "printable"),
    line_case("event_id of 300 characters", event(event_id="e" * 300), "invalid_field",
              "at most 256"),
    line_case("a lone surrogate in event_id", event().replace('"bad"', '"b\\udc80d"'),
              "invalid_encoding", "lone surrogate \\udc80"),
    line_case("a lone surrogate in metadata",
              event().replace('"POST"', '"P\\udc80"'), "invalid_encoding",
              "metadata.method holds a lone surrogate"),
    line_case("an unknown field", event(properties={}), "unknown_field", "'properties'"),
    line_case("unknown customer", event(customer_id="cus_nobody"), "unknown_customer",
              "'cus_nobody'"),
    # --- timestamps -----------------------------------------------------------------------
    line_case("not a time", event(timestamp="yesterday"), "invalid_timestamp", "not ISO 8601"),
    line_case("a number as time", event(timestamp=1_700_000_000), "invalid_timestamp",
              "must be an ISO 8601 string"),
    line_case("a 100-character time", event(timestamp="2026-10-05T10:00:00" + "0" * 81),
              "invalid_timestamp", "100 characters"),
    line_case("year 1 east of UTC", event(timestamp="0001-01-01T00:00:00+01:00"),
              "out_of_range", "represented in UTC"),
    line_case("year 9999 west of UTC", event(timestamp="9999-12-31T23:59:59-01:00"),
              "out_of_range", "represented in UTC"),
    line_case("before 1970", event(timestamp="1969-12-31T23:59:59Z"), "out_of_range",
              "outside 1970-01-01 to 2199-12-31"),
    line_case("year 2200", event(timestamp="2200-01-01T00:00:00Z"), "out_of_range",
              "outside 1970-01-01 to 2199-12-31"),
    # --- metadata -------------------------------------------------------------------------
    line_case("metadata a string", event(metadata="tokens=5"), "invalid_metadata",
              "must be an object"),
    line_case("metadata nested", event(metadata={"a": {"b": 1}}), "invalid_metadata",
              "metadata.a must be a string, number, boolean or null"),
    line_case("metadata list", event(metadata={"a": [1]}), "invalid_metadata", "got list"),
    line_case("65 metadata keys", event(metadata={f"k{i}": i for i in range(65)}),
              "too_large", "65 keys"),
    line_case("a 200-character key", event(metadata={"k" * 200: 1}), "too_large",
              "200 characters"),
    line_case("a 5,000-character value", event(metadata={"s": "v" * 5000}), "too_large",
              "5000 characters"),
    line_case("NUL in a value", event(metadata={"s": "a\u0000b"}), "invalid_metadata",
              "NUL"),
    line_case("NUL in a key", event(metadata={"a\u0000": 1}), "invalid_metadata", "NUL"),
    line_case("1e999999999", event().replace('"POST"', "1e999999999"), "out_of_range",
              "too large"),
    line_case("1e400 tokens", event().replace('"POST"', "1e400"), "out_of_range",
              "too large"),
    line_case("85 significant digits", event().replace('"POST"', "1." + "1" * 84),
              "out_of_range", "decimal places"),
    line_case("1e-90 on a last meter", event().replace('"POST"', "1e-90"), "out_of_range",
              "decimal places"),
    line_case("an integer of 5,000 digits", event().replace('"POST"', "7" * 5000),
              "out_of_range", "more than 4300 digits"),
    line_case("10**20", event().replace('"POST"', "1" + "0" * 20), "out_of_range",
              "too large"),
    # --- JSON Lines: the file -------------------------------------------------------------
    Case("a byte-order mark", "e.jsonl", jsonl(good("middle"), bom=True), kept=3),
    Case("CRLF line ends", "e.jsonl", jsonl(good("middle")).replace(b"\n", b"\r\n"), kept=3),
    Case("blank lines", "e.jsonl", jsonl("", "   ", good("middle")), kept=3),
    Case("a conflicting re-send", "e.jsonl",
         jsonl(good("same"), json.dumps({"event_id": "same", **GOOD, "metadata": {}})),
         "conflicting_duplicate", "earlier in this input", kept=3),
    # --- CSV ------------------------------------------------------------------------------
    Case("CSV: a Latin-1 byte", "e.csv",
         b"event_id,customer_id,event_name,timestamp,metadata.method\n"
         b"before,cus_acme,api.call,2026-10-05T10:00:00Z,POST\n"
         b"bad,cus_acme,api.call,2026-10-05T10:00:00Z,P\xe9ST\n"
         b"after,cus_acme,api.call,2026-10-05T10:00:00Z,POST\n", "invalid_encoding",
         "column metadata.method of row 2"),
    Case("CSV: a byte-order mark", "e.csv",
         b"\xef\xbb\xbfevent_id,customer_id,event_name\nbefore,cus_acme,api.call\n"
         b"after,cus_acme,api.call\n"),
    Case("CSV: too few fields", "e.csv",
         b"event_id,customer_id,event_name\nbefore,cus_acme,api.call\nbad,cus_acme\n"
         b"after,cus_acme,api.call\n", "malformed_row", "expected 3 fields, got 2"),
    Case("CSV: metadata not JSON", "e.csv",
         b'event_id,customer_id,event_name,metadata\nbefore,cus_acme,api.call,{}\n'
         b'bad,cus_acme,api.call,"{oops"\nafter,cus_acme,api.call,{}\n',
         "invalid_metadata", "metadata column is not valid JSON"),
    Case("CSV: a key twice in metadata", "e.csv",
         b'event_id,customer_id,event_name,metadata\nbefore,cus_acme,api.call,{}\n'
         b'bad,cus_acme,api.call,"{""a"": 1, ""a"": 2}"\nafter,cus_acme,api.call,{}\n',
         "duplicate_key", "'a' is given twice"),
    Case("CSV: 1e400 in a metadata column", "e.csv",
         b"event_id,customer_id,event_name,metadata.tokens\nbefore,cus_acme,api.call,1\n"
         b"bad,cus_acme,api.call,1e400\nafter,cus_acme,api.call,2\n", "out_of_range",
         "metadata.tokens is too large"),
    Case("CSV: a quoted line break", "e.csv",
         b'event_id,customer_id,event_name,metadata.note\nbefore,cus_acme,api.call,"a\nb"\n'
         b"after,cus_acme,api.call,x\n"),
    Case("CSV: a header without event_id", "e.csv",
         b"id,customer_id,event_name\n1,cus_acme,api.call\n",
         error="header: missing column(s) event_id; unknown column(s) id", kept=0),
    Case("CSV: a field over the limit", "e.csv",
         b"event_id,customer_id,event_name,metadata.s\nbefore,cus_acme,api.call,x\n"
         b"mid,cus_acme,api.call,x\n" + b"bad,cus_acme,api.call," + b"x" * 70_000 + b"\n"
         b"after,cus_acme,api.call,x\n", error="reading stopped at row 3", kept=2),
    # --- JSON batch -----------------------------------------------------------------------
    Case("batch: two events keys", "e.json",
         b'{"events": [' + good("before").encode() + b'], "events": [' +
         good("after").encode() + b"]}", error="key 'events' is given twice at the top level",
         kept=0),
    Case("batch: a key twice in one event", "e.json",
         ('{"events": [' + good("before") + ", " + event()[:-1] + ', "event_id": "x"}, '
          + good("after") + "]}").encode(), "duplicate_key", "'event_id' is given twice"),
    Case("batch: an item not an object", "e.json",
         ('{"events": [' + good("before") + ", 7, " + good("after") + "]}").encode(),
         "not_an_object", "got int"),
    Case("batch: an unknown top-level field", "e.json",
         (b'{"events": [], "extra": 1}'), error="unknown top-level field(s) extra",
         kept=0),
    Case("batch: not UTF-8", "e.json", b'{"events": [\n\xff]}',
         error="not UTF-8 at line 2", kept=0),
    Case("batch: a byte-order mark", "e.json",
         b"\xef\xbb\xbf" + ('{"events": [' + good("before") + ", " + good("after")
                            + "]}").encode()),
    Case("batch: 1e999999999", "e.json",
         ('{"events": [' + good("before") + ", " + event().replace('"POST"', "1e999999999")
          + ", " + good("after") + "]}").encode(), "out_of_range", "too large"),
    # --- gzip -----------------------------------------------------------------------------
    Case("gzip: not gzip at all", "e.jsonl.gz", jsonl(), error="reading stopped at line 1",
         kept=0),
]


def _parquet(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


PARQUET = [
    Case("parquet: a timestamp out of range", "e.parquet", _parquet(pa.table({
        "event_id": ["before", "bad", "after"], "customer_id": ["cus_acme"] * 3,
        "event_name": ["api.call"] * 3,
        "timestamp": pa.array([1_790_000_000_000_000, 400_000_000_000_000_000,
                               1_790_000_000_000_000], type=pa.timestamp("us"))})),
        "out_of_range", "out of range"),
    Case("parquet: NaN in a metadata column", "e.parquet", _parquet(pa.table({
        "event_id": ["before", "bad", "after"], "customer_id": ["cus_acme"] * 3,
        "event_name": ["api.call"] * 3, "metadata.gb": [1.5, float("nan"), 2.0]})),
        "invalid_metadata", "not a finite number"),
    Case("parquet: a corrupt file", "e.parquet", b"PAR1" + os.urandom(200) + b"PAR1",
         error="not a readable Parquet file", kept=0),
]


@pytest.mark.parametrize("case", CASES + PARQUET, ids=lambda c: c.name)
def test_bad_event_input(acme, tmp_path, case):
    path = tmp_path / case.file
    path.write_bytes(case.content)
    report = ingest(acme, [path])
    total = report.total
    assert total.records == total.ingested + total.duplicates + total.rejected
    with acme.connect() as conn:
        stored = set(conn.execute(text("SELECT event_id FROM event")).scalars())
    assert len(stored) == case.kept, stored
    if case.kept >= 2:
        assert {"before", "after" if not case.error else "mid"} <= stored
    rejected = list_quarantine(acme, limit=None)
    if case.reason:
        assert [r.reason for r in rejected] == [case.reason], \
            [(r.reason, r.detail) for r in rejected]
        assert case.detail is None or case.detail in rejected[0].detail, rejected[0].detail
        assert rejected[0].source == str(path.resolve())
    else:
        assert rejected == []
    if case.error:
        [error] = report.errors
        assert error.startswith(str(path.resolve()) + ":") and case.error in error, error
    else:
        assert report.errors == []


def test_a_gzip_cut_part_way_keeps_every_record_before_the_cut(acme, tmp_path):
    path = tmp_path / "cut.jsonl.gz"
    data = gzip.compress("".join(good(f"e{i}") + "\n" for i in range(20_000)).encode())
    path.write_bytes(data[: len(data) * 6 // 10])
    report = ingest(acme, [path], chunk_size=3000)
    [error] = report.errors
    line = int(error.split("reading stopped at line ")[1].split(":")[0])
    assert report.total.ingested == line - 1 and line > 5000


def test_a_latin1_row_deep_in_a_csv_costs_only_that_row(acme, tmp_path):
    rows = [b"event_id,customer_id,event_name"]
    rows += [f"r{i},cus_acme,api.call".encode() for i in range(50_000)]
    rows[45_000] = b"r44999,cus_\xe9acme,api.call"
    (tmp_path / "big.csv").write_bytes(b"\n".join(rows) + b"\n")
    report = ingest(acme, [tmp_path / "big.csv"])
    assert report.errors == []
    assert (report.total.ingested, report.total.rejected) == (49_999, 1)
    [row] = list_quarantine(acme)
    assert row.location == "row 45000" and row.reason == "invalid_encoding"


def test_quarantined_raw_text_is_stored_whatever_it_holds(acme, tmp_path):
    """Lone surrogates and NUL characters in the raw text are stored as escapes (PostgreSQL
    refuses both in text)."""
    path = tmp_path / "x.jsonl"
    path.write_bytes(jsonl('{"event_id": "\\udc80", "x": "\\u0000"', event(x="\u0000")))
    ingest(acme, [path])
    rows = list_quarantine(acme)
    assert [r.reason for r in rows] == ["malformed_json", "unknown_field"]


def test_folders_report_what_they_cannot_read(acme, tmp_path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.jsonl").write_text(good("a") + "\n")
    (folder / "sub" / "b.jsonl").write_text(good("b") + "\n")
    (folder / "notes.txt").write_text("not events")
    (folder / "dangling.jsonl").symlink_to(tmp_path / "nowhere.jsonl")
    os.mkfifo(folder / "pipe.jsonl")
    (folder / "sub" / "loop").symlink_to(folder)              # a link back up
    (folder / "again.jsonl").symlink_to(folder / "a.jsonl")   # the same file twice
    report = ingest(acme, [folder])
    assert report.total.ingested == 2 and report.total.duplicates == 0
    errors = "\n".join(report.errors)
    assert f"{folder / 'dangling.jsonl'}: dangling symbolic link" in errors
    assert f"{folder / 'pipe.jsonl'}: not a regular file" in errors
    notes = "\n".join(report.notes)
    assert f"{folder / 'notes.txt'}: skipped, not an event file" in notes
    assert f"{folder / 'sub' / 'loop'}: skipped, a link back to {folder}" in notes
    assert "skipped, the same file as" in notes


def test_csv_written_by_excel_with_a_bom_reads_every_row(acme, tmp_path):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["event_id", "customer_id", "event_name", "metadata.tokens"])
    writer.writerows([[f"x{i}", "cus_acme", "llm.completion", str(i)] for i in range(5)])
    (tmp_path / "excel.csv").write_bytes(buffer.getvalue().encode("utf-8-sig"))
    report = ingest(acme, [tmp_path / "excel.csv"])
    assert report.errors == [] and report.total.ingested == 5
