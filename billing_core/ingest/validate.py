"""Turning a candidate record into a ValidEvent, or a (reason, detail) rejection."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from billing_core.db.types import dumps_exact
from billing_core.ingest.records import Reason, ValidEvent

EVENT_FIELDS = frozenset({"event_id", "customer_id", "event_name", "timestamp", "metadata"})
MAX_ID_LENGTH = 256


class Rejected(Exception):
    """A record that cannot be stored as an event."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def parse_timestamp(value: Any) -> datetime:
    """ISO 8601 text to a naive UTC datetime; no offset means UTC."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise Rejected(Reason.INVALID_TIMESTAMP,
                           f"timestamp {value!r} is not ISO 8601") from None
    else:
        raise Rejected(Reason.INVALID_TIMESTAMP,
                       f"timestamp must be an ISO 8601 string, got {type(value).__name__} "
                       f"{value!r}")
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def _identifier(candidate: dict[str, Any], field: str) -> str:
    value = candidate.get(field)
    if value is None or value == "":
        raise Rejected(Reason.MISSING_FIELD, f"missing required field {field!r}")
    if not isinstance(value, str):
        raise Rejected(Reason.INVALID_FIELD,
                       f"{field} must be a string, got {type(value).__name__} {value!r}")
    if len(value) > MAX_ID_LENGTH or not value.isprintable():
        raise Rejected(Reason.INVALID_FIELD,
                       f"{field} must be printable text of at most {MAX_ID_LENGTH} characters")
    return value


def _metadata(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Rejected(Reason.INVALID_METADATA,
                       f"metadata must be an object, got {type(value).__name__}")
    for key, item in value.items():
        if "\x00" in key or (isinstance(item, str) and "\x00" in item):
            raise Rejected(Reason.INVALID_METADATA,
                           f"metadata.{key.replace(chr(0), '?')} contains a NUL character")
        if item is None or isinstance(item, str | bool | int):
            continue
        if isinstance(item, Decimal):
            if not item.is_finite():
                raise Rejected(Reason.INVALID_METADATA,
                               f"metadata.{key} is not a finite number: {item}")
            continue
        raise Rejected(Reason.INVALID_METADATA,
                       f"metadata.{key} must be a string, number, boolean or null, "
                       f"got {type(item).__name__}")
    return value


def validate(candidate: dict[str, Any], customers: set[str] | frozenset[str],
             ingested_at: datetime) -> ValidEvent:
    """Check one candidate event; raises Rejected with a reason code and a detail."""
    unknown = candidate.keys() - EVENT_FIELDS
    if unknown:
        raise Rejected(Reason.UNKNOWN_FIELD,
                       f"unknown field(s) {', '.join(sorted(map(str, unknown)))}; an event has "
                       f"event_id, customer_id, event_name, timestamp, metadata")
    event_id = _identifier(candidate, "event_id")
    customer_id = _identifier(candidate, "customer_id")
    event_name = _identifier(candidate, "event_name")
    raw_ts = candidate.get("timestamp")
    ts = ingested_at if raw_ts is None or raw_ts == "" else parse_timestamp(raw_ts)
    metadata = _metadata(candidate.get("metadata"))
    if customer_id not in customers:
        raise Rejected(Reason.UNKNOWN_CUSTOMER, f"customer {customer_id!r} is not in the catalog")
    metadata_json = dumps_exact(metadata)
    # The identity of the event as sent: a missing timestamp hashes as null, so re-sending
    # the same record later is a duplicate, not a conflict.
    ts_key = None if raw_ts is None or raw_ts == "" else ts.isoformat()
    identity = dumps_exact([event_id, customer_id, event_name, ts_key]) + metadata_json
    payload_hash = hashlib.blake2b(identity.encode(), digest_size=16).hexdigest()
    return ValidEvent(event_id=event_id, customer_id=customer_id, event_name=event_name,
                      ts=ts, metadata=metadata, metadata_json=metadata_json,
                      payload_hash=payload_hash)
