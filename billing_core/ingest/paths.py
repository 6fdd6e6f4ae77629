"""Finding the event files in the paths given: folders are walked recursively, following
symbolic links once each; nothing is passed over without saying so.

- Problems (the command exits non-zero): a missing path, an unreadable folder or file, a
  dangling link, a FIFO, socket or device, a file given by name whose type is unknown.
- Notes (reported, not errors): files in a folder that are not event files, a link that
  leads back into a folder already walked, a file reached twice through links.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

JSONL_SUFFIXES = (".jsonl", ".ndjson")
SUFFIXES = (*JSONL_SUFFIXES, ".json", ".csv", ".parquet")


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


@dataclass
class Inputs:
    files: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _why(error: OSError) -> str:
    return error.strerror or str(error)


def _file(path: Path, inputs: Inputs, files_seen: dict[Path, Path], named: bool) -> None:
    kind = file_format(path)
    if kind is None:
        if named:
            inputs.problems.append(f"{path}: unsupported file type (expected one of "
                                   f"{', '.join(SUFFIXES)}, optionally .gz)")
        else:
            inputs.notes.append(f"{path}: skipped, not an event file (expected one of "
                                f"{', '.join(SUFFIXES)}, optionally .gz)")
        return
    real = path.resolve()
    if real in files_seen:
        inputs.notes.append(f"{path}: skipped, the same file as {files_seen[real]}")
        return
    if not os.access(path, os.R_OK):
        inputs.problems.append(f"{path}: cannot be read: permission denied")
        return
    files_seen[real] = path
    inputs.files.append(path)


def _walk(folder: Path, inputs: Inputs, folders_seen: dict[tuple[int, int], Path],
          files_seen: dict[Path, Path]) -> None:
    try:
        stat = folder.stat()
        key = (stat.st_dev, stat.st_ino)
        if key in folders_seen:
            inputs.notes.append(f"{folder}: skipped, a link back to {folders_seen[key]}, "
                                f"which is read already")
            return
        folders_seen[key] = folder
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        inputs.problems.append(f"{folder}: folder cannot be read: {_why(exc)}")
        return
    for entry in entries:
        path = Path(entry.path)
        try:
            if entry.is_symlink() and not path.exists():
                inputs.problems.append(f"{path}: dangling symbolic link (to "
                                       f"{os.readlink(path)})")
            elif entry.is_dir(follow_symlinks=True):
                _walk(path, inputs, folders_seen, files_seen)
            elif entry.is_file(follow_symlinks=True):
                _file(path, inputs, files_seen, named=False)
            else:
                inputs.problems.append(f"{path}: not a regular file (a FIFO, socket or "
                                       f"device); not read")
        except OSError as exc:
            inputs.problems.append(f"{path}: cannot be read: {_why(exc)}")


def expand_paths(paths: list[str | Path]) -> Inputs:
    """The event files to read (folders walked recursively, in name order), the problems
    that make the command fail, and notes on what was passed over and why."""
    inputs = Inputs()
    folders_seen: dict[tuple[int, int], Path] = {}
    files_seen: dict[Path, Path] = {}
    for item in paths:
        path = Path(item).absolute()
        try:
            if path.is_symlink() and not path.exists():
                inputs.problems.append(f"{path}: dangling symbolic link (to "
                                       f"{os.readlink(path)})")
            elif path.is_dir():
                _walk(path, inputs, folders_seen, files_seen)
            elif path.is_file():
                _file(path, inputs, files_seen, named=True)
            elif path.exists():
                inputs.problems.append(f"{path}: not a regular file (a FIFO, socket or "
                                       f"device); not read")
            else:
                inputs.problems.append(f"{path}: no such file or folder")
        except OSError as exc:
            inputs.problems.append(f"{path}: cannot be read: {_why(exc)}")
    return inputs
