"""The records that flow from readers through validation to storage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


class Reason:
    """Reason codes for rejected records (stored in quarantine.reason)."""

    INVALID_ENCODING = "invalid_encoding"
    MALFORMED_JSON = "malformed_json"
    MALFORMED_ROW = "malformed_row"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"
    UNKNOWN_FIELD = "unknown_field"
    INVALID_TIMESTAMP = "invalid_timestamp"
    INVALID_METADATA = "invalid_metadata"
    UNKNOWN_CUSTOMER = "unknown_customer"
    CONFLICTING_DUPLICATE = "conflicting_duplicate"
    DUPLICATE_KEY = "duplicate_key"
    TOO_LARGE = "too_large"
    TOO_DEEP = "too_deep"
    OUT_OF_RANGE = "out_of_range"
    INVALID_RECORD = "invalid_record"


@dataclass(slots=True)
class RawRecord:
    """One input record: where it came from, its text, and its event-shaped candidate.

    `candidate` is None when the record could not even be parsed; `error` then holds
    (reason, detail). A JSON Lines record arrives unparsed (`parsed` False): storage tries
    the fast lane on its text first and parses it the exact way only when that declines.
    """

    source: str
    location: str
    raw: str
    candidate: dict[str, Any] | None = None
    error: tuple[str, str] | None = None
    # The candidate was parsed from `raw` as JSON text holding no \u escape and no NUL:
    # none of its strings can hold a lone surrogate or a NUL, so they need no such check.
    clean: bool = False
    parsed: bool = True


@dataclass(slots=True)
class ValidEvent:
    event_id: str
    customer_id: str
    event_name: str
    ts: datetime
    metadata: dict[str, Any]
    metadata_json: str
    payload_hash: str


@dataclass(slots=True)
class Outcome:
    """What became of one record: 'ingested', 'duplicate' or 'rejected' (with a reason)."""

    status: str
    reason: str | None = None
    detail: str | None = None
    event_id: str | None = None
