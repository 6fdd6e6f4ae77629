"""Streaming readers for event files. Each yields chunks of RawRecord; none loads a whole
file into memory except the `{"events": [...]}` JSON batch shape, which is one document.

Supported: .jsonl / .ndjson (also .gz), .json (`{"events": [...]}`, also .gz),
.csv (also .gz) and .parquet.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from itertools import islice
from pathlib import Path
from typing import IO, Any, cast

from billing_core.db.types import dumps_exact
from billing_core.ingest.records import RawRecord, Reason

CHUNK_SIZE = 20_000
JSONL_SUFFIXES = (".jsonl", ".ndjson")
SUFFIXES = (*JSONL_SUFFIXES, ".json", ".csv", ".parquet")
CSV_REQUIRED = ("event_id", "customer_id", "event_name")
CSV_KNOWN = ("event_id", "customer_id", "event_name", "timestamp", "metadata")
_NUMBER_RE = re.compile(r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$")


class UnreadableInput(Exception):
    """A file (or path) that cannot be read at all; the message names it and why."""


def file_format(path: Path) -> str | None:
    """'jsonl', 'json', 'csv', 'parquet' or None for an unsupported name."""
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
        if name.endswith(".parquet"):
            return None
    for suffix in JSONL_SUFFIXES:
        if name.endswith(suffix):
            return "jsonl"
    for suffix, kind in ((".json", "json"), (".csv", "csv"), (".parquet", "parquet")):
        if name.endswith(suffix):
            return kind
    return None


def expand_paths(paths: list[str | Path]) -> tuple[list[Path], list[str]]:
    """Files to read (folders walked recursively, sorted) and problems (missing paths...)."""
    files: list[Path] = []
    problems: list[str] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and file_format(p))
            files.extend(found)
        elif path.is_file():
            if file_format(path) is None:
                problems.append(f"{path}: unsupported file type (expected one of "
                                f"{', '.join(SUFFIXES)}, optionally .gz)")
            else:
                files.append(path)
        else:
            problems.append(f"{path}: no such file or folder")
    return files, problems


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid JSON number")


_EXACT_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant)


def parse_json(text: str) -> Any:
    """Parse JSON exactly: non-integers become Decimal; NaN/Infinity are refused."""
    if not text or text[0].isspace():
        return _EXACT_DECODER.decode(text)
    value, end = _EXACT_DECODER.raw_decode(text)  # decode() minus its whitespace regexes
    if end != len(text):
        rest = text[end:]
        stripped = rest.lstrip(" \t\n\r")
        if stripped:
            raise json.JSONDecodeError("Extra data", text, end + len(rest) - len(stripped))
    return value


def _open_binary(path: Path) -> IO[bytes]:
    if path.name.lower().endswith(".gz"):
        return cast(IO[bytes], gzip.open(path, "rb"))
    return open(path, "rb")


def _open_text(path: Path) -> IO[str]:
    return io.TextIOWrapper(_open_binary(path), encoding="utf-8", newline="")


def _chunks(records: Iterator[RawRecord], size: int) -> Iterator[list[RawRecord]]:
    while chunk := list(islice(records, size)):
        yield chunk


def read_records(path: Path, chunk_size: int = CHUNK_SIZE) -> Iterator[list[RawRecord]]:
    """Chunks of records from one file. Raises UnreadableInput if the file cannot be read;
    chunks already yielded stay valid."""
    kind = file_format(path)
    source = str(path.resolve())
    try:
        if kind == "jsonl":
            yield from _chunks(_jsonl_records(path, source), chunk_size)
        elif kind == "json":
            yield from _chunks(_json_batch_records(path, source), chunk_size)
        elif kind == "csv":
            yield from _chunks(_csv_records(path, source), chunk_size)
        elif kind == "parquet":
            yield from _read_parquet(path, source, chunk_size)
        else:
            raise UnreadableInput(f"{path}: unsupported file type")
    except UnreadableInput:
        raise
    except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile, csv.Error) as exc:
        raise UnreadableInput(f"{path}: cannot be read: {exc}") from exc


def _jsonl_records(path: Path, source: str) -> Iterator[RawRecord]:
    with _open_binary(path) as handle:
        for number, line in enumerate(handle, start=1):
            try:  # decoded line by line: one bad byte rejects one record, not the file
                text = line.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                yield RawRecord(source, f"line {number}",
                                line.decode("utf-8", "replace").rstrip("\r\n"),
                                error=(Reason.INVALID_ENCODING,
                                       f"not UTF-8: {exc.reason} at byte {exc.start}"))
                continue
            if text.strip():  # blank lines are not records
                yield _json_record(source, f"line {number}", text)


def _json_record(source: str, location: str, text: str) -> RawRecord:
    try:
        value = parse_json(text)
    except ValueError as exc:
        return RawRecord(source, location, text, error=(Reason.MALFORMED_JSON, str(exc)))
    if not isinstance(value, dict):
        return RawRecord(source, location, text,
                         error=(Reason.NOT_AN_OBJECT,
                                f"expected a JSON object, got {type(value).__name__}"))
    return RawRecord(source, location, text, candidate=value)


def _json_batch_records(path: Path, source: str) -> Iterator[RawRecord]:
    with _open_text(path) as handle:
        text = handle.read()
    try:
        document = parse_json(text)
    except ValueError as exc:
        raise UnreadableInput(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("events"), list):
        raise UnreadableInput(f'{path}: a .json file must be {{"events": [...]}} '
                              f"(use .jsonl for one event per line)")
    extra = set(document) - {"events"}
    if extra:
        raise UnreadableInput(f"{path}: unknown top-level field(s) {', '.join(sorted(extra))}")
    for index, item in enumerate(document["events"]):
        location, raw = f"events[{index}]", dumps_exact(item)
        if isinstance(item, dict):
            yield RawRecord(source, location, raw, candidate=item)
        else:
            yield RawRecord(source, location, raw,
                            error=(Reason.NOT_AN_OBJECT,
                                   f"expected a JSON object, got {type(item).__name__}"))


def infer_cell(text: str) -> Any:
    """A CSV metadata cell: a JSON-number text becomes int/Decimal, true/false a boolean,
    anything else stays a string. (CSV has no types; use a JSON `metadata` column to send
    a numeric-looking string.)"""
    if _NUMBER_RE.match(text):
        if "." in text or "e" in text or "E" in text:
            return Decimal(text)
        return int(text)
    if text in ("true", "false"):
        return text == "true"
    return text


def _check_columns(header: list[str], path: Path) -> tuple[list[str], dict[int, str]]:
    missing = [c for c in CSV_REQUIRED if c not in header]
    unknown = [c for c in header if c not in CSV_KNOWN and not c.startswith("metadata.")]
    duplicated = sorted({c for c in header if header.count(c) > 1})
    problems = []
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown column(s) {', '.join(unknown)} (metadata columns are "
                        f"named metadata.<key>)")
    if duplicated:
        problems.append(f"repeated column(s) {', '.join(duplicated)}")
    if "metadata" in header and any(c.startswith("metadata.") for c in header):
        problems.append("use either a JSON 'metadata' column or 'metadata.<key>' columns")
    if problems:
        raise UnreadableInput(f"{path}: header: {'; '.join(problems)}")
    meta_columns = {i: c[len("metadata."):] for i, c in enumerate(header)
                    if c.startswith("metadata.")}
    return header, meta_columns


def _csv_records(path: Path, source: str) -> Iterator[RawRecord]:
    with _open_text(path) as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            return
        header = [h.strip() for h in header]
        header, meta_columns = _check_columns(header, path)
        width = len(header)
        for number, row in enumerate(reader, start=1):
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            location = f"row {number}"
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
            except ValueError as exc:
                return RawRecord(source, location, raw,
                                 error=(Reason.INVALID_METADATA,
                                        f"metadata column is not valid JSON: {exc}"))
        else:
            candidate[column] = cell
    if metadata:
        candidate["metadata"] = metadata
    return RawRecord(source, location, raw, candidate=candidate)


def _parquet_value(value: Any) -> Any:
    """Parquet cells to JSON-model values: floats via their shortest text, never as float."""
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return Decimal("NaN")  # refused by validation as not finite
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _parquet_value(v) for k, v in value.items() if v is not None}
    return value


def _read_parquet(path: Path, source: str, chunk_size: int) -> Iterator[list[RawRecord]]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises its own error types for corrupt files
        raise UnreadableInput(f"{path}: not a readable Parquet file: {exc}") from None
    header, meta_columns = _check_columns(parquet.schema_arrow.names, path)
    row_number = 0
    for batch in parquet.iter_batches(batch_size=chunk_size):
        chunk: list[RawRecord] = []
        for row in batch.to_pylist():
            row_number += 1
            location = f"row {row_number}"
            candidate: dict[str, Any] = {}
            metadata: dict[str, Any] = {}
            error = None
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
                        except ValueError as exc:
                            error = (Reason.INVALID_METADATA,
                                     f"metadata column is not valid JSON: {exc}")
                    else:
                        candidate["metadata"] = _parquet_value(value)
                elif column == "timestamp" and isinstance(value, datetime):
                    candidate[column] = value
                else:
                    candidate[column] = _parquet_value(value)
            if metadata:
                candidate["metadata"] = metadata
            raw = json.dumps(row, default=str, ensure_ascii=False)
            chunk.append(RawRecord(source, location, raw, error=error) if error
                         else RawRecord(source, location, raw, candidate=candidate))
        yield chunk
