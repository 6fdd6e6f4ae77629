"""Streaming readers for event files: each yields chunks of RawRecord.

Supported: .jsonl / .ndjson (also .gz), .json (`{"events": [...]}`, also .gz), .csv (also
.gz) and .parquet. A byte-order mark is accepted everywhere.

One bad record never costs another: a line that is not UTF-8 or not JSON, a CSV row with a
byte that is not UTF-8, a Parquet cell that cannot be converted, becomes one rejected
record. When a file breaks part-way (truncated gzip, a corrupt Parquet page, a CSV field
over the size limit), every record read before the break is yielded, then
UnreadableInput names the file and the place where reading stopped.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, cast

from billing_core.errors import describe
from billing_core.ingest.jsontext import JsonProblem, KeyedTwice, parse_json
from billing_core.ingest.paths import SUFFIXES, file_format
from billing_core.ingest.records import RawRecord, Reason
from billing_core.limits import MAX_RECORD_BYTES

CHUNK_SIZE = 20_000
MAX_BATCH_FILE_BYTES = 256 * 1024 * 1024
CSV_REQUIRED = ("event_id", "customer_id", "event_name")
CSV_KNOWN = ("event_id", "customer_id", "event_name", "timestamp", "metadata")
BOM = b"\xef\xbb\xbf"
_NUMBER_RE = re.compile(r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$")

__all__ = ["CHUNK_SIZE", "SUFFIXES", "UnreadableInput", "file_format", "infer_cell",
           "parse_json", "read_records"]


class UnreadableInput(Exception):
    """A file (or the rest of it) that cannot be read; the message names it, and where."""


@dataclass
class _Position:
    """Where a reader is, for the message when reading stops."""

    place: str = "its start"


def _open_binary(path: Path) -> IO[bytes]:
    if path.name.lower().endswith(".gz"):
        return cast(IO[bytes], gzip.open(path, "rb"))
    return open(path, "rb")


def read_records(path: Path, chunk_size: int = CHUNK_SIZE) -> Iterator[list[RawRecord]]:
    """Chunks of records from one file. Raises UnreadableInput if the file (or its rest)
    cannot be read, after yielding every record read before the break."""
    kind = file_format(path)
    source = str(path.resolve())
    position = _Position()
    if kind == "jsonl":
        records = _jsonl_records(path, source, position)
    elif kind == "json":
        records = _json_batch_records(path, source)
    elif kind == "csv":
        records = _csv_records(path, source, position)
    elif kind == "parquet":
        records = _parquet_records(path, source, position)
    else:
        raise UnreadableInput(f"{path}: unsupported file type")
    chunk: list[RawRecord] = []
    failure: str | None = None
    try:
        for record in records:
            chunk.append(record)
            if len(chunk) >= chunk_size:
                yield chunk
                chunk = []
    except UnreadableInput as exc:
        failure = str(exc)
    except Exception as exc:  # gzip, zlib, csv, pyarrow, OS errors: the rest is unreadable
        failure = f"{path}: reading stopped at {position.place}: {describe(exc)}"
    if chunk:
        yield chunk
    if failure:
        raise UnreadableInput(failure)


def _too_large(source: str, location: str, head: bytes | str, size: str) -> RawRecord:
    text = head.decode("utf-8", "replace") if isinstance(head, bytes) else head
    return RawRecord(source, location, text[:200] + "...",
                     error=(Reason.TOO_LARGE, f"the record is {size} (at most "
                                              f"{MAX_RECORD_BYTES} bytes)"))


# --- JSON Lines --------------------------------------------------------------------------

def _jsonl_records(path: Path, source: str, position: _Position) -> Iterator[RawRecord]:
    with _open_binary(path) as handle:
        number = 0
        while True:
            position.place = f"line {number + 1}"   # a failure is reading this line
            line = handle.readline(MAX_RECORD_BYTES + 1)
            if not line:
                return
            number += 1
            location = f"line {number}"
            if len(line) > MAX_RECORD_BYTES and not line.endswith(b"\n"):
                size = len(line)
                while True:  # skip the rest of this line without holding it
                    more = handle.readline(1 << 20)
                    size += len(more)
                    if not more or more.endswith(b"\n"):
                        break
                yield _too_large(source, location, line[:200], f"{size} bytes")
                continue
            if number == 1 and line.startswith(BOM):
                line = line[3:]
            try:  # decoded line by line: one bad byte rejects one record, not the file
                text = line.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                yield RawRecord(source, location,
                                line.decode("utf-8", "replace").rstrip("\r\n"),
                                error=(Reason.INVALID_ENCODING,
                                       f"not UTF-8: {exc.reason} at byte {exc.start}"))
                continue
            if text.strip():  # blank lines are not records
                yield RawRecord(source, location, text, parsed=False)


def parse_line(record: RawRecord) -> None:
    """Parse an unparsed JSON Lines record the exact way: fill in its candidate, or its
    error (malformed, a key given twice, too deep, not an object...)."""
    if record.parsed:
        return
    record.parsed = True
    text = record.raw
    try:
        value = parse_json(text)
    except JsonProblem as exc:
        record.error = (exc.reason, exc.detail)
        return
    if not isinstance(value, dict):
        record.error = (Reason.NOT_AN_OBJECT,
                        f"expected a JSON object, got {type(value).__name__}")
        return
    record.candidate = value
    record.clean = "\\u" not in text and "\x00" not in text


# --- JSON batch --------------------------------------------------------------------------

def _raw(value: Any) -> str:
    """A value's JSON text for the quarantine (numbers as written, never expanded)."""
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (ValueError, TypeError, RecursionError):
        return repr(value)[:MAX_RECORD_BYTES]


def _json_batch_records(path: Path, source: str) -> Iterator[RawRecord]:
    with _open_binary(path) as handle:
        data = handle.read(MAX_BATCH_FILE_BYTES + 1)
    if len(data) > MAX_BATCH_FILE_BYTES:
        raise UnreadableInput(f"{path}: a JSON batch file may hold at most "
                              f"{MAX_BATCH_FILE_BYTES // (1024 * 1024)} MiB; use JSON Lines "
                              f"(.jsonl) for larger files")
    if data.startswith(BOM):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise UnreadableInput(f"{path}: not UTF-8 at line {line} (byte {exc.start}); a "
                              f"JSON batch is read whole, so nothing of it was read") from None
    try:
        document = parse_json(text, strict_keys=False)
    except JsonProblem as exc:
        raise UnreadableInput(f"{path}: not valid JSON: {exc.detail}") from None
    if not isinstance(document, dict) or not isinstance(document.get("events"), list):
        raise UnreadableInput(f'{path}: a .json file must be {{"events": [...]}} '
                              f"(use .jsonl for one event per line)")
    if duplicated := duplicated_key(document, deep=False):
        raise UnreadableInput(f"{path}: key {duplicated!r} is given twice at the top level")
    extra = set(document) - {"events"}
    if extra:
        raise UnreadableInput(f"{path}: unknown top-level field(s) {', '.join(sorted(extra))}")
    for index, item in enumerate(document["events"]):
        location, raw = f"events[{index}]", _raw(item)
        if len(raw) > MAX_RECORD_BYTES:
            yield _too_large(source, location, raw, f"{len(raw)} characters")
        elif not isinstance(item, dict):
            yield RawRecord(source, location, raw,
                            error=(Reason.NOT_AN_OBJECT,
                                   f"expected a JSON object, got {type(item).__name__}"))
        elif duplicated := duplicated_key(item):
            yield RawRecord(source, location, raw,
                            error=(Reason.DUPLICATE_KEY,
                                   f"key {duplicated!r} is given twice in one object"))
        else:
            yield RawRecord(source, location, raw, candidate=dict(item))


def duplicated_key(value: Any, deep: bool = True) -> str | None:
    """A key given twice in an object read with strict_keys=False (None if none)."""
    if isinstance(value, KeyedTwice):
        return value.duplicated
    if deep and isinstance(value, dict):
        for item in value.values():
            found = duplicated_key(item)
            if found is not None:
                return found
    return None


# --- CSV ---------------------------------------------------------------------------------

def infer_cell(text: str) -> Any:
    """A CSV metadata cell: a JSON-number text becomes int/Decimal, true/false a boolean,
    anything else stays a string. (CSV has no types; use a JSON `metadata` column to send
    a numeric-looking string.)"""
    if _NUMBER_RE.match(text):
        if "." in text or "e" in text or "E" in text or len(text) > 40:
            return Decimal(text)   # a long integer stays exact too (validation limits it)
        return int(text)
    if text in ("true", "false"):
        return text == "true"
    return text


def _has_bad_bytes(cells: list[str]) -> int | None:
    """Index of the first cell holding bytes that were not UTF-8 (decoded as surrogates)."""
    for i, cell in enumerate(cells):
        for ch in cell:
            if "\udc80" <= ch <= "\udcff":
                return i
    return None


def _check_columns(header: list[str], path: Path) -> tuple[list[str], dict[int, str]]:
    missing = [c for c in CSV_REQUIRED if c not in header]
    unknown = [c for c in header if c not in CSV_KNOWN and not c.startswith("metadata.")]
    duplicated = sorted({c for c in header if header.count(c) > 1})
    problems = []
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    if unknown:
        names = ", ".join(c if c.isprintable() else repr(c) for c in unknown)
        problems.append(f"unknown column(s) {names} (metadata columns are named "
                        f"metadata.<key>)")
    if duplicated:
        problems.append(f"repeated column(s) {', '.join(duplicated)}")
    if "metadata" in header and any(c.startswith("metadata.") for c in header):
        problems.append("use either a JSON 'metadata' column or 'metadata.<key>' columns")
    if problems:
        raise UnreadableInput(f"{path}: header: {'; '.join(problems)}")
    meta_columns = {i: c[len("metadata."):] for i, c in enumerate(header)
                    if c.startswith("metadata.")}
    return header, meta_columns


def _csv_records(path: Path, source: str, position: _Position) -> Iterator[RawRecord]:
    csv.field_size_limit(MAX_RECORD_BYTES)
    with io.TextIOWrapper(_open_binary(path), encoding="utf-8", errors="surrogateescape",
                          newline="") as handle:
        reader = csv.reader(handle)
        position.place = "the header"
        try:
            header = next(reader)
        except StopIteration:
            return
        if header and header[0].startswith("\ufeff"):
            header[0] = header[0][1:]
        if _has_bad_bytes(header) is not None:
            raise UnreadableInput(f"{path}: the header is not UTF-8 text")
        header, meta_columns = _check_columns([h.strip() for h in header], path)
        width = len(header)
        number = 0
        while True:
            position.place = f"row {number + 1} (line {reader.line_num + 1})"  # being read
            try:
                row = next(reader)
            except StopIteration:
                return
            number += 1
            location = f"row {number}"
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            bad = _has_bad_bytes(row)
            if bad is not None:
                raw = json.dumps([c.encode("utf-8", "surrogateescape").decode("utf-8",
                                                                             "replace")
                                  for c in row], ensure_ascii=False)
                column = header[bad] if bad < width else f"field {bad + 1}"
                yield RawRecord(source, location, raw,
                                error=(Reason.INVALID_ENCODING,
                                       f"not UTF-8: column {column} of row {number}"))
                continue
            cells = dict(zip(header, row, strict=False))
            raw = json.dumps(row if len(row) != width else cells, ensure_ascii=False)
            if len(row) != width:
                yield RawRecord(source, location, raw,
                                error=(Reason.MALFORMED_ROW,
                                       f"expected {width} fields, got {len(row)}"))
            else:
                yield _csv_candidate(source, location, raw, row, header, meta_columns)


def _csv_candidate(source: str, location: str, raw: str, row: list[str], header: list[str],
                   meta_columns: dict[int, str]) -> RawRecord:
    candidate: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    for i, (column, cell) in enumerate(zip(header, row, strict=True)):
        if cell == "":
            continue
        if i in meta_columns:
            metadata[meta_columns[i]] = infer_cell(cell)
        elif column == "metadata":
            try:
                candidate["metadata"] = parse_json(cell)
            except JsonProblem as exc:
                reason = exc.reason if exc.reason != Reason.MALFORMED_JSON \
                    else Reason.INVALID_METADATA
                return RawRecord(source, location, raw,
                                 error=(reason, f"metadata column is not valid JSON: "
                                                f"{exc.detail}"))
        else:
            candidate[column] = cell
    if metadata:
        candidate["metadata"] = metadata
    return RawRecord(source, location, raw, candidate=candidate)


# --- Parquet -----------------------------------------------------------------------------

class _BadCell:
    """A Parquet cell that could not be converted (an out-of-range timestamp...)."""

    def __init__(self, detail: str) -> None:
        self.detail = detail


_EPOCH = datetime(1970, 1, 1)
_UNITS = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": None}


def _timestamp(value: int | None, unit: str) -> Any:
    if value is None:
        return None
    try:
        micros = value // 1000 if unit == "ns" else value * (_UNITS[unit] or 1)
        return _EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        return _BadCell(f"timestamp {value} ({unit} since 1970) is out of range")


def _column_values(column: Any) -> list[Any]:
    """A Parquet column as Python values, one cell at a time where a cell can fail."""
    import pyarrow as pa

    kind = column.type
    if pa.types.is_timestamp(kind):
        return [_timestamp(v, kind.unit) for v in column.cast(pa.int64()).to_pylist()]
    try:
        return list(column.to_pylist())
    except Exception:  # one cell cannot be converted: convert them one by one
        values: list[Any] = []
        for cell in column:
            try:
                values.append(cell.as_py())
            except Exception as exc:
                values.append(_BadCell(f"{kind} value cannot be read: {describe(exc)}"))
        return values


def _parquet_value(value: Any) -> Any:
    """Parquet cells to JSON-model values: floats via their shortest text, never as float."""
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return Decimal("NaN")  # refused by validation as not finite
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _parquet_value(v) for k, v in value.items() if v is not None}
    return value


def _parquet_records(path: Path, source: str, position: _Position) -> Iterator[RawRecord]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises its own error types for corrupt files
        raise UnreadableInput(f"{path}: not a readable Parquet file: {describe(exc)}") from None
    header, meta_columns = _check_columns(
        [n[1:] if i == 0 and n.startswith("\ufeff") else n
         for i, n in enumerate(parquet.schema_arrow.names)], path)
    row_number = 0
    for batch in parquet.iter_batches(batch_size=CHUNK_SIZE):
        columns = [_column_values(batch.column(i)) for i in range(batch.num_columns)]
        for cells in zip(*columns, strict=True):
            row_number += 1
            location = f"row {row_number}"
            position.place = location
            row = dict(zip(header, cells, strict=True))
            raw = _raw(row)
            bad = next((c for c in cells if isinstance(c, _BadCell)), None)
            if bad is not None:
                yield RawRecord(source, location, raw, error=(Reason.OUT_OF_RANGE, bad.detail))
                continue
            yield _parquet_candidate(source, location, raw, row, header, meta_columns)


def _parquet_candidate(source: str, location: str, raw: str, row: dict[str, Any],
                       header: list[str], meta_columns: dict[int, str]) -> RawRecord:
    candidate: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    for i, column in enumerate(header):
        value = row[column]
        if value is None:
            continue
        if i in meta_columns:
            metadata[meta_columns[i]] = _parquet_value(value)
        elif column == "metadata":
            if isinstance(value, str):
                try:
                    candidate["metadata"] = parse_json(value)
                except JsonProblem as exc:
                    return RawRecord(source, location, raw,
                                     error=(Reason.INVALID_METADATA,
                                            f"metadata column is not valid JSON: "
                                            f"{exc.detail}"))
            else:
                candidate["metadata"] = _parquet_value(value)
        elif column == "timestamp" and isinstance(value, datetime):
            candidate[column] = value
        else:
            candidate[column] = _parquet_value(value)
    if metadata:
        candidate["metadata"] = metadata
    return RawRecord(source, location, raw, candidate=candidate)
