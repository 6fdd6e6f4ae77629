"""Terminal-safe text: control characters from input are shown escaped, never sent to the
terminal (no title changes, screen clears or colours from a quarantined line)."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_CONTROL_AND_NEWLINES = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(text: object, newlines: bool = True) -> str:
    """`text` with control characters (and bidirectional overrides) escaped; line breaks
    are kept unless `newlines` is False."""
    pattern = _CONTROL if newlines else _CONTROL_AND_NEWLINES
    return pattern.sub(_escape, str(text))
